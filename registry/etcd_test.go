package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/vxtun/vxtun/config"
	"github.com/vxtun/vxtun/internal/etcdtest"
)

const (
	testPrefix  = "/coreos.com/network"
	waitTimeout = 30 * time.Second
)

// logBuf collects a source's log output; VXTUN_TEST_LOG=1 also prints it.
type logBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuf) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuf) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func testLogger(name string) (*slog.Logger, *logBuf) {
	lb := &logBuf{}
	var w io.Writer = lb
	if os.Getenv("VXTUN_TEST_LOG") != "" {
		w = io.MultiWriter(lb, os.Stderr)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug})).With("node", name), lb
}

func deleteKey(t testing.TB, cli *clientv3.Client, key string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cli.Delete(ctx, key); err != nil {
		t.Fatalf("delete %s: %v", key, err)
	}
}

func getKey(t testing.TB, cli *clientv3.Client, key string) (string, int64, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, key)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	if len(resp.Kvs) == 0 {
		return "", 0, false
	}
	return string(resp.Kvs[0].Value), resp.Kvs[0].Lease, true
}

// listSubnets returns name → value of every key under <prefix>/subnets/.
func listSubnets(t testing.TB, cli *clientv3.Client, prefix string) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, prefix+"/subnets/", clientv3.WithPrefix())
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	out := map[string]string{}
	for _, kv := range resp.Kvs {
		out[strings.TrimPrefix(string(kv.Key), prefix+"/subnets/")] = string(kv.Value)
	}
	return out
}

// kernelLease is exactly what flanneld with the vxlan backend writes.
func kernelLease(ip, mac string) string {
	return fmt.Sprintf(`{"PublicIP":%q,"PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":%q}}`, ip, mac)
}

// udpLease is exactly what flanneld with the udp backend writes.
func udpLease(ip string) string {
	return fmt.Sprintf(`{"PublicIP":%q,"PublicIPv6":null}`, ip)
}

// node is an EtcdSource under test with its Run loop and a collector that
// folds its updates into a peer set.
type node struct {
	src  *EtcdSource
	logs *logBuf

	cancel context.CancelFunc
	done   chan error

	mu      sync.Mutex
	peers   map[string]config.Peer
	updates []Update
}

func newSource(t testing.TB, srv *etcdtest.Server, name string, ip string, mac string, ttl time.Duration) (*EtcdSource, *logBuf) {
	t.Helper()
	log, lb := testLogger(name)
	opts := EtcdOptions{
		Endpoints: srv.Endpoints(),
		Prefix:    testPrefix,
		PublicIP:  netip.MustParseAddr(ip),
		LeaseTTL:  ttl,
		Logger:    log,
	}
	if mac != "" {
		opts.VtepMAC = mustMAC(t, mac)
	}
	src, err := NewEtcdSource(opts)
	if err != nil {
		t.Fatalf("NewEtcdSource: %v", err)
	}
	t.Cleanup(func() { src.Close() })
	return src, lb
}

// startNode creates a source and runs it until the test ends (or stop).
func startNode(t testing.TB, srv *etcdtest.Server, name, ip, mac string, ttl time.Duration, tweak ...func(*EtcdSource)) *node {
	t.Helper()
	src, lb := newSource(t, srv, name, ip, mac, ttl)
	for _, f := range tweak {
		f(src)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &node{src: src, logs: lb, cancel: cancel, done: make(chan error, 1), peers: map[string]config.Peer{}}
	out := make(chan Update)
	go func() { n.done <- src.Run(ctx, out) }()
	go func() {
		for {
			select {
			case u := <-out:
				n.mu.Lock()
				Apply(n.peers, u)
				n.updates = append(n.updates, u)
				n.mu.Unlock()
			case <-ctx.Done():
				return
			}
		}
	}()
	t.Cleanup(n.stop)
	return n
}

// stop ends Run (the lease is left in etcd, as on a crash or restart).
func (n *node) stop() {
	n.cancel()
	<-n.done
	n.done <- context.Canceled // keep stop idempotent
}

func (n *node) snapshot() (map[string]config.Peer, []Update) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return maps(n.peers), slices.Clone(n.updates)
}

