package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"
)

func envMap(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func TestParseRunFlags(t *testing.T) {
	static := []string{"--node", "n.json", "--peers", "p.json"}
	tests := []struct {
		name    string
		args    []string
		env     []string
		check   func(*runOptions) string // "" if fine
		wantErr string                   // substring of a usage error
	}{
		{
			name: "flags only",
			args: append(static, "--workers", "3", "--tun", "vx1", "--listen-port", "4789"),
			check: func(o *runOptions) string {
				if o.Workers != 3 || o.Tun != "vx1" || o.ListenPort != 4789 || o.Peers != "p.json" {
					return "flags not applied"
				}
				return ""
			},
		},
		{
			name: "environment fills unset flags",
			env: []string{"VXTUN_NODE", "n.json", "VXTUN_PEERS", "p.json", "VXTUN_WORKERS", "2",
				"VXTUN_DEBUG_ADDR", "127.0.0.1:9999", "VXTUN_ETCD_LEASE_TTL", "1m", "VXTUN_NET_CONF", "nc.json"},
			check: func(o *runOptions) string {
				if o.Node != "n.json" || o.Peers != "p.json" || o.Workers != 2 || o.DebugAddr != "127.0.0.1:9999" ||
					o.EtcdLeaseTTL != time.Minute || o.NetConf != "nc.json" {
					return "environment not applied"
				}
				if !o.set["workers"] || !o.set["node"] {
					return "environment settings not marked as set"
				}
				return ""
			},
		},
		{
			name: "flag wins over environment",
			args: append(static, "--workers", "4"),
			env:  []string{"VXTUN_WORKERS", "9", "VXTUN_TUN", "fromenv"},
			check: func(o *runOptions) string {
				if o.Workers != 4 {
					return "environment overrode a flag"
				}
				if o.Tun != "fromenv" {
					return "unset flag not taken from the environment"
				}
				return ""
			},
		},
		{
			name: "ip masquerade from the environment",
			args: static,
			env:  []string{"VXTUN_IP_MASQ", "true"},
			check: func(o *runOptions) string {
				if !o.IPMasq || !o.nodeConfig().IPMasq {
					return "VXTUN_IP_MASQ=true did not turn on --ip-masq"
				}
				return ""
			},
		},
		{
			name: "busy poll off by default",
			args: static,
			check: func(o *runOptions) string {
				if o.BusyPoll || o.nodeConfig().BusyPoll {
					return "got busy poll on without --busy-poll, want off"
				}
				return ""
			},
		},
		{
			name: "busy poll from the flag",
			args: append(static, "--busy-poll"),
			check: func(o *runOptions) string {
				if !o.nodeConfig().BusyPoll {
					return "got node config BusyPoll false with --busy-poll, want true"
				}
				return ""
			},
		},
		{
			name: "busy poll from the environment",
			args: static,
			env:  []string{"VXTUN_BUSY_POLL", "true"},
			check: func(o *runOptions) string {
				if !o.nodeConfig().BusyPoll {
					return "got node config BusyPoll false with VXTUN_BUSY_POLL=true, want true"
				}
				return ""
			},
		},
		{
			name: "busy poll until idle",
			args: append(static, "--busy-poll", "--busy-poll-idle", "5ms"),
			check: func(o *runOptions) string {
				if c := o.nodeConfig(); !c.BusyPoll || c.BusyPollIdle != 5*time.Millisecond {
					return fmt.Sprintf("got node config BusyPoll %v BusyPollIdle %v, want true 5ms", c.BusyPoll, c.BusyPollIdle)
				}
				return ""
			},
		},
		{
			name: "busy poll ahead",
			args: append(static, "--busy-poll", "--busy-poll-idle", "200us", "--busy-poll-ahead"),
			check: func(o *runOptions) string {
				if c := o.nodeConfig(); !c.BusyPoll || c.BusyPollIdle != 200*time.Microsecond || !c.BusyPollAhead {
					return fmt.Sprintf("got node config BusyPoll %v BusyPollIdle %v BusyPollAhead %v, want true 200µs true", c.BusyPoll, c.BusyPollIdle, c.BusyPollAhead)
				}
				return ""
			},
		},
		{
			name: "cpu-local workers",
			args: append(static, "--cpu-local"),
			check: func(o *runOptions) string {
				if c := o.nodeConfig(); !c.CPULocal || c.BusyPoll {
					return fmt.Sprintf("got node config CPULocal %v BusyPoll %v, want true false", c.CPULocal, c.BusyPoll)
				}
				return ""
			},
		},
		{
			name: "cpu-local workers off",
			args: append(static, "--cpu-local=false"),
			check: func(o *runOptions) string {
				if c := o.nodeConfig(); c.CPULocal {
					return "got node config CPULocal true, want false"
				}
				return ""
			},
		},
		{
			name: "busy poll until idle from the environment",
			args: static,
			env:  []string{"VXTUN_BUSY_POLL", "true", "VXTUN_BUSY_POLL_IDLE", "20ms"},
			check: func(o *runOptions) string {
				if c := o.nodeConfig(); !c.BusyPoll || c.BusyPollIdle != 20*time.Millisecond {
					return fmt.Sprintf("got node config BusyPoll %v BusyPollIdle %v, want true 20ms", c.BusyPoll, c.BusyPollIdle)
				}
				return ""
			},
		},
		{
			name: "flanneld's --net-config-path and healthz flags",
			args: []string{"--etcd-endpoints", "http://x:2379", "--net-config-path", "/etc/kube-flannel/net-conf.json"},
			env:  []string{"FLANNELD_HEALTHZ_PORT", "10299"},
			check: func(o *runOptions) string {
				c := o.nodeConfig()
				if c.NetConfFile != "/etc/kube-flannel/net-conf.json" || c.HealthzAddr != "0.0.0.0:10299" {
					return fmt.Sprintf("got net-conf %q healthz %q, want /etc/kube-flannel/net-conf.json 0.0.0.0:10299", c.NetConfFile, c.HealthzAddr)
				}
				return ""
			},
		},
		{
			name: "healthz off by default",
			args: static,
			check: func(o *runOptions) string {
				if a := o.nodeConfig().HealthzAddr; a != "" {
					return fmt.Sprintf("got healthz %q, want off", a)
				}
				return ""
			},
		},
		{
			name: "ip masquerade off by default",
			args: static,
			check: func(o *runOptions) string {
				if o.IPMasq || o.nodeConfig().IPMasq {
					return "--ip-masq is on without being asked for"
				}
				return ""
			},
		},
		{
			name: "etcd mode",
			args: []string{"--etcd-endpoints", "http://a:2379, http://b:2379", "--iface", "eth0"},
			check: func(o *runOptions) string {
				if !o.etcdMode() || strings.Join(o.endpoints(), "|") != "http://a:2379|http://b:2379" {
					return "endpoints not split"
				}
				if o.EtcdPrefix != "/coreos.com/network" {
					return "default prefix is not flannel's"
				}
				return ""
			},
		},
		{
			name: "defaults: peer filter on, pprof off, loopback debug address",
			args: append(static, "--debug-addr", "127.0.0.1:9090"),
			check: func(o *runOptions) string {
				if !o.PeerFilter || o.DebugPprof || o.DebugAddrPublic {
					return "defaults: want --peer-filter on, --debug-pprof and --debug-addr-public off"
				}
				c := o.nodeConfig()
				if c.SkipPeerFilter || c.DebugPprof || c.DebugAddr != "127.0.0.1:9090" {
					return "node config does not carry the defaults"
				}
				return ""
			},
		},
		{
			name: "pprof, public debug address, no peer filter",
			args: append(static, "--debug-addr", "0.0.0.0:9090", "--debug-addr-public", "--debug-pprof", "--peer-filter=false"),
			check: func(o *runOptions) string {
				if c := o.nodeConfig(); !c.DebugPprof || !c.SkipPeerFilter || c.DebugAddr != "0.0.0.0:9090" {
					return "flags not carried into the node config"
				}
				return ""
			},
		},
		{
			name: "etcd password from the environment",
			args: []string{"--etcd-endpoints", "http://x:2379", "--public-ip", "198.18.0.1", "--etcd-username", "u"},
			env:  []string{"VXTUN_ETCD_PASSWORD", "s3cret"},
			check: func(o *runOptions) string {
				if c := o.nodeConfig(); c.Registry.Etcd.Password != "s3cret" || c.Registry.Etcd.Username != "u" {
					return "password from VXTUN_ETCD_PASSWORD not used"
				}
				return ""
			},
		},
		{
			name: "kube mode as flanneld's DaemonSet sets it",
			args: []string{"--kube-subnet-mgr"},
			env: []string{"FLANNELD_PUBLIC_IP", "198.18.0.1", "POD_NAME", "kube-flannel-ds-x", "POD_NAMESPACE", "kube-flannel",
				"FLANNELD_KUBE_ANNOTATION_PREFIX", "example.com/x"},
			check: func(o *runOptions) string {
				c := o.nodeConfig()
				k := c.Registry.Kube
				switch {
				case k == nil:
					return "got no Kubernetes source, want one"
				case c.PublicIP.String() != "198.18.0.1":
					return "got public IP " + c.PublicIP.String() + ", want 198.18.0.1 from FLANNELD_PUBLIC_IP"
				case k.PodName != "kube-flannel-ds-x" || k.PodNamespace != "kube-flannel" || k.NodeName != "":
					return "got pod " + k.PodNamespace + "/" + k.PodName + " node " + k.NodeName + ", want kube-flannel/kube-flannel-ds-x and no node"
				case !k.SetNetworkUnavailable:
					return "got SetNetworkUnavailable false, want flanneld's default true"
				case k.AnnotationPrefix != "example.com/x":
					return "got prefix " + k.AnnotationPrefix + ", want example.com/x"
				}
				return ""
			},
		},
		{
			name: "public IPv6 from flanneld's variable",
			args: []string{"--etcd-endpoints", "http://x:2379", "--public-ip", "198.18.0.1"},
			env:  []string{"FLANNELD_PUBLIC_IPV6", "2001:2::1"},
			check: func(o *runOptions) string {
				if c := o.nodeConfig(); c.PublicIPv6.String() != "2001:2::1" {
					return "got public IPv6 " + c.PublicIPv6.String() + ", want 2001:2::1 from FLANNELD_PUBLIC_IPV6"
				}
				return ""
			},
		},
		{
			name: "--public-ipv6 wins over the environment",
			args: []string{"--etcd-endpoints", "http://x:2379", "--public-ip", "198.18.0.1", "--public-ipv6", "2001:2::2"},
			env:  []string{"VXTUN_PUBLIC_IPV6", "2001:2::1"},
			check: func(o *runOptions) string {
				if c := o.nodeConfig(); c.PublicIPv6.String() != "2001:2::2" {
					return "got public IPv6 " + c.PublicIPv6.String() + ", want 2001:2::2 from the flag"
				}
				return ""
			},
		},
		{
			name: "etcd password file from the environment",
			args: []string{"--etcd-endpoints", "http://x:2379", "--public-ip", "198.18.0.1"},
			env:  []string{"VXTUN_ETCD_PASSWORD_FILE", "/etc/vxtun/etcd-password"},
			check: func(o *runOptions) string {
				if o.EtcdPassFile != "/etc/vxtun/etcd-password" {
					return "VXTUN_ETCD_PASSWORD_FILE not applied"
				}
				return ""
			},
		},
		{
			name: "kube mode: VXTUN_ wins over FLANNELD_, NODE_NAME read",
			env: []string{"VXTUN_KUBE_SUBNET_MGR", "true", "VXTUN_IFACE", "eth1", "FLANNELD_IFACE", "eth0",
				"NODE_NAME", "n1", "FLANNELD_SET_NODE_NETWORK_UNAVAILABLE", "false", "FLANNELD_KUBECONFIG_FILE", "/k"},
			check: func(o *runOptions) string {
				k := o.nodeConfig().Registry.Kube
				switch {
				case o.Iface != "eth1":
					return "got iface " + o.Iface + ", want eth1 (VXTUN_IFACE wins)"
				case k == nil || k.NodeName != "n1" || k.Kubeconfig != "/k":
					return "NODE_NAME or FLANNELD_KUBECONFIG_FILE not applied"
				case k.SetNetworkUnavailable:
					return "got SetNetworkUnavailable true, want false"
				}
				return ""
			},
		},
		{name: "etcd password on the command line",
			args:    []string{"--etcd-endpoints", "http://x:2379", "--public-ip", "198.18.0.1", "--etcd-password", "s3cret"},
			wantErr: "--etcd-password on the command line is visible to every user of this host: put the password in a file (--etcd-password-file FILE) or in the VXTUN_ETCD_PASSWORD environment variable"},
		{name: "etcd password twice",
			args:    []string{"--etcd-endpoints", "http://x:2379", "--public-ip", "198.18.0.1", "--etcd-password-file", "pw"},
			env:     []string{"VXTUN_ETCD_PASSWORD", "s3cret"},
			wantErr: "exclude each other"},
		{name: "public debug address refused", args: append(static, "--debug-addr", "0.0.0.0:9090"), wantErr: "--debug-addr 0.0.0.0:9090 is not a loopback address"},
		{name: "wildcard debug address refused", args: append(static, "--debug-addr", ":9090"), wantErr: "add --debug-addr-public"},
		{name: "public debug address from the environment refused", args: static, env: []string{"VXTUN_DEBUG_ADDR", "198.18.0.1:9090"}, wantErr: "not a loopback address"},
		{name: "pprof without debug address", args: append(static, "--debug-pprof"), wantErr: "--debug-pprof needs --debug-addr"},
		{name: "net-conf under two names", args: append(static, "--net-conf", "a.json", "--net-config-path", "b.json"), wantErr: "name different files"},
		{name: "healthz port range", args: append(static, "--healthz-port", "70000"), wantErr: "--healthz-port 70000"},
		{name: "bad healthz ip", args: append(static, "--healthz-port", "10299", "--healthz-ip", "any"), wantErr: `--healthz-ip "any"`},
		{name: "bad iface regex", args: append(static, "--iface-regex", "eth[0-"), wantErr: "iface-regex"},
		{name: "bad iface regex from flanneld's env", args: static, env: []string{"FLANNELD_IFACE_REGEX", "(x"}, wantErr: "FLANNELD_IFACE_REGEX"},
		{name: "bad iface-can-reach", args: append(static, "--iface-can-reach", "gateway"), wantErr: `--iface-can-reach "gateway" is not an IP address`},
		{name: "kube and etcd", args: []string{"--kube-subnet-mgr", "--etcd-endpoints", "http://x:2379", "--iface", "eth0"}, wantErr: "--etcd-endpoints and --kube-subnet-mgr exclude each other"},
		{name: "bad flanneld env value", args: static, env: []string{"FLANNELD_KUBE_SUBNET_MGR", "yes please"}, wantErr: "FLANNELD_KUBE_SUBNET_MGR"},
		{name: "bad env value", args: static, env: []string{"VXTUN_WORKERS", "many"}, wantErr: "VXTUN_WORKERS"},
		{name: "unknown flag", args: append(static, "--nope"), wantErr: "nope"},
		{name: "stray argument", args: append(static, "extra"), wantErr: `unexpected argument "extra"`},
		{name: "no source", args: []string{"--node", "n.json"}, wantErr: "no peer source"},
		{name: "both sources", args: append(static, "--etcd-endpoints", "http://x:2379"), wantErr: "exclude each other"},
		{name: "static without node", args: []string{"--peers", "p.json"}, wantErr: "--node FILE is required"},
		{name: "workers range", args: append(static, "--workers", "-1"), wantErr: "--workers"},
		{name: "busy-poll-idle without busy-poll", args: append(static, "--busy-poll-idle", "5ms"), wantErr: "--busy-poll-idle needs --busy-poll"},
		{name: "busy-poll-ahead without busy-poll-idle", args: append(static, "--busy-poll", "--busy-poll-ahead"), wantErr: "--busy-poll-ahead needs --busy-poll-idle"},
		{name: "negative busy-poll-idle", args: append(static, "--busy-poll", "--busy-poll-idle", "-1ms"), wantErr: "must not be negative"},
		{name: "port range", args: append(static, "--listen-port", "70000"), wantErr: "--listen-port"},
		{name: "bad public ip", args: append(static, "--public-ip", "1.2.3"), wantErr: "--public-ip"},
		{name: "IPv4 public ipv6", args: append(static, "--public-ipv6", "198.18.0.1"), wantErr: "--public-ipv6: 198.18.0.1 is not a global unicast IPv6 address"},
		{name: "bad tun name", args: append(static, "--tun", "a/b"), wantErr: "--tun"},
		{name: "long iface name", args: append(static, "--iface", "abcdefghijklmnop"), wantErr: "--iface"},
		{name: "bad level", args: append(static, "--log-level", "chatty"), wantErr: "--log-level"},
		{name: "debug addr without port", args: append(static, "--debug-addr", "localhost"), wantErr: "--debug-addr"},
		{name: "cert without key", args: []string{"--etcd-endpoints", "https://x:2379", "--public-ip", "198.18.0.1", "--etcd-certfile", "c.pem"}, wantErr: "go together"},
		{name: "zero ttl", args: []string{"--etcd-endpoints", "http://x:2379", "--public-ip", "198.18.0.1", "--etcd-lease-ttl", "0s"}, wantErr: "--etcd-lease-ttl"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseRunFlags(tt.args, envMap(tt.env...), io.Discard)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("got no error, want one mentioning %q", tt.wantErr)
				}
				if !errors.Is(err, errUsage) {
					t.Errorf("got %v, want a usage error", err)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("got error %q, want it to mention %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			if msg := tt.check(o); msg != "" {
				t.Error(msg)
			}
		})
	}
}

