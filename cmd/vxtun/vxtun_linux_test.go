package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/vxtun/vxtun/internal/nettest"
)

// vxtunBin is the binary built once by TestMain.
var vxtunBin string

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	flag.Parse()
	if f := flag.Lookup("test.fuzzworker"); f != nil && f.Value.String() == "true" {
		// A fuzz worker only runs a fuzz target: no daemon to build (each
		// worker building one would stall the fuzzer past its time).
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "vxtun-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "TestMain:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "TestMain:", err)
		return 1
	}
	vxtunBin = filepath.Join(dir, "vxtun")
	args := []string{"build", "-o", vxtunBin}
	if raceEnabled {
		// The daemon's wiring (signals, reloads, /metrics) is checked for
		// races too.
		args = append(args, "-race")
	}
	out, err := exec.Command("go", append(args, ".")...).CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "TestMain: go build: %v\n%s", err, out)
		return 1
	}
	// The tests here drive the userspace dataplane unless they pass
	// --dataplane (a flag wins over the environment).
	if os.Getenv("VXTUN_DATAPLANE") == "" {
		os.Setenv("VXTUN_DATAPLANE", "userspace")
	}
	return m.Run()
}

// startVxtun starts the vxtun binary in ns; it is killed when the test
// ends.
func startVxtun(t *testing.T, ns *nettest.NS, args ...string) *nettest.Daemon {
	t.Helper()
	return startCmd(t, ns, append([]string{vxtunBin}, args...)...)
}

// startCmd starts argv in ns; it is killed when the test ends.
func startCmd(t *testing.T, ns *nettest.NS, argv ...string) *nettest.Daemon {
	t.Helper()
	return nettest.StartDaemon(t, &nettest.Daemon{Name: "vxtun", NS: ns, Argv: argv})
}

// testNode is one vxtun node's files.
type testNode struct {
	nettest.ConfigFiles
	ns    *nettest.NS
	index int
	debug string
}

// writeJSON writes a config file (atomically, by rename).
func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	if err := nettest.WriteJSON(path, v); err != nil {
		t.Fatal(err)
	}
}

// writeAtomic replaces path by rename, as an operator's tooling would.
func writeAtomic(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := nettest.WriteFileAtomic(path, b); err != nil {
		t.Fatal(err)
	}
}

// newTestNode writes net-conf, node and peers files for node i of a
// two-node setup whose other node is peer, and puts its pod address on lo.
func newTestNode(t *testing.T, ns *nettest.NS, i int, peers ...int) *testNode {
	t.Helper()
	n := writeTestNode(t, ns, i, func(*nettest.NodeConf) {}, peers...)
	if err := ns.Do(func() error { return addPod(i) }); err != nil {
		t.Fatal(err)
	}
	return n
}

