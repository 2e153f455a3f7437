package routing

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/vxtun/vxtun/config"
)

var testMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 1}

func peer(name, ip string, subnets ...string) config.Peer {
	p := config.Peer{
		Name:     name,
		PublicIP: netip.MustParseAddr(ip),
		Backend:  config.BackendVXLAN,
		VNI:      1,
		VtepMAC:  testMAC,
	}
	for _, s := range subnets {
		p.Subnets = append(p.Subnets, netip.MustParsePrefix(s))
	}
	return p
}

func mustTable(t testing.TB, peers ...config.Peer) *Table {
	t.Helper()
	tb, err := NewTable(peers)
	if err != nil {
		t.Fatalf("NewTable: %v", err)
	}
	return tb
}

func TestLookupLongestPrefix(t *testing.T) {
	tb := mustTable(t,
		peer("default", "198.18.0.1", "0.0.0.0/0", "::/0"),
		peer("ten", "198.18.0.2", "10.0.0.0/8", "fd00::/8"),
		peer("ten-one", "198.18.0.3", "10.1.0.0/16", "fd00:1::/32"),
		peer("ten-one-two", "198.18.0.4", "10.1.2.0/24", "fd00:1:0:2::/64"),
		peer("upper-half", "198.18.0.5", "10.1.2.128/25", "fd00:1:0:2:8000::/65"),
		peer("host", "198.18.0.6", "10.1.2.3/32", "fd00:1:0:2::3/128"),
		peer("odd", "198.18.0.7", "172.16.0.0/12", "2001:db8::/29"),
		peer("host-in-upper", "198.18.0.8", "10.1.2.200/32"),
	)
	tests := []struct {
		dst  string
		want string
	}{
		{"10.1.2.3", "host"},
		{"10.1.2.4", "ten-one-two"},
		{"10.1.2.2", "ten-one-two"},
		{"10.1.2.127", "ten-one-two"},
		{"10.1.2.128", "upper-half"},
		{"10.1.2.200", "host-in-upper"},
		{"10.1.2.255", "upper-half"},
		{"10.1.3.1", "ten-one"},
		{"10.1.255.255", "ten-one"},
		{"10.2.0.1", "ten"},
		{"10.255.255.255", "ten"},
		{"11.0.0.0", "default"},
		{"0.0.0.0", "default"},
		{"255.255.255.255", "default"},
		{"172.16.0.1", "odd"},
		{"172.31.255.255", "odd"},
		{"172.32.0.0", "default"},
		{"172.15.255.255", "default"},
		{"fd00:1:0:2::3", "host"},
		{"fd00:1:0:2::4", "ten-one-two"},
		{"fd00:1:0:2:8000::1", "upper-half"},
		{"fd00:1:0:3::1", "ten-one"},
		{"fd00:2::1", "ten"},
		{"fdff::1", "ten"},
		{"fe80::1", "default"},
		{"2001:db8::1", "odd"},
		{"2001:dbf:ffff::1", "odd"},
		{"2001:dc0::1", "default"},
		{"::ffff:10.1.2.3", "host"}, // LookupAddr unmaps
	}
	for _, tt := range tests {
		a := netip.MustParseAddr(tt.dst)
		r := lookupAddr(tb, a)
		if r == nil {
			t.Errorf("LookupAddr(%s): got nil, want %s", tt.dst, tt.want)
			continue
		}
		if r.Name != tt.want {
			t.Errorf("LookupAddr(%s): got %s, want %s", tt.dst, r.Name, tt.want)
		}
		if a.Is4() || a.Is4In6() {
			b := a.Unmap().As4()
			if r2 := tb.Lookup(b[:]); r2 != r {
				t.Errorf("Lookup(%s raw) = %v, want the same route as LookupAddr", tt.dst, r2)
			}
		} else {
			b := a.As16()
			if r2 := tb.Lookup(b[:]); r2 != r {
				t.Errorf("Lookup(%s raw) = %v, want the same route as LookupAddr", tt.dst, r2)
			}
		}
	}
}

