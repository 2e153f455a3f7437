package node

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vxtun/vxtun/config"
	"github.com/vxtun/vxtun/dataplane/dataplanetest"
	"github.com/vxtun/vxtun/hostnet"
	"github.com/vxtun/vxtun/hostnet/hostnettest"
	"github.com/vxtun/vxtun/registry"
)

// waitFor polls cond until it holds, failing t with what when ctx ends.
func waitFor(ctx context.Context, t *testing.T, h *harness, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		if ctx.Err() != nil {
			t.Fatalf("%s: not reached; log:\n%s", what, h.log.String())
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// infoLines returns the log's info lines that contain s.
func infoLines(h *harness, s string) []string {
	var out []string
	for _, l := range strings.Split(h.log.String(), "\n") {
		if strings.Contains(l, "level=INFO") && strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return out
}

func TestPeerFilterFollowsPeers(t *testing.T) {
	addrs := func(is ...int) []netip.Addr {
		var out []netip.Addr
		for _, i := range is {
			out = append(out, peer(i).PublicIP)
		}
		return out
	}
	for _, tt := range []struct {
		name string
		skip bool
		fail error
	}{
		{name: "default"},
		{name: "skipped", skip: true},
		{name: "refused", fail: errors.New("nftables: operation not supported")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testCtx(t)
			src := newFakeSource()
			h := newHarness(t, src, true)
			h.cfg.SkipPeerFilter = tt.skip
			if tt.fail != nil {
				h.cfg.NewHost = func() hostnet.Host {
					f := hostnettest.New()
					f.Fail(hostnettest.SetPeerFilter, tt.fail)
					return f
				}
			}
			n := h.start(ctx)
			src.updates <- registry.Update{Full: true, Peers: []config.Peer{peer(2), peer(3)}}
			if tt.fail != nil {
				select {
				case err := <-h.done:
					if err == nil || !strings.Contains(err.Error(), "--peer-filter=false") || !errors.Is(err, tt.fail) {
						t.Fatalf("Run: got %v, want the peer filter error wrapping %v", err, tt.fail)
					}
				case <-ctx.Done():
					t.Fatal("Run did not fail")
				}
				return
			}
			h.waitStarted(ctx)
			nodeHost := h.host(0)
			port, got, ok := nodeHost.PeerFilter()
			if tt.skip {
				if ok {
					t.Fatalf("filter with --peer-filter=false: got port %d, %v; want none", port, got)
				}
				return
			}
			if !ok || port != 8472 || !slices.Equal(got, addrs(2, 3)) {
				t.Fatalf("filter after the first set: got %v port %d %v; want port 8472 %v", ok, port, got, addrs(2, 3))
			}
			src.updates <- registry.Update{Events: []registry.Event{
				{Type: registry.PeerRemoved, Peer: peer(2)}, {Type: registry.PeerAdded, Peer: peer(4)}}}
			waitFor(ctx, t, h, "filter follows the events", func() bool {
				_, got, _ := nodeHost.PeerFilter()
				return slices.Equal(got, addrs(3, 4))
			})
			nodeHost.AddPeerFilterDrops(7)
			if got := n.Metrics().PeerFilterDrops; got != 7 {
				t.Errorf("PeerFilterDrops: got %d, want 7", got)
			}
			h.cancel()
			if err := <-h.done; err != nil {
				t.Fatalf("Run: %v", err)
			}
			if _, _, ok := nodeHost.PeerFilter(); ok || !nodeHost.Closed() {
				t.Error("the filter stays after shutdown")
			}
		})
	}
}

func TestPeerChangesLogged(t *testing.T) {
	ctx := testCtx(t)
	src := newFakeSource()
	h := newHarness(t, src, true)
	h.start(ctx)
	src.updates <- registry.Update{Full: true, Peers: []config.Peer{peer(2), peer(3)}}
	h.waitStarted(ctx)
	for _, want := range []string{
		`msg="peer joined" peer=node2 public-ip=198.18.0.2 subnets=198.19.2.0/24`,
		`msg="peer joined" peer=node3 public-ip=198.18.0.3 subnets=198.19.3.0/24`,
	} {
		if got := infoLines(h, want); len(got) != 1 {
			t.Errorf("first set: got %d info lines with %s, want 1; log:\n%s", len(got), want, h.log.String())
		}
	}

	moved := peer(3)
	moved.PublicIP = netip.MustParseAddr("198.18.0.33")
	src.updates <- registry.Update{Events: []registry.Event{
		{Type: registry.PeerRemoved, Peer: peer(2)},
		{Type: registry.PeerAdded, Peer: peer(4)},
		{Type: registry.PeerUpdated, Peer: moved},
	}}
	for _, want := range []string{
		`msg="peer left" peer=node2 public-ip=198.18.0.2 subnets=198.19.2.0/24`,
		`msg="peer joined" peer=node4 public-ip=198.18.0.4 subnets=198.19.4.0/24`,
		`msg="peer changed" peer=node3 public-ip=198.18.0.33 subnets=198.19.3.0/24 changed=public-ip was-public-ip=198.18.0.3`,
	} {
		waitFor(ctx, t, h, want, func() bool { return len(infoLines(h, want)) == 1 })
	}
	// The same peers again (a re-list): nothing at info.
	before := len(infoLines(h, "msg=\"peer"))
	src.updates <- registry.Update{Full: true, Peers: []config.Peer{moved, peer(4)}}
	f, err := h.opener.WaitOpened(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Wait(ctx, "three sets", func(f *dataplanetest.Fake) bool { return len(f.PeerSets()) == 3 }); err != nil {
		t.Fatal(err)
	}
	if got := len(infoLines(h, "msg=\"peer")); got != before {
		t.Errorf("unchanged set: got %d new peer lines at info, want 0", got-before)
	}

	// A big change is one summary line at info.
	var big []config.Peer
	for i := 10; i < 10+peerLogLimit+5; i++ {
		p := peer(1)
		p.Name = fmt.Sprintf("big%d", i)
		p.PublicIP = netip.AddrFrom4([4]byte{198, 18, 0, byte(i)})
		p.Subnets = []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 19, byte(i), 0}), 24)}
		big = append(big, p)
	}
	src.updates <- registry.Update{Full: true, Peers: big}
	want := fmt.Sprintf(`msg="peers changed" joined=%d left=2 changed=0 peers=%d`, len(big), len(big))
	waitFor(ctx, t, h, want, func() bool { return len(infoLines(h, want)) == 1 })
	if got := len(infoLines(h, "msg=\"peer joined\" peer=big")); got != 0 {
		t.Errorf("big change: got %d per-peer lines at info, want 0 (they are at debug)", got)
	}
	if got := strings.Count(h.log.String(), "level=DEBUG msg=\"peer joined\" peer=big"); got != len(big) {
		t.Errorf("big change: got %d per-peer lines at debug, want %d", got, len(big))
	}
}

