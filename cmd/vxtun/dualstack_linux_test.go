package main

// End-to-end tests of the IPv6 overlay (issue 10, dual stack): pods behind
// cni0 with an IPv4 and an IPv6 address each (2001:2:0:10NN::/64 of
// 2001:2:0:1000::/52), over an IPv4 underlay (198.18.0.N) and over an IPv6
// underlay (2001:2::N/64), between two vxtun nodes and between vxtun and
// a kernel vxlan node.

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vxtun/vxtun/config"
	"github.com/vxtun/vxtun/internal/flannelvxlan"
	"github.com/vxtun/vxtun/internal/nettest"
)

const (
	ipv6Network = "2001:2:0:1000::/52"
	dsXferSize  = 16 << 20
)

// subnet6 is node i's IPv6 subnet, 2001:2:0:10NN::/64.
func subnet6(i int) netip.Prefix {
	return netip.MustParsePrefix(fmt.Sprintf("2001:2:0:10%02d::/64", i))
}

// underlay6 is node i's IPv6 underlay address, 2001:2::N.
func underlay6(i int) netip.Addr { return netip.MustParseAddr(fmt.Sprintf("2001:2::%d", i)) }

// dsUnderlay is podUnderlay with IPv6 on: no duplicate address detection
// (addresses are usable at once), forwarding, and with v6 an IPv6 address
// on every node's ul0.
func dsUnderlay(t *testing.T, v6 bool) []*nettest.NS {
	t.Helper()
	nss := podUnderlay(t, 2)
	for i, ns := range nss {
		ns.Run("sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0",
			"net.ipv6.conf.all.forwarding=1")
		if v6 {
			ns.Run("ip", "-6", "addr", "add", underlay6(i+1).String()+"/64", "dev", "ul0", "nodad")
		}
	}
	return nss
}

// publicIP is node i's underlay address of the family asked for.
func publicIP(i int, v6 bool) netip.Addr {
	if v6 {
		return underlay6(i)
	}
	return nettest.UnderlayAddr(i)
}

// startDualVxtun starts vxtun as node i with an IPv4 and an IPv6 subnet
// and the other nodes as static peers, over the underlay family v6 asks
// for; mtu, if not 0, is net-conf's Backend.MTU.
func startDualVxtun(t *testing.T, ns *nettest.NS, i int, v6 bool, mtu int, peers ...int) *podNode {
	t.Helper()
	tn := &testNode{ConfigFiles: nettest.FilesIn(t.TempDir()), ns: ns, index: i, debug: "127.0.0.1:9090"}
	me := nettest.PlanNode(i)
	var pc nettest.PeersConf
	for _, p := range peers {
		pn := nettest.PlanNode(p)
		pc.Peers = append(pc.Peers, nettest.PeerConf{Name: pn.Name(), PublicIP: publicIP(p, v6).String(),
			Subnets: []string{pn.Subnet.String(), subnet6(p).String()}, VtepMAC: pn.VtepMAC.String()})
	}
	err := tn.Write(nettest.NetConf{Network: nettest.OverlayNetwork, EnableIPv6: true, IPv6Network: ipv6Network,
		Backend: nettest.Backend{Type: "vxlan", MTU: mtu}},
		nettest.NodeConf{PublicIP: publicIP(i, v6).String(), Iface: nettest.UnderlayIface, Subnet: me.Subnet.String(),
			IPv6Subnet: subnet6(i).String(), VtepMAC: me.VtepMAC.String(), SubnetFile: tn.SubnetEnv, IPMasq: true, Workers: 2},
		pc)
	if err != nil {
		t.Fatal(err)
	}
	n := &podNode{index: i, ns: ns, tn: tn, subnetEnv: tn.SubnetEnv}
	n.p = startVxtun(t, ns, tn.args()...)
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := os.Stat(tn.SubnetEnv); err == nil {
			break
		}
		if ex, err := n.p.Exited(); ex {
			t.Fatalf("vxtun on node%d exited (%v):\n%s", i, err, n.p.Output())
		}
		if time.Now().After(deadline) {
			t.Fatalf("vxtun on node%d wrote no subnet.env within 15 s:\n%s", i, n.p.Output())
		}
		time.Sleep(50 * time.Millisecond)
	}
	e, err := config.ReadSubnetEnv(tn.SubnetEnv)
	if err != nil {
		t.Fatal(err)
	}
	if e.IPv6Network.String() != ipv6Network || e.IPv6Subnet != subnet6(i) {
		t.Fatalf("node%d subnet.env: got FLANNEL_IPV6_NETWORK=%s FLANNEL_IPV6_SUBNET=%s, want %s and %s",
			i, e.IPv6Network, e.IPv6Subnet, ipv6Network, subnet6(i))
	}
	return n
}

// startDualKernel programs node i's kernel vxlan device as flanneld does,
// with an IPv6 subnet too, over the underlay family v6 asks for, and
// writes its subnet.env.
func startDualKernel(t *testing.T, ns *nettest.NS, i int, v6 bool, peers ...int) *podNode {
	t.Helper()
	me := nettest.PlanNode(i)
	mtu := config.TunMTUFor(1500, config.BackendVXLAN, v6)
	dev := flannelvxlan.Device{Local: publicIP(i, v6), MAC: me.VtepMAC, Subnet: me.Subnet, Subnet6: subnet6(i), MTU: int(mtu)}
	var remotes []flannelvxlan.Remote
	for _, p := range peers {
		pn := nettest.PlanNode(p)
		remotes = append(remotes, flannelvxlan.Remote{Subnet: pn.Subnet, Subnet6: subnet6(p), PublicIP: publicIP(p, v6), VtepMAC: pn.VtepMAC})
	}
	for _, c := range dev.Commands(remotes...) {
		ns.Run(c...)
	}
	env := filepath.Join(t.TempDir(), "subnet.env")
	if err := config.WriteSubnetEnv(env, config.SubnetEnv{
		Network: netip.MustParsePrefix(nettest.OverlayNetwork), Subnet: dev.Subnet,
		IPv6Network: netip.MustParsePrefix(ipv6Network), IPv6Subnet: dev.Subnet6, MTU: mtu, IPMasq: true,
	}); err != nil {
		t.Fatal(err)
	}
	return &podNode{index: i, ns: ns, kernel: true, subnetEnv: env}
}