// writeTestNode writes net-conf, node (changed by edit) and peers files for
// node i whose peers are the nodes peers.
func writeTestNode(t *testing.T, ns *nettest.NS, i int, edit func(*nettest.NodeConf), peers ...int) *testNode {
	t.Helper()
	n := &testNode{ConfigFiles: nettest.FilesIn(t.TempDir()), ns: ns, index: i, debug: "127.0.0.1:9090"}
	me := nettest.PlanNode(i)
	nc := nettest.NodeConf{PublicIP: me.Underlay.String(), Iface: nettest.UnderlayIface, Subnet: me.Subnet.String(),
		VtepMAC: me.VtepMAC.String(), SubnetFile: n.SubnetEnv, Workers: 2}
	edit(&nc)
	err := n.Write(nettest.NetConf{Network: nettest.OverlayNetwork, Backend: nettest.Backend{Type: "vxlan"}}, nc, peersOf(peers...))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// peersOf is the peers file listing nodes.
func peersOf(nodes ...int) nettest.PeersConf {
	var ns []nettest.Node
	for _, i := range nodes {
		ns = append(ns, nettest.PlanNode(i))
	}
	return nettest.PeersOf(true, ns...)
}

func (n *testNode) writePeers(t *testing.T, peers ...int) {
	t.Helper()
	writeJSON(t, n.Peers, peersOf(peers...))
}

func (n *testNode) args(extra ...string) []string {
	return append(append([]string{"run"}, n.Args()...), append([]string{
		"--debug-addr", n.debug, "--log-level", "debug"}, extra...)...)
}

// addPod puts the pod address 198.19.i.1/32 on lo (inside NS.Do).
func addPod(i int) error {
	return nettest.LinkUp("lo", nettest.PodAddr(i).String()+"/32")
}

// waitPing waits until ns can ping dst from src, failing t if it cannot
// within 15 s or one of p exits.
func waitPing(t *testing.T, ns *nettest.NS, src, dst string, p ...*nettest.Daemon) {
	t.Helper()
	err := nettest.WaitPing(context.Background(), ns, netip.MustParseAddr(src), netip.MustParseAddr(dst), 15*time.Second,
		func() error { return nettest.CheckRunning(p...) })
	if err != nil {
		t.Fatal(err)
	}
}

// metrics fetches /metrics of the daemon listening on addr inside ns.
func metrics(t testing.TB, ns *nettest.NS, addr string) map[string]float64 {
	t.Helper()
	var conn net.Conn
	if err := ns.Do(func() error {
		var err error
		conn, err = net.DialTimeout("tcp", addr, 2*time.Second)
		return err
	}); err != nil {
		t.Fatalf("dial debug addr: %v", err)
	}
	used := false
	tr := &http.Transport{DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
		if used {
			return nil, errors.New("one connection only")
		}
		used = true
		return conn, nil
	}}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("get /metrics: %v", err)
	}
	defer resp.Body.Close()
	samples, err := parseMetrics(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	m := map[string]float64{}
	for _, s := range samples {
		key := s.Name
		if r, ok := s.Labels["reason"]; ok {
			key += "/" + r
		}
		m[key] += s.Value
	}
	return m
}

// transfer sends size pseudo-random bytes from 198.19.1.1 (in a) to a
// server on 198.19.2.1:port (in b), paced at rate bytes/s, and returns an
// error unless the server's SHA-256 of what it received matches.
func transfer(a, b *nettest.NS, port int, size, rate int) error {
	x := nettest.Transfer{Src: nettest.PodAddr(1), Dst: nettest.PodAddr(2), Port: port,
		Size: int64(size), Rate: int64(rate), Seed: 1, Timeout: 40 * time.Second}
	_, err := x.Send(context.Background(), a, b)
	return err
}

