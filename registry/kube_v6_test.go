package registry

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/vxtun/vxtun/config"
)

// kubeDualNetConf is a dual-stack network: 198.19.0.0/16 and
// 2001:2:0:1000::/52 (/64 per node).
func kubeDualNetConf(t *testing.T, backend string) *config.NetConf {
	t.Helper()
	nc, err := config.ParseNetConf("net-conf.json", []byte(`{"Network":"198.19.0.0/16","EnableIPv6":true,`+
		`"IPv6Network":"2001:2:0:1000::/52","Backend":{"Type":"`+backend+`"}}`))
	if err != nil {
		t.Fatal(err)
	}
	return nc
}

// dualNode is node i as vxtun without a public IPv6 annotates it
// (198.19.i.0/24, 2001:2:0:100i::/64, 198.18.0.i, MAC 0e:76:78:00:00:0i).
func dualNode(name string, i byte) *corev1.Node {
	d := string('0' + i)
	mac := "0e:76:78:00:00:0" + d
	n := flannelNode(name, "198.19."+d+".0/24", "198.18.0."+d, mac)
	n.Spec.PodCIDRs = append(n.Spec.PodCIDRs, "2001:2:0:100"+d+"::/64")
	n.Annotations[fp+"backend-v6-data"] = `{"VNI":1,"VtepMAC":"` + mac + `"}`
	return n
}

func TestOwnAnnotationsDualStack(t *testing.T) {
	k, _ := newKubeAnnotations("")
	mac, _ := net.ParseMAC("0e:76:78:00:00:01")
	ip := netip.MustParseAddr("198.18.0.1")
	data := `{"VNI":1,"VtepMAC":"0e:76:78:00:00:01"}`
	tests := []struct {
		name    string
		backend config.Backend
		v6      *ownV6
		want    map[string]string // beyond kube-subnet-manager, backend-type, public-ip
	}{
		{"vxlan, IPv6 over the IPv4 underlay", config.BackendVXLAN, &ownV6{},
			map[string]string{fp + "backend-data": data, fp + "backend-v6-data": data}},
		{"vxlan with a public IPv6 (flanneld's six)", config.BackendVXLAN, &ownV6{PublicIP: netip.MustParseAddr("2001:2::1")},
			map[string]string{fp + "backend-data": data, fp + "backend-v6-data": data, fp + "public-ipv6": "2001:2::1"}},
		{"udp: no IPv6 side", config.BackendUDP, &ownV6{PublicIP: netip.MustParseAddr("2001:2::1")},
			map[string]string{fp + "backend-data": "null"}},
	}
	for _, tt := range tests {
		got, err := ownAnnotations(k, tt.backend, 1, mac, ip, tt.v6)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		tt.want[fp+"kube-subnet-manager"] = "true"
		tt.want[fp+"backend-type"] = string(tt.backend)
		tt.want[fp+"public-ip"] = "198.18.0.1"
		if len(got) != len(tt.want) {
			t.Errorf("%s: got %d annotations %v, want %d", tt.name, len(got), got, len(tt.want))
		}
		for key, v := range tt.want {
			if got[key] != v {
				t.Errorf("%s: %s: got %q, want %q", tt.name, key, got[key], v)
			}
		}
	}
}

