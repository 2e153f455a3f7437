package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vxtun/vxtun/config"
	"github.com/vxtun/vxtun/internal/flannelvxlan"
	"github.com/vxtun/vxtun/internal/nettest"
)

// Addresses of the demo (the RFC 2544 benchmark ranges).
const (
	network   = "198.19.0.0/16"
	debugAddr = "127.0.0.1:9090"
	port      = "5201"
)

// node is one demo node.
type node struct {
	idx    int
	ns     string
	kernel bool // kernel vxlan (flannel.1) instead of vxtun
	dir    string
	log    string
	cmd    *exec.Cmd
	done   chan struct{}
	err    error

	// The node's pod: a namespace of its own behind the node's cni0,
	// attached by the CNI bridge plugin.
	podNS  string
	podID  string // CNI_CONTAINERID
	podIP  string // from the CNI result
	podNet *nettest.PodNetwork
}

func (n *node) ul() string     { return fmt.Sprintf("198.18.0.%d", n.idx) }
func (n *node) pod() string    { return n.podIP }
func (n *node) subnet() string { return fmt.Sprintf("198.19.%d.0/24", n.idx) }
func (n *node) mac() string    { return fmt.Sprintf("0e:76:78:00:00:%02x", n.idx) }
func (n *node) name() string   { return fmt.Sprintf("node%d", n.idx) }
func (n *node) subnetEnv() string {
	return filepath.Join(n.dir, "subnet.env")
}
func (n *node) kind() string {
	if n.kernel {
		return "kernel"
	}
	return "vxtun"
}

// demo is one run.
type demo struct {
	cfg     Config
	out     io.Writer
	id      string
	dir     string
	self    string // this program, re-run inside namespaces as a helper
	vxtun   string
	tool    string
	sw      string
	nodes   []*node
	failed  []string
	started time.Time // vxtun started
}

// Run runs the demo and removes everything it made before it returns.
func Run(ctx context.Context, cfg Config, out io.Writer) (err error) {
	d := &demo{cfg: cfg, out: out}
	d.defaults()
	if err := d.preflight(ctx); err != nil {
		return err
	}
	d.dir, err = os.MkdirTemp("", "vxtun-demo-")
	if err != nil {
		return fmt.Errorf("work directory: %w", err)
	}
	defer func() {
		if terr := d.teardown(); err == nil {
			err = terr
		}
		if (err != nil && ctx.Err() == nil) || cfg.Keep {
			fmt.Fprintf(d.out, "configs and logs kept in %s\n", d.dir)
		} else {
			os.RemoveAll(d.dir)
		}
	}()
	if err := os.Chmod(d.dir, 0o755); err != nil {
		return fmt.Errorf("work directory: %w", err)
	}
	if err := d.build(ctx); err != nil {
		return err
	}
	if err := d.setup(ctx); err != nil {
		return err
	}
	if err := d.startVxtun(ctx); err != nil {
		return err
	}
	if err := d.attachPods(ctx); err != nil {
		return err
	}
	if err := d.waitOverlay(ctx); err != nil {
		return err
	}
	d.pings(ctx)
	d.transfers(ctx)
	d.stats(ctx)
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("interrupted: %w", err)
	}
	if len(d.failed) > 0 {
		return fmt.Errorf("%d check(s) failed: %s", len(d.failed), strings.Join(d.failed, "; "))
	}
	fmt.Fprintln(d.out, "\nall pairs reachable: pod to pod through cni0, ping and TCP crossed vxtun↔vxtun and vxtun↔"+d.node3Kind()+" both ways")
	return nil
}

func (d *demo) defaults() {
	c := &d.cfg
	if c.Pings <= 0 {
		c.Pings = 10
		if c.Quick {
			c.Pings = 3
		}
	}
	if c.Size <= 0 {
		c.Size = 64 << 20
		if c.Quick {
			c.Size = 4 << 20
		}
	}
	if c.Seconds <= 0 {
		c.Seconds = 3
		if c.Quick {
			c.Seconds = 1
		}
	}
	if c.Ready <= 0 {
		c.Ready = 20 * time.Second
	}
	if c.Tool == "" {
		c.Tool = "auto"
	}
	var b [3]byte
	_, _ = rand.Read(b[:])
	d.id = hex.EncodeToString(b[:])
}

