package registry

// Unit tests of the Kubernetes source against client-go's fake clientset.
// The real API server (RBAC, the status subresource, podCIDR rules) is
// tested in test/kube.

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/vxtun/vxtun/config"
)

const fp = "flannel.alpha.coreos.com/"

func kubeNetConf(t *testing.T, backend string) *config.NetConf {
	t.Helper()
	nc, err := config.ParseNetConf("net-conf.json", []byte(`{"Network":"198.19.0.0/16","Backend":{"Type":"`+backend+`"}}`))
	if err != nil {
		t.Fatal(err)
	}
	return nc
}

// flannelNode is a Node as flanneld annotates it (vxlan, VNI 1).
func flannelNode(name, cidr, ip, mac string) *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{
			fp + "kube-subnet-manager": "true",
			fp + "backend-type":        "vxlan",
			fp + "backend-data":        `{"VNI":1,"VtepMAC":"` + mac + `"}`,
			fp + "public-ip":           ip,
		}},
		Spec: corev1.NodeSpec{PodCIDR: cidr, PodCIDRs: []string{cidr}},
	}
}

func TestNewKubeAnnotations(t *testing.T) {
	tests := []struct {
		prefix, wantManaged, wantErr string
	}{
		{"", "flannel.alpha.coreos.com/kube-subnet-manager", ""},
		{"flannel.alpha.coreos.com", "flannel.alpha.coreos.com/kube-subnet-manager", ""},
		{"example.com/", "example.com/kube-subnet-manager", ""},
		{"example.com/net", "example.com/net-kube-subnet-manager", ""},
		{"example.com/net-", "example.com/net-kube-subnet-manager", ""},
		{"a/b/c", "", "at most one slash"},
		{"Example.com", "", "fqdn"},
		{"nodots", "", "fqdn"},
	}
	for _, tt := range tests {
		k, err := newKubeAnnotations(tt.prefix)
		if tt.wantErr != "" {
			if err == nil || !errors.Is(err, ErrBadAnnotationPrefix) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("prefix %q: got error %v, want ErrBadAnnotationPrefix mentioning %q", tt.prefix, err, tt.wantErr)
			}
			continue
		}
		if err != nil || k.Managed != tt.wantManaged {
			t.Errorf("prefix %q: got %q (%v), want %q", tt.prefix, k.Managed, err, tt.wantManaged)
		}
	}
}

func TestOwnAnnotations(t *testing.T) {
	k, _ := newKubeAnnotations("")
	mac, _ := net.ParseMAC("0e:76:78:00:00:01")
	ip := netip.MustParseAddr("198.18.0.1")
	tests := []struct {
		backend  config.Backend
		wantData string
	}{
		{config.BackendVXLAN, `{"VNI":1,"VtepMAC":"0e:76:78:00:00:01"}`},
		{config.BackendUDP, "null"}, // flanneld's udp backend: no backend data, marshalled as null
	}
	for _, tt := range tests {
		got, err := ownAnnotations(k, tt.backend, 1, mac, ip, nil)
		if err != nil {
			t.Fatalf("%s: %v", tt.backend, err)
		}
		want := map[string]string{
			fp + "kube-subnet-manager": "true", fp + "backend-type": string(tt.backend),
			fp + "backend-data": tt.wantData, fp + "public-ip": "198.18.0.1",
		}
		if len(got) != len(want) {
			t.Errorf("%s: got %d annotations %v, want %d", tt.backend, len(got), got, len(want))
		}
		for key, v := range want {
			if got[key] != v {
				t.Errorf("%s: %s: got %q, want %q", tt.backend, key, got[key], v)
			}
		}
	}
	if _, err := ownAnnotations(k, "host-gw", 1, mac, ip, nil); !errors.Is(err, ErrUnsupportedBackend) {
		t.Errorf("host-gw: got %v, want ErrUnsupportedBackend", err)
	}
}