func TestLookupMiss(t *testing.T) {
	tb := mustTable(t,
		peer("a", "198.18.0.1", "10.0.0.0/24", "fd00::/64"),
		peer("b", "198.18.0.2", "10.0.1.5/32"),
		peer("empty", "198.18.0.3"),
	)
	for _, dst := range []string{"10.0.1.4", "10.0.1.6", "10.0.2.0", "9.255.255.255", "fd00:0:0:1::", "::", "8.8.8.8"} {
		if r := lookupAddr(tb, netip.MustParseAddr(dst)); r != nil {
			t.Errorf("LookupAddr(%s): got %s, want nil", dst, r.Name)
		}
	}
	for _, n := range []int{0, 1, 3, 5, 15, 17} {
		if r := tb.Lookup(make([]byte, n)); r != nil {
			t.Errorf("Lookup(%d bytes): got %s, want nil", n, r.Name)
		}
	}
	var nilTable *Table
	if r := nilTable.Lookup([]byte{10, 0, 0, 1}); r != nil || nilTable.Len() != 0 || nilTable.LookupUnderlay(netip.MustParseAddr("198.18.0.1")) != nil {
		t.Errorf("nil table routes something")
	}
	if r := (&Table{}).Lookup([]byte{10, 0, 0, 1}); r != nil {
		t.Errorf("zero table: got %s, want nil", r.Name)
	}
	if r := lookupAddr((&Holder{}).Load(), netip.MustParseAddr("10.0.0.1")); r != nil {
		t.Errorf("zero holder: got %s, want nil", r.Name)
	}
}

func TestRouteFields(t *testing.T) {
	p := peer("n1", "198.18.0.9", "10.244.1.0/24", "10.244.1.0/24", "10.244.1.77/24")
	p.VNI = 4096
	p.VtepMAC = net.HardwareAddr{0x0a, 1, 2, 3, 4, 5}
	u := config.Peer{Name: "u1", PublicIP: netip.MustParseAddr("::ffff:198.18.0.10"), Backend: config.BackendUDP,
		Subnets: []netip.Prefix{netip.MustParsePrefix("10.244.2.0/24")}}
	six := peer("six", "2001:db8::5", "fd00:5::/64")
	six.Port = 4789
	tb := mustTable(t, p, u, six)
	r := byName(tb, "n1")
	if r == nil {
		t.Fatal("ByName(n1) = nil")
	}
	if got, want := r.Underlay, netip.MustParseAddrPort("198.18.0.9:8472"); got != want {
		t.Errorf("n1 underlay: got %s, want %s", got, want)
	}
	if got := r.Sockaddr.AddrPort(); got != r.Underlay || !r.Sockaddr.IsValid() {
		t.Errorf("n1 sockaddr: got %s (valid %v), want %s", got, r.Sockaddr.IsValid(), r.Underlay)
	}
	if r.VNI != 4096 || r.VtepMAC != [6]byte{0x0a, 1, 2, 3, 4, 5} || r.Backend != config.BackendVXLAN {
		t.Errorf("n1: got VNI %d MAC %x backend %s, want 4096 0a0102030405 vxlan", r.VNI, r.VtepMAC, r.Backend)
	}
	if got := fmt.Sprint(r.Prefixes); got != "[10.244.1.0/24]" {
		t.Errorf("n1 prefixes (deduplicated, masked): got %s, want [10.244.1.0/24]", got)
	}
	ru := byName(tb, "u1")
	if got, want := ru.Underlay, netip.MustParseAddrPort("198.18.0.10:8285"); got != want {
		t.Errorf("u1 underlay: got %s, want %s (unmapped, udp default port)", got, want)
	}
	if got, want := byName(tb, "six").Underlay, netip.MustParseAddrPort("[2001:db8::5]:4789"); got != want {
		t.Errorf("six underlay: got %s, want %s", got, want)
	}
	for _, tt := range []struct{ ip, want string }{
		{"198.18.0.9", "n1"}, {"::ffff:198.18.0.10", "u1"}, {"2001:db8::5", "six"},
	} {
		r := tb.LookupUnderlay(netip.MustParseAddr(tt.ip))
		if r == nil || r.Name != tt.want {
			t.Errorf("LookupUnderlay(%s): got %v, want %s", tt.ip, r, tt.want)
		}
	}
	if r := tb.LookupUnderlay(netip.MustParseAddr("198.18.0.11")); r != nil {
		t.Errorf("LookupUnderlay(unknown): got %s, want nil", r.Name)
	}
	if tb.Len() != 3 || tb.IndexLimit() != 3 {
		t.Errorf("Len %d IndexLimit %d, want 3 3", tb.Len(), tb.IndexLimit())
	}
}

