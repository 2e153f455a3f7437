package kube

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/vxtun/vxtun/config"
	"github.com/vxtun/vxtun/internal/flannelvxlan"
	"github.com/vxtun/vxtun/internal/nettest"
)

// Dual stack in kube mode: IPv6 pod subnets 2001:2:0:10NN::/64 of
// 2001:2:0:1000::/52, carried over the IPv4 underlay (the nodes have no
// public IPv6).

const ipv6Network = "2001:2:0:1000::/52"

// subnet6 is node i's IPv6 pod subnet.
func subnet6(i int) netip.Prefix {
	return netip.MustParsePrefix(fmt.Sprintf("2001:2:0:10%02d::/64", i))
}

// dualStack turns c's network dual stack: the net-conf gets EnableIPv6
// and IPv6Network, and the node namespaces forward IPv6 without duplicate
// address detection (addresses usable at once).
func (c *cluster) dualStack(t *testing.T) {
	t.Helper()
	if err := nettest.WriteJSON(c.netConf, nettest.NetConf{Network: nettest.OverlayNetwork, EnableIPv6: true, IPv6Network: ipv6Network,
		Backend: nettest.Backend{Type: "vxlan"}}); err != nil {
		t.Fatal(err)
	}
	for _, ns := range c.nodes {
		ns.Run("sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0", "net.ipv6.conf.all.forwarding=1")
	}
}

// createDualNode creates Node "nodeI" with spec.podCIDRs [IPv4, IPv6], as
// the node controller assigns them in a dual-stack cluster.
func (c *cluster) createDualNode(t *testing.T, i int) {
	t.Helper()
	v4 := nettest.NodeSubnet(i).String()
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("node%d", i)},
		Spec: corev1.NodeSpec{PodCIDR: v4, PodCIDRs: []string{v4, subnet6(i).String()}}}
	if _, err := c.admin.CoreV1().Nodes().Create(context.Background(), n, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create node%d: %v", i, err)
	}
}

// checkDualLease checks, field by field, what a dual-stack vxtun node
// without a public IPv6 publishes: flanneld's four annotations and
// backend-v6-data naming the same VTEP, no public-ipv6 (its IPv6 overlay
// goes over public-ip); and its subnet.env.
func (c *cluster) checkDualLease(t *testing.T, k *kubeNode) {
	t.Helper()
	mac, err := os.ReadFile(k.macFile)
	if err != nil {
		t.Fatalf("node%d: VTEP MAC file: %v", k.i, err)
	}
	data := fmt.Sprintf(`{"VNI":1,"VtepMAC":"%s"}`, strings.TrimSpace(string(mac)))
	n := c.node(t, fmt.Sprintf("node%d", k.i))
	want := map[string]string{
		fp + "kube-subnet-manager": "true",
		fp + "backend-type":        "vxlan",
		fp + "backend-data":        data,
		fp + "backend-v6-data":     data,
		fp + "public-ip":           nettest.UnderlayAddr(k.i).String(),
	}
	for key, v := range want {
		if got := n.Annotations[key]; got != v {
			t.Errorf("node%d annotation %s: got %q, want %q", k.i, key, got, v)
		}
	}
	for key, v := range n.Annotations {
		if _, ok := want[key]; strings.HasPrefix(key, fp) && !ok {
			t.Errorf("node%d: got annotation %s=%q, want only %d (no public-ipv6 without an IPv6 underlay)", k.i, key, v, len(want))
		}
	}
	b, err := os.ReadFile(k.subnetEnv)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		fmt.Sprintf("FLANNEL_SUBNET=198.19.%d.1/24\n", k.i),
		"FLANNEL_IPV6_NETWORK=" + ipv6Network + "\n",
		fmt.Sprintf("FLANNEL_IPV6_SUBNET=2001:2:0:10%02d::1/64\n", k.i),
	} {
		if !strings.Contains(string(b), line) {
			t.Errorf("node%d subnet.env: got\n%s\nwant a line %q", k.i, b, strings.TrimSpace(line))
		}
	}
}

