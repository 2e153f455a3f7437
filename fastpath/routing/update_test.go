package routing

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
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
		g := got.Routes()[i]
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