func TestNodePeersDualStack(t *testing.T) {
	k, _ := newKubeAnnotations("")
	with := func(f func(n *corev1.Node)) *corev1.Node { n := dualNode("n2", 2); f(n); return n }
	flanneld := func(n *corev1.Node) {
		n.Annotations[fp+"public-ipv6"] = "2001:2::2"
		n.Annotations[fp+"backend-v6-data"] = `{"VNI":1,"VtepMAC":"0e:76:78:00:01:02"}`
	}
	tests := []struct {
		name          string
		nc            *config.NetConf
		node          *corev1.Node
		wantSubnets   string // of the one peer; "" with wantErr
		wantUnrouted6 string
		wantErr       error
	}{
		{"vxtun: IPv6 over IPv4", kubeDualNetConf(t, "vxlan"), dualNode("n2", 2), "198.19.2.0/24 2001:2:0:1002::/64", "", nil},
		{"no backend-v6-data", kubeDualNetConf(t, "vxlan"), with(func(n *corev1.Node) { delete(n.Annotations, fp+"backend-v6-data") }),
			"198.19.2.0/24 2001:2:0:1002::/64", "", nil},
		{"null backend-v6-data", kubeDualNetConf(t, "vxlan"), with(func(n *corev1.Node) { n.Annotations[fp+"backend-v6-data"] = "null" }),
			"198.19.2.0/24 2001:2:0:1002::/64", "", nil},
		{"IPv6 podCIDR first", kubeDualNetConf(t, "vxlan"), with(func(n *corev1.Node) { slices.Reverse(n.Spec.PodCIDRs) }),
			"198.19.2.0/24 2001:2:0:1002::/64", "", nil},
		{"flanneld: public-ipv6 and flannel-v6.1's VTEP, no IPv6 underlay here", kubeDualNetConf(t, "vxlan"), with(flanneld),
			"198.19.2.0/24", "2001:2:0:1002::/64", nil},
		{"another VTEP without public-ipv6", kubeDualNetConf(t, "vxlan"), with(func(n *corev1.Node) {
			n.Annotations[fp+"backend-v6-data"] = `{"VNI":1,"VtepMAC":"0e:76:78:00:01:02"}`
		}), "198.19.2.0/24", "2001:2:0:1002::/64", nil},
		{"no IPv6 podCIDR", kubeDualNetConf(t, "vxlan"), with(func(n *corev1.Node) { n.Spec.PodCIDRs = n.Spec.PodCIDRs[:1] }),
			"198.19.2.0/24", "", nil},
		{"EnableIPv6 off: IPv6 side ignored", kubeNetConf(t, "vxlan"), with(flanneld), "198.19.2.0/24", "", nil},
		{"udp: IPv6 over IPv4", kubeDualNetConf(t, "udp"), with(func(n *corev1.Node) {
			n.Annotations[fp+"backend-type"] = "udp"
			n.Annotations[fp+"backend-data"] = "null"
			delete(n.Annotations, fp+"backend-v6-data")
		}), "198.19.2.0/24 2001:2:0:1002::/64", "", nil},
		{"bad public-ipv6", kubeDualNetConf(t, "vxlan"), with(func(n *corev1.Node) { n.Annotations[fp+"public-ipv6"] = "2001:2::zz" }), "", "", ErrBadNode},
		{"IPv4 public-ipv6", kubeDualNetConf(t, "vxlan"), with(func(n *corev1.Node) { n.Annotations[fp+"public-ipv6"] = "198.18.0.2" }), "", "", ErrBadNode},
		{"multicast public-ipv6", kubeDualNetConf(t, "vxlan"), with(func(n *corev1.Node) { n.Annotations[fp+"public-ipv6"] = "ff02::1" }), "", "", ErrBadNode},
		{"bad backend-v6-data", kubeDualNetConf(t, "vxlan"), with(func(n *corev1.Node) { n.Annotations[fp+"backend-v6-data"] = `{"VNI":` }), "", "", ErrBadNode},
		{"backend-v6-data VNI too big", kubeDualNetConf(t, "vxlan"), with(func(n *corev1.Node) {
			n.Annotations[fp+"backend-v6-data"] = `{"VNI":16777216,"VtepMAC":"0e:76:78:00:00:02"}`
		}), "", "", ErrBadNode},
		{"IPv6 podCIDR outside IPv6Network", kubeDualNetConf(t, "vxlan"), with(func(n *corev1.Node) { n.Spec.PodCIDRs[1] = "2001:2:0:2002::/64" }), "", "", errSkip},
		{"two IPv6 podCIDRs", kubeDualNetConf(t, "vxlan"), with(func(n *corev1.Node) { n.Spec.PodCIDRs[0] = "2001:2:0:1003::/64" }), "", "", ErrBadNode},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps, un6, err := nodePeers(k, tt.nc, tt.node, netip.Addr{})
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("got %v (peers %+v), want %v", err, ps, tt.wantErr)
				}
				return
			}
			if err != nil || len(ps) != 1 {
				t.Fatalf("got %v (peers %+v), want one peer", err, ps)
			}
			var sns []string
			for _, sn := range ps[0].Subnets {
				sns = append(sns, sn.String())
			}
			if got := strings.Join(sns, " "); got != tt.wantSubnets {
				t.Errorf("subnets: got %q, want %q", got, tt.wantSubnets)
			}
			got6 := ""
			if un6.IsValid() {
				got6 = un6.String()
			}
			if got6 != tt.wantUnrouted6 {
				t.Errorf("unrouted IPv6 subnet: got %q, want %q", got6, tt.wantUnrouted6)
			}
			if p := ps[0]; p.Name != "n2" || p.PublicIP.String() != "198.18.0.2" {
				t.Errorf("got %s %s, want n2 198.18.0.2", p.Name, p.PublicIP)
			}
		})
	}
}

