package main

// End-to-end tests of etcd mode (issue 5): vxtun daemons in network
// namespaces get their subnets from, and find each other through, a real
// etcd (embedded, running inside namespace A on the underlay address
// 198.18.0.1 so both namespaces reach it).

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/vxtun/vxtun/internal/etcdtest"
	"github.com/vxtun/vxtun/internal/flannelvxlan"
	"github.com/vxtun/vxtun/internal/nettest"
)

const e2eEtcdPrefix = "/coreos.com/network"

// e2eEtcd is an etcd inside namespace A of h, with the network config set.
type e2eEtcd struct {
	h   *nettest.TwoHosts
	srv *etcdtest.Server
	cli *clientv3.Client
}

func newE2EEtcd(t *testing.T, netConf string) *e2eEtcd {
	t.Helper()
	h := nettest.NewTwoHosts(t)
	srv := etcdtest.StartWith(t, etcdtest.Options{Host: "198.18.0.1", Do: h.A.Do})
	cli := srv.Client(t)
	etcdtest.Put(t, cli, e2eEtcdPrefix+"/config", netConf)
	return &e2eEtcd{h: h, srv: srv, cli: cli}
}

// e2eEtcdNode is one vxtun daemon in etcd mode.
type e2eEtcdNode struct {
	ns        *nettest.NS
	dir       string
	subnetEnv string
	debug     string
	args      []string
	p         *nettest.Daemon
}

func (e *e2eEtcd) newNode(t *testing.T, ns *nettest.NS, extra ...string) *e2eEtcdNode {
	t.Helper()
	dir := t.TempDir()
	n := &e2eEtcdNode{ns: ns, dir: dir, subnetEnv: filepath.Join(dir, "subnet.env"), debug: "127.0.0.1:9090"}
	n.args = append([]string{"run", "--etcd-endpoints", strings.Join(e.srv.Endpoints(), ","),
		"--etcd-prefix", e2eEtcdPrefix, "--iface", "ul0", "--subnet-file", n.subnetEnv,
		"--vtep-mac-file", filepath.Join(dir, "vtep-mac"), "--workers", "2",
		"--debug-addr", n.debug, "--log-level", "debug"}, extra...)
	return n
}

func (n *e2eEtcdNode) start(t *testing.T) {
	t.Helper()
	n.p = startVxtun(t, n.ns, n.args...)
}

// waitSubnet waits for subnet.env and returns N of its subnet 198.19.N.0/24.
func (n *e2eEtcdNode) waitSubnet(t *testing.T) int {
	t.Helper()
	return envSubnet(t, n.subnetEnv, -1, n.p)
}