// TestSIGHUPReloadDuringTransfer is the dataplane issue's test 6: peers are
// reloaded (SIGHUP) several times — once with a bad file — while a TCP
// transfer runs; the transfer completes intact, the bad file is reported,
// and SIGTERM removes the TUN device and its routes.
func TestSIGHUPReloadDuringTransfer(t *testing.T) {
	h := nettest.NewTwoHosts(t)
	n1 := newTestNode(t, h.A, 1, 2)
	n2 := newTestNode(t, h.B, 2, 1)
	p1 := startVxtun(t, h.A, n1.args()...)
	p2 := startVxtun(t, h.B, n2.args()...)
	waitPing(t, h.A, "198.19.1.1", "198.19.2.1", p1, p2)

	if env, err := os.ReadFile(n1.SubnetEnv); err != nil {
		t.Errorf("subnet.env: %v", err)
	} else if want := "FLANNEL_SUBNET=198.19.1.1/24\nFLANNEL_MTU=1450\n"; !strings.Contains(string(env), want) {
		t.Errorf("subnet.env:\n%s\nwant it to contain\n%s", env, want)
	}

	const size, rate = 48 << 20, 12 << 20 // about 4 s
	xfer := make(chan error, 1)
	go func() { xfer <- transfer(h.A, h.B, 5001, size, rate) }()

	hup := func(p *nettest.Daemon) {
		if err := p.Signal(syscall.SIGHUP); err != nil {
			t.Errorf("SIGHUP: %v", err)
		}
	}
	steps := []struct {
		name  string
		write func()
	}{
		{"add node3", func() { n1.writePeers(t, 2, 3) }},
		{"bad file", func() { writeAtomic(t, n1.Peers, []byte(`{"Peers": [{"Name": "node2", "PublicIP": "198.18.0.2"`)) }},
		{"same peers again", func() { n1.writePeers(t, 2, 3) }},
		{"remove node3", func() { n1.writePeers(t, 2) }},
	}
	for _, s := range steps {
		time.Sleep(600 * time.Millisecond)
		s.write()
		hup(p1)
		hup(p2) // unchanged file on node2: a no-op reload
	}
	select {
	case err := <-xfer:
		if err != nil {
			t.Fatalf("transfer across reloads: %v", err)
		}
	case <-time.After(45 * time.Second):
		t.Fatal("transfer did not finish")
	}

	log := p1.Output()
	if !strings.Contains(log, "static peers file rejected; keeping the current peers") {
		t.Errorf("no log line for the bad peers file; log:\n%s", log)
	}
	if !strings.Contains(log, "SIGHUP: re-reading the peers file") {
		t.Errorf("no log line for SIGHUP; log:\n%s", log)
	}
	m := metrics(t, h.A, n1.debug)
	if got := m["vxtun_peers"]; got != 1 {
		t.Errorf("vxtun_peers after the last reload: got %v, want 1", got)
	}
	if got := m["vxtun_tx_packets_total"]; got < float64(size/65536) {
		t.Errorf("vxtun_tx_packets_total: got %v, want at least %d", got, size/65536)
	}
	if got := m["vxtun_rx_packets_total"]; got == 0 {
		t.Errorf("vxtun_rx_packets_total: got 0, want > 0")
	}

	// The stats command prints a readable summary from the same endpoint.
	out, err := h.A.Try(vxtunBin, "stats", "--debug-addr", n1.debug)
	if err != nil || !strings.Contains(out, "tx ") || !strings.Contains(out, "peers ") {
		t.Errorf("vxtun stats: %v\n%s", err, out)
	}

	// SIGTERM: clean exit, TUN and routes gone.
	for _, p := range []*nettest.Daemon{p1, p2} {
		if err := p.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
	}
	for i, p := range []*nettest.Daemon{p1, p2} {
		if code := nettest.WaitExit(t, p, 10*time.Second); code != 0 {
			t.Errorf("node%d: exit code after SIGTERM: got %d, want 0\n%s", i+1, code, p.Output())
		}
	}
	for _, ns := range []*nettest.NS{h.A, h.B} {
		nh := ns.Handle()
		if l, err := nh.LinkByName("vxtun0"); err == nil {
			t.Errorf("%s: link vxtun0 (index %d) still exists after SIGTERM", ns.Name, l.Attrs().Index)
		}
		routes, err := nh.RouteList(nil, netlink.FAMILY_V4)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range routes {
			if r.Dst != nil && r.Dst.String() == "198.19.0.0/16" {
				t.Errorf("%s: route %v still exists after SIGTERM", ns.Name, r)
			}
		}
	}
	if !strings.Contains(p1.Output(), "removed the TUN device") {
		t.Errorf("no shutdown log line:\n%s", p1.Output())
	}
}

