package main

// End-to-end tests of host-gw and vxlan DirectRouting (issue 10) with pods
// behind cni0 (internal/nettest's CNI helper). The underlay is one L2
// segment (bridge br0 in a switch namespace) carrying two IPv4 subnets:
// 198.18.0.0/25 (node1 .1, node2 .2) and 198.18.0.128/25 (node3 .130),
// joined by a router namespace on the same bridge (.126 and .129). node3 is
// thus on another subnet: not on-link for node1 and node2, reached through
// the router — the case host-gw refuses and DirectRouting encapsulates.

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vxtun/vxtun/config"
	"github.com/vxtun/vxtun/internal/etcdtest"
	"github.com/vxtun/vxtun/internal/nettest"
)

// The routed underlay's addresses.
var (
	node3Far  = netip.MustParseAddr("198.18.0.130") // node3 behind the router
	node3Near = netip.MustParseAddr("198.18.0.3")   // node3 after moving onto node1's subnet
)

// routedUnderlay builds the two-subnet underlay described on top and
// returns the namespaces of node1..node3.
func routedUnderlay(t *testing.T) []*nettest.NS {
	t.Helper()
	nettest.RequirePrivileged(t)
	nettest.RequireCommand(t, "ping")
	nettest.RequireCNI(t)
	sw := nettest.NewNS(t, "sw")
	sw.Run("ip", "link", "add", "br0", "type", "bridge")
	sw.Run("ip", "link", "set", "br0", "up")
	plug := func(ns *nettest.NS, port, addr string) {
		nettest.Veth(t, sw, port, "", ns, "ul0", addr)
		sw.Run("ip", "link", "set", port, "master", "br0")
	}
	r := nettest.NewNS(t, "rt")
	plug(r, "rt", "198.18.0.126/25")
	r.Run("ip", "addr", "add", "198.18.0.129/25", "dev", "ul0")
	for _, k := range []string{"net.ipv4.ip_forward=1", "net.ipv4.conf.all.send_redirects=0", "net.ipv4.conf.ul0.send_redirects=0"} {
		r.Run("sysctl", "-qw", k)
	}
	var nss []*nettest.NS
	for i, addr := range []string{"198.18.0.1/25", "198.18.0.2/25", node3Far.String() + "/25"} {
		ns := nettest.NewNS(t, fmt.Sprintf("n%d", i+1))
		plug(ns, fmt.Sprintf("n%d", i+1), addr)
		if i < 2 {
			ns.Run("ip", "route", "add", "198.18.0.128/25", "via", "198.18.0.126")
		} else {
			ns.Run("ip", "route", "add", "198.18.0.0/25", "via", "198.18.0.129")
		}
		nss = append(nss, ns)
	}
	return nss
}

// peerConf is node i's peers.json entry at public IP ip.
func peerConf(i int, ip netip.Addr, vxlan bool) nettest.PeerConf {
	p := nettest.PeerOf(nettest.PlanNode(i), vxlan)
	p.PublicIP = ip.String()
	return p
}

// startRouted starts vxtun as node i (public IP ip) with backend and the
// static peers, and waits for its subnet.env.
func startRouted(t *testing.T, ns *nettest.NS, i int, ip netip.Addr, be nettest.Backend, peers ...nettest.PeerConf) *podNode {
	t.Helper()
	tn := &testNode{ConfigFiles: nettest.FilesIn(t.TempDir()), ns: ns, index: i, debug: "127.0.0.1:9090"}
	n := &podNode{index: i, ns: ns, tn: tn, subnetEnv: tn.SubnetEnv}
	n.writeConfig(t, ip, be, peers...)
	n.start(t)
	return n
}

func (n *podNode) writeConfig(t *testing.T, ip netip.Addr, be nettest.Backend, peers ...nettest.PeerConf) {
	t.Helper()
	me := nettest.PlanNode(n.index)
	nc := nettest.NodeConf{PublicIP: ip.String(), Iface: nettest.UnderlayIface, Subnet: me.Subnet.String(),
		SubnetFile: n.tn.SubnetEnv, IPMasq: true, Workers: 2}
	if be.Type == "vxlan" {
		nc.VtepMAC = me.VtepMAC.String()
	}
	if err := n.tn.Write(nettest.NetConf{Network: nettest.OverlayNetwork, Backend: be}, nc,
		nettest.PeersConf{Peers: append([]nettest.PeerConf{}, peers...)}); err != nil {
		t.Fatal(err)
	}
}