// preflight checks root and tools, installing ping (and iperf3 when asked
// for) with apt-get if missing.
func (d *demo) preflight(ctx context.Context) error {
	if os.Geteuid() != 0 {
		return errors.New("needs root (network namespaces, TUN): run it with sudo")
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		return fmt.Errorf("no /dev/net/tun: %w (modprobe tun)", err)
	}
	for _, t := range []string{"ip", "bridge"} {
		if _, err := exec.LookPath(t); err != nil {
			return fmt.Errorf("needs %s from iproute2 (apt-get install -y iproute2)", t)
		}
	}
	if err := d.ensure(ctx, "ping", "iputils-ping"); err != nil {
		return err
	}
	if _, err := nettest.CNIPath(); err != nil {
		return fmt.Errorf("pods need the CNI plugins: %w (make deps)", err)
	}
	switch d.cfg.Tool {
	case "go":
		d.tool = "go"
	case "iperf3":
		if err := d.ensure(ctx, "iperf3", "iperf3"); err != nil {
			return err
		}
		d.tool = "iperf3"
	case "auto":
		d.tool = "go"
		if _, err := exec.LookPath("iperf3"); err == nil {
			d.tool = "iperf3"
		}
	default:
		return fmt.Errorf("-tool %q: want auto, iperf3 or go", d.cfg.Tool)
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find this program: %w", err)
	}
	d.self = self
	return nil
}

// ensure installs pkg with apt-get when cmd is missing.
func (d *demo) ensure(ctx context.Context, cmd, pkg string) error {
	if _, err := exec.LookPath(cmd); err == nil {
		return nil
	}
	fmt.Fprintf(d.out, "%s is missing; installing it:\n", cmd)
	for _, argv := range [][]string{{"apt-get", "update", "-q"}, {"apt-get", "install", "-y", "-q", pkg}} {
		if _, err := d.sh(ctx, true, argv...); err != nil {
			return fmt.Errorf("install %s: %w", pkg, err)
		}
	}
	if _, err := exec.LookPath(cmd); err != nil {
		return fmt.Errorf("%s still missing after installing %s", cmd, pkg)
	}
	return nil
}