// dualPod attaches a pod to the node and returns it with its IPv6 address
// as a second Pod value (same namespace).
func dualPod(t *testing.T, k *kubeNode, name string) (v4, v6 *nettest.Pod) {
	t.Helper()
	p := nettest.NodePods(t, k.ns, k.subnetEnv).NewPod(t, name)
	p6 := *p
	out := p.Run("ip", "-6", "-o", "addr", "show", "dev", nettest.PodIfName, "scope", "global")
	for _, f := range strings.Fields(out) {
		if a, err := netip.ParsePrefix(f); err == nil && subnet6(k.i).Contains(a.Addr()) {
			p6.Addr = a
		}
	}
	if !p6.Addr.Addr().Is6() {
		t.Fatalf("node%d pod %s: no address in %s:\n%s", k.i, name, subnet6(k.i), out)
	}
	return p, &p6
}

// ping6 pings once over IPv6, waiting up to timeout for the path.
func ping6(t *testing.T, from, to *nettest.Pod, timeout time.Duration) {
	t.Helper()
	var out string
	err := waitFor(timeout, func() error {
		var err error
		out, err = from.Try("ping", "-6", "-n", "-c", "1", "-W", "1", to.IP())
		return err
	})
	if err != nil {
		t.Fatalf("ping6 %s -> %s: %v\n%s", from.IP(), to.IP(), err, out)
	}
}

// transfer6 sends 8 MiB from→to over IPv6 and checks the content.
func transfer6(t *testing.T, from, to *nettest.Pod, seed uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	x := nettest.Transfer{Src: from.Addr.Addr(), Dst: to.Addr.Addr(), Size: 8 << 20, Seed: seed}
	r, err := x.Send(ctx, from.NS, to.NS)
	if err != nil {
		t.Fatalf("TCP %s -> %s: %v", from.IP(), to.IP(), err)
	}
	if r.Bytes != x.Size {
		t.Fatalf("TCP %s -> %s: got %d bytes checked, want %d", from.IP(), to.IP(), r.Bytes, x.Size)
	}
}

// TestDualStackVxtunNodes: two vxtun nodes in kube mode on dual-stack
// Nodes (podCIDRs [IPv4, IPv6]): their annotations and subnet.env, and
// ping6 and TCP with a content check over IPv6 both ways, IPv4 beside it.
func TestDualStackVxtunNodes(t *testing.T) {
	c := newCluster(t, 2)
	c.dualStack(t)
	c.createDualNode(t, 1)
	c.createDualNode(t, 2)
	n1 := c.startVxtun(t, 1, "NODE_NAME=node1")
	n2 := c.startVxtun(t, 2, "NODE_NAME=node2")
	n1.waitRunning(t)
	n2.waitRunning(t)
	n1.waitPeers(t, 1, 20*time.Second)
	n2.waitPeers(t, 1, 20*time.Second)
	c.checkDualLease(t, n1)
	c.checkDualLease(t, n2)

	a4, a6 := dualPod(t, n1, "d1")
	b4, b6 := dualPod(t, n2, "d2")
	ping6(t, a6, b6, 15*time.Second)
	ping6(t, b6, a6, 15*time.Second)
	ping(t, a4, b4, 10*time.Second)
	transfer6(t, a6, b6, 61)
	transfer6(t, b6, a6, 62)
	transfer(t, a4, b4)
}

// underlay6 is node i's IPv6 underlay address, 2001:2::i (on ul0, /64).
func underlay6(i int) netip.Addr { return netip.MustParseAddr(fmt.Sprintf("2001:2::%d", i)) }

