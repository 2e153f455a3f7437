package routing

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"testing"

	"github.com/vxtun/vxtun/config"
)

func updatePeers(n int) []config.Peer {
	peers := make([]config.Peer, n)
	for i := range peers {
		peers[i] = config.Peer{Name: fmt.Sprintf("n%03d", i), PublicIP: netip.AddrFrom4([4]byte{198, 18, 0, byte(1 + i%3)}),
			Backend: config.BackendVXLAN, VNI: 1, VtepMAC: net.HardwareAddr{0x0e, 0, 0, 0, 0, byte(i)},
			Subnets: []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, byte(i), 0}), 24)}}
	}
	return peers
}

// sameTable checks that got routes every probe as want does and has the
// same routes, indexes and underlay index.
func sameTable(t *testing.T, got, want *Table) {
	t.Helper()
	if got.Len() != want.Len() || got.IndexLimit() != want.IndexLimit() {
		t.Fatalf("got %d routes (limit %d), want %d (%d)", got.Len(), got.IndexLimit(), want.Len(), want.IndexLimit())
	}
	for i, r := range want.Routes() {
		g := got.Route(i)
		if g.Name != r.Name || g.Index != r.Index || g.Underlay != r.Underlay || g.VtepMAC != r.VtepMAC || g.VNI != r.VNI ||
			!slices.Equal(g.Prefixes, r.Prefixes) || g.Sockaddr.AddrPort() != r.Sockaddr.AddrPort() {
			t.Errorf("route %d: got %+v, want %+v", i, g, r)
		}
	}
	for i := range 256 {
		dst := []byte{10, 0, byte(i), 9}
		g, w := got.Lookup(dst), want.Lookup(dst)
		if (g == nil) != (w == nil) || (g != nil && g.Name != w.Name) {
			t.Errorf("lookup %v: got %v, want %v", dst, g, w)
		}
	}
	for i := range 6 {
		a := netip.AddrFrom4([4]byte{198, 18, 0, byte(i)})
		g, w := got.LookupUnderlay(a), want.LookupUnderlay(a)
		if (g == nil) != (w == nil) || (g != nil && g.Name != w.Name) {
			t.Errorf("underlay %v: got %v, want %v", a, g, w)
		}
	}
}

func TestUpdate(t *testing.T) {
	badVNI := errors.New("vni 7 refused")
	check := func(p *config.Peer) error {
		if p.VNI == 7 {
			return badVNI
		}
		return nil
	}
	tests := []struct {
		name        string
		edit        func(p []config.Peer) []config.Peer
		incremental bool  // the tries are shared with the previous table
		wantErr     error // nil: must equal a fresh build
	}{
		{"unchanged", func(p []config.Peer) []config.Peer { return p }, true, nil},
		{"mac changed", func(p []config.Peer) []config.Peer { p[5].VtepMAC = net.HardwareAddr{0x0e, 1, 2, 3, 4, 5}; return p }, true, nil},
		{"moved to a new address", func(p []config.Peer) []config.Peer {
			p[0].PublicIP = netip.MustParseAddr("198.18.0.5")
			return p
		}, true, nil},
		{"moved to a shared address", func(p []config.Peer) []config.Peer {
			p[1].PublicIP = netip.MustParseAddr("198.18.0.1") // n000's too: n000 stays first
			return p
		}, true, nil},
		{"port changed", func(p []config.Peer) []config.Peer { p[2].Port = 4789; return p }, true, nil},
		{"invalid change", func(p []config.Peer) []config.Peer { p[3].PublicIP = netip.IPv4Unspecified(); return p }, true, ErrInvalidPeer},
		{"refused by check", func(p []config.Peer) []config.Peer { p[3].VNI = 7; return p }, true, badVNI},
		{"subnet changed", func(p []config.Peer) []config.Peer {
			p[4].Subnets = []netip.Prefix{netip.MustParsePrefix("10.1.4.0/24")}
			return p
		}, false, nil},
		{"peer added", func(p []config.Peer) []config.Peer { return append(p, updatePeers(12)[11]) }, false, nil},
		{"peer removed", func(p []config.Peer) []config.Peer { return p[1:] }, false, nil},
		{"reordered", func(p []config.Peer) []config.Peer { p[0], p[1] = p[1], p[0]; return p }, false, nil},
		{"duplicate prefix on a rebuild", func(p []config.Peer) []config.Peer {
			p[6].Subnets = p[7].Subnets
			return p
		}, false, ErrDuplicatePrefix},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prev, err := Update(nil, updatePeers(10), check)
			if err != nil {
				t.Fatal(err)
			}
			next := tt.edit(updatePeers(10))
			got, err := Update(prev, next, check)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("got error %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if shared := len(got.v4.nodes) > 0 && &got.v4.nodes[0] == &prev.v4.nodes[0]; shared != tt.incremental {
				t.Errorf("got tries shared %v, want %v", shared, tt.incremental)
			}
			b := NewBuilder(prev)
			for _, p := range next {
				if err := b.Add(p); err != nil {
					t.Fatal(err)
				}
			}
			want, err := b.Build()
			if err != nil {
				t.Fatal(err)
			}
			sameTable(t, got, want)
			// The caller may reuse its slices: the table kept copies.
			next[0].Subnets[0] = netip.MustParsePrefix("10.9.9.0/24")
			if again, err := Update(got, tt.edit(updatePeers(10)), check); err != nil || again != got {
				t.Errorf("the same set again: got a new table (%v), want the same one", err)
			}
		})
	}
}