// sh runs argv, printing it when show or -v, and returns its combined
// output.
func (d *demo) sh(ctx context.Context, show bool, argv ...string) (string, error) {
	if show || d.cfg.Verbose {
		fmt.Fprintf(d.out, "  + %s\n", strings.Join(argv, " "))
	}
	out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

func (d *demo) section(format string, args ...any) {
	fmt.Fprintf(d.out, "\n== "+format+"\n", args...)
}

func (d *demo) build(ctx context.Context) error {
	if d.cfg.Vxtun != "" {
		abs, err := filepath.Abs(d.cfg.Vxtun)
		if err != nil {
			return err
		}
		d.vxtun = abs
		return nil
	}
	d.section("building vxtun")
	d.vxtun = filepath.Join(d.dir, "vxtun")
	if _, err := d.sh(ctx, true, "go", "build", "-o", d.vxtun, "github.com/vxtun/vxtun/cmd/vxtun"); err != nil {
		return fmt.Errorf("build vxtun (run the demo from the repository, or pass -vxtun): %w", err)
	}
	out, _ := d.sh(ctx, false, d.vxtun, "version")
	fmt.Fprintf(d.out, "  %s", out)
	return nil
}

// setup builds the namespaces, the bridge, the underlay and node3's
// kernel vxlan device, and writes the vxtun configs.
func (d *demo) setup(ctx context.Context) error {
	d.sw = "vxdemo-" + d.id + "-sw"
	for i := 1; i <= 3; i++ {
		n := &node{idx: i, ns: fmt.Sprintf("vxdemo-%s-n%d", d.id, i), kernel: i == 3, dir: filepath.Join(d.dir, fmt.Sprintf("node%d", i))}
		n.podNS = n.ns + "-pod"
		n.log = filepath.Join(n.dir, "vxtun.log")
		d.nodes = append(d.nodes, n)
	}
	d.section("underlay: bridge br0 in namespace %s; node namespaces on 198.18.0.0/24", d.sw)
	run := func(argv ...string) error {
		_, err := d.sh(ctx, true, argv...)
		return err
	}
	steps := [][]string{
		{"ip", "netns", "add", d.sw},
		{"ip", "-n", d.sw, "link", "add", "br0", "type", "bridge"},
		{"ip", "-n", d.sw, "link", "set", "br0", "up"},
	}
	for _, n := range d.nodes {
		steps = append(steps,
			[]string{"ip", "netns", "add", n.ns},
			[]string{"ip", "-n", d.sw, "link", "add", n.name(), "type", "veth", "peer", "name", "ul0", "netns", n.ns},
			[]string{"ip", "-n", d.sw, "link", "set", n.name(), "master", "br0", "up"},
			[]string{"ip", "-n", n.ns, "link", "set", "lo", "up"},
			[]string{"ip", "-n", n.ns, "addr", "add", n.ul() + "/24", "dev", "ul0"},
			[]string{"ip", "-n", n.ns, "link", "set", "ul0", "up"},
		)
	}
	for _, s := range steps {
		if err := run(s...); err != nil {
			return err
		}
	}

	k := d.nodes[2]
	if d.hostGW() {
		if err := d.setupFlanneldHostGW(ctx, k); err != nil {
			return err
		}
		return d.writeVxtunConfigs()
	}
	d.section("%s: kernel vxlan flannel.1, programmed as flannel does", k.name())
	kdev := flannelvxlan.Device{Local: netip.MustParseAddr(k.ul()), MAC: mustMAC(k.mac()),
		Subnet: netip.MustParsePrefix(k.subnet())}
	var remotes []flannelvxlan.Remote
	for _, r := range d.nodes[:2] {
		remotes = append(remotes, flannelvxlan.Remote{Subnet: netip.MustParsePrefix(r.subnet()),
			PublicIP: netip.MustParseAddr(r.ul()), VtepMAC: mustMAC(r.mac())})
	}
	steps = nil
	for _, c := range kdev.Commands(remotes...) {
		// ip and bridge both take "-n NETNS" right after the program name.
		steps = append(steps, append([]string{c[0], "-n", k.ns}, c[1:]...))
	}
	for _, s := range steps {
		if err := run(s...); err != nil {
			return err
		}
	}
	// flanneld would write this for its node: the CNI plugin reads it.
	if err := os.MkdirAll(k.dir, 0o755); err != nil {
		return fmt.Errorf("config of %s: %w", k.name(), err)
	}
	if err := config.WriteSubnetEnv(k.subnetEnv(), config.SubnetEnv{
		Network: netip.MustParsePrefix(network), Subnet: netip.MustParsePrefix(k.subnet()),
		MTU: 1450, IPMasq: true,
	}); err != nil {
		return fmt.Errorf("subnet.env of %s: %w", k.name(), err)
	}
	fmt.Fprintf(d.out, "  %s subnet.env (as flanneld writes it): %s\n", k.name(), oneLine(k.subnetEnv()))
	return d.writeVxtunConfigs()
}

// writeVxtunConfigs writes and shows node1's and node2's configuration.
func (d *demo) writeVxtunConfigs() error {
	d.section("vxtun configuration (%s)", d.dir)
	for _, n := range d.nodes[:2] {
		if err := d.writeConfig(n); err != nil {
			return err
		}
		fmt.Fprintf(d.out, "  %s: %s/{net-conf.json,node.json,peers.json}\n", n.name(), n.dir)
	}
	nc, _ := os.ReadFile(filepath.Join(d.nodes[0].dir, "net-conf.json"))
	fmt.Fprintf(d.out, "  net-conf.json: %s\n", strings.Join(strings.Fields(string(nc)), " "))
	return nil
}

func (d *demo) writeConfig(n *node) error {
	if err := os.MkdirAll(n.dir, 0o755); err != nil {
		return fmt.Errorf("config of %s: %w", n.name(), err)
	}
	var peers []map[string]any
	for _, p := range d.nodes {
		if p == n {
			continue
		}
		peers = append(peers, map[string]any{
			"Name": p.name(), "PublicIP": p.ul(), "Subnets": []string{p.subnet()}, "VtepMAC": p.mac(),
		})
	}
	files := []struct {
		name string
		v    any
	}{
		{"net-conf.json", map[string]any{"Network": network, "Backend": d.backendConf()}},
		{"node.json", map[string]any{
			"PublicIP": n.ul(), "Iface": "ul0", "Subnet": n.subnet(), "TunName": "vxtun0",
			"VtepMAC": n.mac(), "SubnetFile": n.subnetEnv(), "IPMasq": true,
		}},
		{"peers.json", map[string]any{"Peers": peers}},
	}
	for _, f := range files {
		b, err := json.MarshalIndent(f.v, "", "  ")
		if err != nil {
			return fmt.Errorf("%s of %s: %w", f.name, n.name(), err)
		}
		if err := os.WriteFile(filepath.Join(n.dir, f.name), append(b, '\n'), 0o644); err != nil {
			return fmt.Errorf("config of %s: %w", n.name(), err)
		}
	}
	return nil
}

// startVxtun starts vxtun on node1 and node2 and waits until the overlay
// carries a ping.
func (d *demo) startVxtun(ctx context.Context) error {
	d.section("starting vxtun on node1 and node2")
	for _, n := range d.nodes[:2] {
		argv := []string{"ip", "netns", "exec", n.ns, d.vxtun, "run",
			"--net-conf", filepath.Join(n.dir, "net-conf.json"),
			"--node", filepath.Join(n.dir, "node.json"),
			"--peers", filepath.Join(n.dir, "peers.json"),
			"--debug-addr", debugAddr, "--dataplane", "userspace"}
		fmt.Fprintf(d.out, "  + %s  (log: %s)\n", strings.Join(argv, " "), n.log)
		f, err := os.Create(n.log)
		if err != nil {
			return fmt.Errorf("log of %s: %w", n.name(), err)
		}
		n.cmd = exec.Command(argv[0], argv[1:]...)
		n.cmd.Stdout, n.cmd.Stderr = f, f
		// Own process group: Ctrl-C reaches the demo, which stops the
		// daemons in order.
		n.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := n.cmd.Start(); err != nil {
			f.Close()
			return fmt.Errorf("start vxtun on %s: %w", n.name(), err)
		}
		n.done = make(chan struct{})
		go func() {
			n.err = n.cmd.Wait()
			f.Close()
			close(n.done)
		}()
	}
	// vxtun writes subnet.env once it runs; the CNI plugin needs it.
	d.started = time.Now()
	start := d.started
	for _, n := range d.nodes[:2] {
		for {
			if _, err := os.Stat(n.subnetEnv()); err == nil {
				break
			}
			if err := d.exited(); err != nil {
				return err
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if time.Since(start) > d.cfg.Ready {
				return fmt.Errorf("vxtun on %s wrote no subnet.env within %v:\n%s", n.name(), d.cfg.Ready, tail(n.log, 1500))
			}
			time.Sleep(50 * time.Millisecond)
		}
		fmt.Fprintf(d.out, "  %s subnet.env: %s\n", n.name(), oneLine(n.subnetEnv()))
	}
	return nil
}

// exited returns an error if a vxtun daemon has exited.
func (d *demo) exited() error {
	for _, n := range d.nodes[:2] {
		select {
		case <-n.done:
			return fmt.Errorf("vxtun on %s exited (%v):\n%s", n.name(), n.err, tail(n.log, 1500))
		default:
		}
	}
	return nil
}

// attachPods gives every node a pod: a namespace attached to the node's
// cni0 bridge by the CNI bridge and host-local plugins, run inside the
// node's namespace with the configuration the flannel CNI plugin builds
// from the node's subnet.env.
func (d *demo) attachPods(ctx context.Context) error {
	d.section("pods: CNI bridge + host-local on every node, configured as the flannel CNI plugin delegates")
	for _, n := range d.nodes {
		pn, err := nettest.NewPodNetwork(n.ns, n.subnetEnv(), n.dir)
		if err != nil {
			return fmt.Errorf("pods on %s: %w", n.name(), err)
		}
		if n.idx == 1 {
			fmt.Fprintf(d.out, "  delegate config (%s): %s\n", n.name(), pn.Conf)
		}
		if _, err := d.sh(ctx, d.cfg.Verbose, "ip", "netns", "add", n.podNS); err != nil {
			return err
		}
		n.podNet, n.podID = pn, pn.ContainerID(n.podNS)
		if d.cfg.Verbose {
			fmt.Fprintf(d.out, "  + ip netns exec %s %s  (CNI_COMMAND=ADD CNI_NETNS=/var/run/netns/%s CNI_IFNAME=%s, config on stdin)\n",
				n.ns, filepath.Join(pn.PluginDir, "bridge"), n.podNS, nettest.PodIfName)
		}
		addr, err := pn.Add(ctx, n.podNS, n.podID)
		if err != nil {
			n.podID = "" // nothing to delete
			return fmt.Errorf("pod on %s: %w", n.name(), err)
		}
		n.podIP = addr.Addr.Addr().String()
		mtu, err := d.sh(ctx, false, "ip", "netns", "exec", n.podNS, "cat", "/sys/class/net/"+nettest.PodIfName+"/mtu")
		if err != nil {
			return fmt.Errorf("pod on %s: %w", n.name(), err)
		}
		fmt.Fprintf(d.out, "  %-16s pod %s: %s %s mtu %s, gateway %s on cni0\n", n.name()+" ("+n.kind()+")",
			n.podNS, nettest.PodIfName, addr.Addr, strings.TrimSpace(mtu), addr.Gateway)
	}
	return nil
}

// waitOverlay waits until every pair of pods can ping.
func (d *demo) waitOverlay(ctx context.Context) error {
	start := d.started
	for _, pair := range [][2]*node{{d.nodes[0], d.nodes[1]}, {d.nodes[0], d.nodes[2]}, {d.nodes[1], d.nodes[2]}} {
		for {
			if err := d.exited(); err != nil {
				return err
			}
			_, err := d.sh(ctx, false, "ip", "netns", "exec", pair[0].podNS, "ping", "-n", "-q", "-c", "1", "-W", "1", pair[1].pod())
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if time.Since(start) > d.cfg.Ready {
				return fmt.Errorf("%s cannot reach %s after %v: %w\nnode1 log:\n%s\nnode2 log:\n%s", pair[0].name(), pair[1].name(),
					d.cfg.Ready, err, tail(d.nodes[0].log, 1000), tail(d.nodes[1].log, 1000))
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	fmt.Fprintf(d.out, "  overlay up: every pod reaches every other, %.1f s after vxtun started\n", time.Since(start).Seconds())
	return nil
}

// oneLine returns a small file's content on one line.
func oneLine(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	return strings.Join(strings.Fields(string(b)), " ")
}

// pairs are every ordered pair of nodes.
func (d *demo) pairs() [][2]*node {
	var ps [][2]*node
	for _, a := range d.nodes {
		for _, b := range d.nodes {
			if a != b {
				ps = append(ps, [2]*node{a, b})
			}
		}
	}
	return ps
}

func pairName(a, b *node) string {
	return fmt.Sprintf("%s (%s) → %s (%s)", a.name(), a.kind(), b.name(), b.kind())
}

var (
	pingCounts = regexp.MustCompile(`(\d+) packets transmitted, (\d+) received`)
	pingRTT    = regexp.MustCompile(`= ([\d.]+)/([\d.]+)/([\d.]+)/([\d.]+) ms`)
)

func (d *demo) pings(ctx context.Context) {
	if ctx.Err() != nil {
		return
	}
	d.section("ping, pod to pod across nodes (%d each, 0.1 s apart)", d.cfg.Pings)
	for _, p := range d.pairs() {
		if ctx.Err() != nil {
			return
		}
		a, b := p[0], p[1]
		out, err := d.sh(ctx, false, "ip", "netns", "exec", a.podNS, "ping", "-n", "-q", "-c", strconv.Itoa(d.cfg.Pings),
			"-i", "0.1", "-W", "1", b.pod())
		if ctx.Err() != nil {
			return // interrupted: no verdict
		}
		c := pingCounts.FindStringSubmatch(out)
		r := pingRTT.FindStringSubmatch(out)
		if c == nil {
			d.fail("ping %s: %v", pairName(a, b), err)
			fmt.Fprintf(d.out, "  %-38s FAILED: %v\n", pairName(a, b), err)
			continue
		}
		line := fmt.Sprintf("  %-38s %s/%s received", pairName(a, b), c[2], c[1])
		if r != nil {
			line += fmt.Sprintf("   rtt min/avg/max %s/%s/%s ms", r[1], r[2], r[3])
		}
		if c[2] == "0" {
			d.fail("ping %s: no reply", pairName(a, b))
			line += "   FAILED"
		}
		fmt.Fprintln(d.out, line)
	}
}

func (d *demo) fail(format string, args ...any) {
	d.failed = append(d.failed, fmt.Sprintf(format, args...))
}

func (d *demo) transfers(ctx context.Context) {
	if ctx.Err() != nil {
		return
	}
	if d.tool == "iperf3" {
		d.section("TCP, pod to pod: iperf3, one stream, %d s each", d.cfg.Seconds)
	} else {
		d.section("TCP, pod to pod: %d MiB each, content checked with SHA-256 (-tool go)", d.cfg.Size>>20)
	}
	for _, p := range d.pairs() {
		if ctx.Err() != nil {
			return
		}
		a, b := p[0], p[1]
		var res string
		var err error
		if d.tool == "iperf3" {
			res, err = d.iperf3(ctx, a, b)
		} else {
			res, err = d.goTransfer(ctx, a, b)
		}
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			d.fail("TCP %s: %v", pairName(a, b), err)
			fmt.Fprintf(d.out, "  %-38s FAILED: %v\n", pairName(a, b), err)
			continue
		}
		fmt.Fprintf(d.out, "  %-38s %s\n", pairName(a, b), res)
	}
}

// goTransfer runs this program as server in b and client in a.
func (d *demo) goTransfer(ctx context.Context, a, b *node) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	srv := exec.CommandContext(ctx, "ip", "netns", "exec", b.podNS, d.self, "__serve", b.pod()+":"+port)
	stdout, err := srv.StdoutPipe()
	if err != nil {
		return "", err
	}
	var srvErr strings.Builder
	srv.Stderr = &srvErr
	if err := srv.Start(); err != nil {
		return "", err
	}
	defer func() {
		_ = srv.Process.Kill()
		_ = srv.Wait()
	}()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "listening" {
		_ = srv.Wait()
		return "", fmt.Errorf("server did not start: %v %s", err, srvErr.String())
	}
	out, err := exec.CommandContext(ctx, "ip", "netns", "exec", a.podNS, d.self, "__send", a.pod(), b.pod()+":"+port,
		strconv.FormatInt(d.cfg.Size, 10)).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return "", fmt.Errorf("%w: %s", err, strings.TrimSpace(string(ee.Stderr)))
		}
		return "", err
	}
	var r sendResult
	if err := json.Unmarshal(out, &r); err != nil {
		return "", fmt.Errorf("client output %q: %w", out, err)
	}
	if !r.HashOK {
		return "", errors.New("the server's SHA-256 differs: data corrupted")
	}
	return fmt.Sprintf("%d MiB in %.2f s = %6.2f Gbit/s, SHA-256 ok", r.Bytes>>20, r.Seconds,
		float64(r.Bytes)*8/r.Seconds/1e9), nil
}

// iperf3Result is the part of "iperf3 -J" the demo reads.
type iperf3Result struct {
	End struct {
		SumSent struct {
			BitsPerSecond float64 `json:"bits_per_second"`
			Retransmits   int     `json:"retransmits"`
		} `json:"sum_sent"`
		SumReceived struct {
			Bytes         float64 `json:"bytes"`
			BitsPerSecond float64 `json:"bits_per_second"`
		} `json:"sum_received"`
	} `json:"end"`
	Error string `json:"error"`
}

func (d *demo) iperf3(ctx context.Context, a, b *node) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(d.cfg.Seconds+30)*time.Second)
	defer cancel()
	srv := exec.CommandContext(ctx, "ip", "netns", "exec", b.podNS, "iperf3", "-s", "-1", "-B", b.pod(), "-p", port)
	if err := srv.Start(); err != nil {
		return "", err
	}
	defer func() {
		_ = srv.Process.Kill()
		_ = srv.Wait()
	}()
	deadline := time.Now().Add(5 * time.Second)
	for {
		dsack0, derr := dsackSegs(ctx, a.podNS)
		out, err := exec.CommandContext(ctx, "ip", "netns", "exec", a.podNS, "iperf3", "-c", b.pod(), "-B", a.pod(),
			"-p", port, "-t", strconv.Itoa(d.cfg.Seconds), "-J").Output()
		var r iperf3Result
		jerr := json.Unmarshal(out, &r)
		if err == nil && jerr == nil && r.Error == "" {
			line := fmt.Sprintf("%.0f MiB in %d s = %6.2f Gbit/s, %d retransmits", r.End.SumReceived.Bytes/(1<<20),
				d.cfg.Seconds, r.End.SumReceived.BitsPerSecond/1e9, r.End.SumSent.Retransmits)
			// Retransmitted segments the receiver reports as duplicates
			// (DSACK) were not lost: they arrived reordered.
			if dsack1, err := dsackSegs(ctx, a.podNS); derr == nil && err == nil && r.End.SumSent.Retransmits > 0 {
				line += fmt.Sprintf(" (%d spurious: the receiver had them)", min(dsack1-dsack0, int64(r.End.SumSent.Retransmits)))
			}
			return line, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			if r.Error != "" {
				return "", errors.New(r.Error)
			}
			return "", fmt.Errorf("iperf3: %v", err)
		}
		time.Sleep(200 * time.Millisecond) // server not listening yet
	}
}

