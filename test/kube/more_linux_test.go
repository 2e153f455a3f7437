package kube

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/vxtun/vxtun/internal/nettest"
)

// TestManifest: every object of deploy/kube-vxtun.yml is accepted by the
// real API server (strict field validation), and the DaemonSet has what
// vxtun needs.
func TestManifest(t *testing.T) {
	api := startAPIServer(t)
	objs := applyManifest(t, api)
	var kinds []string
	for _, o := range objs {
		kinds = append(kinds, o.GetKind()+"/"+o.GetName())
	}
	want := []string{"Namespace/kube-flannel", "ClusterRole/flannel", "ClusterRoleBinding/flannel",
		"ServiceAccount/flannel", "ConfigMap/kube-flannel-cfg", "DaemonSet/kube-flannel-ds"}
	if !slices.Equal(kinds, want) {
		t.Fatalf("objects: got %v, want %v", kinds, want)
	}
	var ds appsv1.DaemonSet
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(objs[5].Object, &ds); err != nil {
		t.Fatal(err)
	}
	spec := ds.Spec.Template.Spec
	if !spec.HostNetwork || spec.ServiceAccountName != "flannel" || len(spec.InitContainers) != 2 {
		t.Errorf("DaemonSet: got hostNetwork %v, serviceAccount %q, %d init containers; want true, flannel, 2",
			spec.HostNetwork, spec.ServiceAccountName, len(spec.InitContainers))
	}
	c := spec.Containers[0]
	caps := fmt.Sprint(c.SecurityContext.Capabilities.Add)
	if caps != "[NET_ADMIN NET_RAW BPF]" || !slices.Contains(c.Args, "--kube-subnet-mgr") {
		t.Errorf("container: got capabilities %s and args %v, want [NET_ADMIN NET_RAW BPF] and --kube-subnet-mgr", caps, c.Args)
	}
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/metrics" {
		t.Errorf("container: got readiness probe %+v, want GET /metrics of the debug server", c.ReadinessProbe)
	}
	mounts := map[string]string{}
	for _, m := range c.VolumeMounts {
		mounts[m.MountPath] = m.Name
	}
	for _, p := range []string{"/dev/net/tun", "/run/flannel", "/etc/kube-flannel/", "/var/lib/vxtun"} {
		if mounts[p] == "" {
			t.Errorf("container: no volume at %s", p)
		}
	}
	if got := spec.InitContainers[1].Args; !slices.Equal(got, []string{"-f", "/etc/kube-flannel/cni-conf.json", "/etc/cni/net.d/10-flannel.conflist"}) {
		t.Errorf("install-cni: got args %v, want flannel's cp of cni-conf.json", got)
	}
	cm, err := api.Admin().CoreV1().ConfigMaps(flannelNS).Get(context.Background(), "kube-flannel-cfg", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(cm.Data["net-conf.json"], `"Network": "10.244.0.0/16"`) || !strings.Contains(cm.Data["cni-conf.json"], `"type": "flannel"`) {
		t.Errorf("kube-flannel-cfg: got %v, want flannel's net-conf.json and cni-conf.json", cm.Data)
	}
}

// TestAPIServerOutage: the API server is stopped for 30 s while pods ping
// across nodes: no loss. A Node added while vxtun cannot reach the server
// is a peer within 5 s of the server coming back.
func TestAPIServerOutage(t *testing.T) {
	c := newCluster(t, 3)
	c.createNode(t, 1, nil)
	c.createNode(t, 2, nil)
	n1 := c.startVxtun(t, 1, "NODE_NAME=node1")
	n2 := c.startVxtun(t, 2, "NODE_NAME=node2")
	n1.waitRunning(t)
	n2.waitRunning(t)
	n1.waitPeers(t, 1, 20*time.Second)
	n2.waitPeers(t, 1, 20*time.Second)
	p1 := pods(t, n1.ns, n1.subnetEnv, "o1")
	p2 := pods(t, n2.ns, n2.subnetEnv, "o2")
	ping(t, p1[0], p2[0], 10*time.Second)

	// 40 s of pings, 5 per second, across the outage.
	var wg sync.WaitGroup
	var out string
	var perr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		var r nettest.PingResult
		r, perr = nettest.Ping(ctx, p1[0].NS, p1[0].Addr.Addr(), p2[0].Addr.Addr(), "-i", "0.2", "-c", "200")
		out = fmt.Sprintf("%+v", r)
		if perr == nil && r.Received != r.Transmitted {
			perr = fmt.Errorf("lost %d of %d", r.Transmitted-r.Received, r.Transmitted)
		}
	}()
	time.Sleep(3 * time.Second)
	c.api.stop()
	t.Log("API server stopped")
	time.Sleep(2 * time.Second)
	// The path from a node to the API server is really cut.
	if err := tlsHandshake(n1.ns); err == nil {
		t.Error("TLS handshake with the API server from node1 during the outage: got success, want failure")
	}
	time.Sleep(28 * time.Second)
	// The server returns; the test adds node3 while the forwarders still
	// refuse (vxtun cannot see it yet), then lets vxtun reconnect.
	blockForwarders(c.api, true)
	c.api.start()
	c.admin = c.api.Admin()
	c.createNode(t, 3, flanneldAnnotations(3))
	back := time.Now()
	blockForwarders(c.api, false)
	n1.waitPeers(t, 2, 5*time.Second)
	t.Logf("node3 a peer of node1 %v after the API server became reachable", time.Since(back).Round(time.Millisecond))
	n2.waitPeers(t, 2, 5*time.Second)
	wg.Wait()
	if perr != nil {
		t.Errorf("ping across the outage: %v (%s)", perr, out)
	}
	for _, k := range []*kubeNode{n1, n2} {
		if ex, err := k.d.Exited(); ex {
			t.Errorf("node%d exited during the outage: %v", k.i, err)
		}
		// An operator sees the outage: one warning, one line when it ends
		// (not one per retry).
		out := k.d.Output()
		for _, want := range []string{"Kubernetes API server unreachable", "Kubernetes API server reachable again"} {
			if got := strings.Count(out, want); got != 1 {
				t.Errorf("node%d: got %d log lines %q, want 1\n%s", k.i, got, want, k.d.LogTail(4000))
			}
		}
	}
}