// TestStartupErrors: each startup error is one line on stderr and a
// non-zero exit, and leaves no TUN device behind.
func TestStartupErrors(t *testing.T) {
	nettest.RequirePrivileged(t)
	ns := nettest.NewNS(t, "err")
	nettest.Veth(t, ns, "ul0", "198.18.0.1/24", nettest.NewNS(t, "errb"), "ul0", "198.18.0.2/24")
	n := newTestNode(t, ns, 1, 2)
	badConf := filepath.Join(n.Dir, "bad-net-conf.json")
	writeAtomic(t, badConf, []byte(`{"Network": "198.19.0.0/16", "Backend": {"Type": "vxlan", "VNI": "one"}}`))
	badPeers := filepath.Join(n.Dir, "bad-peers.json")
	writeAtomic(t, badPeers, []byte(`{"Peers": [{"Name": "node2", "PublicIP": "198.18.0.2", "Subnets": ["10.0.0.0/24"], "VtepMAC": "0e:00:00:00:00:02"}]}`))

	wwPass := filepath.Join(n.Dir, "ww-password")
	writeAtomic(t, wwPass, []byte("s3cret\n"))
	if err := os.Chmod(wwPass, 0o666); err != nil {
		t.Fatal(err)
	}

	// A socket on the VXLAN port, held by the test inside the namespace.
	var held *net.UDPConn
	if err := ns.Do(func() error {
		var err error
		held, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(198, 18, 0, 1), Port: 4789})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer held.Close()

	base := []string{"run", "--net-conf", n.NetConf, "--node", n.Node, "--peers", n.Peers}
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"bad net-conf", []string{"run", "--net-conf", badConf, "--node", n.Node, "--peers", n.Peers}, 1, "Backend.VNI"},
		{"missing node file", []string{"run", "--net-conf", n.NetConf, "--node", filepath.Join(n.Dir, "nope.json"), "--peers", n.Peers}, 1, "nope.json"},
		{"bad peers file", []string{"run", "--net-conf", n.NetConf, "--node", n.Node, "--peers", badPeers}, 1, "outside the network"},
		{"port in use", append(base, "--listen-port", "4789"), 1, "already in use"},
		{"tun name taken", append(base, "--tun", "ul0"), 1, "ul0"},
		{"unknown flag", append(base, "--bogus"), 2, "bogus"},
		{"two peer sources", append(base, "--etcd-endpoints", "http://127.0.0.1:2379"), 2, "exclude each other"},
		{"no peer source", []string{"run", "--node", n.Node}, 2, "no peer source"},
		{"bad flag value", append(base, "--log-level", "loud"), 2, "log-level"},
		{"no such interface", append(base, "--iface", "nope0"), 1, `no interface "nope0"`},
		{"password on the command line", []string{"run", "--etcd-endpoints", "http://198.18.0.2:2379", "--iface", "ul0", "--etcd-password", "s3cret"},
			2, "--etcd-password on the command line is visible to every user"},
		{"public debug address", append(base, "--debug-addr", "198.18.0.1:9090"), 2, "add --debug-addr-public"},
		{"world-writable password file", []string{"run", "--etcd-endpoints", "http://198.18.0.2:2379", "--iface", "ul0", "--etcd-password-file", wwPass},
			1, "world-writable"},
	}
	// Not root: run as nobody (the files must be readable by it).
	if setpriv, err := exec.LookPath("setpriv"); err == nil {
		for _, d := range []string{filepath.Dir(n.Dir), n.Dir} {
			if err := os.Chmod(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		tests = append(tests, struct {
			name string
			args []string
			code int
			want string
		}{"not root", append([]string{setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", vxtunBin}, base...), 1, "root or CAP_NET_ADMIN"})
	}
	// No /dev/net/tun: hide it under a tmpfs in a private mount namespace.
	if unshare, err := exec.LookPath("unshare"); err == nil {
		tests = append(tests, struct {
			name string
			args []string
			code int
			want string
		}{"no /dev/net/tun", append([]string{unshare, "-m", "--propagation", "private", "sh", "-c",
			`mount -t tmpfs none /dev/net && exec "$0" "$@"`, vxtunBin}, base...), 1, "no TUN support"})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p *nettest.Daemon
			if b := filepath.Base(tt.args[0]); b == "setpriv" || b == "unshare" {
				p = startCmd(t, ns, tt.args...)
			} else {
				p = startVxtun(t, ns, tt.args...)
			}
			code := nettest.WaitExit(t, p, 10*time.Second)
			out := strings.TrimRight(p.Output(), "\n")
			if code != tt.code {
				t.Errorf("exit code: got %d, want %d; output:\n%s", code, tt.code, out)
			}
			if lines := strings.Count(out, "\n") + 1; lines != 1 {
				t.Errorf("got %d lines on stderr, want 1:\n%s", lines, out)
			}
			if !strings.Contains(out, tt.want) {
				t.Errorf("stderr %q does not mention %q", out, tt.want)
			}
		})
	}
	if _, err := ns.Handle().LinkByName("vxtun0"); err == nil {
		t.Errorf("a failed start left vxtun0 behind")
	}
}

// TestEnvVars: settings come from VXTUN_* variables as well as flags.
func TestEnvVars(t *testing.T) {
	nettest.RequirePrivileged(t)
	h := nettest.NewTwoHosts(t)
	n1 := newTestNode(t, h.A, 1, 2)
	n2 := newTestNode(t, h.B, 2, 1)
	p2 := startVxtun(t, h.B, n2.args()...)

	p1 := nettest.StartDaemon(t, &nettest.Daemon{Name: "vxtun", NS: h.A, Env: []string{
		"VXTUN_NET_CONF=" + n1.NetConf, "VXTUN_NODE=" + n1.Node, "VXTUN_PEERS=" + n1.Peers,
		"VXTUN_TUN=vxenv0", "VXTUN_WORKERS=1", "VXTUN_LOG_LEVEL=error"},
		Argv: []string{vxtunBin, "run", "--log-level", "info"}})

	waitPing(t, h.A, "198.19.1.1", "198.19.2.1", p1, p2)
	l, err := h.A.Handle().LinkByName("vxenv0")
	if err != nil {
		t.Fatalf("VXTUN_TUN=vxenv0 was not used: %v", err)
	}
	if mtu := l.Attrs().MTU; mtu != 1450 {
		t.Errorf("TUN MTU: got %d, want 1450 (underlay 1500 - 50)", mtu)
	}
	if err := p1.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := nettest.WaitExit(t, p1, 10*time.Second); code != 0 {
		t.Errorf("exit code after SIGINT: got %d, want 0", code)
	}
	// --log-level info on the command line wins over VXTUN_LOG_LEVEL=error.
	if out := p1.Output(); !strings.Contains(out, "vxtun running") {
		t.Errorf("flag did not win over the environment; output:\n%s", out)
	}
}

// TestPublicIPNotLocal: a --public-ip that is on no interface here (a NAT
// address, as flanneld's --public-ip allows) makes vxtun bind the wildcard
// address, so traffic sent to the node's real address still arrives.
func TestPublicIPNotLocal(t *testing.T) {
	h := nettest.NewTwoHosts(t)
	n1 := newTestNode(t, h.A, 1, 2)
	n2 := newTestNode(t, h.B, 2, 1)
	p1 := startVxtun(t, h.A, n1.args("--public-ip", "198.18.0.77")...)
	p2 := startVxtun(t, h.B, n2.args()...)
	waitPing(t, h.A, "198.19.1.1", "198.19.2.1", p1, p2)
	waitPing(t, h.B, "198.19.2.1", "198.19.1.1", p1, p2)
	if out := p1.Output(); !strings.Contains(out, "listen=0.0.0.0:8472") {
		t.Errorf("vxtun with a NAT public IP: want listen=0.0.0.0:8472 in its log:\n%s", out)
	}
	if out := p2.Output(); !strings.Contains(out, "listen=198.18.0.2:8472") {
		t.Errorf("vxtun with a local public IP: want listen=198.18.0.2:8472 in its log:\n%s", out)
	}
}