// dualPod attaches one pod to the node and returns it with its IPv6
// address (in subnet.env's FLANNEL_IPV6_SUBNET) as a second Pod value
// (same namespace).
func (n *podNode) dualPod(t *testing.T) (v4, v6 *nettest.Pod) {
	t.Helper()
	e, err := config.ReadSubnetEnv(n.subnetEnv)
	if err != nil {
		t.Fatal(err)
	}
	pn := nettest.NodePods(t, n.ns, n.subnetEnv)
	p := pn.NewPod(t, fmt.Sprintf("p%d", n.index))
	p6 := *p
	out := p.Run("ip", "-6", "-o", "addr", "show", "dev", nettest.PodIfName, "scope", "global")
	for _, f := range strings.Fields(out) {
		if a, err := netip.ParsePrefix(f); err == nil && e.IPv6Subnet.Contains(a.Addr()) {
			p6.Addr = a
		}
	}
	if !p6.Addr.Addr().Is6() {
		t.Fatalf("%s pod %s: no address in %s:\n%s", n.name(), p.Name, e.IPv6Subnet, out)
	}
	return p, &p6
}

// waitPing6 waits until from can ping6 to.
func waitPing6(t *testing.T, from, to *nettest.Pod, nodes ...*podNode) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		for _, q := range procs(nodes...) {
			if ex, err := q.Exited(); ex {
				t.Fatalf("vxtun exited (%v):\n%s", err, q.Output())
			}
		}
		out, err := from.Try("ping", "-6", "-n", "-c", "1", "-W", "1", to.IP())
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("ping6 %s -> %s: %v\n%s", from.IP(), to.IP(), err, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestPodsDualStack: two vxtun nodes, and a vxtun and a kernel vxlan node,
// with a dual-stack pod each: ping6 and TCP (content checked, both ways)
// between the pods' IPv6 addresses, and IPv4 beside it, over an IPv4 and
// over an IPv6 underlay.
func TestPodsDualStack(t *testing.T) {
	port := 5500
	for _, peer := range []string{"vxtun", "kernel"} {
		for _, v6 := range []bool{false, true} {
			name := peer + "/v6-over-v4"
			if v6 {
				name = peer + "/v6-over-v6"
			}
			t.Run(name, func(t *testing.T) {
				nss := dsUnderlay(t, v6)
				n1 := startDualVxtun(t, nss[0], 1, v6, 0, 2)
				var n2 *podNode
				if peer == "kernel" {
					n2 = startDualKernel(t, nss[1], 2, v6, 1)
				} else {
					n2 = startDualVxtun(t, nss[1], 2, v6, 0, 1)
				}
				a4, a6 := n1.dualPod(t)
				c4, c6 := n2.dualPod(t)
				waitPing6(t, a6, c6, n1, n2)
				waitPing6(t, c6, a6, n1, n2)
				waitPodPing(t, a4, c4, n1, n2)
				port += 10
				podTransfer(t, a6, c6, port, dsXferSize, n1, n2)
				podTransfer(t, c6, a6, port+1, dsXferSize, n1, n2)
				podTransfer(t, a4, c4, port+2, dsXferSize, n1, n2)
			})
		}
	}
}

// TestPodsIPv6PacketTooBig: with a TUN MTU (net-conf Backend.MTU 1500)
// larger than the underlay carries, a 1500-byte IPv6 packet from a pod
// gets ICMPv6 "packet too big" back from vxtun with the MTU that fits
// (1500 − 50 over IPv4, − 70 over IPv6), and TCP then crosses, content
// checked, with path MTU discovery.
func TestPodsIPv6PacketTooBig(t *testing.T) {
	port := 5600
	for _, v6 := range []bool{false, true} {
		name, want := "v6-over-v4", 1450
		if v6 {
			name, want = "v6-over-v6", 1430
		}
		t.Run(name, func(t *testing.T) {
			nss := dsUnderlay(t, v6)
			n1 := startDualVxtun(t, nss[0], 1, v6, 1500, 2)
			n2 := startDualVxtun(t, nss[1], 2, v6, 1500, 1)
			_, a6 := n1.dualPod(t)
			_, c6 := n2.dualPod(t)
			waitPing6(t, a6, c6, n1, n2)
			// 1452 bytes of ICMPv6 payload + 8 + 40 = 1500.
			out, _ := a6.Try("ping", "-6", "-n", "-c", "2", "-i", "0.3", "-W", "2", "-M", "do", "-s", "1452", c6.IP())
			if !strings.Contains(out, fmt.Sprintf("mtu=%d", want)) {
				t.Fatalf("1500-byte ping6 %s -> %s: got\n%s\nwant a packet-too-big report with mtu=%d", a6.IP(), c6.IP(), out, want)
			}
			m := metrics(t, n1.ns, n1.tn.debug)
			if m["vxtun_drops_total/too_big"] == 0 {
				t.Errorf("vxtun_drops_total{reason=too_big}: got 0, want the too-big packets counted")
			}
			port += 10
			podTransfer(t, a6, c6, port, dsXferSize, n1, n2)
			podTransfer(t, c6, a6, port+1, dsXferSize, n1, n2)
		})
	}
}