func maps(m map[string]config.Peer) map[string]config.Peer {
	out := make(map[string]config.Peer, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func names(m map[string]config.Peer) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// waitPeers waits until cond holds for the node's peer set.
func (n *node) waitPeers(t testing.TB, what string, cond func(map[string]config.Peer) bool) map[string]config.Peer {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		peers, _ := n.snapshot()
		if cond(peers) {
			return peers
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: peers are %v\nlogs:\n%s", what, names(peers), n.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (n *node) lease(t testing.TB) Lease {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		if l, ok := n.src.Lease(); ok {
			return l
		}
		if time.Now().After(deadline) {
			t.Fatalf("no lease after %v\nlogs:\n%s", waitTimeout, n.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitSynced waits for the node's first Full update.
func (n *node) waitSynced(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		if _, u := n.snapshot(); len(u) > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no update after %v\nlogs:\n%s", waitTimeout, n.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func hasPeers(want ...string) func(map[string]config.Peer) bool {
	want = slices.Sorted(slices.Values(want)) // names are sorted; the subnets leased are random
	return func(m map[string]config.Peer) bool {
		return slices.Equal(names(m), want)
	}
}

func setup(t *testing.T, netconf string) (*etcdtest.Server, *clientv3.Client) {
	t.Helper()
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	etcdtest.Put(t, cli, testPrefix+"/config", netconf)
	return srv, cli
}

func TestEtcdLeaseFormat(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, netconf, mac string
		want               string
		backend            config.Backend
	}{
		{"vxlan", `{"Network":"198.19.0.0/16","Backend":{"Type":"vxlan"}}`, "02:00:c6:12:00:01",
			`{"PublicIP":"198.18.0.1","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"02:00:c6:12:00:01"}}`,
			config.BackendVXLAN},
		{"udp", `{"Network":"198.19.0.0/16","Backend":{"Type":"udp"}}`, "",
			`{"PublicIP":"198.18.0.1","PublicIPv6":null}`, config.BackendUDP},
		{"no backend is udp", `{"Network":"198.19.0.0/16"}`, "",
			`{"PublicIP":"198.18.0.1","PublicIPv6":null}`, config.BackendUDP},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, cli := setup(t, tt.netconf)
			src, _ := newSource(t, srv, "a", "198.18.0.1", tt.mac, 0)
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			l, err := src.Acquire(ctx)
			if err != nil {
				t.Fatalf("Acquire: %v", err)
			}
			if l.Subnet.Bits() != 24 || !netip.MustParsePrefix("198.19.0.0/16").Contains(l.Subnet.Addr()) ||
				l.Subnet.Addr() == netip.MustParseAddr("198.19.0.0") || l.Name != subnetKey(l.Subnet) {
				t.Fatalf("got lease %s (%v), want a /24 in 198.19.1.0..198.19.255.0", l.Name, l.Subnet)
			}
			if l.Backend != tt.backend || l.PublicIP != netip.MustParseAddr("198.18.0.1") || l.NetConf == nil ||
				l.NetConf.Network != netip.MustParsePrefix("198.19.0.0/16") || l.Reservation {
				t.Fatalf("got lease %+v", l)
			}
			select {
			case got := <-src.LeaseChanges():
				if got.Name != l.Name {
					t.Fatalf("LeaseChanges: got %s, want %s", got.Name, l.Name)
				}
			default:
				t.Fatalf("LeaseChanges: nothing after Acquire")
			}

			value, leaseID, ok := getKey(t, cli, testPrefix+"/subnets/"+l.Name)
			if !ok {
				t.Fatalf("key %s/subnets/%s not in etcd", testPrefix, l.Name)
			}
			if value != tt.want {
				t.Fatalf("lease value\ngot  %s\nwant %s", value, tt.want)
			}
			ttl, err := cli.TimeToLive(ctx, clientv3.LeaseID(leaseID))
			if err != nil {
				t.Fatalf("TimeToLive: %v", err)
			}
			if ttl.GrantedTTL != int64(DefaultLeaseTTL/time.Second) || ttl.TTL <= 0 {
				t.Fatalf("etcd lease: granted TTL %d s, remaining %d s; want %d s", ttl.GrantedTTL, ttl.TTL, int64(DefaultLeaseTTL/time.Second))
			}
			if got := listSubnets(t, cli, testPrefix); len(got) != 1 {
				t.Fatalf("got %d leases in etcd, want 1: %v", len(got), got)
			}
		})
	}
}

// TestEtcdRace: many nodes race for a small range of subnets; every subnet
// ends up with exactly one holder, and the losers get ErrNoFreeSubnet.
func TestEtcdRace(t *testing.T) {
	t.Parallel()
	const subnets, nodes = 6, 10
	srv, cli := setup(t, `{"Network":"198.19.0.0/16","SubnetMin":"198.19.1.0","SubnetMax":"198.19.6.0","Backend":{"Type":"vxlan"}}`)
	srcs := make([]*EtcdSource, nodes)
	for i := range srcs {
		srcs[i], _ = newSource(t, srv, fmt.Sprint("n", i), fmt.Sprintf("198.18.0.%d", 10+i), fmt.Sprintf("02:00:00:00:00:%02x", 10+i), 0)
	}
	type result struct {
		ip    string
		lease Lease
		err   error
	}
	results := make([]result, nodes)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, src := range srcs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			l, err := src.Acquire(ctx)
			results[i] = result{ip: fmt.Sprintf("198.18.0.%d", 10+i), lease: l, err: err}
		}()
	}
	close(start)
	wg.Wait()

	holders := map[string]string{}
	losers := 0
	for _, r := range results {
		if r.err != nil {
			if !errors.Is(r.err, ErrNoFreeSubnet) {
				t.Errorf("%s: got error %v, want a lease or ErrNoFreeSubnet", r.ip, r.err)
			}
			losers++
			continue
		}
		if other, dup := holders[r.lease.Name]; dup {
			t.Errorf("subnet %s held by both %s and %s", r.lease.Name, other, r.ip)
		}
		holders[r.lease.Name] = r.ip
	}
	if len(holders) != subnets || losers != nodes-subnets {
		t.Fatalf("got %d holders and %d losers, want %d and %d", len(holders), losers, subnets, nodes-subnets)
	}
	// etcd agrees with what each winner believes it holds.
	inEtcd := listSubnets(t, cli, testPrefix)
	if len(inEtcd) != subnets {
		t.Fatalf("got %d leases in etcd, want %d: %v", len(inEtcd), subnets, inEtcd)
	}
	for name, ip := range holders {
		a, err := decodeLeaseValue([]byte(inEtcd[name]))
		if err != nil || a.PublicIP.String() != ip {
			t.Errorf("lease %s in etcd: got %q (%v), want PublicIP %s", name, inEtcd[name], err, ip)
		}
	}
}

