package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/vxtun/vxtun/config"
	"github.com/vxtun/vxtun/internal/flannelvxlan"
	"github.com/vxtun/vxtun/internal/nettest"
)

const (
	fp        = "flannel.alpha.coreos.com/"
	flannelNS = "kube-flannel" // the manifest's namespace and service account
	flannelSA = "flannel"
	podMTU    = 1450
	debugAddr = "127.0.0.1:9090" // in each node namespace
)

// vxtunBin is built once by TestMain.
var vxtunBin string

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "vxtun-kube-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "TestMain:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	vxtunBin = filepath.Join(dir, "vxtun")
	// Built in the main module, with its go.mod, as make build does.
	cmd := exec.Command("go", "build", "-o", vxtunBin, "./cmd/vxtun")
	cmd.Dir = filepath.Join("..", "..")
	cmd.Env = append(os.Environ(), "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "TestMain: go build: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// cluster is an API server with the manifest applied, and node namespaces
// on a bridged underlay (198.18.0.i/24 on ul0 of node i), each with a
// forwarder to the API server.
type cluster struct {
	api     *apiServer
	admin   kubernetes.Interface
	nodes   []*nettest.NS // nodes[i-1] is node i
	netConf string
}

func newCluster(t *testing.T, n int) *cluster {
	t.Helper()
	nettest.RequirePrivileged(t)
	nettest.RequireCommand(t, "ping", "bridge")
	api := startAPIServer(t)
	applyManifest(t, api)
	c := &cluster{api: api, admin: api.Admin()}
	sw := nettest.NewNS(t, "ksw")
	sw.Run("ip", "link", "add", "br0", "type", "bridge")
	sw.Run("ip", "link", "set", "br0", "up")
	for i := 1; i <= n; i++ {
		ns := nettest.NewNS(t, fmt.Sprintf("k%d", i))
		port := fmt.Sprintf("k%d", i)
		nettest.Veth(t, sw, port, "", ns, "ul0", fmt.Sprintf("198.18.0.%d/24", i))
		sw.Run("ip", "link", "set", port, "master", "br0")
		api.forwardInto(t, ns)
		c.nodes = append(c.nodes, ns)
	}
	c.netConf = filepath.Join(t.TempDir(), "net-conf.json")
	if err := nettest.WriteJSON(c.netConf, nettest.NetConf{Network: nettest.OverlayNetwork, Backend: nettest.Backend{Type: "vxlan"}}); err != nil {
		t.Fatal(err)
	}
	return c
}

// createNode creates Node "nodeI" with spec.podCIDR 198.19.i.0/24, as the
// node controller assigns it.
func (c *cluster) createNode(t *testing.T, i int, annotations map[string]string) {
	t.Helper()
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("node%d", i), Annotations: annotations},
		Spec: corev1.NodeSpec{PodCIDR: nettest.NodeSubnet(i).String()}}
	if _, err := c.admin.CoreV1().Nodes().Create(context.Background(), n, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create node%d: %v", i, err)
	}
}