// dsackSegs returns TcpExtTCPDSACKRecvSegs of namespace ns: segments the
// peers reported as received twice.
func dsackSegs(ctx context.Context, ns string) (int64, error) {
	out, err := exec.CommandContext(ctx, "ip", "netns", "exec", ns, "cat", "/proc/net/netstat").Output()
	if err != nil {
		return 0, err
	}
	m, err := nettest.ParseNetstat(out)
	if err != nil {
		return 0, err
	}
	v, ok := m["TcpExtTCPDSACKRecvSegs"]
	if !ok {
		return 0, errors.New("no TCPDSACKRecvSegs in /proc/net/netstat")
	}
	return v, nil
}

func (d *demo) stats(ctx context.Context) {
	if ctx.Err() != nil {
		return
	}
	d.showRoutes(ctx)
	d.section("counters")
	for _, n := range d.nodes {
		if ctx.Err() != nil {
			return
		}
		var out string
		var err error
		if n.kernel && d.hostGW() {
			fmt.Fprintf(d.out, "  %s (flanneld-style host-gw): ip -s link show ul0\n", n.name())
			out, err = d.sh(ctx, false, "ip", "-n", n.ns, "-s", "link", "show", "ul0")
		} else if n.kernel {
			fmt.Fprintf(d.out, "  %s (kernel vxlan): ip -s link show flannel.1\n", n.name())
			out, err = d.sh(ctx, false, "ip", "-n", n.ns, "-s", "link", "show", "flannel.1")
		} else {
			fmt.Fprintf(d.out, "  %s (vxtun): vxtun stats --debug-addr %s\n", n.name(), debugAddr)
			out, err = d.sh(ctx, false, "ip", "netns", "exec", n.ns, d.vxtun, "stats", "--debug-addr", debugAddr)
		}
		if err != nil {
			d.fail("counters of %s: %v", n.name(), err)
		}
		for _, l := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
			fmt.Fprintf(d.out, "    %s\n", l)
		}
	}
}