// TestEtcdRestartReusesSubnet: a node that comes back with the same public
// IP gets the same subnet (with its new attributes); another node does not.
func TestEtcdRestartReusesSubnet(t *testing.T) {
	t.Parallel()
	srv, cli := setup(t, `{"Network":"198.19.0.0/16","Backend":{"Type":"vxlan"}}`)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()

	a1, _ := newSource(t, srv, "a1", "198.18.0.1", "02:00:00:00:00:01", 0)
	l1, err := a1.Acquire(ctx)
	if err != nil {
		t.Fatalf("first Acquire: %v", err)
	}
	a1.Close() // crash/restart: the lease stays in etcd

	a2, _ := newSource(t, srv, "a2", "198.18.0.1", "02:00:00:00:00:02", 0)
	l2, err := a2.Acquire(ctx)
	if err != nil {
		t.Fatalf("Acquire after restart: %v", err)
	}
	if l2.Name != l1.Name {
		t.Fatalf("after restart got subnet %s, want %s again", l2.Name, l1.Name)
	}
	want := kernelLease("198.18.0.1", "02:00:00:00:00:02")
	if got, _, _ := getKey(t, cli, testPrefix+"/subnets/"+l2.Name); got != want {
		t.Fatalf("lease value after restart\ngot  %s\nwant %s", got, want)
	}

	b, _ := newSource(t, srv, "b", "198.18.0.2", "02:00:00:00:00:03", 0)
	lb, err := b.Acquire(ctx)
	if err != nil {
		t.Fatalf("Acquire of another node: %v", err)
	}
	if lb.Name == l1.Name {
		t.Fatalf("another node got our subnet %s", lb.Name)
	}
	if got := listSubnets(t, cli, testPrefix); len(got) != 2 {
		t.Fatalf("got %d leases in etcd, want 2: %v", len(got), got)
	}
}

