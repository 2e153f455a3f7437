package node

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vxtun/vxtun/config"
	"github.com/vxtun/vxtun/dataplane"
	"github.com/vxtun/vxtun/dataplane/dataplanetest"
	"github.com/vxtun/vxtun/hostnet"
	"github.com/vxtun/vxtun/hostnet/hostnettest"
	"github.com/vxtun/vxtun/registry"
)

// fakeSource is a peer source driven by the test: it sends what arrives on
// updates, counts Reloads and, with a lease, is a registry.LeaseHolder.
type fakeSource struct {
	updates chan registry.Update
	reloads chan struct{}
	fail    chan error
}

func newFakeSource() *fakeSource {
	return &fakeSource{updates: make(chan registry.Update), reloads: make(chan struct{}, 8), fail: make(chan error, 1)}
}

func (f *fakeSource) Run(ctx context.Context, out chan<- registry.Update) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-f.fail:
			return err
		case u := <-f.updates:
			select {
			case out <- u:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
}

func (f *fakeSource) Reload() { f.reloads <- struct{}{} }

// leaseSource adds a lease to fakeSource.
type leaseSource struct {
	*fakeSource
	mu      sync.Mutex
	lease   registry.Lease
	changes chan registry.Lease
}

func (l *leaseSource) Acquire(context.Context) (registry.Lease, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lease, nil
}

func (l *leaseSource) Lease() (registry.Lease, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lease, true
}

func (l *leaseSource) LeaseChanges() <-chan registry.Lease { return l.changes }

func peer(i int) config.Peer {
	return config.Peer{
		Name: "node" + string(rune('0'+i)), PublicIP: netip.AddrFrom4([4]byte{198, 18, 0, byte(i)}),
		Subnets: []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 19, byte(i), 0}), 24)},
		Backend: config.BackendVXLAN, VNI: 1, Port: 8472,
	}
}

// harness is a node with a fake dataplane and a fake source.
type harness struct {
	t       *testing.T
	dir     string
	cfg     Config
	opener  *dataplanetest.Opener
	log     *syncWriter
	done    chan error    // Run's result, read by waitDone
	ended   chan struct{} // closed when Run returned
	cancel  context.CancelFunc
	started chan struct{}
	hosts   []*hostnettest.Fake // every Host the node asked for, in order
	hostMu  sync.Mutex
}

// newHost is the harness's Config.NewHost: an in-memory host, recorded.
func (h *harness) newHost() hostnet.Host {
	h.hostMu.Lock()
	defer h.hostMu.Unlock()
	f := hostnettest.New()
	h.hosts = append(h.hosts, f)
	return f
}

// host returns the k-th Host the node asked for.
func (h *harness) host(k int) *hostnettest.Fake {
	h.hostMu.Lock()
	defer h.hostMu.Unlock()
	if k >= len(h.hosts) {
		h.t.Fatalf("the node asked for %d hosts, want more than %d", len(h.hosts), k)
	}
	return h.hosts[k]
}