// waitPeers waits until the daemon's vxtun_peers metric is want.
func (n *e2eEtcdNode) waitPeers(t *testing.T, want float64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if got := metrics(t, n.ns, n.debug)["vxtun_peers"]; got == want {
			return
		} else if time.Now().After(deadline) {
			t.Fatalf("vxtun_peers: got %v, want %v; output:\n%s", got, want, n.p.Output())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (n *e2eEtcdNode) stop(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := n.p.Signal(sig); err != nil {
		t.Fatal(err)
	}
	nettest.WaitExit(t, n.p, 15*time.Second)
}

// startPair starts a, waits for its subnet, then b (so the order of
// acquisition is fixed), puts each node's pod address 198.19.N.1 on its lo
// and returns both N.
func (e *e2eEtcd) startPair(t *testing.T, a, b *e2eEtcdNode) (int, int) {
	t.Helper()
	a.start(t)
	sa := a.waitSubnet(t)
	b.start(t)
	sb := b.waitSubnet(t)
	if sa == sb {
		t.Fatalf("both nodes got 198.19.%d.0/24", sa)
	}
	for _, x := range []struct {
		n *e2eEtcdNode
		i int
	}{{a, sa}, {b, sb}} {
		if err := x.n.ns.Do(func() error { return addPod(x.i) }); err != nil {
			t.Fatal(err)
		}
	}
	return sa, sb
}

// leaseOf returns the lease value of subnet 198.19.i.0/24.
func (e *e2eEtcd) leaseOf(t *testing.T, i int) (map[string]any, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := e.cli.Get(ctx, fmt.Sprintf("%s/subnets/198.19.%d.0-24", e2eEtcdPrefix, i))
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("lease 198.19.%d.0-24: %v (%d keys)", i, err, len(resp.Kvs))
	}
	var v map[string]any
	if err := json.Unmarshal(resp.Kvs[0].Value, &v); err != nil {
		t.Fatalf("lease 198.19.%d.0-24: %v", i, err)
	}
	return v, string(resp.Kvs[0].Value)
}

// TestEtcdLeaseExpiry is the expiry half of issue 5's test 3 (TestEtcdMode
// covers the restart): a node that dies without renewing its short lease
// disappears from the other node's table, and traffic to it is answered
// with ICMP net unreachable.
func TestEtcdLeaseExpiry(t *testing.T) {
	e := newE2EEtcd(t, `{"Network":"198.19.0.0/16","SubnetMin":"198.19.1.0","SubnetMax":"198.19.2.0","Backend":{"Type":"vxlan"}}`)
	na := e.newNode(t, e.h.A)
	nb := e.newNode(t, e.h.B, "--etcd-lease-ttl", "2s")
	sa, sb := e.startPair(t, na, nb)
	ip := func(i int) string { return fmt.Sprintf("198.19.%d.1", i) }
	waitPing(t, e.h.A, ip(sa), ip(sb), na.p, nb.p)
	waitPing(t, e.h.B, ip(sb), ip(sa), na.p, nb.p)

	// Several TTLs pass: node B renews, so node A keeps it.
	time.Sleep(5 * time.Second)
	na.waitPeers(t, 1)

	nb.stop(t, syscall.SIGKILL)
	na.waitPeers(t, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if resp, err := e.cli.Get(ctx, fmt.Sprintf("%s/subnets/198.19.%d.0-24", e2eEtcdPrefix, sb)); err != nil || len(resp.Kvs) != 0 {
		t.Fatalf("expired lease 198.19.%d.0-24: err %v, %d keys; want it gone", sb, err, len(resp.Kvs))
	}
	out, err := e.h.A.Try("ping", "-n", "-c", "1", "-W", "2", "-I", ip(sa), ip(sb))
	if err == nil || !strings.Contains(out, "Unreachable") {
		t.Fatalf("ping to the expired node: %v, want net unreachable:\n%s", err, out)
	}
}

// TestEtcdKernelVXLANNode is issue 5's test 2: namespace B is programmed
// exactly as flanneld programs a kernel vxlan node, and the test writes the
// lease that flanneld would write; vxtun picks it up and traffic crosses
// both ways; deleting the key removes the peer (ICMP net unreachable).
func TestEtcdKernelVXLANNode(t *testing.T) {
	// vxtun may only take 198.19.1.0/24; the kernel node is 198.19.2.0/24.
	e := newE2EEtcd(t, `{"Network":"198.19.0.0/16","SubnetMin":"198.19.1.0","SubnetMax":"198.19.1.0","Backend":{"Type":"vxlan"}}`)
	na := e.newNode(t, e.h.A)
	na.start(t)
	if got := na.waitSubnet(t); got != 1 {
		t.Fatalf("vxtun has 198.19.%d.0/24, want 198.19.1.0/24", got)
	}
	if err := e.h.A.Do(func() error { return addPod(1) }); err != nil {
		t.Fatal(err)
	}
	va, _ := e.leaseOf(t, 1)
	macA := va["BackendData"].(map[string]any)["VtepMAC"].(string)

	const macB = "0e:00:00:00:00:02"
	kernel := flannelvxlan.Device{Local: netip.MustParseAddr("198.18.0.2"), MAC: mustMAC(t, macB),
		Subnet: netip.MustParsePrefix("198.19.2.0/24")}
	for _, c := range kernel.Commands(flannelvxlan.Remote{Subnet: netip.MustParsePrefix("198.19.1.0/24"),
		PublicIP: netip.MustParseAddr("198.18.0.1"), VtepMAC: mustMAC(t, macA)}) {
		e.h.B.Run(c...)
	}
	if err := e.h.B.Do(func() error { return addPod(2) }); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	grant, err := e.cli.Grant(ctx, 86400)
	if err != nil {
		t.Fatal(err)
	}
	key := e2eEtcdPrefix + "/subnets/198.19.2.0-24"
	lease := `{"PublicIP":"198.18.0.2","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"` + macB + `"}}`
	etcdtest.Put(t, e.cli, key, lease, clientv3.WithLease(grant.ID))

	waitPing(t, e.h.A, "198.19.1.1", "198.19.2.1", na.p)
	waitPing(t, e.h.B, "198.19.2.1", "198.19.1.1", na.p)
	if err := e2eTCPEcho(e.h.A, e.h.B, "198.19.1.1", "198.19.2.1", 5003, 4<<20); err != nil {
		t.Fatalf("TCP vxtun <-> kernel vxlan: %v", err)
	}

	if _, err := e.cli.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	na.waitPeers(t, 0)
	out, err := e.h.A.Try("ping", "-n", "-c", "1", "-W", "2", "-I", "198.19.1.1", "198.19.2.1")
	if err == nil || !strings.Contains(out, "Unreachable") {
		t.Fatalf("ping after the lease was deleted: %v, want net unreachable:\n%s", err, out)
	}
}

// TestEtcdOutage is issue 5's test 4: with etcd stopped, forwarding between
// known peers continues; a lease added after etcd returns is seen.
func TestEtcdOutage(t *testing.T) {
	e := newE2EEtcd(t, `{"Network":"198.19.0.0/16","SubnetMin":"198.19.1.0","SubnetMax":"198.19.2.0","Backend":{"Type":"vxlan"}}`)
	na, nb := e.newNode(t, e.h.A), e.newNode(t, e.h.B)
	sa, sb := e.startPair(t, na, nb)
	ip := func(i int) string { return fmt.Sprintf("198.19.%d.1", i) }
	waitPing(t, e.h.A, ip(sa), ip(sb), na.p, nb.p)

	e.srv.Stop()
	for i := 0; i < 3; i++ {
		time.Sleep(time.Second)
		if out, err := e.h.A.Try("ping", "-n", "-c", "1", "-W", "2", "-I", ip(sa), ip(sb)); err != nil {
			t.Fatalf("ping %ds into the etcd outage: %v\n%s", i+1, err, out)
		}
	}
	na.waitPeers(t, 1)

	e.srv.Restart()
	// A third node (nothing is sent to it) joins once etcd is back.
	etcdtest.Put(t, e.cli, e2eEtcdPrefix+"/subnets/198.19.3.0-24",
		`{"PublicIP":"198.18.0.3","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0e:00:00:00:00:03"}}`)
	na.waitPeers(t, 2)
	nb.waitPeers(t, 2)
	waitPing(t, e.h.B, ip(sb), ip(sa), na.p, nb.p)
	// The outage is one warning and one info line on each node.
	for _, n := range []*e2eEtcdNode{na, nb} {
		out := n.p.Output()
		lost := strings.Count(out, `level=WARN msg="etcd connection lost; forwarding continues with the last known peers"`)
		back := strings.Count(out, `level=INFO msg="etcd connection is back"`)
		if lost != 1 || back != 1 {
			t.Errorf("outage log lines: got %d warnings and %d info lines, want 1 and 1; log:\n%s", lost, back, out)
		}
	}
}

// e2eTCPEcho connects from src (in a) to an echo server on dst:port (in
// b), sends size random bytes and checks that the same bytes come back, so
// TCP data crosses both ways.
func e2eTCPEcho(a, b *nettest.NS, src, dst string, port, size int) error {
	x := nettest.Transfer{Src: netip.MustParseAddr(src), Dst: netip.MustParseAddr(dst), Port: port,
		Size: int64(size), Timeout: 30 * time.Second}
	_, err := x.Echo(context.Background(), a, b)
	return err
}

// TestEtcdMode is issue 5's test 1 and the restart half of test 3: two
// vxtun nodes with no static peers each lease a distinct subnet in
// flannel's format, find each other, and ping and TCP cross both ways; a
// node restarted with SIGTERM comes back with the same subnet.
func TestEtcdMode(t *testing.T) {
	e := newE2EEtcd(t, `{"Network":"198.19.0.0/16","SubnetMin":"198.19.1.0","SubnetMax":"198.19.200.0","Backend":{"Type":"vxlan"}}`)
	na, nb := e.newNode(t, e.h.A), e.newNode(t, e.h.B)
	sa, sb := e.startPair(t, na, nb)
	ip := func(i int) string { return fmt.Sprintf("198.19.%d.1", i) }

	for _, x := range []struct {
		n    *e2eEtcdNode
		i    int
		addr string
	}{{na, sa, "198.18.0.1"}, {nb, sb, "198.18.0.2"}} {
		v, raw := e.leaseOf(t, x.i)
		mac, err := os.ReadFile(filepath.Join(x.n.dir, "vtep-mac"))
		if err != nil {
			t.Fatal(err)
		}
		bd, _ := v["BackendData"].(map[string]any)
		if v["PublicIP"] != x.addr || v["BackendType"] != "vxlan" || bd == nil ||
			bd["VtepMAC"] != strings.TrimSpace(string(mac)) || bd["VNI"] != float64(1) {
			t.Fatalf("lease of 198.19.%d.0/24: got %s, want PublicIP %s, vxlan, VNI 1, VtepMAC %s",
				x.i, raw, x.addr, strings.TrimSpace(string(mac)))
		}
	}
	na.waitPeers(t, 1)
	nb.waitPeers(t, 1)
	waitPing(t, e.h.A, ip(sa), ip(sb), na.p, nb.p)
	waitPing(t, e.h.B, ip(sb), ip(sa), na.p, nb.p)
	if err := e2eTCPEcho(e.h.A, e.h.B, ip(sa), ip(sb), 7301, 4<<20); err != nil {
		t.Fatalf("TCP A→B: %v", err)
	}
	if err := e2eTCPEcho(e.h.B, e.h.A, ip(sb), ip(sa), 7302, 4<<20); err != nil {
		t.Fatalf("TCP B→A: %v", err)
	}

	// Restart B: it must take its own lease again, not a new subnet.
	nb.stop(t, syscall.SIGTERM)
	if err := os.Remove(nb.subnetEnv); err != nil {
		t.Fatal(err)
	}
	nb.start(t)
	if got := nb.waitSubnet(t); got != sb {
		t.Fatalf("after restart: got subnet 198.19.%d.0/24, want 198.19.%d.0/24", got, sb)
	}
	nb.waitPeers(t, 1)
	na.waitPeers(t, 1)
	waitPing(t, e.h.A, ip(sa), ip(sb), na.p, nb.p)
	if err := e2eTCPEcho(e.h.B, e.h.A, ip(sb), ip(sa), 7303, 1<<20); err != nil {
		t.Fatalf("TCP B→A after restart: %v", err)
	}
}

func mustMAC(t *testing.T, s string) net.HardwareAddr {
	t.Helper()
	m, err := net.ParseMAC(s)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