// TestEtcdTwoNodesAndExpiry: two nodes discover each other; with a short
// TTL the leases survive several TTLs while renewed, and a stopped node's
// lease expires and disappears from the other's peer set.
func TestEtcdTwoNodesAndExpiry(t *testing.T) {
	t.Parallel()
	srv, _ := setup(t, `{"Network":"198.19.0.0/16","Backend":{"Type":"vxlan"}}`)
	const ttl = 2 * time.Second
	a := startNode(t, srv, "a", "198.18.0.1", "02:00:00:00:00:01", ttl)
	b := startNode(t, srv, "b", "198.18.0.2", "02:00:00:00:00:02", ttl)
	la, lb := a.lease(t), b.lease(t)
	if la.Name == lb.Name {
		t.Fatalf("both nodes hold %s", la.Name)
	}
	peers := a.waitPeers(t, "a sees b", hasPeers(lb.Name))
	want := config.Peer{Name: lb.Name, PublicIP: netip.MustParseAddr("198.18.0.2"), Port: 8472,
		Subnets: []netip.Prefix{lb.Subnet}, Backend: config.BackendVXLAN, VNI: 1, VtepMAC: mustMAC(t, "02:00:00:00:00:02")}
	if !peerEqual(peers[lb.Name], want) {
		t.Fatalf("a's peer\ngot  %+v\nwant %+v", peers[lb.Name], want)
	}
	b.waitPeers(t, "b sees a", hasPeers(la.Name))

	// Three TTLs later both leases are still there: they are renewed.
	time.Sleep(3 * ttl)
	if p, _ := a.snapshot(); !hasPeers(lb.Name)(p) {
		t.Fatalf("after 3 TTLs a's peers are %v, want [%s]\nlogs:\n%s", names(p), lb.Name, b.logs.String())
	}
	if p, _ := b.snapshot(); !hasPeers(la.Name)(p) {
		t.Fatalf("after 3 TTLs b's peers are %v, want [%s]\nlogs:\n%s", names(p), la.Name, a.logs.String())
	}

	b.stop()
	a.waitPeers(t, "b's lease to expire", hasPeers())
}

// TestEtcdOutage: with etcd gone the node keeps its last peers (no update at
// all); after etcd returns it sees a lease added then.
func TestEtcdOutage(t *testing.T) {
	t.Parallel()
	srv, cli := setup(t, `{"Network":"198.19.0.0/16","Backend":{"Type":"vxlan"}}`)
	etcdtest.Put(t, cli, testPrefix+"/subnets/198.19.200.0-24", kernelLease("198.18.0.200", "02:00:00:00:00:c8"))
	a := startNode(t, srv, "a", "198.18.0.1", "02:00:00:00:00:01", 0)
	a.waitPeers(t, "first peer", hasPeers("198.19.200.0-24"))
	_, before := a.snapshot()

	srv.Stop()
	time.Sleep(3 * time.Second)
	peers, during := a.snapshot()
	if !hasPeers("198.19.200.0-24")(peers) || len(during) != len(before) {
		t.Fatalf("during the outage: peers %v after %d updates, want [198.19.200.0-24] and no new update (had %d)",
			names(peers), len(during), len(before))
	}

	// One warning for the whole outage, however many requests failed.
	if got := strings.Count(a.logs.String(), "etcd connection lost"); got != 1 {
		t.Errorf("during the outage: got %d warnings \"etcd connection lost\", want 1\nlogs:\n%s", got, a.logs.String())
	}

	srv.Restart()
	etcdtest.Put(t, cli, testPrefix+"/subnets/198.19.201.0-24", kernelLease("198.18.0.201", "02:00:00:00:00:c9"))
	a.waitPeers(t, "lease added after etcd returned", hasPeers("198.19.200.0-24", "198.19.201.0-24"))
	logs := a.logs.String()
	if got := strings.Count(logs, "level=INFO msg=\"etcd connection is back\""); got != 1 {
		t.Errorf("after the outage: got %d info lines \"etcd connection is back\", want 1\nlogs:\n%s", got, logs)
	}
	if got := strings.Count(logs, "level=WARN"); got != 1 {
		t.Errorf("over the outage: got %d warnings, want 1\nlogs:\n%s", got, logs)
	}
	if _, _, ok := getKey(t, cli, testPrefix+"/subnets/"+a.lease(t).Name); !ok {
		t.Fatalf("own lease %s gone after the outage", a.lease(t).Name)
	}
}

