package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vxtun/vxtun/config"
	"github.com/vxtun/vxtun/dataplane"
	"github.com/vxtun/vxtun/node"
	"github.com/vxtun/vxtun/registry"
)

// envPrefix is the prefix of every flag's environment variable: the flag
// --etcd-endpoints is also VXTUN_ETCD_ENDPOINTS.
const envPrefix = "VXTUN_"

// envName returns the environment variable of a flag name.
func envName(flagName string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// flanneldEnvPrefix: flags that flanneld has too are also read from
// flanneld's variable (FLANNELD_KUBE_SUBNET_MGR), so a DaemonSet's env
// keeps working; the VXTUN_ one wins.
const flanneldEnvPrefix = "FLANNELD_"

// flanneldFlags are the flags named as flanneld names them.
var flanneldFlags = map[string]bool{
	"etcd-endpoints": true, "etcd-prefix": true, "etcd-certfile": true, "etcd-keyfile": true,
	"etcd-cafile": true, "etcd-username": true, "etcd-password": true,
	"public-ip": true, "public-ipv6": true, "iface": true, "iface-regex": true, "iface-can-reach": true,
	"subnet-file": true, "iptables-forward-rules": true, "net-config-path": true, "healthz-ip": true, "healthz-port": true,
	"kube-subnet-mgr": true, "kube-api-url": true, "kubeconfig-file": true,
	"kube-annotation-prefix": true, "set-node-network-unavailable": true,
}

// envNames returns the environment variables of a flag, in precedence
// order.
func envNames(flagName string) []string {
	names := []string{envName(flagName)}
	if flanneldFlags[flagName] {
		names = append(names, flanneldEnvPrefix+strings.TrimPrefix(envName(flagName), envPrefix))
	}
	return names
}

// errUsage marks command-line misuse (exit code 2); the message is printed
// as is.
var errUsage = errors.New("usage")

type usageError struct{ msg string }

func (e *usageError) Error() string   { return e.msg }
func (e *usageError) Is(t error) bool { return t == errUsage }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// runOptions are the settings of "vxtun run" from flags and environment.
type runOptions struct {
	NetConf string // --net-conf
	Node    string // --node
	Peers   string // --peers

	EtcdEndpoints string // --etcd-endpoints, comma-separated
	EtcdPrefix    string
	EtcdCertFile  string
	EtcdKeyFile   string
	EtcdCAFile    string
	EtcdUsername  string
	EtcdPassword  string // VXTUN_ETCD_PASSWORD only: refused on the command line
	EtcdPassFile  string // --etcd-password-file
	EtcdLeaseTTL  time.Duration

	PublicIP    string // --public-ip
	PublicIPv6  string // --public-ipv6
	Iface       string // --iface: a name or, as flanneld takes it too, an IP; given twice or more: chosen by iface.go
	Tun         string // --tun
	Workers     int    // --workers (0: from the node file, else NumCPU)
	SubnetFile  string // --subnet-file
	ListenPort  int    // --listen-port (0: node file, else net-conf)
	VtepMACFile string // --vtep-mac-file
	// Ifaces are the values of --iface in order (it repeats, as flanneld's).
	Ifaces []string
	// IfaceRegex (--iface-regex, repeatable) and IfaceCanReach
	// (--iface-can-reach): flanneld's other ways to pick the underlay
	// interface (iface.go).
	IfaceRegex    []string
	IfaceCanReach string

	ForwardRules bool // --iptables-forward-rules
	IPMasq       bool // --ip-masq

	KubeSubnetMgr         bool   // --kube-subnet-mgr: Kubernetes mode
	KubeAPIURL            string // --kube-api-url
	KubeconfigFile        string // --kubeconfig-file
	KubeAnnotationPrefix  string // --kube-annotation-prefix
	SetNetworkUnavailable bool   // --set-node-network-unavailable
	// This node's Node, from the environment as flanneld reads it
	// (NODE_NAME, else POD_NAME and POD_NAMESPACE).
	NodeName, PodName, PodNamespace string

	Dataplane  string // --dataplane: auto, userspace or kernel
	PeerFilter bool   // --peer-filter
	BusyPoll   bool   // --busy-poll
	// BusyPollIdle is --busy-poll-idle: with --busy-poll, stop polling
	// after this long without a packet (0: poll as long as vxtun runs).
	BusyPollIdle time.Duration
	// BusyPollAhead is --busy-poll-ahead: with --busy-poll-idle, one
	// thread waits for all descriptors when idle and wakes ahead of
	// packets that come at a steady rate.
	BusyPollAhead bool
	// CPULocal is --cpu-local: each worker runs on one CPU and handles the
	// packets written and received there.
	CPULocal bool

	// HealthzIP and HealthzPort are flanneld's --healthz-ip and
	// --healthz-port: a liveness /healthz (port 0: off).
	HealthzIP   string
	HealthzPort int
	// netConfigPath is flanneld's --net-config-path, another name for
	// --net-conf.
	netConfigPath string

	DebugAddr       string // --debug-addr ("" = off)
	DebugAddrPublic bool   // --debug-addr-public: a non-loopback --debug-addr is allowed
	DebugPprof      bool   // --debug-pprof
	LogLevel        string // --log-level

	cmdline map[string]bool // flags given on the command line

	set map[string]bool // flags given on the command line or in the environment
}

// etcdMode reports whether the peers come from etcd.
func (o *runOptions) etcdMode() bool { return o.EtcdEndpoints != "" }

// modes names the peer sources chosen.
func (o *runOptions) modes() []string {
	var m []string
	if o.Peers != "" {
		m = append(m, "--peers")
	}
	if o.etcdMode() {
		m = append(m, "--etcd-endpoints")
	}
	if o.KubeSubnetMgr {
		m = append(m, "--kube-subnet-mgr")
	}
	return m
}

// newRunFlags defines the flags of "vxtun run" on a new FlagSet.
func newRunFlags(o *runOptions, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("vxtun run", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&o.NetConf, "net-conf", "", "flannel `net-conf.json` (static mode default "+config.DefaultNetConfPath+"; etcd mode: read from <etcd-prefix>/config unless given)")
	fs.StringVar(&o.Node, "node", "", "node settings `file` (JSON: PublicIP, Iface, Subnet, TunName, VtepMAC/VtepMACFile, ...); required with --peers, optional with --etcd-endpoints")
	fs.StringVar(&o.Peers, "peers", "", "static peers `file`: static mode (reloaded on SIGHUP and when it changes)")
	fs.StringVar(&o.EtcdEndpoints, "etcd-endpoints", "", "comma-separated etcd `urls`: etcd mode (flannel's v3 layout), e.g. http://127.0.0.1:2379")
	fs.StringVar(&o.EtcdPrefix, "etcd-prefix", registry.DefaultEtcdPrefix, "etcd key `prefix` of the network")
	fs.StringVar(&o.EtcdCertFile, "etcd-certfile", "", "TLS client certificate `file` for etcd")
	fs.StringVar(&o.EtcdKeyFile, "etcd-keyfile", "", "TLS client key `file` for etcd")
	fs.StringVar(&o.EtcdCAFile, "etcd-cafile", "", "TLS CA `file` to verify etcd's certificate")
	fs.StringVar(&o.EtcdUsername, "etcd-username", "", "etcd `user` name (authentication)")
	fs.StringVar(&o.EtcdPassword, "etcd-password", "", "etcd `password`: from the environment only (a command-line password is visible to every user and is refused); or use --etcd-password-file")
	fs.StringVar(&o.EtcdPassFile, "etcd-password-file", "", "`file` holding the etcd password (a regular file, not world-writable; a trailing newline is ignored)")
	fs.DurationVar(&o.EtcdLeaseTTL, "etcd-lease-ttl", registry.DefaultLeaseTTL, "TTL of this node's subnet lease in etcd")
	fs.BoolVar(&o.KubeSubnetMgr, "kube-subnet-mgr", false, "Kubernetes mode, as flanneld's: the subnet is this node's spec.podCIDR, the VTEP is published in its Node's flannel annotations, peers are the other annotated Nodes (node name from NODE_NAME, else POD_NAME + POD_NAMESPACE)")
	fs.StringVar(&o.KubeAPIURL, "kube-api-url", "", "Kubernetes API server `url` (default: in-cluster config, or the --kubeconfig-file's)")
	fs.StringVar(&o.KubeconfigFile, "kubeconfig-file", "", "kubeconfig `file` (default: in-cluster config)")
	fs.StringVar(&o.KubeAnnotationPrefix, "kube-annotation-prefix", registry.DefaultAnnotationPrefix, "`prefix` of the flannel Node annotations")
	fs.BoolVar(&o.SetNetworkUnavailable, "set-node-network-unavailable", true, "set the Node's NetworkUnavailable condition to False once running (Kubernetes mode)")
	fs.StringVar(&o.PublicIP, "public-ip", "", "underlay `IP` of this node (overrides the node file's PublicIP)")
	fs.StringVar(&o.PublicIPv6, "public-ipv6", "", "second, IPv6 underlay `IP` next to the IPv4 one, with EnableIPv6 (overrides the node file's PublicIPv6; default with --iface: its first global IPv6 address): peers that publish a public IPv6 are reached over it, as flanneld does")
	fs.Func("iface", "underlay `interface`, by name or by one of its IPs (overrides the node file's Iface; the public IP is the IP given, else the interface's first IPv4 address, unless --public-ip is given; repeatable, as flanneld's: the first that exists is taken; without --iface, --iface-regex, --iface-can-reach, --public-ip and --node: the default route's interface, as flanneld picks it)", func(v string) error {
		o.Ifaces = append(o.Ifaces, v)
		if len(o.Ifaces) == 1 {
			o.Iface = v
		} else {
			o.Iface = "" // chosen by pickUnderlay
		}
		return nil
	})
	fs.Func("iface-regex", "underlay interface by `regex`, as flanneld's flag: the first interface with an IPv4 address matching it, else the first whose name does (repeatable, tried in order; used when --iface is not given)", func(v string) error {
		if _, err := regexp.Compile(v); err != nil {
			return err
		}
		o.IfaceRegex = append(o.IfaceRegex, v)
		return nil
	})
	fs.StringVar(&o.IfaceCanReach, "iface-can-reach", "", "underlay interface: the one the route to this `IP` leaves by, as flanneld's flag (used when --iface and --iface-regex are not given)")
	fs.StringVar(&o.Tun, "tun", "", "TUN interface `name` (overrides the node file's TunName; default "+config.DefaultTunName+")")
	fs.IntVar(&o.Workers, "workers", 0, "forwarding workers = TUN queues (`n`; 0: node file's Workers, else the number of CPUs)")
	fs.StringVar(&o.SubnetFile, "subnet-file", "", "subnet.env `path` for the flannel CNI plugin (overrides the node file's SubnetFile; default "+config.DefaultSubnetFile+")")
	fs.IntVar(&o.ListenPort, "listen-port", 0, "underlay UDP `port` (0: node file's ListenPort, else net-conf Backend.Port, else 8472 vxlan / 8285 udp)")
	fs.StringVar(&o.VtepMACFile, "vtep-mac-file", "", "`file` keeping this node's VTEP MAC across restarts (vxlan; overrides the node file's VtepMAC/VtepMACFile; etcd mode default /var/lib/vxtun/vtep-mac)")
	fs.StringVar(&o.Dataplane, "dataplane", dataplane.KindAuto, "`kind` of dataplane: auto (the kernel's vxlan device where it can be used, else userspace), userspace (the TUN device; vxtun forwards) or kernel (a kernel vxlan device flannel.<VNI> programmed as flanneld does; the kernel forwards)")
	fs.BoolVar(&o.ForwardRules, "iptables-forward-rules", true, "accept forwarded traffic from and to the pod Network in the host firewall (nftables; flanneld's flag of the same name)")
	fs.BoolVar(&o.IPMasq, "ip-masq", false, "masquerade pod traffic that leaves the pod Network (nftables, flanneld's flag of the same name; also the node file's IPMasq); FLANNEL_IPMASQ in subnet.env follows it")
	fs.BoolVar(&o.PeerFilter, "peer-filter", true, "drop datagrams to the underlay port from addresses that are not peers in the kernel (nftables set in table inet vxtun, kept in step with the peers)")
	fs.BoolVar(&o.BusyPoll, "busy-poll", false, "userspace dataplane: keep one thread polling the TUN and the sockets instead of sleeping between packets (lower, steadier latency for up to one CPU while idle; by default the threads sleep as soon as there is nothing to read)")
	fs.DurationVar(&o.BusyPollIdle, "busy-poll-idle", 0, "with --busy-poll: stop polling after this `duration` without a packet and sleep until the next one (no CPU while idle; e.g. 5ms; 0: poll for as long as vxtun runs)")
	fs.BoolVar(&o.CPULocal, "cpu-local", false, "userspace dataplane: each worker runs on one CPU and takes the packets written and received on it (TUN queue and socket chosen by CPU, a flow moving only after a pause), so a packet's wake-ups stay on one CPU")
	fs.BoolVar(&o.BusyPollAhead, "busy-poll-ahead", false, "with --busy-poll-idle: when polling stops, the polling thread waits for the next packet itself, one wait for all the TUN queues and sockets, and when packets come at a steady rate (a probe every millisecond, a periodic request) it wakes just before the next one is due, so that one finds it polling")
	fs.StringVar(&o.netConfigPath, "net-config-path", "", "flanneld's name for --net-conf (`file`)")
	fs.StringVar(&o.HealthzIP, "healthz-ip", "0.0.0.0", "`IP` of the liveness endpoint, as flanneld's flag")
	fs.IntVar(&o.HealthzPort, "healthz-port", 0, "serve a liveness /healthz (200 while vxtun runs, as flanneld's) on --healthz-ip and this `port`, and nothing else there (0: off)")
	fs.StringVar(&o.DebugAddr, "debug-addr", "", "serve /metrics (Prometheus text) and /healthz over HTTP on this `host:port`, e.g. 127.0.0.1:9090 (off when empty); a loopback address unless --debug-addr-public")
	fs.BoolVar(&o.DebugAddrPublic, "debug-addr-public", false, "allow a --debug-addr that is not loopback (it is then reachable from other hosts: logged as a warning)")
	fs.BoolVar(&o.DebugPprof, "debug-pprof", false, "also serve the Go profiler under /debug/pprof/ on --debug-addr (heap, goroutines, command line)")
	fs.StringVar(&o.LogLevel, "log-level", "info", "log `level`: debug, info, warn or error")
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprint(w, `Usage: vxtun run [flags]

Runs the node daemon: opens and configures the TUN device, writes subnet.env
and forwards between the TUN and the underlay (VXLAN or flannel's legacy UDP).
Peers come from a static file (--peers), from etcd (--etcd-endpoints) or
from the Kubernetes Nodes (--kube-subnet-mgr).

Signals: SIGHUP re-reads the peers file (a bad file is logged and the old
peers stay); SIGTERM and SIGINT shut down and remove the TUN device and
the addresses and routes vxtun added.

Exit status: 0 after a clean shutdown, 1 on a startup or runtime error,
2 on command-line misuse.

Every flag can also be set by an environment variable (shown in brackets);
a flag on the command line wins.

Flags:
`)
		fs.VisitAll(func(f *flag.Flag) {
			name, usage := flag.UnquoteUsage(f)
			fmt.Fprintf(w, "  --%s", f.Name)
			if name != "" {
				fmt.Fprintf(w, " %s", name)
			}
			for _, e := range envNames(f.Name) {
				fmt.Fprintf(w, "  [%s]", e)
			}
			fmt.Fprintln(w)
			fmt.Fprintf(w, "        %s", strings.ReplaceAll(usage, "\n", "\n        "))
			if f.DefValue != "" && f.DefValue != "0" && f.DefValue != "0s" {
				fmt.Fprintf(w, " (default %s)", f.DefValue)
			}
			fmt.Fprintln(w)
		})
	}
	return fs
}