func (c *cluster) node(t *testing.T, name string) *corev1.Node {
	t.Helper()
	n, err := c.admin.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// flanneldAnnotations are the annotations flanneld (vxlan, IPv4) writes
// for node i.
func flanneldAnnotations(i int) map[string]string {
	me := nettest.PlanNode(i)
	return map[string]string{
		fp + "kube-subnet-manager": "true",
		fp + "backend-type":        "vxlan",
		fp + "backend-data":        fmt.Sprintf(`{"VNI":1,"VtepMAC":"%s"}`, me.VtepMAC),
		fp + "public-ip":           me.Underlay.String(),
	}
}

// kubeNode is a vxtun daemon in kube mode on node i.
type kubeNode struct {
	i         int
	ns        *nettest.NS
	d         *nettest.Daemon
	subnetEnv string
	macFile   string
}

// startVxtun starts vxtun --kube-subnet-mgr on node i as the manifest's
// service account; env adds NODE_NAME or POD_NAME/POD_NAMESPACE.
func (c *cluster) startVxtun(t *testing.T, i int, env ...string) *kubeNode {
	t.Helper()
	dir := t.TempDir()
	kc := filepath.Join(dir, "kubeconfig")
	c.api.writeKubeconfig(t, kc, flannelNS, flannelSA)
	k := &kubeNode{i: i, ns: c.nodes[i-1], subnetEnv: filepath.Join(dir, "subnet.env"), macFile: filepath.Join(dir, "vtep-mac")}
	k.d = nettest.StartDaemon(t, &nettest.Daemon{
		Name: fmt.Sprintf("vxtun node%d", i), NS: k.ns,
		Argv: []string{vxtunBin, "run", "--kube-subnet-mgr", "--kubeconfig-file", kc, "--net-conf", c.netConf,
			"--iface", "ul0", "--subnet-file", k.subnetEnv, "--vtep-mac-file", k.macFile,
			"--debug-addr", debugAddr, "--workers", "2", "--log-level", "debug"},
		Env: env,
	})
	return k
}

// waitRunning waits until the daemon wrote subnet.env.
func (k *kubeNode) waitRunning(t *testing.T) {
	t.Helper()
	err := waitFor(60*time.Second, func() error {
		if ex, err := k.d.Exited(); ex {
			t.Fatalf("vxtun node%d exited (%v):\n%s", k.i, err, k.d.Output())
		}
		_, err := os.Stat(k.subnetEnv)
		return err
	})
	if err != nil {
		t.Fatalf("vxtun node%d wrote no subnet.env: %v\n%s", k.i, err, k.d.LogTail(4000))
	}
}

// metric returns the value of an unlabelled metric of the daemon.
func (k *kubeNode) metric(name string) (float64, error) {
	var conn net.Conn
	if err := k.ns.Do(func() error {
		var err error
		conn, err = net.DialTimeout("tcp", debugAddr, 2*time.Second)
		return err
	}); err != nil {
		return 0, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, "GET /metrics HTTP/1.0\r\n\r\n"); err != nil {
		return 0, err
	}
	b, err := io.ReadAll(conn)
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) == 2 && f[0] == name {
			return strconv.ParseFloat(f[1], 64)
		}
	}
	return 0, fmt.Errorf("metric %s not found", name)
}

// waitPeers waits until the daemon forwards to want peers.
func (k *kubeNode) waitPeers(t *testing.T, want int, timeout time.Duration) {
	t.Helper()
	var got float64
	err := waitFor(timeout, func() error {
		var err error
		if got, err = k.metric("vxtun_peers"); err != nil {
			return err
		}
		if int(got) != want {
			return errNotYet
		}
		return nil
	})
	if err != nil {
		t.Fatalf("node%d: vxtun_peers: got %v, want %d (%v)\n%s", k.i, got, want, err, k.d.LogTail(3000))
	}
}

// checkLease checks, field by field, the annotations vxtun published on
// its Node and the NetworkUnavailable condition.
func (c *cluster) checkLease(t *testing.T, k *kubeNode) {
	t.Helper()
	mac, err := os.ReadFile(k.macFile)
	if err != nil {
		t.Fatalf("node%d: VTEP MAC file: %v", k.i, err)
	}
	n := c.node(t, fmt.Sprintf("node%d", k.i))
	want := map[string]string{
		fp + "kube-subnet-manager": "true",
		fp + "backend-type":        "vxlan",
		fp + "backend-data":        fmt.Sprintf(`{"VNI":1,"VtepMAC":"%s"}`, strings.TrimSpace(string(mac))),
		fp + "public-ip":           nettest.UnderlayAddr(k.i).String(),
	}
	for key, v := range want {
		if got := n.Annotations[key]; got != v {
			t.Errorf("node%d annotation %s: got %q, want %q", k.i, key, got, v)
		}
	}
	for key := range n.Annotations {
		if strings.HasPrefix(key, fp) && want[key] == "" {
			t.Errorf("node%d: got annotation %s=%q, want only flanneld's four", k.i, key, n.Annotations[key])
		}
	}
	if got, want := strings.Join(n.Spec.PodCIDRs, ","), nettest.NodeSubnet(k.i).String(); got != want {
		t.Errorf("node%d podCIDRs: got %s, want %s (filled from podCIDR by the server)", k.i, got, want)
	}
	var cond *corev1.NodeCondition
	err = waitFor(10*time.Second, func() error {
		for _, cd := range c.node(t, n.Name).Status.Conditions {
			if cd.Type == corev1.NodeNetworkUnavailable {
				cond = &cd
				return nil
			}
		}
		return errNotYet
	})
	if err != nil {
		t.Errorf("node%d: no NetworkUnavailable condition", k.i)
	} else if cond.Status != corev1.ConditionFalse || cond.Reason != "FlannelIsUp" {
		t.Errorf("node%d NetworkUnavailable: got %s (%s), want False (FlannelIsUp)", k.i, cond.Status, cond.Reason)
	}
	b, err := os.ReadFile(k.subnetEnv)
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("FLANNEL_SUBNET=198.19.%d.1/24\n", k.i); !strings.Contains(string(b), want) {
		t.Errorf("node%d subnet.env: got\n%s\nwant a line %q", k.i, b, want)
	}
}