func (n *podNode) start(t *testing.T) {
	t.Helper()
	_ = os.Remove(n.tn.SubnetEnv)
	n.p = startVxtun(t, n.ns, n.tn.args()...)
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := os.Stat(n.tn.SubnetEnv); err == nil {
			return
		}
		if ex, err := n.p.Exited(); ex {
			t.Fatalf("vxtun on node%d exited (%v):\n%s", n.index, err, n.p.Output())
		}
		if time.Now().After(deadline) {
			t.Fatalf("vxtun on node%d wrote no subnet.env within 15 s:\n%s", n.index, n.p.Output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop sends SIGTERM and wants exit status 0.
func (n *podNode) stop(t *testing.T) {
	t.Helper()
	if err := n.p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := nettest.WaitExit(t, n.p, 10*time.Second); code != 0 {
		t.Errorf("%s: exit code after SIGTERM: got %d, want 0\n%s", n.name(), code, n.p.LogTail(20))
	}
}

// addPod attaches one pod through CNI and checks FLANNEL_MTU and the pod's MTU.
func (n *podNode) addPod(t *testing.T, mtu int) *nettest.Pod {
	t.Helper()
	pn := nettest.NodePods(t, n.ns, n.subnetEnv)
	if got := int(pn.Env.MTU); got != mtu {
		t.Errorf("%s: FLANNEL_MTU: got %d, want %d", n.name(), got, mtu)
	}
	p := pn.NewPod(t, fmt.Sprintf("p%d", n.index))
	l, err := p.Handle().LinkByName(nettest.PodIfName)
	if err != nil {
		t.Fatalf("%s pod %s: %v", n.name(), p.Name, err)
	}
	if got := l.Attrs().MTU; got != mtu {
		t.Errorf("%s pod %s: eth0 MTU: got %d, want %d", n.name(), p.Name, got, mtu)
	}
	n.pods = append(n.pods, p)
	return p
}

// peerRoutes returns the IPv4 routes of ns with a gateway, as ip prints them
// ("198.19.2.0/24 via 198.18.0.2 dev ul0").
func peerRoutes(t *testing.T, ns *nettest.NS) []string {
	t.Helper()
	var out []string
	for _, l := range strings.Split(ns.Run("ip", "-4", "route", "show"), "\n") {
		if f := strings.Fields(l); len(f) >= 5 && f[1] == "via" && strings.HasPrefix(f[0], "198.19.") {
			out = append(out, strings.Join(f[:5], " "))
		}
	}
	return out
}

// waitRoutes waits until ns's peer routes are want (in ip's order).
func waitRoutes(t *testing.T, ns *nettest.NS, want ...string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		got := peerRoutes(t, ns)
		if strings.Join(got, "; ") == strings.Join(want, "; ") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: peer routes: got %q, want %q", ns.Name, got, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestPodsHostGW: two vxtun host-gw nodes with a pod each, and a third peer
// behind a router. The on-link peers get "<subnet> via <PublicIP> dev ul0"
// and carry ping and 64 MiB TCP both ways with a content check at the
// underlay MTU; the off-link peer is refused in flanneld's words, logged
// once and counted (vxtun_peer_drops_total{reason="not_on_link"}) while the
// rest works; after shutdown the routes are gone.
func TestPodsHostGW(t *testing.T) {
	nss := routedUnderlay(t)
	hg := nettest.Backend{Type: "host-gw"}
	n1 := startRouted(t, nss[0], 1, nettest.UnderlayAddr(1), hg, peerConf(2, nettest.UnderlayAddr(2), false), peerConf(3, node3Far, false))
	n2 := startRouted(t, nss[1], 2, nettest.UnderlayAddr(2), hg, peerConf(1, nettest.UnderlayAddr(1), false))
	waitRoutes(t, n1.ns, "198.19.2.0/24 via 198.18.0.2 dev ul0")
	waitRoutes(t, n2.ns, "198.19.1.0/24 via 198.18.0.1 dev ul0")
	if l := n1.ns.Run("ip", "link", "show"); strings.Contains(l, "vxtun0") {
		t.Errorf("node1: host-gw made a TUN device:\n%s", l)
	}
	a, b := n1.addPod(t, nettest.UnderlayMTU), n2.addPod(t, nettest.UnderlayMTU)
	waitPodPing(t, a, b, n1, n2)
	waitPodPing(t, b, a, n1, n2)
	// A full-size DF packet crosses: FLANNEL_MTU is the underlay's.
	if out, err := a.Try("ping", "-n", "-c", "1", "-W", "2", "-M", "do", "-s", fmt.Sprint(nettest.UnderlayMTU-28), b.IP()); err != nil {
		t.Errorf("%d-byte DF ping %s -> %s: %v\n%s", nettest.UnderlayMTU, a.IP(), b.IP(), err, out)
	}
	podTransfer(t, a, b, 5401, podXferSize, n1, n2)
	podTransfer(t, b, a, 5402, podXferSize, n1, n2)

	m := metrics(t, n1.ns, n1.tn.debug)
	if got := m["vxtun_peer_drops_total/not_on_link"]; got != 1 {
		t.Errorf("node1: vxtun_peer_drops_total{reason=not_on_link}: got %v, want 1 (node3, once)", got)
	}
	if got := m["vxtun_peers"]; got != 2 {
		t.Errorf("node1: vxtun_peers: got %v, want 2 (the set is in force, node3 without a route)", got)
	}
	want := "error adding route to 198.19.3.0/24 via 198.18.0.130 dev ul0: network is unreachable"
	if got := strings.Count(n1.p.Output(), want); got != 1 {
		t.Errorf("node1: %q logged %d times, want once:\n%s", want, got, n1.p.LogTail(30))
	}
	// Another peer update (SIGHUP re-reads the same file): no new refusal.
	if err := n1.p.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if got := metrics(t, n1.ns, n1.tn.debug)["vxtun_peer_drops_total/not_on_link"]; got != 1 {
		t.Errorf("node1 after SIGHUP: not_on_link: got %v, want still 1", got)
	}

	n1.stop(t)
	n2.stop(t)
	for _, n := range []*podNode{n1, n2} {
		if got := peerRoutes(t, n.ns); len(got) != 0 {
			t.Errorf("%s after shutdown: peer routes %q remain", n.name(), got)
		}
	}
}

// TestEtcdHostGWFlanneld: a vxtun host-gw node in etcd mode and a
// flanneld-style host-gw node (its lease put into etcd and its route set
// by the test, as flanneld's host-gw backend writes and sets them), pods
// behind cni0 on both. vxtun's lease is byte for byte flanneld's.
func TestEtcdHostGWFlanneld(t *testing.T) {
	nettest.RequireCNI(t)
	e := newE2EEtcd(t, `{"Network":"198.19.0.0/16","Backend":{"Type":"host-gw"}}`)
	// The flanneld node: lease 198.19.2.0/24 at 198.18.0.2.
	etcdtest.Put(t, e.cli, e2eEtcdPrefix+"/subnets/198.19.2.0-24", `{"PublicIP":"198.18.0.2","PublicIPv6":null,"BackendType":"host-gw"}`)
	fl := &podNode{index: 2, ns: e.h.B, kernel: true, subnetEnv: filepath.Join(t.TempDir(), "subnet.env")}
	if err := config.WriteSubnetEnv(fl.subnetEnv, config.SubnetEnv{Network: netip.MustParsePrefix("198.19.0.0/16"),
		Subnet: netip.MustParsePrefix("198.19.2.0/24"), MTU: nettest.UnderlayMTU, IPMasq: true}); err != nil {
		t.Fatal(err)
	}

	v := e.newNode(t, e.h.A)
	v.start(t)
	sv := v.waitSubnet(t)
	v.waitPeers(t, 1)
	_, raw := e.leaseOf(t, sv)
	if want := `{"PublicIP":"198.18.0.1","PublicIPv6":null,"BackendType":"host-gw"}`; raw != want {
		t.Errorf("vxtun's lease: got %s, want flanneld's %s", raw, want)
	}
	waitRoutes(t, e.h.A, "198.19.2.0/24 via 198.18.0.2 dev ul0")
	e.h.B.Run("ip", "route", "add", fmt.Sprintf("198.19.%d.0/24", sv), "via", "198.18.0.1", "dev", "ul0")

	vn := &podNode{index: sv, ns: e.h.A, p: v.p, subnetEnv: v.subnetEnv}
	a, b := vn.addPod(t, nettest.UnderlayMTU), fl.addPod(t, nettest.UnderlayMTU)
	waitPodPing(t, a, b, vn)
	waitPodPing(t, b, a, vn)
	podTransfer(t, a, b, 5411, 16<<20, vn, fl)
	podTransfer(t, b, a, 5412, 16<<20, vn, fl)

	v.stop(t, syscall.SIGTERM)
	if got := peerRoutes(t, e.h.A); len(got) != 0 {
		t.Errorf("vxtun node after shutdown: peer routes %q remain", got)
	}
}

// TestPodsDirectRouting: vxlan with DirectRouting on node1 and node3,
// node2 plain vxlan (a mixed cluster). node1 routes node2 (same subnet)
// directly — no VXLAN from node1 for it (its tx counter stays put), while
// node2's VXLAN to node1 is still received — and reaches node3 (behind
// the router) through VXLAN. Then node3 moves onto node1's subnet: after
// the next peer update node1 routes it directly too.
func TestPodsDirectRouting(t *testing.T) {
	nss := routedUnderlay(t)
	dr := nettest.Backend{Type: "vxlan", DirectRouting: true}
	n1 := startRouted(t, nss[0], 1, nettest.UnderlayAddr(1), dr, peerConf(2, nettest.UnderlayAddr(2), true), peerConf(3, node3Far, true))
	n2 := startRouted(t, nss[1], 2, nettest.UnderlayAddr(2), nettest.Backend{Type: "vxlan"}, peerConf(1, nettest.UnderlayAddr(1), true))
	n3 := startRouted(t, nss[2], 3, node3Far, dr, peerConf(1, nettest.UnderlayAddr(1), true))
	waitRoutes(t, n1.ns, "198.19.2.0/24 via 198.18.0.2 dev ul0")
	waitRoutes(t, n2.ns)
	waitRoutes(t, n3.ns)
	a, b, c := n1.addPod(t, podMTU), n2.addPod(t, podMTU), n3.addPod(t, podMTU)
	for _, p := range [][2]*nettest.Pod{{a, b}, {b, a}, {a, c}, {c, a}} {
		waitPodPing(t, p[0], p[1], n1, n2, n3)
	}

	type counters struct{ tx1, rx1, tx2 float64 }
	read := func() counters {
		m1, m2 := metrics(t, n1.ns, n1.tn.debug), metrics(t, n2.ns, n2.tn.debug)
		return counters{m1["vxtun_tx_packets_total"], m1["vxtun_rx_packets_total"], m2["vxtun_tx_packets_total"]}
	}
	t.Run("direct-peer", func(t *testing.T) {
		before := read()
		podTransfer(t, a, b, 5421, 16<<20, n1, n2)
		podTransfer(t, b, a, 5422, 16<<20, n1, n2)
		d := read()
		if got := d.tx1 - before.tx1; got != 0 {
			t.Errorf("node1 encapsulated %v packets while talking to node2 only, want 0 (direct route)", got)
		}
		if d.tx2 == before.tx2 || d.rx1-before.rx1 == 0 {
			t.Errorf("node2 -> node1 VXLAN: node2 tx +%v, node1 rx +%v; want both > 0 (node2 has no DirectRouting)",
				d.tx2-before.tx2, d.rx1-before.rx1)
		}
	})
	t.Run("vxlan-peer", func(t *testing.T) {
		before := read()
		podTransfer(t, a, c, 5423, 16<<20, n1, n3)
		podTransfer(t, c, a, 5424, 16<<20, n1, n3)
		d := read()
		if d.tx1 == before.tx1 || d.rx1 == before.rx1 {
			t.Errorf("node1 <-> node3 VXLAN: node1 tx +%v rx +%v, want both > 0", d.tx1-before.tx1, d.rx1-before.rx1)
		}
	})
	t.Run("peer-moves-on-link", func(t *testing.T) {
		// node3 is re-addressed onto node1's subnet and restarted with its
		// new address; node1 learns it with the next update (SIGHUP).
		n3.stop(t)
		n3.ns.Run("ip", "addr", "del", node3Far.String()+"/25", "dev", "ul0")
		n3.ns.Run("ip", "addr", "add", node3Near.String()+"/25", "dev", "ul0")
		n3.writeConfig(t, node3Near, dr, peerConf(1, nettest.UnderlayAddr(1), true))
		n3.start(t)
		waitRoutes(t, n3.ns, "198.19.1.0/24 via 198.18.0.1 dev ul0")
		writeJSON(t, n1.tn.Peers, nettest.PeersConf{Peers: []nettest.PeerConf{
			peerConf(2, nettest.UnderlayAddr(2), true), peerConf(3, node3Near, true)}})
		if err := n1.p.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		waitRoutes(t, n1.ns, "198.19.2.0/24 via 198.18.0.2 dev ul0", "198.19.3.0/24 via 198.18.0.3 dev ul0")
		waitPodPing(t, a, c, n1, n3)
		before := read()
		podTransfer(t, a, c, 5425, 16<<20, n1, n3)
		podTransfer(t, c, a, 5426, 16<<20, n1, n3)
		d := read()
		if d.tx1 != before.tx1 || d.rx1 != before.rx1 {
			t.Errorf("node1 <-> node3 after the move: node1 tx +%v rx +%v VXLAN packets, want 0 (both route directly)",
				d.tx1-before.tx1, d.rx1-before.rx1)
		}
		if !strings.Contains(n1.p.Output(), "routed directly") {
			t.Errorf("node1 did not log the move:\n%s", n1.p.LogTail(20))
		}
	})
	n1.stop(t)
	if got := peerRoutes(t, n1.ns); len(got) != 0 {
		t.Errorf("node1 after shutdown: peer routes %q remain", got)
	}
}