func TestBuildRejectsInvalidPeers(t *testing.T) {
	ok := peer("ok", "198.18.0.1", "10.0.0.0/24")
	mod := func(f func(p *config.Peer)) config.Peer {
		p := ok
		p.Subnets = append([]netip.Prefix(nil), ok.Subnets...)
		f(&p)
		return p
	}
	tests := []struct {
		name  string
		peers []config.Peer
		want  string
	}{
		{"no VtepMAC", []config.Peer{mod(func(p *config.Peer) { p.VtepMAC = nil })}, "needs a VtepMAC"},
		{"short MAC", []config.Peer{mod(func(p *config.Peer) { p.VtepMAC = testMAC[:5] })}, "not a 6-byte MAC"},
		{"multicast MAC", []config.Peer{mod(func(p *config.Peer) { p.VtepMAC = net.HardwareAddr{1, 0, 0x5e, 0, 0, 1} })}, "not a unicast MAC"},
		{"zero MAC", []config.Peer{mod(func(p *config.Peer) { p.VtepMAC = make(net.HardwareAddr, 6) })}, "not a unicast MAC"},
		{"no IP", []config.Peer{mod(func(p *config.Peer) { p.PublicIP = netip.Addr{} })}, "no public IP"},
		{"unspecified IP", []config.Peer{mod(func(p *config.Peer) { p.PublicIP = netip.IPv4Unspecified() })}, "not a unicast address"},
		{"multicast IP", []config.Peer{mod(func(p *config.Peer) { p.PublicIP = netip.MustParseAddr("239.1.1.1") })}, "not a unicast address"},
		{"empty name", []config.Peer{mod(func(p *config.Peer) { p.Name = "" })}, "empty name"},
		{"duplicate name", []config.Peer{ok, mod(func(p *config.Peer) { p.Subnets = nil })}, "duplicate name"},
		{"duplicate prefix", []config.Peer{ok, mod(func(p *config.Peer) { p.Name = "other" })}, "prefix routed to two peers"},
		{"duplicate prefix unmasked", []config.Peer{ok, mod(func(p *config.Peer) {
			p.Name = "other"
			p.Subnets = []netip.Prefix{netip.MustParsePrefix("10.0.0.9/24")}
		})}, "prefix routed to two peers"},
		{"invalid subnet", []config.Peer{mod(func(p *config.Peer) { p.Subnets = append(p.Subnets, netip.Prefix{}) })}, "invalid subnet"},
		{"no backend", []config.Peer{mod(func(p *config.Peer) { p.Backend = "" })}, "no backend"},
		{"unknown backend", []config.Peer{mod(func(p *config.Peer) { p.Backend = "wireguard" })}, `unknown backend "wireguard"`},
		{"VNI too big", []config.Peer{mod(func(p *config.Peer) { p.VNI = 1 << 24 })}, "does not fit in 24 bits"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb, err := NewTable(tt.peers)
			if err == nil {
				t.Fatalf("got table with %d routes, want error containing %q", tb.Len(), tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got error %q, want it to contain %q", err, tt.want)
			}
			if !errors.Is(err, ErrInvalidPeer) && !errors.Is(err, ErrDuplicatePrefix) {
				t.Errorf("error %q wraps neither ErrInvalidPeer nor ErrDuplicatePrefix", err)
			}
		})
	}
	// A udp-backend peer needs no MAC, and VNI is ignored.
	u := mod(func(p *config.Peer) { p.Backend = config.BackendUDP; p.VtepMAC = nil; p.VNI = 1 << 30 })
	if _, err := NewTable([]config.Peer{u}); err != nil {
		t.Errorf("udp peer without MAC: got %v, want no error", err)
	}
}