// parseRunFlags parses args and then fills every flag not given on the
// command line from its environment variable (getenv). Errors wrap errUsage,
// except flag.ErrHelp which is returned as is.
func parseRunFlags(args []string, getenv func(string) string, out io.Writer) (*runOptions, error) {
	o := &runOptions{set: map[string]bool{}, cmdline: map[string]bool{}}
	fs := newRunFlags(o, out)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, &usageError{msg: err.Error()}
	}
	if fs.NArg() > 0 {
		return nil, usagef("unexpected argument %q", fs.Arg(0))
	}
	fs.Visit(func(f *flag.Flag) { o.set[f.Name], o.cmdline[f.Name] = true, true })
	if o.cmdline["etcd-password"] {
		// Every user can read a command line (ps, /proc/<pid>/cmdline).
		return nil, usagef("--etcd-password on the command line is visible to every user of this host: put the password in a file (--etcd-password-file FILE) or in the %s environment variable", envName("etcd-password"))
	}
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if o.set[f.Name] || envErr != nil {
			return
		}
		var v, name string
		for _, name = range envNames(f.Name) {
			if x, ok := lookupEnv(getenv, name); ok {
				v = x
				break
			}
		}
		if v == "" {
			return
		}
		if err := fs.Set(f.Name, v); err != nil {
			envErr = usagef("invalid value %q for %s: %v", v, name, err)
			return
		}
		o.set[f.Name] = true
	})
	if envErr != nil {
		return nil, envErr
	}
	o.NodeName, o.PodName, o.PodNamespace = getenv("NODE_NAME"), getenv("POD_NAME"), getenv("POD_NAMESPACE")
	if err := o.check(); err != nil {
		return nil, err
	}
	return o, nil
}