func TestNodePeers(t *testing.T) {
	k, _ := newKubeAnnotations("")
	nc := kubeNetConf(t, "vxlan")
	good := func() *corev1.Node { return flannelNode("n2", "198.19.2.0/24", "198.18.0.2", "0e:76:78:00:00:02") }
	with := func(f func(n *corev1.Node)) *corev1.Node { n := good(); f(n); return n }
	tests := []struct {
		name    string
		node    *corev1.Node
		wantErr error // nil: a peer
	}{
		{"flanneld's annotations", good(), nil},
		{"podCIDR only (old API)", with(func(n *corev1.Node) { n.Spec.PodCIDRs = nil }), nil},
		{"dual stack podCIDRs", with(func(n *corev1.Node) { n.Spec.PodCIDRs = []string{"2001:2:0:1002::/64", "198.19.2.0/24"} }), nil},
		{"no annotations", &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "bare"}}, errNotManaged},
		{"managed false", with(func(n *corev1.Node) { n.Annotations[fp+"kube-subnet-manager"] = "false" }), errNotManaged},
		{"other backend", with(func(n *corev1.Node) { n.Annotations[fp+"backend-type"] = "host-gw" }), errSkip},
		{"bad JSON", with(func(n *corev1.Node) { n.Annotations[fp+"backend-data"] = `{"VNI":1,` }), ErrBadNode},
		{"bad MAC", with(func(n *corev1.Node) { n.Annotations[fp+"backend-data"] = `{"VNI":1,"VtepMAC":"zz"}` }), ErrBadNode},
		{"null backend data", with(func(n *corev1.Node) { n.Annotations[fp+"backend-data"] = "null" }), ErrBadNode},
		{"VNI too big", with(func(n *corev1.Node) {
			n.Annotations[fp+"backend-data"] = `{"VNI":16777216,"VtepMAC":"0e:76:78:00:00:02"}`
		}), ErrBadNode},
		{"bad public IP", with(func(n *corev1.Node) { n.Annotations[fp+"public-ip"] = "198.18.0" }), ErrBadNode},
		{"IPv6 public IP", with(func(n *corev1.Node) { n.Annotations[fp+"public-ip"] = "2001:2::2" }), ErrBadNode},
		{"no pod cidr", with(func(n *corev1.Node) { n.Spec.PodCIDR, n.Spec.PodCIDRs = "", nil }), ErrBadNode},
		{"bad pod cidr", with(func(n *corev1.Node) { n.Spec.PodCIDRs = []string{"198.19.2.0/33"} }), ErrBadNode},
		{"three pod cidrs", with(func(n *corev1.Node) { n.Spec.PodCIDRs = []string{"198.19.2.0/24", "198.19.3.0/24", "2001:2::/64"} }), ErrBadNode},
		{"outside Network", with(func(n *corev1.Node) { n.Spec.PodCIDRs = []string{"10.1.0.0/24"} }), errSkip},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps, _, err := nodePeers(k, nc, tt.node, netip.Addr{})
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("got %v (peers %+v), want %v", err, ps, tt.wantErr)
				}
				return
			}
			if err != nil || len(ps) != 1 {
				t.Fatalf("got %v (peers %+v), want one peer", err, ps)
			}
			p := ps[0]
			if p.Name != "n2" || p.PublicIP.String() != "198.18.0.2" || p.VNI != 1 || p.VtepMAC.String() != "0e:76:78:00:00:02" ||
				len(p.Subnets) != 1 || p.Subnets[0].String() != "198.19.2.0/24" || p.Backend != config.BackendVXLAN || p.Port != 8472 {
				t.Errorf("got %+v, want n2 198.18.0.2 VNI 1 0e:76:78:00:00:02 198.19.2.0/24 vxlan port 8472", p)
			}
		})
	}
}

// kubeFixture is a KubeSource over a fake clientset holding our Node n1
// (198.19.1.0/24, 198.18.0.1).
type kubeFixture struct {
	cs      *fake.Clientset
	src     *KubeSource
	log     *logBuf
	watched chan struct{} // closed when the informer's watch started
}