// blockForwarders makes the forwarders refuse connections (as while the
// server is down) or carry them again.
func blockForwarders(s *apiServer, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range s.fwds {
		f.blocked.Store(on)
	}
}

// TestScale5000 is the benchmark of the kube source: 5 000 annotated
// Nodes in the real API server; vxtun's time from start to the full peer
// set, its peak RSS, and the latency from a Node annotation patch to the
// peer set applied in the dataplane (p50/p99 over 100 patches). Subnets
// are /29s of 198.19.0.0/16; the peers' public IPs are data only (198.18.
// 1.0–198.18.20.255, never sent to: no traffic goes to their subnets).
func TestScale5000(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the 5 000-node benchmark is skipped")
	}
	const nodes = 5000
	c := newCluster(t, 1)
	if err := nettestWriteNetConf(c, "198.19.0.0/16", 29); err != nil {
		t.Fatal(err)
	}
	own := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node1"}, Spec: corev1.NodeSpec{PodCIDR: "198.19.0.0/29"}}
	if _, err := c.admin.CoreV1().Nodes().Create(context.Background(), own, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, nodes)
	sem := make(chan struct{}, 32)
	for i := 1; i <= nodes; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("s%05d", i), Annotations: map[string]string{
				fp + "kube-subnet-manager": "true", fp + "backend-type": "vxlan",
				fp + "backend-data": fmt.Sprintf(`{"VNI":1,"VtepMAC":"0e:76:79:%02x:%02x:%02x"}`, i>>16, (i>>8)&0xff, i&0xff),
				fp + "public-ip":    fmt.Sprintf("198.18.%d.%d", 1+i/250, 1+i%250),
			}}, Spec: corev1.NodeSpec{PodCIDR: fmt.Sprintf("198.19.%d.%d/29", i/32, (i%32)*8)}}
			if _, err := c.admin.CoreV1().Nodes().Create(context.Background(), n, metav1.CreateOptions{}); err != nil {
				errs <- err
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("create nodes: %v", err)
	}
	t.Logf("created %d Nodes in %v", nodes, time.Since(start).Round(time.Millisecond))

	start = time.Now()
	n1 := c.startVxtun(t, 1, "NODE_NAME=node1")
	n1.waitPeers(t, nodes, 120*time.Second)
	full := time.Since(start)

	// 100 patches of one node's public-ip, each waited for in the log
	// ("peers applied" follows SetPeers).
	var lat []time.Duration
	applied := func() int { return strings.Count(n1.d.Output(), "peers applied") }
	for k := 0; k < 100; k++ {
		before := applied()
		patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:"198.18.30.%d"}}}`, fp+"public-ip", 1+k)
		t0 := time.Now()
		if _, err := c.admin.CoreV1().Nodes().Patch(context.Background(), "s00001", types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}, "status"); err != nil {
			t.Fatal(err)
		}
		if err := waitForFast(10*time.Second, func() bool { return applied() > before }); err != nil {
			t.Fatalf("patch %d not applied within 10 s", k)
		}
		lat = append(lat, time.Since(t0))
	}
	slices.Sort(lat)
	rss, err := nettest.ProcPeakRSS(n1.d.PID())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("BENCH kube %d Nodes: start to full peer set %v; peak RSS %.1f MiB; patch to applied p50 %v p99 %v",
		nodes, full.Round(time.Millisecond), float64(rss)/(1<<20), lat[49].Round(100*time.Microsecond), lat[98].Round(100*time.Microsecond))
}

// waitForFast polls cond every 1 ms.
func waitForFast(timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return errNotYet
		}
		time.Sleep(time.Millisecond)
	}
	return nil
}

// nettestWriteNetConf rewrites the cluster's net-conf.json.
func nettestWriteNetConf(c *cluster, network string, subnetLen int) error {
	return nettest.WriteJSON(c.netConf, nettest.NetConf{Network: network, SubnetLen: subnetLen, Backend: nettest.Backend{Type: "vxlan"}})
}

// tlsHandshake tries a TLS handshake with the API server through ns's
// forwarder.
func tlsHandshake(ns *nettest.NS) error {
	var conn net.Conn
	if err := ns.Do(func() error {
		var err error
		conn, err = net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", apiPort), 2*time.Second)
		return err
	}); err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
	return tls.Client(conn, &tls.Config{InsecureSkipVerify: true}).Handshake()
}
