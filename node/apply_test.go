package node

import (
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/vxtun/vxtun/config"
	"github.com/vxtun/vxtun/dataplane"
	"github.com/vxtun/vxtun/hostnet"
	"github.com/vxtun/vxtun/registry"
)

// nopDataplane and nopHost accept every peer set and do nothing else, so
// a benchmark of the node's apply path measures the node's own work
// (the dataplane's and the filter's are measured where they live:
// fastpath's BenchmarkSetPeers, bench.RunControlPlane).
type nopDataplane struct{ dataplane.Dataplane }

func (nopDataplane) SetPeers([]config.Peer) error { return nil }

type nopHost struct{ hostnet.Host }

func (nopHost) SetPeerFilter(uint16, []netip.Addr) error { return nil }

// applyPeers returns n peers as a 5 000-node cluster has them (names in
// sorted order, as registry.Apply returns them).
func applyPeers(n int) []config.Peer {
	peers := make([]config.Peer, n)
	for i := range peers {
		off := (i + 2) << 3
		peers[i] = config.Peer{Name: fmt.Sprintf("node-%04d", i),
			PublicIP: netip.AddrFrom4([4]byte{198, 18, byte(1 + i/250), byte(1 + i%250)}),
			Backend:  config.BackendVXLAN, VNI: 1, VtepMAC: net.HardwareAddr{0x0e, 0, 0, 0, byte(i >> 8), byte(i)},
			Subnets: []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 19, byte(off >> 8), byte(off)}), 29)}}
	}
	return peers
}

// moved is p on another underlay address.
func moved(p config.Peer) config.Peer {
	a := p.PublicIP.As4()
	a[2] ^= 0x80
	p.PublicIP = netip.AddrFrom4(a)
	return p
}

// BenchmarkApplyUpdate: the node's work for one update of a 5 000-peer set
// that moves one peer, as a watching registry (etcd, Kubernetes) sends it
// (one event) and as the static file sends it (the whole set): folding it
// into the peer set, the peer filter's address list, the join/leave/change
// log. p50/p99 per update, bytes and allocations per update.
func BenchmarkApplyUpdate(b *testing.B) {
	for _, kind := range []string{"event", "full"} {
		b.Run(kind+"/peers=5000", func(b *testing.B) {
			n := &Node{log: slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))}
			base := applyPeers(5000)
			peers := nextPeers(nil, registry.Update{Full: true, Peers: base})
			cur := slices.Clone(base)
			ds := make([]time.Duration, 0, 4096)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				k := (i * 7919) % len(cur)
				cur[k] = moved(cur[k])
				u := registry.Update{Events: []registry.Event{{Type: registry.PeerUpdated, Peer: cur[k]}}}
				if kind == "full" {
					u = registry.Update{Full: true, Peers: cur}
				}
				t0 := time.Now()
				n.applyUpdate(nopDataplane{}, nopHost{}, 8472, &peers, u)
				if len(ds) < cap(ds) {
					ds = append(ds, time.Since(t0))
				}
			}
			if got := n.updates.Load(); got != uint64(b.N) {
				b.Fatalf("got %d updates applied, want %d", got, b.N)
			}
			slices.Sort(ds)
			b.ReportMetric(float64(ds[len(ds)/2])/1e3, "p50-µs")
			b.ReportMetric(float64(ds[len(ds)*99/100])/1e3, "p99-µs")
		})
	}
}

// TestApplyUpdateBytes: applying a one-peer event to a 5 000-peer set
// allocates bounded memory in the node (the dataplane and filter aside).
func TestApplyUpdateBytes(t *testing.T) {
	n := &Node{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	cur := applyPeers(5000)
	peers := nextPeers(nil, registry.Update{Full: true, Peers: cur})
	const runs = 50
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	for i := range runs {
		k := (i * 7919) % len(cur)
		cur[k] = moved(cur[k])
		n.applyUpdate(nopDataplane{}, nopHost{}, 8472, &peers,
			registry.Update{Events: []registry.Event{{Type: registry.PeerUpdated, Peer: cur[k]}}})
	}
	runtime.ReadMemStats(&m1)
	if !slices.EqualFunc(peers, cur, func(a, b config.Peer) bool { return a.Name == b.Name && a.PublicIP == b.PublicIP }) {
		t.Fatalf("got a peer set different from the one sent")
	}
	per := (m1.TotalAlloc - m0.TotalAlloc) / runs
	t.Logf("%d bytes per one-peer update of 5000 in the node", per)
	if limit := uint64(1 << 20); per > limit {
		t.Errorf("got %d bytes allocated per update, want ≤ %d", per, limit)
	}
}

// TestNextPeers: folding random updates (events few and many, full sets
// sorted, unsorted and with a name twice) one after another gives what
// registry.Apply gives with its map, and never changes the set it was
// given.
func TestNextPeers(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	pool := applyPeers(300)
	peerSet := map[string]config.Peer{}
	var cur []config.Peer
	for step := range 300 {
		var u registry.Update
		switch r := rng.IntN(10); {
		case r == 0: // a full set, in random order, maybe with a name twice
			u.Full = true
			for _, i := range rng.Perm(len(pool))[:rng.IntN(len(pool))] {
				u.Peers = append(u.Peers, pool[i])
			}
			if rng.IntN(2) == 0 && len(u.Peers) > 1 {
				u.Peers = append(u.Peers, moved(u.Peers[0]))
			}
		case r == 1: // a full set, sorted, maybe with a name twice in a row (the last wins)
			u.Full = true
			u.Peers = slices.Clone(pool[:1+rng.IntN(len(pool)-1)])
			if rng.IntN(2) == 0 {
				k := rng.IntN(len(u.Peers))
				u.Peers = slices.Insert(u.Peers, k+1, moved(u.Peers[k]))
			}
		default: // events: 1-3, or a re-list's worth
			k := 1 + rng.IntN(3)
			if r == 2 {
				k = maxEventsInPlace + 1 + rng.IntN(100)
			}
			for range k {
				p := pool[rng.IntN(len(pool))]
				if rng.IntN(2) == 0 {
					p = moved(p)
				}
				u.Events = append(u.Events, registry.Event{Type: []registry.EventType{registry.PeerAdded,
					registry.PeerUpdated, registry.PeerRemoved}[rng.IntN(3)], Peer: p})
			}
		}
		before := slices.Clone(cur)
		got := nextPeers(cur, u)
		want := registry.Apply(peerSet, u)
		if !slices.EqualFunc(got, want, func(a, b config.Peer) bool { return a.Name == b.Name && a.PublicIP == b.PublicIP }) {
			t.Fatalf("step %d (full %v, %d events): got %d peers, want %d as registry.Apply folds them", step, u.Full, len(u.Events), len(got), len(want))
		}
		if !slices.EqualFunc(cur, before, func(a, b config.Peer) bool { return a.Name == b.Name && a.PublicIP == b.PublicIP }) {
			t.Fatalf("step %d: nextPeers changed the set it was given", step)
		}
		cur = got
	}
}