// TestUsageDocumentsEnv: "vxtun run -h" lists every flag with its
// environment variable.
func TestUsageDocumentsEnv(t *testing.T) {
	_, err := parseRunFlags([]string{"-h"}, envMap(), io.Discard)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: got %v, want flag.ErrHelp", err)
	}
	var buf bytes.Buffer
	fs := newRunFlags(&runOptions{}, &buf)
	fs.Usage()
	out := buf.String()
	n := 0
	fs.VisitAll(func(f *flag.Flag) {
		n++
		for _, want := range []string{"--" + f.Name, "[" + envName(f.Name) + "]"} {
			if !strings.Contains(out, want) {
				t.Errorf("usage does not mention %s", want)
			}
		}
	})
	if n < 20 {
		t.Errorf("got %d flags, want at least 20", n)
	}
	for _, want := range []string{"VXTUN_NET_CONF", "VXTUN_ETCD_ENDPOINTS", "SIGHUP", "Exit status"} {
		if !strings.Contains(out, want) {
			t.Errorf("usage does not mention %s", want)
		}
	}
}

func TestEnvName(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"net-conf", "VXTUN_NET_CONF"},
		{"etcd-cafile", "VXTUN_ETCD_CAFILE"},
		{"workers", "VXTUN_WORKERS"},
	} {
		if got := envName(tt.in); got != tt.want {
			t.Errorf("envName(%q): got %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestMainDispatch(t *testing.T) {
	tests := []struct {
		args       []string
		code       int
		wantOut    string
		wantStderr string
	}{
		{[]string{"version"}, 0, "vxtun ", ""},
		{[]string{}, 2, "", "Usage: vxtun"},
		{[]string{"frobnicate"}, 2, "", `unknown command "frobnicate"`},
		{[]string{"help"}, 0, "Commands:", ""},
		{[]string{"run", "-h"}, 0, "", "VXTUN_PEERS"},
		{[]string{"run", "--peers", "p.json"}, 2, "", "--node FILE is required"},
		{[]string{"stats"}, 2, "", "--debug-addr is required"},
		{[]string{"stats", "--debug-addr", "127.0.0.1:1"}, 1, "", "vxtun stats: fetch metrics"},
	}
	for _, tt := range tests {
		var out, errb bytes.Buffer
		code := vxtunMain(tt.args, envMap(), &out, &errb)
		if code != tt.code {
			t.Errorf("%v: exit code: got %d, want %d (stderr %q)", tt.args, code, tt.code, errb.String())
		}
		if !strings.Contains(out.String(), tt.wantOut) {
			t.Errorf("%v: stdout %q does not contain %q", tt.args, out.String(), tt.wantOut)
		}
		if !strings.Contains(errb.String(), tt.wantStderr) {
			t.Errorf("%v: stderr %q does not contain %q", tt.args, errb.String(), tt.wantStderr)
		}
	}
}

// The image's /opt/bin/flanneld is a link to vxtun: under that name the
// binary is "vxtun run" with flanneld's flags.
func TestCommandArgs(t *testing.T) {
	tests := []struct {
		argv []string
		want []string
	}{
		{nil, nil},
		{[]string{"vxtun"}, []string{}},
		{[]string{"/vxtun", "run", "--ip-masq"}, []string{"run", "--ip-masq"}},
		{[]string{"/usr/local/bin/vxtun", "version"}, []string{"version"}},
		{[]string{"/opt/bin/flanneld", "--ip-masq", "--kube-subnet-mgr"}, []string{"run", "--ip-masq", "--kube-subnet-mgr"}},
		{[]string{"flanneld"}, []string{"run"}},
		{[]string{"flanneld", "--version"}, []string{"version"}},
		{[]string{"/opt/bin/flanneld", "-version"}, []string{"version"}},
		{[]string{"flanneld", "--version", "--ip-masq"}, []string{"run", "--version", "--ip-masq"}},
		{[]string{"/opt/bin/flanneld-old", "run"}, []string{"run"}},
	}
	for _, tt := range tests {
		got := commandArgs(tt.argv)
		if !slices.Equal(got, tt.want) {
			t.Errorf("commandArgs(%q): got %q, want %q", tt.argv, got, tt.want)
		}
	}
}