// lookupEnv treats an empty variable as unset.
func lookupEnv(getenv func(string) string, name string) (string, bool) {
	v := getenv(name)
	return v, v != ""
}

// check validates what can be judged without reading any file.
func (o *runOptions) check() error {
	switch m := o.modes(); {
	case len(m) > 1:
		return usagef("%s exclude each other: choose one peer source", strings.Join(m, " and "))
	case len(m) == 0:
		return usagef("no peer source: give --peers FILE (static), --etcd-endpoints URLS (etcd) or --kube-subnet-mgr (Kubernetes)")
	case o.Peers != "" && o.Node == "":
		return usagef("--node FILE is required with --peers (it holds this node's Subnet)")
	case o.Workers < 0 || o.Workers > config.MaxWorkers:
		return usagef("--workers %d is out of range 0..%d", o.Workers, config.MaxWorkers)
	case o.ListenPort < 0 || o.ListenPort > 65535:
		return usagef("--listen-port %d is out of range 0..65535", o.ListenPort)
	case o.EtcdLeaseTTL <= 0:
		return usagef("--etcd-lease-ttl %v must be positive", o.EtcdLeaseTTL)
	case (o.EtcdCertFile == "") != (o.EtcdKeyFile == ""):
		return usagef("--etcd-certfile and --etcd-keyfile go together")
	case o.EtcdPassword != "" && o.EtcdPassFile != "":
		return usagef("%s and --etcd-password-file exclude each other", envName("etcd-password"))
	case o.netConfigPath != "" && o.NetConf != "" && o.netConfigPath != o.NetConf:
		return usagef("--net-conf %s and --net-config-path %s name different files", o.NetConf, o.netConfigPath)
	case o.HealthzPort < 0 || o.HealthzPort > 65535:
		return usagef("--healthz-port %d is out of range 0..65535", o.HealthzPort)
	case o.DebugPprof && o.DebugAddr == "":
		return usagef("--debug-pprof needs --debug-addr")
	case o.BusyPollIdle < 0:
		return usagef("--busy-poll-idle %v must not be negative", o.BusyPollIdle)
	case o.BusyPollIdle > 0 && !o.BusyPoll:
		return usagef("--busy-poll-idle needs --busy-poll")
	case o.BusyPollAhead && o.BusyPollIdle == 0:
		return usagef("--busy-poll-ahead needs --busy-poll-idle")
	}
	if o.PublicIP != "" {
		if _, err := netip.ParseAddr(o.PublicIP); err != nil {
			return usagef("--public-ip %q is not an IP address", o.PublicIP)
		}
	}
	if o.PublicIPv6 != "" {
		if _, err := config.ParsePublicIPv6(o.PublicIPv6); err != nil {
			return usagef("--public-ipv6: %v", err)
		}
	}
	if o.netConfigPath != "" {
		o.NetConf = o.netConfigPath
	}
	if _, err := netip.ParseAddr(o.HealthzIP); err != nil && o.HealthzPort != 0 {
		return usagef("--healthz-ip %q is not an IP address", o.HealthzIP)
	}
	if o.IfaceCanReach != "" {
		if _, err := netip.ParseAddr(o.IfaceCanReach); err != nil {
			return usagef("--iface-can-reach %q is not an IP address", o.IfaceCanReach)
		}
	}
	checks := []struct{ flag, v string }{{"--tun", o.Tun}}
	for _, v := range o.Ifaces {
		if _, err := netip.ParseAddr(v); err != nil {
			checks = append(checks, struct{ flag, v string }{"--iface", v})
		}
	}
	for _, f := range checks {
		if f.v == "" {
			continue
		}
		if err := config.CheckIfName(f.v); err != nil {
			return usagef("%s: %v", f.flag, err)
		}
	}
	if !slices.Contains(dataplane.Kinds(), o.Dataplane) {
		return usagef("--dataplane %q: want %s", o.Dataplane, strings.Join(dataplane.Kinds(), ", "))
	}
	if _, err := parseLevel(o.LogLevel); err != nil {
		return usagef("--log-level: %v", err)
	}
	if o.DebugAddr != "" {
		_, ps, err := net.SplitHostPort(o.DebugAddr)
		if err != nil {
			return usagef("--debug-addr %q: want host:port", o.DebugAddr)
		}
		if port, err := strconv.ParseUint(ps, 10, 16); err != nil || port == 0 {
			return usagef("--debug-addr %q: want a port 1..65535", o.DebugAddr)
		}
		if !node.IsLoopbackAddr(o.DebugAddr) && !o.DebugAddrPublic {
			return usagef("--debug-addr %s is not a loopback address: its metrics would be served to other hosts; use 127.0.0.1:PORT, or add --debug-addr-public to serve them anyway", o.DebugAddr)
		}
	}
	return nil
}

// endpoints splits --etcd-endpoints.
func (o *runOptions) endpoints() []string {
	var eps []string
	for _, e := range strings.Split(o.EtcdEndpoints, ",") {
		if e = strings.TrimSpace(e); e != "" {
			eps = append(eps, e)
		}
	}
	return eps
}

func parseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "debug":
		return slog.LevelDebug, nil
	case "info", "":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("unknown level %q (want debug, info, warn or error)", s)
}