func TestHolderSwapKeepsOldOnError(t *testing.T) {
	var h Holder
	if _, err := swap(&h, []config.Peer{peer("a", "198.18.0.1", "10.0.0.0/24")}); err != nil {
		t.Fatal(err)
	}
	old := h.Load()
	bad := peer("b", "198.18.0.2", "10.0.1.0/24")
	bad.VtepMAC = nil
	if _, err := swap(&h, []config.Peer{peer("a", "198.18.0.1", "10.0.0.0/24"), bad}); err == nil {
		t.Fatal("Swap with an invalid peer: got nil error")
	}
	if h.Load() != old {
		t.Error("failed Swap replaced the table")
	}
	if r := lookupAddr(h.Load(), netip.MustParseAddr("10.0.0.1")); r == nil || r.Name != "a" {
		t.Errorf("after failed Swap: got %v, want route a", r)
	}
}

func TestIndexStableAcrossSwaps(t *testing.T) {
	var h Holder
	t1, err := swap(&h, []config.Peer{
		peer("a", "198.18.0.1", "10.0.0.0/24"),
		peer("b", "198.18.0.2", "10.0.1.0/24"),
		peer("c", "198.18.0.3", "10.0.2.0/24"),
	})
	if err != nil {
		t.Fatal(err)
	}
	idx := map[string]int{}
	for _, r := range t1.Routes() {
		idx[r.Name] = r.Index
	}
	// b goes away, d arrives (and takes b's free index), c moves first.
	t2, err := swap(&h, []config.Peer{
		peer("c", "198.18.0.3", "10.0.2.0/24"),
		peer("d", "198.18.0.4", "10.0.3.0/24"),
		peer("a", "198.18.0.1", "10.0.0.0/24"),
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"a", "c"} {
		if got := byName(t2, n).Index; got != idx[n] {
			t.Errorf("%s: index got %d, want %d (kept)", n, got, idx[n])
		}
	}
	if got := byName(t2, "d").Index; got != idx["b"] {
		t.Errorf("d: index got %d, want %d (b's freed slot)", got, idx["b"])
	}
	if t2.IndexLimit() != 3 {
		t.Errorf("IndexLimit: got %d, want 3", t2.IndexLimit())
	}
	seen := map[int]string{}
	for _, r := range t2.Routes() {
		if o, dup := seen[r.Index]; dup {
			t.Errorf("index %d used by %s and %s", r.Index, o, r.Name)
		}
		seen[r.Index] = r.Name
	}
}

// naive is the reference: scan every prefix, keep the longest match.
type naive struct {
	pfx  []netip.Prefix
	name []string
}

func (n *naive) lookup(a netip.Addr) string {
	best, bits := "", -1
	for i, p := range n.pfx {
		if p.Contains(a) && p.Bits() > bits {
			best, bits = n.name[i], p.Bits()
		}
	}
	return best
}

func randPrefix(r *rand.Rand, v6 bool) netip.Prefix {
	var a netip.Addr
	var maxBits int
	if v6 {
		var b [16]byte
		// Few distinct leading bytes so prefixes nest and overlap often.
		b[0] = 0xfd
		b[1] = byte(r.IntN(3))
		for i := 2; i < 16; i++ {
			b[i] = byte(r.IntN(4)) * 0x40
		}
		a, maxBits = netip.AddrFrom16(b), 128
	} else {
		var b [4]byte
		b[0] = 10 + byte(r.IntN(2))
		for i := 1; i < 4; i++ {
			b[i] = byte(r.IntN(4)) * 0x40
		}
		a, maxBits = netip.AddrFrom4(b), 32
	}
	bits := r.IntN(maxBits + 1)
	if r.IntN(4) == 0 {
		bits = maxBits - r.IntN(3) // plenty of host routes
	}
	p, _ := a.Prefix(bits)
	return p
}

func randAddrNear(r *rand.Rand, p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	// Flip some random low bits so the address lands inside or just outside.
	for k := r.IntN(4); k > 0; k-- {
		i := r.IntN(len(b) * 8)
		b[i/8] ^= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

func TestLookupMatchesNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < 30; round++ {
		var peers []config.Peer
		ref := &naive{}
		used := map[netip.Prefix]bool{}
		npeers := 1 + r.IntN(40)
		for i := 0; i < npeers; i++ {
			p := peer(fmt.Sprintf("p%d", i), fmt.Sprintf("198.18.0.%d", i+1))
			for k := r.IntN(6); k > 0; k-- {
				pfx := randPrefix(r, r.IntN(2) == 0)
				if used[pfx] {
					continue
				}
				used[pfx] = true
				p.Subnets = append(p.Subnets, pfx)
				ref.pfx = append(ref.pfx, pfx)
				ref.name = append(ref.name, p.Name)
			}
			peers = append(peers, p)
		}
		tb := mustTable(t, peers...)
		check := func(a netip.Addr) {
			want := ref.lookup(a)
			got := ""
			if rt := lookupAddr(tb, a); rt != nil {
				got = rt.Name
			}
			if got != want {
				t.Fatalf("round %d: LookupAddr(%s): got %q, want %q", round, a, got, want)
			}
		}
		for _, p := range ref.pfx {
			for k := 0; k < 20; k++ {
				check(randAddrNear(r, p))
			}
		}
		for k := 0; k < 500; k++ {
			check(randAddrNear(r, randPrefix(r, r.IntN(2) == 0)))
		}
	}
}

func TestLookupZeroAllocs(t *testing.T) {
	tb := benchTable(t, 1000)
	dst4 := []byte{10, 0, 3, 7}
	dst6 := netip.MustParseAddr("fd00:0:0:3::7").AsSlice()
	var hits int
	allocs := testing.AllocsPerRun(1000, func() {
		if tb.Lookup(dst4) != nil {
			hits++
		}
		if tb.Lookup(dst6) != nil {
			hits++
		}
		if tb.LookupUnderlay(netip.AddrFrom4([4]byte{198, 18, 3, 7})) != nil {
			hits++
		}
	})
	if allocs != 0 {
		t.Errorf("lookup: got %v allocs per run, want 0", allocs)
	}
	if hits == 0 {
		t.Error("no lookup hit")
	}
}

// TestSwapUnderLoad: readers look up addresses routed in both the old and
// the new table while a writer swaps between them; every lookup must return
// a route that really covers the address. Run with -race.
func TestSwapUnderLoad(t *testing.T) {
	mk := func(gen int) []config.Peer {
		// Both generations route 10.0.0.0/16 and fd00::/48; they differ in
		// peers, more-specific prefixes and order, so routes move around.
		ps := []config.Peer{
			peer("base", "198.18.0.1", "10.0.0.0/16", "fd00::/48"),
		}
		for i := 0; i < 50; i++ {
			ps = append(ps, peer(fmt.Sprintf("g%d-p%d", gen, i), fmt.Sprintf("198.18.%d.%d", gen, i+2),
				fmt.Sprintf("10.0.%d.0/24", i*gen%256), fmt.Sprintf("fd00:0:0:%x::/64", i+gen)))
		}
		if gen%2 == 1 {
			for i, j := 0, len(ps)-1; i < j; i, j = i+1, j-1 {
				ps[i], ps[j] = ps[j], ps[i]
			}
		}
		return ps
	}
	var h Holder
	if _, err := swap(&h, mk(1)); err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	var bad atomic.Int64
	var firstErr atomic.Value
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(seed uint64) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(seed, 0))
			for !stop.Load() {
				tb := h.Load()
				var a netip.Addr
				if r.IntN(2) == 0 {
					a = netip.AddrFrom4([4]byte{10, 0, byte(r.IntN(256)), byte(r.IntN(256))})
				} else {
					var b [16]byte
					b[0], b[1], b[7] = 0xfd, 0x00, byte(r.IntN(64))
					b[15] = byte(r.IntN(256))
					a = netip.AddrFrom16(b)
				}
				rt := lookupAddr(tb, a)
				ok := rt != nil && rt.Sockaddr.IsValid() && rt.Name != ""
				if ok {
					ok = false
					for _, p := range rt.Prefixes {
						if p.Contains(a) {
							ok = true
						}
					}
				}
				if !ok {
					if bad.Add(1) == 1 {
						firstErr.Store(fmt.Sprintf("lookup %s: got %+v", a, rt))
					}
				}
			}
		}(uint64(g))
	}
	for i := 0; i < 300; i++ {
		if _, err := swap(&h, mk(1+i%3)); err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	if n := bad.Load(); n != 0 {
		t.Fatalf("%d bad lookups during swaps; first: %v", n, firstErr.Load())
	}
}