func newKubeFixture(t *testing.T, backend string, objs ...runtime.Object) *kubeFixture {
	t.Helper()
	own := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"},
		Spec: corev1.NodeSpec{PodCIDR: "198.19.1.0/24", PodCIDRs: []string{"198.19.1.0/24"}}}
	cs := fake.NewClientset(append([]runtime.Object{own}, objs...)...)
	f := &kubeFixture{cs: cs, watched: make(chan struct{})}
	cs.PrependWatchReactor("nodes", func(k8stesting.Action) (bool, watch.Interface, error) {
		select {
		case <-f.watched:
		default:
			close(f.watched)
		}
		return false, nil, nil
	})
	lg, lb := testLogger("n1")
	f.log = lb
	mac, _ := net.ParseMAC("0e:76:78:00:00:01")
	src, err := NewKubeSource(KubeOptions{
		NodeName: "n1", NetConf: kubeNetConf(t, backend), PublicIP: netip.MustParseAddr("198.18.0.1"),
		VtepMAC: mac, Client: fakeKube{cs}, Logger: lg, SetNetworkUnavailable: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	f.src = src
	return f
}

func (f *kubeFixture) node(t *testing.T, name string) *corev1.Node {
	t.Helper()
	n, err := f.cs.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestKubeAcquire(t *testing.T) {
	f := newKubeFixture(t, "vxlan")
	ctx := context.Background()
	l, err := f.src.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if l.Name != "n1" || l.Subnet.String() != "198.19.1.0/24" || l.PublicIP.String() != "198.18.0.1" || l.VNI != 1 {
		t.Errorf("lease: got %+v, want n1 198.19.1.0/24 198.18.0.1 VNI 1", l)
	}
	select {
	case got := <-f.src.LeaseChanges():
		if got.Subnet != l.Subnet {
			t.Errorf("LeaseChanges: got %v, want %v", got.Subnet, l.Subnet)
		}
	default:
		t.Error("LeaseChanges: got nothing, want the first lease")
	}
	a := f.node(t, "n1").Annotations
	for k, want := range map[string]string{
		fp + "kube-subnet-manager": "true", fp + "backend-type": "vxlan",
		fp + "backend-data": `{"VNI":1,"VtepMAC":"0e:76:78:00:00:01"}`, fp + "public-ip": "198.18.0.1",
	} {
		if a[k] != want {
			t.Errorf("annotation %s: got %q, want %q", k, a[k], want)
		}
	}
	var patches int
	for _, act := range f.cs.Actions() {
		if act.GetVerb() == "patch" {
			patches++
			if act.GetSubresource() != "status" {
				t.Errorf("patch on subresource %q, want status (RBAC grants nodes/status only)", act.GetSubresource())
			}
		}
	}
	if patches != 1 {
		t.Errorf("got %d patches, want 1", patches)
	}
	// A second Acquire finds the annotations in place and patches nothing.
	if _, err := f.src.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	var again int
	for _, act := range f.cs.Actions() {
		if act.GetVerb() == "patch" {
			again++
		}
	}
	if again != 1 {
		t.Errorf("after a second Acquire: got %d patches, want still 1", again)
	}
}

func TestKubeAcquireWaitsForPodCIDR(t *testing.T) {
	f := newKubeFixture(t, "vxlan")
	n := f.node(t, "n1")
	n.Spec.PodCIDR, n.Spec.PodCIDRs = "", nil
	if _, err := f.cs.CoreV1().Nodes().Update(context.Background(), n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err := f.src.Acquire(context.Background())
	if !errors.Is(err, ErrNoPodCIDR) || !strings.Contains(err.Error(), `node "n1" pod cidr not assigned`) {
		t.Fatalf("got %v, want flanneld's `node \"n1\" pod cidr not assigned`", err)
	}
	if _, ok := f.src.Lease(); ok {
		t.Error("got a lease without a pod cidr")
	}
}

func TestKubeAcquireErrors(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "ds-1", Namespace: "kube-flannel"}, Spec: corev1.PodSpec{NodeName: "n1"}}
	unscheduled := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "ds-2", Namespace: "kube-flannel"}}
	tests := []struct {
		name           string
		podName, podNS string
		cidr           string
		overwrite      string
		wantErr        string // "" = success
		wantIP         string
	}{
		{name: "node from the pod's spec.nodeName", podName: "ds-1", podNS: "kube-flannel", wantIP: "198.18.0.1"},
		{name: "no NODE_NAME, no pod", wantErr: "POD_NAME and POD_NAMESPACE must be set"},
		{name: "pod not found", podName: "nope", podNS: "kube-flannel", wantErr: "error retrieving pod spec for 'kube-flannel/nope'"},
		{name: "pod not scheduled", podName: "ds-2", podNS: "kube-flannel", wantErr: "node name not present in pod spec"},
		{name: "pod cidr outside Network", podName: "ds-1", podNS: "kube-flannel", cidr: "10.244.1.0/24", wantErr: "doesn't contain \"10.244.1.0/24\""},
		{name: "public-ip-overwrite", podName: "ds-1", podNS: "kube-flannel", overwrite: "203.0.113.9", wantIP: "203.0.113.9"},
		{name: "bad public-ip-overwrite", podName: "ds-1", podNS: "kube-flannel", overwrite: "nope", wantErr: "public-ip-overwrite"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cidr := tt.cidr
			if cidr == "" {
				cidr = "198.19.1.0/24"
			}
			own := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", Annotations: map[string]string{}},
				Spec: corev1.NodeSpec{PodCIDR: cidr, PodCIDRs: []string{cidr}}}
			if tt.overwrite != "" {
				own.Annotations[fp+"public-ip-overwrite"] = tt.overwrite
			}
			cs := fake.NewClientset(own, pod, unscheduled)
			lg, _ := testLogger("n1")
			mac, _ := net.ParseMAC("0e:76:78:00:00:01")
			src, err := NewKubeSource(KubeOptions{PodName: tt.podName, PodNamespace: tt.podNS,
				NetConf: kubeNetConf(t, "vxlan"), PublicIP: netip.MustParseAddr("198.18.0.1"), VtepMAC: mac, Client: fakeKube{cs}, Logger: lg})
			if err != nil {
				t.Fatal(err)
			}
			l, err := src.Acquire(context.Background())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, want an error mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if l.PublicIP.String() != tt.wantIP {
				t.Errorf("lease public IP: got %s, want %s", l.PublicIP, tt.wantIP)
			}
			n, _ := cs.CoreV1().Nodes().Get(context.Background(), "n1", metav1.GetOptions{})
			if got := n.Annotations[fp+"public-ip"]; got != tt.wantIP {
				t.Errorf("public-ip annotation: got %q, want %q", got, tt.wantIP)
			}
			if src.NodeName() != "n1" {
				t.Errorf("node name: got %q, want n1", src.NodeName())
			}
		})
	}
}