// teardown stops the daemons and deletes the namespaces. It uses its own
// context: it must run to the end after Ctrl-C.
func (d *demo) teardown() error {
	if d.sw == "" {
		return nil
	}
	var errs []error
	d.section("cleaning up")
	for _, n := range d.nodes {
		if n.cmd == nil || n.cmd.Process == nil {
			continue
		}
		_ = n.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-n.done:
			if n.err != nil {
				fmt.Fprintf(d.out, "  vxtun on %s: %v\n%s\n", n.name(), n.err, tail(n.log, 800))
				errs = append(errs, fmt.Errorf("vxtun on %s exited with %v", n.name(), n.err))
			} else {
				fmt.Fprintf(d.out, "  vxtun on %s stopped cleanly (TUN device and routes removed)\n", n.name())
			}
		case <-time.After(10 * time.Second):
			_ = n.cmd.Process.Kill()
			<-n.done
			fmt.Fprintf(d.out, "  vxtun on %s did not stop within 10 s: killed\n", n.name())
			errs = append(errs, fmt.Errorf("vxtun on %s did not stop on SIGTERM", n.name()))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var pods []string
	for _, n := range d.nodes {
		if n.podID == "" {
			continue
		}
		// CNI DEL: the bridge plugin removes the pod's veth, host-local
		// releases its address.
		if err := n.podNet.Del(ctx, n.podNS, n.podID); err != nil {
			fmt.Fprintf(d.out, "  %v\n", err)
			errs = append(errs, err)
			continue
		}
		pods = append(pods, n.name())
	}
	if len(pods) > 0 {
		fmt.Fprintf(d.out, "  pods detached (CNI DEL) on %s\n", strings.Join(pods, ", "))
	}
	all := []string{d.sw}
	for _, n := range d.nodes {
		all = append(all, n.podNS, n.ns)
	}
	for _, ns := range all {
		// Stop anything still running inside, then delete the namespace
		// (its veths, bridge and vxlan device go with it).
		if out, err := exec.CommandContext(ctx, "ip", "netns", "pids", ns).Output(); err == nil {
			for _, f := range strings.Fields(string(out)) {
				if pid, err := strconv.Atoi(f); err == nil && pid != os.Getpid() {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		}
		if out, err := exec.CommandContext(ctx, "ip", "netns", "del", ns).CombinedOutput(); err != nil &&
			!strings.Contains(string(out), "No such file") {
			fmt.Fprintf(d.out, "  ip netns del %s: %v: %s\n", ns, err, strings.TrimSpace(string(out)))
			errs = append(errs, fmt.Errorf("delete namespace %s: %v", ns, err))
		}
	}
	fmt.Fprintf(d.out, "  deleted namespaces %s\n", strings.Join(all, " "))
	return errors.Join(errs...)
}

// tail returns the last n bytes of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.TrimSpace(string(b))
}

// mustMAC parses one of the demo's own constant MACs.
func mustMAC(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}