// benchTable builds n vxlan peers, peer i owning 10.<i/256>.<i%256>.0/24 and
// fd00:0:0:<i>::/64, with underlay 198.18.<i/256>.<i%256>.
func benchTable(t testing.TB, n int) *Table {
	peers := make([]config.Peer, n)
	for i := range peers {
		peers[i] = config.Peer{
			Name:     fmt.Sprintf("node-%d", i),
			PublicIP: netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}),
			Backend:  config.BackendVXLAN,
			VNI:      1,
			VtepMAC:  testMAC,
			Subnets: []netip.Prefix{
				netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}), 24),
				netip.PrefixFrom(netip.AddrFrom16([16]byte{0xfd, 0, 0, 0, 0, 0, byte(i >> 8), byte(i)}), 64),
			},
		}
	}
	return mustTable(t, peers...)
}

func BenchmarkLookup(b *testing.B) {
	for _, n := range []int{10, 1000, 10000} {
		tb := benchTable(b, n)
		r := rand.New(rand.NewPCG(uint64(n), 7))
		const nd = 4096 // power of two
		v4 := make([][]byte, nd)
		v6 := make([][]byte, nd)
		for i := range v4 {
			p := r.IntN(n)
			v4[i] = []byte{10, byte(p >> 8), byte(p), byte(r.IntN(256))}
			a := [16]byte{0xfd, 0, 0, 0, 0, 0, byte(p >> 8), byte(p), 8: byte(r.IntN(256)), 15: byte(r.IntN(256))}
			v6[i] = a[:]
		}
		b.Run(fmt.Sprintf("v4/peers=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			miss := 0
			for i := 0; b.Loop(); i++ {
				if tb.Lookup(v4[i&(nd-1)]) == nil {
					miss++
				}
			}
			if miss != 0 {
				b.Fatalf("%d misses", miss)
			}
		})
		b.Run(fmt.Sprintf("v6/peers=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			miss := 0
			for i := 0; b.Loop(); i++ {
				if tb.Lookup(v6[i&(nd-1)]) == nil {
					miss++
				}
			}
			if miss != 0 {
				b.Fatalf("%d misses", miss)
			}
		})
	}
}