// TestUpdateIncrementalAllocs: an update that changes one of 250 peers
// allocates a fixed number of objects, not one per peer.
func TestUpdateIncrementalAllocs(t *testing.T) {
	peers := updatePeers(250)
	tb, err := Update(nil, peers, nil)
	if err != nil {
		t.Fatal(err)
	}
	i := 0
	allocs := testing.AllocsPerRun(50, func() {
		peers[7].Port = uint16(5000 + i%2)
		i++
		if tb, err = Update(tb, peers, nil); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 10 {
		t.Errorf("got %v allocs per one-peer update of 250, want ≤ 10", allocs)
	}
}

// chunkPeers returns n peers with subnets 10.<i/256>.<i%256>.0/24 and
// public IPs from a pool of 40 (so several peers share one), spanning
// several route chunks.
func chunkPeers(n int) []config.Peer {
	peers := make([]config.Peer, n)
	for i := range peers {
		peers[i] = config.Peer{Name: fmt.Sprintf("n%05d", i), PublicIP: netip.AddrFrom4([4]byte{198, 18, 1, byte(1 + i%40)}),
			Backend: config.BackendVXLAN, VNI: 1, VtepMAC: net.HardwareAddr{0x0e, 0, 0, 0, byte(i >> 8), byte(i)},
			Subnets: []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}), 24)}}
	}
	return peers
}

// TestUpdateChunks: incremental updates of a set of several chunks, each
// changing peers in one or more chunks (moves, to addresses other peers
// have too, and back; MAC and port changes), give the table a fresh build
// gives, with the same layout, and leave the previous table as it was.
func TestUpdateChunks(t *testing.T) {
	const n = 5*chunkLen + 17
	rng := rand.New(rand.NewPCG(1, 2))
	cur := chunkPeers(n)
	tb, err := Update(nil, cur, nil)
	if err != nil {
		t.Fatal(err)
	}
	// describe flattens what a table answers: every route, each peer's
	// subnet lookup and every underlay address's lookup.
	describe := func(tb *Table) []string {
		var d []string
		for i, r := range tb.Routes() {
			d = append(d, fmt.Sprintf("%d %s %d %v %x %d %v", i, r.Name, r.Index, r.Underlay, r.VtepMAC, r.VNI, r.Sockaddr.AddrPort()))
		}
		for i := range n {
			if r := tb.Lookup([]byte{10, byte(i >> 8), byte(i), 1}); r != nil {
				d = append(d, "route "+r.Name)
			} else {
				d = append(d, "no route")
			}
		}
		for h := range 64 {
			if r := tb.LookupUnderlay(netip.AddrFrom4([4]byte{198, 18, 1, byte(h)})); r != nil {
				d = append(d, "underlay "+r.Name)
			} else {
				d = append(d, "no underlay")
			}
		}
		return d
	}
	for step := range 200 {
		next := slices.Clone(cur)
		for range 1 + rng.IntN(4) {
			k := rng.IntN(n)
			switch rng.IntN(3) {
			case 0:
				next[k].PublicIP = netip.AddrFrom4([4]byte{198, 18, 1, byte(1 + rng.IntN(60))})
			case 1:
				next[k].VtepMAC = net.HardwareAddr{0x0e, 1, 0, byte(step), byte(k >> 8), byte(k)}
			default:
				next[k].Port = uint16(8472 + rng.IntN(3))
			}
		}
		before := describe(tb)
		got, err := Update(tb, next, nil)
		if err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		want, err := NewTable(next)
		if err != nil {
			t.Fatal(err)
		}
		if g, w := describe(got), describe(want); !slices.Equal(g, w) {
			t.Fatalf("step %d: got a table different from a fresh build:\n got %v\nwant %v", step, diff(g, w), diff(w, g))
		}
		if !got.SameLayout(tb) {
			t.Fatalf("step %d: got SameLayout false for an incremental update, want true", step)
		}
		if after := describe(tb); !slices.Equal(before, after) {
			t.Fatalf("step %d: the previous table changed: %v", step, diff(after, before))
		}
		tb, cur = got, next
	}
	added, err := Update(tb, append(slices.Clone(cur), chunkPeers(n + 1)[n]), nil)
	if err != nil {
		t.Fatal(err)
	}
	if added.SameLayout(tb) {
		t.Errorf("a peer added: got SameLayout true, want false")
	}
}

// diff returns the elements of a that b lacks (at most 5).
func diff(a, b []string) []string {
	var d []string
	for _, s := range a {
		if !slices.Contains(b, s) && len(d) < 5 {
			d = append(d, s)
		}
	}
	return d
}

// TestUpdateBytesAt5000: a one-peer move in a 5 000-peer table allocates
// a few chunks' worth, not a copy of the table (1.8 MB before chunking).
func TestUpdateBytesAt5000(t *testing.T) {
	peers := chunkPeers(5000)
	tb, err := Update(nil, peers, nil)
	if err != nil {
		t.Fatal(err)
	}
	const runs = 100
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	for i := range runs {
		k := (i * 7919) % len(peers)
		peers[k].PublicIP = netip.AddrFrom4([4]byte{198, 18, 2, byte(i)})
		if tb, err = Update(tb, peers, nil); err != nil {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&m1)
	if per := (m1.TotalAlloc - m0.TotalAlloc) / runs; per > 64<<10 {
		t.Errorf("got %d bytes allocated per one-peer update of 5000, want ≤ 64 KiB", per)
	} else {
		t.Logf("%d bytes per one-peer update of 5000", per)
	}
}