// pods attaches two pods to the node's cni0 and checks their MTU.
func pods(t *testing.T, ns *nettest.NS, subnetEnv string, prefix string) []*nettest.Pod {
	t.Helper()
	pn := nettest.NodePods(t, ns, subnetEnv)
	var out []*nettest.Pod
	for k := 0; k < 2; k++ {
		p := pn.NewPod(t, fmt.Sprintf("%s%c", prefix, 'a'+k))
		l, err := p.Handle().LinkByName(nettest.PodIfName)
		if err != nil {
			t.Fatal(err)
		}
		if got := l.Attrs().MTU; got != podMTU {
			t.Errorf("pod %s: MTU got %d, want FLANNEL_MTU %d", p.Name, got, podMTU)
		}
		out = append(out, p)
	}
	return out
}

// ping pings once, waiting up to timeout for the path to work.
func ping(t *testing.T, from, to *nettest.Pod, timeout time.Duration) {
	t.Helper()
	var out string
	err := waitFor(timeout, func() error {
		var err error
		out, err = from.Try("ping", "-n", "-c", "1", "-W", "1", to.IP())
		return err
	})
	if err != nil {
		t.Fatalf("ping %s -> %s: %v\n%s", from.IP(), to.IP(), err, out)
	}
}

// transfer sends 8 MiB from→to and checks the content.
func transfer(t *testing.T, from, to *nettest.Pod) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	x := nettest.Transfer{Src: from.Addr.Addr(), Dst: to.Addr.Addr(), Size: 8 << 20, Seed: uint64(from.Addr.Addr().As4()[2])}
	r, err := x.Send(ctx, from.NS, to.NS)
	if err != nil {
		t.Fatalf("TCP %s -> %s: %v", from.IP(), to.IP(), err)
	}
	if r.Bytes != x.Size {
		t.Fatalf("TCP %s -> %s: got %d bytes checked, want %d", from.IP(), to.IP(), r.Bytes, x.Size)
	}
}

// dfPing sends a 1400-byte DF ping (inside FLANNEL_MTU 1450): it must get
// through.
func dfPing(t *testing.T, from, to *nettest.Pod) {
	t.Helper()
	out, err := from.Try("ping", "-n", "-c", "2", "-W", "2", "-M", "do", "-s", "1372", to.IP())
	if err != nil {
		t.Errorf("1400-byte DF ping %s -> %s: %v\n%s", from.IP(), to.IP(), err, out)
	}
}