func BenchmarkBuild(b *testing.B) {
	b.ReportAllocs()
	tb := benchTable(b, 10000)
	peers := make([]config.Peer, 0, tb.Len())
	for _, r := range tb.Routes() {
		peers = append(peers, config.Peer{Name: r.Name, PublicIP: r.Underlay.Addr(), Backend: r.Backend,
			VNI: r.VNI, VtepMAC: testMAC, Subnets: r.Prefixes})
	}
	for b.Loop() {
		if _, err := NewTable(peers); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(tb.v4.nodeCount()+tb.v6.nodeCount()), "nodes")
}

func BenchmarkSwap(b *testing.B) {
	b.ReportAllocs()
	tb := benchTable(b, 10000)
	peers := make([]config.Peer, 0, tb.Len())
	for _, r := range tb.Routes() {
		peers = append(peers, config.Peer{Name: r.Name, PublicIP: r.Underlay.Addr(), Backend: r.Backend,
			VNI: r.VNI, VtepMAC: testMAC, Subnets: r.Prefixes})
	}
	var h Holder
	h.Store(tb)
	for b.Loop() {
		if _, err := swap(&h, peers); err != nil {
			b.Fatal(err)
		}
	}
}

// TestSharedLeadingBytes covers the path compression: tables whose prefixes
// all share leading bytes, including a lone host route and a lone /0.
func TestSharedLeadingBytes(t *testing.T) {
	tests := []struct {
		name     string
		subnets  []string
		hit, out []string
		skip4    int
		skip6    int
	}{
		{"one /16", []string{"10.1.0.0/24", "10.1.7.0/24"}, []string{"10.1.0.9", "10.1.7.255"}, []string{"10.2.0.9", "11.1.0.9", "10.1.8.0"}, 2, 0},
		{"lone /32", []string{"10.1.2.3/32"}, []string{"10.1.2.3"}, []string{"10.1.2.4", "10.1.3.3", "0.1.2.3"}, 3, 0},
		{"lone /0", []string{"0.0.0.0/0"}, []string{"1.2.3.4", "255.255.255.255"}, nil, 0, 0},
		{"v6 /64s", []string{"fd00:0:0:1::/64", "fd00:0:0:2::/64"}, []string{"fd00:0:0:1::1", "fd00:0:0:2:ffff::"},
			[]string{"fd00:0:1:1::1", "fd01:0:0:1::1", "fd00:0:0:3::"}, 0, 7},
		{"v6 lone /128", []string{"fd00::1/128"}, []string{"fd00::1"}, []string{"fd00::", "fd00::2", "::1"}, 0, 15},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb := mustTable(t, peer("p", "198.18.0.1", tt.subnets...))
			if tb.v4.skip != tt.skip4 || tb.v6.skip != tt.skip6 {
				t.Errorf("skip: got v4 %d v6 %d, want %d %d", tb.v4.skip, tb.v6.skip, tt.skip4, tt.skip6)
			}
			for _, a := range tt.hit {
				if r := lookupAddr(tb, netip.MustParseAddr(a)); r == nil {
					t.Errorf("LookupAddr(%s): got nil, want p", a)
				}
			}
			for _, a := range tt.out {
				if r := lookupAddr(tb, netip.MustParseAddr(a)); r != nil {
					t.Errorf("LookupAddr(%s): got %s, want nil", a, r.Name)
				}
			}
		})
	}
}

// lookupAddr is Table.Lookup for a netip.Addr (IPv4-mapped IPv6 addresses
// are looked up as IPv4), for tests that hold addresses that way.
func lookupAddr(t *Table, a netip.Addr) *Route {
	a = a.Unmap()
	if a.Is4() {
		b := a.As4()
		return t.Lookup(b[:])
	}
	b := a.As16()
	return t.Lookup(b[:])
}

// byName returns t's route named name, or nil.
func byName(t *Table, name string) *Route {
	for _, r := range t.Routes() {
		if r.Name == name {
			return r
		}
	}
	return nil
}

// swap builds a table from peers on top of h's current one (keeping the
// Index of peers in it, as Forwarder.SetPeers does) and publishes it; on
// error h keeps its table.
func swap(h *Holder, peers []config.Peer) (*Table, error) {
	b := NewBuilder(h.Load())
	for _, p := range peers {
		if err := b.Add(p); err != nil {
			return nil, err
		}
	}
	t, err := b.Build()
	if err != nil {
		return nil, err
	}
	h.Store(t)
	return t, nil
}