// dualFixture is a KubeSource of node n1 (198.19.1.0/24 and
// 2001:2:0:1001::/64) in a dual-stack network over a fake clientset.
func dualFixture(t *testing.T, public6 netip.Addr, own *corev1.Node, objs ...runtime.Object) (*KubeSource, *fake.Clientset, *logBuf) {
	t.Helper()
	if own == nil {
		own = &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"},
			Spec: corev1.NodeSpec{PodCIDR: "198.19.1.0/24", PodCIDRs: []string{"198.19.1.0/24", "2001:2:0:1001::/64"}}}
	}
	cs := fake.NewClientset(append([]runtime.Object{own}, objs...)...)
	lg, lb := testLogger("n1")
	mac, _ := net.ParseMAC("0e:76:78:00:00:01")
	src, err := NewKubeSource(KubeOptions{NodeName: "n1", NetConf: kubeDualNetConf(t, "vxlan"), PublicIP: netip.MustParseAddr("198.18.0.1"),
		PublicIPv6: public6, VtepMAC: mac, Client: fakeKube{cs}, Logger: lg})
	if err != nil {
		t.Fatal(err)
	}
	return src, cs, lb
}

func TestKubeAcquireDualStack(t *testing.T) {
	data := `{"VNI":1,"VtepMAC":"0e:76:78:00:00:01"}`
	withAnn := func(a map[string]string) *corev1.Node {
		return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", Annotations: a},
			Spec: corev1.NodeSpec{PodCIDR: "198.19.1.0/24", PodCIDRs: []string{"198.19.1.0/24", "2001:2:0:1001::/64"}}}
	}
	tests := []struct {
		name    string
		public6 netip.Addr
		own     *corev1.Node
		want6   map[string]string // the IPv6 annotations; absent keys must be absent
	}{
		{"no public IPv6", netip.Addr{}, nil, map[string]string{fp + "backend-v6-data": data}},
		{"public IPv6", netip.MustParseAddr("2001:2::1"), nil,
			map[string]string{fp + "backend-v6-data": data, fp + "public-ipv6": "2001:2::1"}},
		{"public-ipv6-overwrite", netip.MustParseAddr("2001:2::1"), withAnn(map[string]string{fp + "public-ipv6-overwrite": "2001:2::99"}),
			map[string]string{fp + "backend-v6-data": data, fp + "public-ipv6": "2001:2::99"}},
		{"overwrite without an IPv6 underlay: ignored", netip.Addr{}, withAnn(map[string]string{fp + "public-ipv6-overwrite": "2001:2::99"}),
			map[string]string{fp + "backend-v6-data": data}},
		{"stale public-ipv6 removed", netip.Addr{}, withAnn(map[string]string{fp + "public-ipv6": "2001:2::7"}),
			map[string]string{fp + "backend-v6-data": data}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, cs, _ := dualFixture(t, tt.public6, tt.own)
			l, err := src.Acquire(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if l.Subnet.String() != "198.19.1.0/24" || l.Subnet6.String() != "2001:2:0:1001::/64" {
				t.Errorf("lease: got %v and %v, want 198.19.1.0/24 and 2001:2:0:1001::/64", l.Subnet, l.Subnet6)
			}
			n, err := cs.CoreV1().Nodes().Get(context.Background(), "n1", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for _, key := range []string{fp + "backend-v6-data", fp + "public-ipv6"} {
				got, ok := n.Annotations[key]
				want, wantOK := tt.want6[key]
				if got != want || ok != wantOK {
					t.Errorf("annotation %s: got %q (present %v), want %q (present %v)", key, got, ok, want, wantOK)
				}
			}
			if got := n.Annotations[fp+"backend-data"]; got != data {
				t.Errorf("backend-data: got %q, want %q", got, data)
			}
		})
	}
}