// TestTwoVxtunNodes: two vxtun nodes in kube mode as the manifest's
// service account (node1 finds its Node by NODE_NAME, node2 through its
// pod's spec.nodeName), beside a Node without annotations and one of a
// foreign backend: leases by annotation, pods on cni0, traffic both ways.
func TestTwoVxtunNodes(t *testing.T) {
	c := newCluster(t, 2)
	c.createNode(t, 7, nil) // no annotations: flanneld crashes on it, vxtun ignores it
	hostgw := flanneldAnnotations(8)
	hostgw[fp+"backend-type"] = "host-gw"
	hostgw[fp+"backend-data"] = "null"
	c.createNode(t, 8, hostgw)
	c.createNode(t, 1, nil)
	c.createNode(t, 2, nil)
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "kube-flannel-ds-node2", Namespace: flannelNS},
		Spec: corev1.PodSpec{NodeName: "node2", ServiceAccountName: flannelSA,
			Containers: []corev1.Container{{Name: "kube-flannel", Image: "vxtun"}}}}
	if _, err := c.admin.CoreV1().Pods(flannelNS).Create(context.Background(), pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	n1 := c.startVxtun(t, 1, "NODE_NAME=node1")
	n2 := c.startVxtun(t, 2, "POD_NAME=kube-flannel-ds-node2", "POD_NAMESPACE="+flannelNS)
	n1.waitRunning(t)
	n2.waitRunning(t)
	n1.waitPeers(t, 1, 20*time.Second)
	n2.waitPeers(t, 1, 20*time.Second)
	c.checkLease(t, n1)
	c.checkLease(t, n2)
	for _, k := range []*kubeNode{n1, n2} {
		if out := k.d.Output(); !strings.Contains(out, "node=node8") || strings.Contains(out, "node=node7") {
			t.Errorf("node%d: want one log line about the host-gw node8 and none about the bare node7:\n%s", k.i, k.d.LogTail(3000))
		}
	}

	// RBAC as in a cluster: the service account may patch nodes/status,
	// not nodes.
	sa, err := kubernetes.NewForConfig(c.api.saConfig(t, flannelNS, flannelSA))
	if err != nil {
		t.Fatal(err)
	}
	_, err = sa.CoreV1().Nodes().Patch(context.Background(), "node7", types.MergePatchType, []byte(`{"metadata":{"labels":{"x":"y"}}}`), metav1.PatchOptions{})
	if !apierrors.IsForbidden(err) {
		t.Errorf("service account patching a Node (not its status): got %v, want Forbidden", err)
	}

	p1 := pods(t, n1.ns, n1.subnetEnv, "k1")
	p2 := pods(t, n2.ns, n2.subnetEnv, "k2")
	ping(t, p1[0], p1[1], 10*time.Second) // same node, over cni0
	ping(t, p1[0], p2[0], 10*time.Second)
	ping(t, p2[1], p1[1], 10*time.Second)
	transfer(t, p1[0], p2[0])
	transfer(t, p2[1], p1[0])
	dfPing(t, p1[0], p2[1])
	dfPing(t, p2[0], p1[1])
}

// TestFlanneldKernelNode: a vxtun node and a node with the kernel vxlan
// device programmed as flanneld does it, its Node annotated by the test
// exactly as flanneld annotates it; traffic both ways; deleting its Node
// removes the peer.
func TestFlanneldKernelNode(t *testing.T) {
	c := newCluster(t, 3)
	c.createNode(t, 1, nil)
	c.createNode(t, 3, flanneldAnnotations(3))
	n1 := c.startVxtun(t, 1, "NODE_NAME=node1")
	n1.waitRunning(t)
	n1.waitPeers(t, 1, 20*time.Second)
	c.checkLease(t, n1)

	// node3 programs node1's lease as flanneld would from its annotations.
	a := c.node(t, "node1").Annotations
	var bd struct {
		VNI     int
		VtepMAC string
	}
	if err := json.Unmarshal([]byte(a[fp+"backend-data"]), &bd); err != nil {
		t.Fatal(err)
	}
	mac, err := net.ParseMAC(bd.VtepMAC)
	if err != nil {
		t.Fatal(err)
	}
	me := nettest.PlanNode(3)
	dev := flannelvxlan.Device{Local: me.Underlay, MAC: me.VtepMAC, Subnet: me.Subnet, MTU: podMTU}
	ns3 := c.nodes[2]
	for _, cmd := range dev.Commands(flannelvxlan.Remote{Subnet: nettest.NodeSubnet(1), PublicIP: netip.MustParseAddr(a[fp+"public-ip"]), VtepMAC: mac}) {
		ns3.Run(cmd...)
	}
	env3 := filepath.Join(t.TempDir(), "subnet.env")
	if err := config.WriteSubnetEnv(env3, config.SubnetEnv{Network: netip.MustParsePrefix(nettest.OverlayNetwork), Subnet: me.Subnet, MTU: podMTU, IPMasq: true}); err != nil {
		t.Fatal(err)
	}
	p1 := pods(t, n1.ns, n1.subnetEnv, "f1")
	p3 := pods(t, ns3, env3, "f3")
	ping(t, p1[0], p3[0], 10*time.Second)
	ping(t, p3[1], p1[1], 10*time.Second)
	transfer(t, p1[0], p3[0])
	transfer(t, p3[1], p1[1])

	if err := c.admin.CoreV1().Nodes().Delete(context.Background(), "node3", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	n1.waitPeers(t, 0, 10*time.Second)
	out, err := p1[0].Try("ping", "-n", "-c", "1", "-W", "2", p3[0].IP())
	if err == nil || !strings.Contains(out, "Unreachable") {
		t.Errorf("ping to the deleted node's pod: got %v\n%s\nwant an ICMP unreachable", err, out)
	}
}