// TestEtcdCompaction: a watch whose start revision etcd has compacted away
// makes the node re-list and send a fresh Full update; watching continues.
func TestEtcdCompaction(t *testing.T) {
	t.Parallel()
	srv, cli := setup(t, `{"Network":"198.19.0.0/16","Backend":{"Type":"vxlan"}}`)
	for i := 0; i < 5; i++ {
		etcdtest.Put(t, cli, testPrefix+"/subnets/198.19.200.0-24", kernelLease("198.18.0.200", fmt.Sprintf("02:00:00:00:00:%02x", i+1)))
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	resp, err := cli.Get(ctx, "/")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Compact(ctx, resp.Header.Revision); err != nil {
		t.Fatalf("compact: %v", err)
	}
	var watches atomic.Int32
	a := startNode(t, srv, "a", "198.18.0.1", "02:00:00:00:00:01", 0, func(s *EtcdSource) {
		s.watchRev = func(rev int64) int64 {
			if watches.Add(1) == 1 {
				return 1 // long compacted
			}
			return rev
		}
	})
	a.waitPeers(t, "initial peer", hasPeers("198.19.200.0-24"))
	etcdtest.Put(t, cli, testPrefix+"/subnets/198.19.201.0-24", kernelLease("198.18.0.201", "02:00:00:00:00:c9"))
	a.waitPeers(t, "lease added after the resync", hasPeers("198.19.200.0-24", "198.19.201.0-24"))

	_, updates := a.snapshot()
	fulls := 0
	for _, u := range updates {
		if u.Full {
			fulls++
		}
	}
	if fulls < 2 || watches.Load() < 2 {
		t.Fatalf("got %d Full updates and %d watches, want a re-list after compaction (>= 2 each)", fulls, watches.Load())
	}
	if !strings.Contains(a.logs.String(), "compacted") {
		t.Fatalf("compaction not logged:\n%s", a.logs.String())
	}
}

// TestEtcdBadData: leases with bad data are logged and skipped; a good
// lease turning bad is removed and comes back when fixed.
func TestEtcdBadData(t *testing.T) {
	t.Parallel()
	srv, cli := setup(t, `{"Network":"198.19.0.0/16","SubnetMin":"198.19.2.0","SubnetMax":"198.19.12.0","Backend":{"Type":"vxlan"}}`)
	bad := map[string]string{
		"198.19.3.0-24":  `{"PublicIP":"198.18.0.3",`,
		"198.19.4.0-24":  `{"PublicIP":"198.18.0.4","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"zz:00:00:00:00:04"}}`,
		"10.244.5.0-24":  kernelLease("198.18.0.5", "02:00:00:00:00:05"),
		"garbage":        kernelLease("198.18.0.6", "02:00:00:00:00:06"),
		"198.19.7.1-24":  kernelLease("198.18.0.7", "02:00:00:00:00:07"),
		"198.19.8.0-24":  `{"PublicIP":"198.18.0.8","PublicIPv6":null,"BackendType":"wireguard"}`,
		"198.19.9.0-24":  udpLease("198.18.0.9"),
		"198.19.10.0-24": `null`,
		"x/y":            kernelLease("198.18.0.11", "02:00:00:00:00:0b"),
	}
	for k, v := range bad {
		etcdtest.Put(t, cli, testPrefix+"/subnets/"+k, v)
	}
	good := kernelLease("198.18.0.2", "02:00:00:00:00:02")
	etcdtest.Put(t, cli, testPrefix+"/subnets/198.19.2.0-24", good)

	a := startNode(t, srv, "a", "198.18.0.1", "02:00:00:00:00:01", 0)
	a.waitPeers(t, "only the good lease", hasPeers("198.19.2.0-24"))
	// Keys that parse as subnets occupy them, whatever their value.
	switch l := a.lease(t); l.Name {
	case "198.19.2.0-24", "198.19.3.0-24", "198.19.4.0-24", "198.19.8.0-24", "198.19.9.0-24", "198.19.10.0-24":
		t.Fatalf("took occupied subnet %s", l.Name)
	}
	if n := strings.Count(a.logs.String(), "skipping lease"); n < len(bad) {
		t.Fatalf("logged %d skipped leases, want >= %d:\n%s", n, len(bad), a.logs.String())
	}

	etcdtest.Put(t, cli, testPrefix+"/subnets/198.19.2.0-24", `{"PublicIP":"198.18.0.2","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"02:00"}}`)
	a.waitPeers(t, "lease gone bad removed", hasPeers())
	etcdtest.Put(t, cli, testPrefix+"/subnets/198.19.2.0-24", good)
	a.waitPeers(t, "lease fixed added", hasPeers("198.19.2.0-24"))
	etcdtest.Put(t, cli, testPrefix+"/subnets/198.19.11.0-24", kernelLease("198.18.0.12", "02:00:00:00:00:0c"))
	a.waitPeers(t, "still watching", hasPeers("198.19.11.0-24", "198.19.2.0-24"))
}

// TestEtcdKernelVXLANLease: a lease exactly as flanneld with the vxlan
// backend writes it (attached to an etcd lease) becomes the right peer;
// re-putting it with a new MAC updates it, deleting it removes it.
func TestEtcdKernelVXLANLease(t *testing.T) {
	t.Parallel()
	srv, cli := setup(t, `{"Network":"198.19.0.0/16","Backend":{"Type":"vxlan","VNI":1}}`)
	a := startNode(t, srv, "a", "198.18.0.1", "02:00:00:00:00:01", 0)
	a.waitSynced(t)

	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	grant, err := cli.Grant(ctx, 86400)
	if err != nil {
		t.Fatal(err)
	}
	key := testPrefix + "/subnets/198.19.2.0-24"
	etcdtest.Put(t, cli, key, kernelLease("198.18.0.2", "5e:a1:07:1c:2b:3d"), clientv3.WithLease(grant.ID))
	peers := a.waitPeers(t, "kernel node", hasPeers("198.19.2.0-24"))
	want := config.Peer{Name: "198.19.2.0-24", PublicIP: netip.MustParseAddr("198.18.0.2"), Port: 8472,
		Subnets: []netip.Prefix{netip.MustParsePrefix("198.19.2.0/24")}, Backend: config.BackendVXLAN,
		VNI: 1, VtepMAC: mustMAC(t, "5e:a1:07:1c:2b:3d")}
	if !peerEqual(peers["198.19.2.0-24"], want) {
		t.Fatalf("got  %+v\nwant %+v", peers["198.19.2.0-24"], want)
	}

	// flanneld renews by re-putting the same value: no event.
	etcdtest.Put(t, cli, key, kernelLease("198.18.0.2", "5e:a1:07:1c:2b:3d"), clientv3.WithLease(grant.ID))
	etcdtest.Put(t, cli, key, kernelLease("198.18.0.2", "5e:a1:07:1c:2b:3e"), clientv3.WithLease(grant.ID))
	a.waitPeers(t, "new MAC", func(m map[string]config.Peer) bool {
		return m["198.19.2.0-24"].VtepMAC.String() == "5e:a1:07:1c:2b:3e"
	})
	deleteKey(t, cli, key)
	a.waitPeers(t, "removal", hasPeers())

	var types []EventType
	_, updates := a.snapshot()
	for _, u := range updates {
		for _, ev := range u.Events {
			types = append(types, ev.Type)
		}
	}
	if !slices.Equal(types, []EventType{PeerAdded, PeerUpdated, PeerRemoved}) {
		t.Fatalf("got events %v, want [add update remove]", types)
	}
}

// TestEtcdUDPLease: in a udp network, a flanneld udp-backend lease (no
// BackendType) is a udp peer and a vxlan lease is skipped.
func TestEtcdUDPLease(t *testing.T) {
	t.Parallel()
	srv, cli := setup(t, `{"Network":"198.19.0.0/16","Backend":{"Type":"udp"}}`)
	etcdtest.Put(t, cli, testPrefix+"/subnets/198.19.3.0-24", udpLease("198.18.0.3"))
	etcdtest.Put(t, cli, testPrefix+"/subnets/198.19.4.0-24", kernelLease("198.18.0.4", "02:00:00:00:00:04"))
	a := startNode(t, srv, "a", "198.18.0.1", "", 0)
	peers := a.waitPeers(t, "udp peer", hasPeers("198.19.3.0-24"))
	want := config.Peer{Name: "198.19.3.0-24", PublicIP: netip.MustParseAddr("198.18.0.3"), Port: 8285,
		Subnets: []netip.Prefix{netip.MustParsePrefix("198.19.3.0/24")}, Backend: config.BackendUDP}
	if !peerEqual(peers["198.19.3.0-24"], want) {
		t.Fatalf("got  %+v\nwant %+v", peers["198.19.3.0-24"], want)
	}
	if !strings.Contains(a.logs.String(), "backend vxlan, this network uses udp") {
		t.Fatalf("skipped vxlan lease not logged:\n%s", a.logs.String())
	}
	if got, _, _ := getKey(t, cli, testPrefix+"/subnets/"+a.lease(t).Name); got != udpLease("198.18.0.1") {
		t.Fatalf("own lease: got %s, want %s", got, udpLease("198.18.0.1"))
	}
}

// TestEtcdLeaseLost: when our key is deleted the node takes its subnet back;
// when someone else takes the key, the node moves to another subnet and
// announces it on LeaseChanges.
func TestEtcdLeaseLost(t *testing.T) {
	t.Parallel()
	srv, cli := setup(t, `{"Network":"198.19.0.0/16","Backend":{"Type":"vxlan"}}`)
	a := startNode(t, srv, "a", "198.18.0.1", "02:00:00:00:00:01", 0)
	l := a.lease(t)
	<-a.src.LeaseChanges()
	key := testPrefix + "/subnets/" + l.Name
	a.waitSynced(t)

	deleteKey(t, cli, key)
	deadline := time.Now().Add(waitTimeout)
	for {
		if v, _, ok := getKey(t, cli, key); ok && v == kernelLease("198.18.0.1", "02:00:00:00:00:01") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("deleted lease %s not re-created\nlogs:\n%s", l.Name, a.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	select {
	case got := <-a.src.LeaseChanges():
		t.Fatalf("LeaseChanges after re-taking the same subnet: got %s, want nothing", got.Name)
	default:
	}

	etcdtest.Put(t, cli, key, kernelLease("198.18.0.9", "02:00:00:00:00:09"))
	var moved Lease
	select {
	case moved = <-a.src.LeaseChanges():
	case <-time.After(waitTimeout):
		t.Fatalf("no new lease after ours was taken\nlogs:\n%s", a.logs.String())
	}
	if moved.Name == l.Name {
		t.Fatalf("new lease is the taken subnet %s", moved.Name)
	}
	if cur, _ := a.src.Lease(); cur.Name != moved.Name {
		t.Fatalf("Lease(): got %s, want %s", cur.Name, moved.Name)
	}
	a.waitPeers(t, "the taker as a peer", hasPeers(l.Name))
	// Our new lease is never taken for a foreign peer.
	if logs := a.logs.String(); strings.Contains(logs, "skipping lease") {
		t.Errorf("a lease was skipped with a warning after the takeover:\n%s", logs)
	}
}

// TestEtcdWaitsForConfig: a node started before the network config exists
// keeps retrying and takes its lease once the config is written.
func TestEtcdWaitsForConfig(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	a := startNode(t, srv, "a", "198.18.0.1", "02:00:00:00:00:01", 0)
	time.Sleep(300 * time.Millisecond)
	if _, ok := a.src.Lease(); ok {
		t.Fatalf("got a lease without a network config")
	}
	if !strings.Contains(a.logs.String(), "network config not found") {
		t.Fatalf("missing config not logged:\n%s", a.logs.String())
	}
	etcdtest.Put(t, cli, testPrefix+"/config", `{"Network":"198.19.0.0/16","Backend":{"Type":"vxlan"}}`)
	if l := a.lease(t); !netip.MustParsePrefix("198.19.0.0/16").Contains(l.Subnet.Addr()) {
		t.Fatalf("got lease %v outside the network", l.Subnet)
	}
	a.waitSynced(t)
}

// TestEtcdReservation: an operator's reservation (a key with our public IP
// and no etcd lease) is used and stays without a lease.
func TestEtcdReservation(t *testing.T) {
	t.Parallel()
	srv, cli := setup(t, `{"Network":"198.19.0.0/16","Backend":{"Type":"udp"}}`)
	key := testPrefix + "/subnets/198.19.42.0-24"
	etcdtest.Put(t, cli, key, udpLease("198.18.0.1"))
	a := startNode(t, srv, "a", "198.18.0.1", "", 0)
	l := a.lease(t)
	if l.Name != "198.19.42.0-24" || !l.Reservation {
		t.Fatalf("got lease %s (reservation %v), want the reservation 198.19.42.0-24", l.Name, l.Reservation)
	}
	if v, id, _ := getKey(t, cli, key); v != udpLease("198.18.0.1") || id != 0 {
		t.Fatalf("reservation after acquiring: value %s, etcd lease %x; want %s without a lease", v, id, udpLease("198.18.0.1"))
	}
}

// TestEtcdLeaseRevoked: when our etcd lease is revoked (as when it expires)
// the node takes its subnet back under a new etcd lease.
func TestEtcdLeaseRevoked(t *testing.T) {
	t.Parallel()
	srv, cli := setup(t, `{"Network":"198.19.0.0/16","Backend":{"Type":"vxlan"}}`)
	a := startNode(t, srv, "a", "198.18.0.1", "02:00:00:00:00:01", 2*time.Second)
	l := a.lease(t)
	a.waitSynced(t)
	key := testPrefix + "/subnets/" + l.Name
	_, id, ok := getKey(t, cli, key)
	if !ok || id == 0 {
		t.Fatalf("own key %s: present %v, etcd lease %x", key, ok, id)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if _, err := cli.Revoke(ctx, clientv3.LeaseID(id)); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	deadline := time.Now().Add(waitTimeout)
	for {
		if v, newID, ok := getKey(t, cli, key); ok && newID != 0 && newID != id && v == kernelLease("198.18.0.1", "02:00:00:00:00:01") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lease %s not re-created after revocation\nlogs:\n%s", l.Name, a.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if cur, _ := a.src.Lease(); cur.Name != l.Name {
		t.Fatalf("after revocation holds %s, want %s", cur.Name, l.Name)
	}
}

func TestNewEtcdSourceOptions(t *testing.T) {
	ip := netip.MustParseAddr("198.18.0.1")
	bad := []struct {
		name string
		opts EtcdOptions
	}{
		{"no public IP", EtcdOptions{}},
		{"IPv6 public IP", EtcdOptions{PublicIP: netip.MustParseAddr("2001:db8::1")}},
		{"unspecified public IP", EtcdOptions{PublicIP: netip.MustParseAddr("0.0.0.0")}},
		{"negative TTL", EtcdOptions{PublicIP: ip, LeaseTTL: -time.Second}},
		{"cert without key", EtcdOptions{PublicIP: ip, CertFile: "c.pem"}},
		{"key without cert", EtcdOptions{PublicIP: ip, KeyFile: "k.pem"}},
		{"missing CA file", EtcdOptions{PublicIP: ip, CAFile: "/nonexistent/ca.pem"}},
	}
	for _, tt := range bad {
		if s, err := NewEtcdSource(tt.opts); err == nil {
			s.Close()
			t.Errorf("%s: got no error, want one", tt.name)
		}
	}
	s, err := NewEtcdSource(EtcdOptions{PublicIP: netip.MustParseAddr("::ffff:198.18.0.1"), Prefix: "coreos.com/network/"})
	if err != nil {
		t.Fatalf("defaults: %v", err)
	}
	defer s.Close()
	if s.cfgKey != "/coreos.com/network/config" || s.subnets != "/coreos.com/network/subnets/" ||
		s.opts.LeaseTTL != DefaultLeaseTTL || s.opts.PublicIP != ip ||
		!slices.Equal(s.opts.Endpoints, []string{DefaultEtcdEndpoint}) {
		t.Fatalf("defaults: got config key %s, subnets %s, TTL %v, IP %v, endpoints %v",
			s.cfgKey, s.subnets, s.opts.LeaseTTL, s.opts.PublicIP, s.opts.Endpoints)
	}
}

// TestEtcdTLS: with --etcd-certfile/--etcd-keyfile/--etcd-cafile the source
// talks to an etcd that requires client certificates; without the client
// certificate it cannot.
func TestEtcdTLS(t *testing.T) {
	t.Parallel()
	srv, files := etcdtest.StartTLS(t)
	etcdtest.Put(t, srv.Client(t), testPrefix+"/config", `{"Network":"198.19.0.0/16","Backend":{"Type":"udp"}}`)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()

	src, err := NewEtcdSource(EtcdOptions{Endpoints: srv.Endpoints(), PublicIP: netip.MustParseAddr("198.18.0.1"),
		CertFile: files.CertFile, KeyFile: files.KeyFile, CAFile: files.CAFile, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if _, err := src.Acquire(ctx); err != nil {
		t.Fatalf("Acquire over TLS: %v", err)
	}

	noCert, err := NewEtcdSource(EtcdOptions{Endpoints: srv.Endpoints(), PublicIP: netip.MustParseAddr("198.18.0.2"),
		CAFile: files.CAFile, DialTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer noCert.Close()
	short, cancel2 := context.WithTimeout(ctx, 2*time.Second)
	defer cancel2()
	if l, err := noCert.Acquire(short); err == nil {
		t.Fatalf("Acquire without a client certificate: got lease %s, want an error", l.Name)
	}
}

// TestEtcdCloseEndsRun: Close while Run is going ends Run with
// ErrSourceClosed instead of retrying forever.
func TestEtcdCloseEndsRun(t *testing.T) {
	t.Parallel()
	srv, _ := setup(t, `{"Network":"198.19.0.0/16","Backend":{"Type":"udp"}}`)
	src, _ := newSource(t, srv, "a", "198.18.0.1", "", 0)
	out := make(chan Update, 10)
	done := make(chan error, 1)
	go func() { done <- src.Run(context.Background(), out) }()
	select {
	case <-out:
	case <-time.After(waitTimeout):
		t.Fatal("no first update")
	}
	src.Close()
	select {
	case err := <-done:
		if !errors.Is(err, ErrSourceClosed) {
			t.Fatalf("Run after Close: got %v, want ErrSourceClosed", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Run did not return after Close")
	}
	if err := src.Run(context.Background(), out); err == nil {
		t.Fatal("second Run: got nil, want an error")
	}
}