func TestKubeAcquireDualStackErrors(t *testing.T) {
	node := func(cidrs ...string) *corev1.Node {
		return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}, Spec: corev1.NodeSpec{PodCIDR: cidrs[0], PodCIDRs: cidrs}}
	}
	tests := []struct {
		name    string
		own     *corev1.Node
		wantErr string
	}{
		{"no IPv6 podCIDR yet", node("198.19.1.0/24"), "has no IPv6 pod cidr"},
		{"IPv6 podCIDR outside IPv6Network", node("198.19.1.0/24", "2001:2:0:2001::/64"),
			`doesn't contain "2001:2:0:2001::/64" IPv6 PodCIDR`},
		{"bad overwrite", func() *corev1.Node {
			n := node("198.19.1.0/24", "2001:2:0:1001::/64")
			n.Annotations = map[string]string{fp + "public-ipv6-overwrite": "198.18.0.9"}
			return n
		}(), "is not an IPv6 address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, _, _ := dualFixture(t, netip.MustParseAddr("2001:2::1"), tt.own)
			_, err := src.Acquire(context.Background())
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("got %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

// TestKubeRunDualStack: peers get their IPv6 subnets; a Node whose IPv6
// subnet overlaps an accepted peer's is skipped until that peer leaves;
// one whose IPv6 overlay is on an IPv6 underlay is routed over IPv4 only,
// with one log line.
func TestKubeRunDualStack(t *testing.T) {
	clash := dualNode("n4", 4)
	clash.Spec.PodCIDRs[1] = "2001:2:0:1002::/64" // n2's
	v6u := dualNode("n5", 5)
	v6u.Annotations[fp+"public-ipv6"] = "2001:2::5"
	v6u.Annotations[fp+"backend-v6-data"] = `{"VNI":1,"VtepMAC":"0e:76:78:00:01:05"}`
	src, cs, lb := dualFixture(t, netip.Addr{}, nil, dualNode("n2", 2), dualNode("n3", 3), v6u)
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan Update, 1)
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, out) }()
	defer func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run: got %v, want context.Canceled", err)
		}
	}()
	describe := func(p config.Peer) string {
		s := p.Name
		for _, sn := range p.Subnets {
			s += " " + sn.String()
		}
		return s
	}
	u := recvUpdate(t, out)
	var got []string
	for _, p := range u.Peers {
		got = append(got, describe(p))
	}
	want := []string{"n2 198.19.2.0/24 2001:2:0:1002::/64", "n3 198.19.3.0/24 2001:2:0:1003::/64", "n5 198.19.5.0/24"}
	if !u.Full || !slices.Equal(got, want) {
		t.Fatalf("first update: got %+v, want Full with %q", got, want)
	}
	waitLog(t, lb, "routing only its IPv4 subnet")
	if _, err := cs.CoreV1().Nodes().Create(ctx, clash, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitLog(t, lb, "subnet 2001:2:0:1002::/64 overlaps node n2's")
	if err := cs.CoreV1().Nodes().Delete(ctx, "n2", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	u = recvUpdate(t, out)
	got = nil
	for _, ev := range u.Events {
		got = append(got, ev.Type.String()+" "+describe(ev.Peer))
	}
	want = []string{"remove n2 198.19.2.0/24 2001:2:0:1002::/64", "add n4 198.19.4.0/24 2001:2:0:1002::/64"}
	if !slices.Equal(got, want) {
		t.Fatalf("n2 deleted: got events %q, want %q", got, want)
	}
	if n := strings.Count(lb.String(), "routing only its IPv4 subnet"); n != 1 {
		t.Errorf("got %d lines about n5's unrouted IPv6 subnet, want 1", n)
	}
}

// TestNodePeersIPv6Underlay: with a public IPv6 here, a flanneld
// dual-stack Node (public-ipv6, flannel-v6.1's VTEP) becomes two peers,
// the second over the IPv6 underlay; a Node carrying our public IPv6 is
// not a peer.
func TestNodePeersIPv6Underlay(t *testing.T) {
	k, _ := newKubeAnnotations("")
	n := dualNode("n2", 2)
	n.Annotations[fp+"public-ipv6"] = "2001:2::2"
	n.Annotations[fp+"backend-v6-data"] = `{"VNI":1,"VtepMAC":"0e:76:78:00:01:02"}`
	self6 := netip.MustParseAddr("2001:2::1")
	ps, un6, err := nodePeers(k, kubeDualNetConf(t, "vxlan"), n, self6)
	if err != nil || len(ps) != 2 || un6.IsValid() {
		t.Fatalf("got %+v, %v (unrouted %v), want two peers", ps, err, un6)
	}
	got := []string{
		ps[0].Name + " " + ps[0].PublicIP.String() + " " + ps[0].VtepMAC.String() + " " + ps[0].Subnets[0].String(),
		ps[1].Name + " " + ps[1].PublicIP.String() + " " + ps[1].VtepMAC.String() + " " + ps[1].Subnets[0].String(),
	}
	want := []string{"n2 198.18.0.2 0e:76:78:00:00:02 198.19.2.0/24", "n2/v6 2001:2::2 0e:76:78:00:01:02 2001:2:0:1002::/64"}
	if !slices.Equal(got, want) || len(ps[0].Subnets) != 1 || len(ps[1].Subnets) != 1 {
		t.Errorf("got %q, want %q", got, want)
	}
	n.Annotations[fp+"public-ipv6"] = self6.String()
	if _, _, err := nodePeers(k, kubeDualNetConf(t, "vxlan"), n, self6); !errors.Is(err, errSkip) {
		t.Errorf("a Node with our public IPv6: got %v, want errSkip", err)
	}
}