// recvUpdate waits for the next update.
func recvUpdate(t *testing.T, out <-chan Update) Update {
	t.Helper()
	select {
	case u := <-out:
		return u
	case <-time.After(waitTimeout):
		t.Fatal("no update within the timeout")
	}
	return Update{}
}

func TestKubeRun(t *testing.T) {
	bare := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "bare"}, Spec: corev1.NodeSpec{PodCIDR: "198.19.9.0/24"}}
	hostgw := flannelNode("hostgw", "198.19.8.0/24", "198.18.0.8", "0e:76:78:00:00:08")
	hostgw.Annotations[fp+"backend-type"] = "host-gw"
	broken := flannelNode("broken", "198.19.7.0/24", "198.18.0.7", "0e:76:78:00:00:07")
	broken.Annotations[fp+"backend-data"] = "{"
	f := newKubeFixture(t, "vxlan", bare, hostgw, broken,
		flannelNode("n2", "198.19.2.0/24", "198.18.0.2", "0e:76:78:00:00:02"))
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan Update, 1)
	done := make(chan error, 1)
	go func() { done <- f.src.Run(ctx, out) }()
	defer func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run: got %v, want context.Canceled", err)
		}
	}()

	u := recvUpdate(t, out)
	if !u.Full || len(u.Peers) != 1 || u.Peers[0].Name != "n2" || u.Peers[0].Subnets[0].String() != "198.19.2.0/24" {
		t.Fatalf("first update: got %+v, want Full with n2 only", u)
	}
	<-f.watched
	nodes := f.cs.CoreV1().Nodes()
	expect := func(what string, want ...string) {
		t.Helper()
		u := recvUpdate(t, out)
		var got []string
		for _, ev := range u.Events {
			got = append(got, ev.Type.String()+" "+ev.Peer.Name+" "+ev.Peer.PublicIP.String()+" "+ev.Peer.Subnets[0].String())
		}
		if strings.Join(got, ", ") != strings.Join(want, ", ") {
			t.Fatalf("%s: got events %q, want %q", what, got, want)
		}
	}
	if _, err := nodes.Create(ctx, flannelNode("n3", "198.19.3.0/24", "198.18.0.3", "0e:76:78:00:00:03"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	expect("node added", "add n3 198.18.0.3 198.19.3.0/24")

	n2 := f.node(t, "n2")
	n2.Annotations[fp+"public-ip"] = "198.18.0.22"
	if _, err := nodes.Update(ctx, n2, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	expect("public-ip changed", "update n2 198.18.0.22 198.19.2.0/24")

	// A Node claiming n3's subnet is skipped while n3 holds it, and
	// becomes a peer once n3 is gone.
	if _, err := nodes.Create(ctx, flannelNode("n4", "198.19.3.0/25", "198.18.0.4", "0e:76:78:00:00:04"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitLog(t, f.log, "overlaps node n3's")
	if err := nodes.Delete(ctx, "n3", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	expect("n3 deleted, n4 takes over", "remove n3 198.18.0.3 198.19.3.0/24", "add n4 198.18.0.4 198.19.3.0/25")

	// The malformed node is logged once, however often it changes.
	for i := 0; i < 3; i++ {
		b := f.node(t, "broken")
		b.Labels = map[string]string{"round": string(rune('a' + i))}
		if _, err := nodes.Update(ctx, b, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := nodes.Delete(ctx, "n4", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	expect("n4 deleted", "remove n4 198.18.0.4 198.19.3.0/25")
	logs := f.log.String()
	if got := strings.Count(logs, "node=broken"); got != 1 {
		t.Errorf("log lines about the malformed node: got %d, want 1:\n%s", got, logs)
	}
	if got := strings.Count(logs, "node=hostgw"); got != 1 {
		t.Errorf("log lines about the host-gw node: got %d, want 1", got)
	}
	if strings.Contains(logs, "node=bare") {
		t.Errorf("got a log line about the unannotated node, want none:\n%s", logs)
	}

	// NetworkUnavailable=False was set on our Node.
	deadline := time.Now().Add(waitTimeout)
	for {
		var got *corev1.NodeCondition
		for _, c := range f.node(t, "n1").Status.Conditions {
			if c.Type == corev1.NodeNetworkUnavailable {
				got = &c
			}
		}
		if got != nil {
			if got.Status != corev1.ConditionFalse || got.Reason != "FlannelIsUp" {
				t.Errorf("NetworkUnavailable: got %s/%s, want False/FlannelIsUp", got.Status, got.Reason)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("NetworkUnavailable condition not set")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestKubeRunRepublishes: annotations removed from our Node are published
// again.
func TestKubeRunRepublishes(t *testing.T) {
	f := newKubeFixture(t, "udp")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := make(chan Update, 1)
	go func() { _ = f.src.Run(ctx, out) }()
	if u := recvUpdate(t, out); !u.Full || len(u.Peers) != 0 {
		t.Fatalf("first update: got %+v, want Full and empty", u)
	}
	<-f.watched
	n := f.node(t, "n1")
	if got := n.Annotations[fp+"backend-data"]; got != "null" || n.Annotations[fp+"backend-type"] != "udp" {
		t.Fatalf("udp node: got backend-type %q backend-data %q, want udp and null", n.Annotations[fp+"backend-type"], got)
	}
	delete(n.Annotations, fp+"public-ip")
	if _, err := f.cs.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(waitTimeout)
	for f.node(t, "n1").Annotations[fp+"public-ip"] != "198.18.0.1" {
		if time.Now().After(deadline) {
			t.Fatal("public-ip not published again")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitLog waits until the log contains s.
func waitLog(t *testing.T, lb *logBuf, s string) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !strings.Contains(lb.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("log never mentioned %q:\n%s", s, lb.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