func TestSourceRejectionCounted(t *testing.T) {
	ctx := testCtx(t)
	src := newFakeSource()
	h := newHarness(t, src, true)
	reload := make(chan struct{}, 1)
	h.cfg.Reload = reload
	n := h.start(ctx)
	src.updates <- registry.Update{Full: true, Peers: []config.Peer{peer(2)}}
	h.waitStarted(ctx)
	if !n.Metrics().Forwarding {
		t.Error("Forwarding (healthz) after start: got false, want true")
	}
	src.updates <- registry.Update{Rejected: errors.New("peers.json:1:2: JSON syntax error")}
	waitFor(ctx, t, h, "the rejection counted", func() bool { return n.Metrics().PeerUpdateErrors == 1 })
	f, _ := h.opener.WaitOpened(ctx, 1)
	if got := f.Peers(); len(got) != 1 || got[0].Name != "node2" {
		t.Errorf("peers after a rejected file: got %v, want [node2]", got)
	}
	if got := n.Metrics().PeerUpdates; got != 1 {
		t.Errorf("peer updates after a rejected file: got %d, want 1", got)
	}

	// SIGHUP: the source logs the outcome; the node adds no info line.
	reload <- struct{}{}
	select {
	case <-src.reloads:
	case <-ctx.Done():
		t.Fatal("Reload did not reach the source")
	}
	if got := infoLines(h, "SIGHUP"); len(got) != 0 {
		t.Errorf("SIGHUP: got info lines %q from the node, want none", got)
	}
	h.cancel()
	if err := <-h.done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if n.Metrics().Forwarding {
		t.Error("Forwarding (healthz) after shutdown: got true, want false")
	}
}