type syncWriter struct {
	mu sync.Mutex
	b  strings.Builder
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// newHarness writes a net-conf and a node file (with subnet for static
// mode) and returns a Config using src.
func newHarness(t *testing.T, src registry.Source, static bool) *harness {
	t.Helper()
	dir := t.TempDir()
	h := &harness{t: t, dir: dir, opener: &dataplanetest.Opener{}, log: &syncWriter{}, started: make(chan struct{}, 8)}
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	subnet := ""
	if static {
		subnet = `"Subnet": "198.19.1.0/24",`
	}
	// 198.18.0.1 is on no interface of the test host: Underlay.Local is
	// false, nothing is bound or created (the dataplane is a fake).
	h.cfg = Config{
		NetConfFile: write("net-conf.json", `{"Network": "198.19.0.0/16", "Backend": {"Type": "vxlan"}}`),
		NodeFile: write("node.json", `{"PublicIP": "198.18.0.1", `+subnet+` "VtepMAC": "0e:00:00:00:00:01",
			"UnderlayMTU": 1500, "SubnetFile": "`+filepath.Join(dir, "subnet.env")+`"}`),
		Registry: registry.Settings{PeersFile: "unused-by-the-fake"},
		Version:  "test",
		Logger:   slog.New(slog.NewTextHandler(h.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Opener:   h.opener.Open,
		NewHost:  h.newHost,
		Started:  func() { h.started <- struct{}{} },
		NewSource: func(registry.Settings, registry.Node) (registry.Source, error) {
			return src, nil
		},
	}
	if !static {
		h.cfg.Registry = registry.Settings{Etcd: &registry.EtcdOptions{}}
	}
	return h
}

func (h *harness) start(ctx context.Context) *Node {
	h.t.Helper()
	n, err := New(h.cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, h.cancel = context.WithCancel(ctx)
	h.done = make(chan error, 1)
	h.ended = make(chan struct{})
	go func() {
		h.done <- n.Run(ctx)
		close(h.ended)
	}()
	h.t.Cleanup(func() {
		h.cancel()
		select {
		case <-h.ended:
		case <-time.After(10 * time.Second):
			h.t.Error("Run did not return after cancel")
		}
	})
	return n
}

func (h *harness) waitStarted(ctx context.Context) {
	h.t.Helper()
	select {
	case <-h.started:
	case <-ctx.Done():
		h.t.Fatalf("node did not start; log:\n%s", h.log.String())
	case err := <-h.done:
		h.t.Fatalf("Run returned %v before it started; log:\n%s", err, h.log.String())
	}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestForwardRules(t *testing.T) {
	net := netip.MustParsePrefix("198.19.0.0/16")
	for _, tt := range []struct {
		name string
		skip bool
		fail error
		want []netip.Prefix // rules while running
	}{
		{name: "default", want: []netip.Prefix{net}},
		{name: "skipped", skip: true},
		{name: "refused", fail: errors.New("netlink: operation not supported")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testCtx(t)
			src := newFakeSource()
			h := newHarness(t, src, true)
			h.cfg.SkipForwardRules = tt.skip
			if tt.fail != nil {
				h.cfg.NewHost = func() hostnet.Host {
					f := hostnettest.New()
					f.Fail(hostnettest.SetForwardAccept, tt.fail)
					return f
				}
			}
			h.start(ctx)
			if tt.fail != nil {
				select {
				case err := <-h.done:
					if err == nil || !strings.Contains(err.Error(), "forward rules") || !errors.Is(err, tt.fail) {
						t.Fatalf("Run: got %v, want the forward rules error wrapping %v", err, tt.fail)
					}
				case <-ctx.Done():
					t.Fatal("Run did not fail")
				}
				return
			}
			src.updates <- registry.Update{Full: true, Peers: []config.Peer{peer(2)}}
			h.waitStarted(ctx)
			nodeHost := h.host(0) // the node's own, asked for before the dataplane's
			if got := nodeHost.ForwardAccept(); !slices.Equal(got, tt.want) {
				t.Errorf("forward rules while running: got %v, want %v", got, tt.want)
			}
			h.cancel()
			if err := <-h.done; err != nil {
				t.Fatalf("Run: %v", err)
			}
			if !nodeHost.Closed() {
				t.Error("the node's host was not closed at shutdown: its rules stay")
			}
		})
	}
}

func TestRejectedPeerSetKeepsTheOld(t *testing.T) {
	ctx := testCtx(t)
	src := newFakeSource()
	h := newHarness(t, src, true)
	h.opener.Reject = func(ps []config.Peer) error {
		for _, p := range ps {
			if p.Name == "node9" {
				return errors.New("node9: overlapping subnet")
			}
		}
		return nil
	}
	n := h.start(ctx)
	src.updates <- registry.Update{Full: true, Peers: []config.Peer{peer(2)}}
	h.waitStarted(ctx)
	f, err := h.opener.WaitOpened(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	// An incremental update that the dataplane rejects, then a good one:
	// the good one is applied on top of the set in force, not the rejected one.
	src.updates <- registry.Update{Events: []registry.Event{{Type: registry.PeerAdded, Peer: peer(9)}}}
	if err := f.Wait(ctx, "a rejected set", func(f *dataplanetest.Fake) bool { return f.Rejected() == 1 }); err != nil {
		t.Fatal(err)
	}
	src.updates <- registry.Update{Events: []registry.Event{{Type: registry.PeerAdded, Peer: peer(3)}}}
	if err := f.Wait(ctx, "two accepted sets", func(f *dataplanetest.Fake) bool { return len(f.PeerSets()) == 2 }); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range f.Peers() {
		names = append(names, p.Name)
	}
	if got, want := strings.Join(names, ","), "node2,node3"; got != want {
		t.Errorf("peers in force: got %s, want %s", got, want)
	}
	// The node counts after the dataplane took the set: poll.
	var m Metrics
	for ctx.Err() == nil {
		if m = n.Metrics(); m.PeerUpdates == 2 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if m.PeerUpdateErrors != 1 || m.PeerUpdates != 2 || m.Peers != 2 {
		t.Errorf("metrics: got rejected %d, updates %d, peers %d; want 1, 2, 2", m.PeerUpdateErrors, m.PeerUpdates, m.Peers)
	}
	if !strings.Contains(h.log.String(), "peer update rejected; keeping the current peers") {
		t.Errorf("no log line for the rejected set:\n%s", h.log.String())
	}
	// The static subnet reached the dataplane and subnet.env.
	if got := f.Config().Subnet.String(); got != "198.19.1.0/24" {
		t.Errorf("dataplane subnet: got %s, want 198.19.1.0/24", got)
	}
	e, err := config.ReadSubnetEnv(filepath.Join(h.dir, "subnet.env"))
	if err != nil || e.Subnet.String() != "198.19.1.0/24" || e.MTU != 1450 {
		t.Errorf("subnet.env: got %+v, %v; want subnet 198.19.1.0/24, MTU 1450", e, err)
	}
}

func TestLeaseMoveRestartsDataplane(t *testing.T) {
	ctx := testCtx(t)
	first, second := netip.MustParsePrefix("198.19.5.0/24"), netip.MustParsePrefix("198.19.7.0/24")
	src := &leaseSource{fakeSource: newFakeSource(), changes: make(chan registry.Lease, 1),
		lease: registry.Lease{Name: "198.19.5.0-24", Subnet: first}}
	h := newHarness(t, src, false)
	n := h.start(ctx)
	src.updates <- registry.Update{Full: true, Peers: []config.Peer{peer(2)}}
	h.waitStarted(ctx)
	f1, _ := h.opener.WaitOpened(ctx, 1)
	if got := f1.Config().Subnet; got != first {
		t.Fatalf("first dataplane: got subnet %s, want %s", got, first)
	}

	src.changes <- registry.Lease{Name: "198.19.7.0-24", Subnet: second}
	f2, err := h.opener.WaitOpened(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	h.waitStarted(ctx)
	if got := f2.Config().Subnet; got != second {
		t.Errorf("second dataplane: got subnet %s, want %s", got, second)
	}
	if !f1.Closed() {
		t.Error("first dataplane after the move: got open, want closed")
	}
	if got := f2.Peers(); len(got) != 1 || got[0].Name != "node2" {
		t.Errorf("second dataplane's peers: got %v, want [node2]", got)
	}
	if got := n.Metrics().Restarts; got != 1 {
		t.Errorf("restarts: got %d, want 1", got)
	}
	e, err := config.ReadSubnetEnv(filepath.Join(h.dir, "subnet.env"))
	if err != nil || e.Subnet != second {
		t.Errorf("subnet.env after the move: got %+v, %v; want subnet %s", e, err, second)
	}
	// A lease that changes the network config stops the node.
	nc, err := config.ParseNetConf("etcd", []byte(`{"Network": "198.19.0.0/17", "Backend": {"Type": "vxlan"}}`))
	if err != nil {
		t.Fatal(err)
	}
	src.changes <- registry.Lease{Name: "198.19.8.0-24", Subnet: netip.MustParsePrefix("198.19.8.0/24"), NetConf: nc}
	select {
	case err := <-h.done:
		if err == nil || !strings.Contains(err.Error(), "network config in etcd changed") {
			t.Errorf("Run after a config change: got %v, want 'network config in etcd changed'", err)
		}
	case <-ctx.Done():
		t.Fatal("Run did not return after the network config changed")
	}
}

func TestDataplaneFailureStopsAtOnce(t *testing.T) {
	ctx := testCtx(t)
	src := newFakeSource()
	h := newHarness(t, src, true)
	h.start(ctx)
	src.updates <- registry.Update{Full: true}
	h.waitStarted(ctx)
	f, _ := h.opener.WaitOpened(ctx, 1)
	if err := f.Wait(ctx, "running", (*dataplanetest.Fake).Running); err != nil {
		t.Fatal(err)
	}
	errGone := errors.New("read tun vxtun0: device gone")
	start := time.Now()
	f.Fail(errGone)
	select {
	case err := <-h.done:
		if !errors.Is(err, errGone) {
			t.Errorf("Run: got %v, want %v", err, errGone)
		}
	case <-ctx.Done():
		t.Fatal("Run did not return after the dataplane failed")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Run returned %v after the dataplane failed, want at once", d)
	}
	if !f.Closed() {
		t.Error("dataplane after the failure: got open, want closed")
	}
	if log := h.log.String(); strings.Contains(log, "did not stop") {
		t.Errorf("log claims the dataplane did not stop:\n%s", log)
	}
}

func TestReloadAndSourceFailure(t *testing.T) {
	ctx := testCtx(t)
	src := newFakeSource()
	h := newHarness(t, src, true)
	reload := make(chan struct{}, 1)
	h.cfg.Reload = reload
	h.start(ctx)
	src.updates <- registry.Update{Full: true}
	h.waitStarted(ctx)
	reload <- struct{}{}
	select {
	case <-src.reloads:
	case <-ctx.Done():
		t.Fatal("Reload did not reach the source")
	}
	errDown := errors.New("source broke")
	src.fail <- errDown
	select {
	case err := <-h.done:
		if !errors.Is(err, errDown) || !strings.Contains(err.Error(), "peer source") {
			t.Errorf("Run: got %v, want 'peer source: %v'", err, errDown)
		}
	case <-ctx.Done():
		t.Fatal("Run did not return after the source failed")
	}
	if !strings.Contains(h.log.String(), "SIGHUP: re-reading") {
		t.Errorf("no reload log line:\n%s", h.log.String())
	}
}

func TestStartupErrors(t *testing.T) {
	tests := []struct {
		name   string
		static bool
		edit   func(c *Config)
		want   string
	}{
		{"no source", true, func(c *Config) { c.Registry = registry.Settings{} }, "exactly one"},
		{"lease mode with a static subnet", true, func(c *Config) { c.Registry = registry.Settings{Etcd: &registry.EtcdOptions{}} }, "must not be set in etcd mode"},
		{"static without subnet", false, func(c *Config) { c.Registry = registry.Settings{PeersFile: "x"} }, "Subnet: missing"},
		{"lease mode with IPv6 public IP", false, func(c *Config) { c.PublicIP = netip.MustParseAddr("2001:2::1") }, "needs an IPv4 public IP"},
		{"check fails", true, func(c *Config) { c.Check = func(dataplane.Config) error { return errors.New("port taken") } }, "port taken"},
		{"open fails", true, func(c *Config) { c.Opener = (&dataplanetest.Opener{FailOpen: errors.New("no tun")}).Open }, "no tun"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, newFakeSource(), tt.static)
			tt.edit(&h.cfg)
			n, err := New(h.cfg)
			if err == nil {
				err = n.Run(testCtx(t))
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error mentioning %q", err, tt.want)
			}
		})
	}
}

// skipSource is a fake peer source that counts skipped leases.
type skipSource struct {
	*fakeSource
	skipped map[string]uint64
}

func (s skipSource) SkippedLeases() map[string]uint64 { return s.skipped }

// TestSkippedLeasesMetric: a node whose peer source counts skipped leases
// (registry.SkipCounter, the etcd source) reports the counts in Metrics.
func TestSkippedLeasesMetric(t *testing.T) {
	ctx := testCtx(t)
	src := skipSource{newFakeSource(), map[string]uint64{"loop": 4, "subnet": 0}}
	h := newHarness(t, src, true)
	n := h.start(ctx)
	src.updates <- registry.Update{Full: true, Peers: []config.Peer{peer(2)}}
	h.waitStarted(ctx)
	// The collector exports Metrics.SkippedLeases (TestMetricsScrape).
	if got := n.Metrics().SkippedLeases; len(got) != 2 || got["loop"] != 4 || got["subnet"] != 0 {
		t.Errorf("Metrics().SkippedLeases: got %v, want loop 4 and subnet 0", got)
	}
}