// TestDualStackFlanneldKernelNode: a vxtun node with a public IPv6 (the
// first global IPv6 of --iface ul0) and a dual-stack node programmed as
// flanneld programs it (flannel.1 over IPv4, flannel-v6.1 with a MAC of
// its own over IPv6), its Node annotated by the test exactly as flanneld
// annotates it: vxtun publishes flanneld's six annotations, routes the
// flanneld node as two peers (node2 over IPv4, node2/v6 over IPv6), and
// pods talk over both families both ways, content checked.
func TestDualStackFlanneldKernelNode(t *testing.T) {
	c := newCluster(t, 2)
	c.dualStack(t)
	for i, ns := range c.nodes {
		ns.Run("ip", "-6", "addr", "add", underlay6(i+1).String()+"/64", "dev", "ul0", "nodad")
	}
	const mac4, mac6 = "0e:00:00:00:00:02", "0e:00:00:00:06:02"
	c.createDualNode(t, 1)
	v4 := nettest.NodeSubnet(2).String()
	n2 := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node2", Annotations: map[string]string{
		fp + "kube-subnet-manager": "true",
		fp + "backend-type":        "vxlan",
		fp + "backend-data":        `{"VNI":1,"VtepMAC":"` + mac4 + `"}`,
		fp + "public-ip":           nettest.UnderlayAddr(2).String(),
		fp + "backend-v6-data":     `{"VNI":1,"VtepMAC":"` + mac6 + `"}`,
		fp + "public-ipv6":         underlay6(2).String(),
	}}, Spec: corev1.NodeSpec{PodCIDR: v4, PodCIDRs: []string{v4, subnet6(2).String()}}}
	if _, err := c.admin.CoreV1().Nodes().Create(context.Background(), n2, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	k1 := c.startVxtun(t, 1, "NODE_NAME=node1")
	k1.waitRunning(t)
	k1.waitPeers(t, 2, 20*time.Second) // node2 and node2/v6

	mac, err := os.ReadFile(k1.macFile)
	if err != nil {
		t.Fatal(err)
	}
	vxMAC := strings.TrimSpace(string(mac))
	data := `{"VNI":1,"VtepMAC":"` + vxMAC + `"}`
	a := c.node(t, "node1").Annotations
	want := map[string]string{
		fp + "kube-subnet-manager": "true", fp + "backend-type": "vxlan", fp + "backend-data": data,
		fp + "public-ip": nettest.UnderlayAddr(1).String(), fp + "backend-v6-data": data, fp + "public-ipv6": underlay6(1).String(),
	}
	for key, v := range want {
		if a[key] != v {
			t.Errorf("node1 annotation %s: got %q, want %q", key, a[key], v)
		}
	}
	for key, v := range a {
		if _, ok := want[key]; strings.HasPrefix(key, fp) && !ok {
			t.Errorf("node1: got annotation %s=%q, want flanneld's six only", key, v)
		}
	}

	// node2 programs node1's Node as flanneld would from its annotations.
	hw := mustParseMAC(t, vxMAC)
	ds := flannelvxlan.DualStack{
		V4: flannelvxlan.Device{Local: nettest.UnderlayAddr(2), MAC: mustParseMAC(t, mac4), Subnet: nettest.NodeSubnet(2)},
		V6: flannelvxlan.Device{Local: underlay6(2), MAC: mustParseMAC(t, mac6), Subnet6: subnet6(2)},
	}
	for _, cmd := range ds.Commands(flannelvxlan.DualRemote{
		V4: flannelvxlan.Remote{Subnet: nettest.NodeSubnet(1), PublicIP: netip.MustParseAddr(a[fp+"public-ip"]), VtepMAC: hw},
		V6: flannelvxlan.Remote{Subnet6: subnet6(1), PublicIP: netip.MustParseAddr(a[fp+"public-ipv6"]), VtepMAC: hw},
	}) {
		c.nodes[1].Run(cmd...)
	}
	env2 := filepath.Join(t.TempDir(), "subnet.env")
	if err := config.WriteSubnetEnv(env2, config.SubnetEnv{Network: netip.MustParsePrefix(nettest.OverlayNetwork), Subnet: nettest.NodeSubnet(2),
		IPv6Network: netip.MustParsePrefix(ipv6Network), IPv6Subnet: subnet6(2), MTU: 1430, IPMasq: true}); err != nil {
		t.Fatal(err)
	}
	k2 := &kubeNode{i: 2, ns: c.nodes[1], subnetEnv: env2}
	a4, a6 := dualPod(t, k1, "f1")
	b4, b6 := dualPod(t, k2, "f2")
	ping6(t, a6, b6, 15*time.Second)
	ping6(t, b6, a6, 15*time.Second)
	ping(t, a4, b4, 10*time.Second)
	ping(t, b4, a4, 10*time.Second)
	transfer6(t, a6, b6, 71)
	transfer6(t, b6, a6, 72)
	transfer(t, a4, b4)
	transfer(t, b4, a4)
}

func mustParseMAC(t *testing.T, s string) net.HardwareAddr {
	t.Helper()
	hw, err := net.ParseMAC(s)
	if err != nil {
		t.Fatal(err)
	}
	return hw
}
