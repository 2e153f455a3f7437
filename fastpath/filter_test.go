package fastpath

import (
	"net/netip"
	"testing"

	"github.com/vxtun/vxtun/config"
	"github.com/vxtun/vxtun/encap"
)

// TestInnerAddressFilter: node1 (own 198.19.1.0/24, 2001:2:0:1::/64) gets
// datagrams from node2 (198.19.2.0/24, 2001:2:0:2::/64; node3 is a third
// peer at another underlay address): only a source of node2's to a unicast
// destination of ours is written to the TUN; everything else is counted
// under its reason, for node2, with both encapsulations.
func TestInnerAddressFilter(t *testing.T) {
	a := netip.MustParseAddr
	for _, tc := range []struct {
		name     string
		src, dst netip.Addr
		want     string // drop reason, "" for delivered
	}{
		{"peer to pod", a("198.19.2.1"), a("198.19.1.1"), ""},
		{"peer vtep to our vtep", a("198.19.2.0"), a("198.19.1.0"), ""},
		{"peer to our last host", a("198.19.2.1"), a("198.19.1.254"), ""},
		{"v6 peer to pod", a("2001:2:0:2::1"), a("2001:2:0:1::1"), ""},
		{"source of another peer", a("198.19.3.1"), a("198.19.1.1"), DropSpoofedSource},
		{"source of ours", a("198.19.1.7"), a("198.19.1.1"), DropSpoofedSource},
		{"source outside the overlay", a("198.18.0.9"), a("198.19.1.1"), DropSpoofedSource},
		{"v6 source of ours", a("2001:2:0:1::7"), a("2001:2:0:1::1"), DropSpoofedSource},
		{"v6 link-local source", a("fe80::1"), a("2001:2:0:1::1"), DropSpoofedSource},
		{"destination another peer's", a("198.19.2.1"), a("198.19.3.1"), DropForeignDestination},
		{"destination our underlay address", a("198.19.2.1"), a("198.18.0.1"), DropForeignDestination},
		{"destination loopback", a("198.19.2.1"), a("127.0.0.1"), DropForeignDestination},
		{"directed broadcast", a("198.19.2.1"), a("198.19.1.255"), DropForeignDestination},
		{"limited broadcast", a("198.19.2.1"), a("255.255.255.255"), DropForeignDestination},
		{"multicast", a("198.19.2.1"), a("224.0.0.1"), DropForeignDestination},
		{"v6 multicast", a("2001:2:0:2::1"), a("ff02::1"), DropForeignDestination},
		{"v6 destination another peer's", a("2001:2:0:2::1"), a("2001:2:0:3::1"), DropForeignDestination},
	} {
		for _, backend := range []config.Backend{config.BackendVXLAN, config.BackendUDP} {
			t.Run(string(backend)+"/"+tc.name, func(t *testing.T) {
				w, r := newTestWorker(t, backend)
				var ip []byte
				et := uint16(encap.EtherTypeIPv4)
				if tc.src.Is4() {
					ip = udp4Packet(tc.src, tc.dst, 100, 1, false)
				} else {
					ip, et = udp6Packet(tc.src, tc.dst, 100, 1), encap.EtherTypeIPv6
				}
				frame := ip
				if backend == config.BackendVXLAN {
					frame = vxlanFrame(0x08, 1, mac1, et, ip)
				}
				w.decap(frame, r, w.f.table.Load())
				got := ""
				for i, n := range w.ib.c.drops {
					if n > 0 {
						got = dropNames[i]
					}
				}
				if got != tc.want {
					t.Fatalf("got drop %q, want %q", got, tc.want)
				}
				if delivered := len(w.ib.wout); (tc.want == "") != (delivered == 1) {
					t.Fatalf("got %d packets for the TUN, want %d", delivered, map[bool]int{true: 1}[tc.want == ""])
				}
				if tc.want != "" {
					if pd := w.f.Stats().PeerDrops["node2"][tc.want]; pd != 1 {
						t.Errorf("got %d %s drops for node2, want 1", pd, tc.want)
					}
				}
			})
		}
	}
}

// TestOwnNets: the destination rule on subnet edges.
func TestOwnNets(t *testing.T) {
	o := newOwnNets([]netip.Prefix{netip.MustParsePrefix("198.19.1.0/24"), netip.MustParsePrefix("198.19.9.4/31"),
		netip.MustParsePrefix("::ffff:198.19.7.0/120")})
	for _, tc := range []struct {
		addr string
		want bool
	}{
		{"198.19.1.0", true}, {"198.19.1.1", true}, {"198.19.1.254", true}, {"198.19.1.255", false},
		{"198.19.0.255", false}, {"198.19.2.0", false},
		{"198.19.9.4", true}, {"198.19.9.5", true}, {"198.19.9.6", false}, // /31: no broadcast
		{"198.19.7.1", true}, {"198.19.7.255", false}, // 4-in-6 prefix unmapped
	} {
		a := netip.MustParseAddr(tc.addr).As4()
		if got := o.dst4(a[:]); got != tc.want {
			t.Errorf("dst4(%s): got %v, want %v", tc.addr, got, tc.want)
		}
	}
	if got, ok := o.first(false); !ok || got != netip.MustParseAddr("198.19.1.0") {
		t.Errorf("first(v4): got %v %v, want 198.19.1.0", got, ok)
	}
	if _, ok := o.first(true); ok {
		t.Errorf("first(v6): got one, want none (no IPv6 subnet)")
	}
}

// BenchmarkInnerFilter is the per-packet cost of the address filter alone
// (source lookup in the routing snapshot, destination against our subnets).
func BenchmarkInnerFilter(b *testing.B) {
	w, r := newTestWorker(b, config.BackendVXLAN)
	t := w.f.table.Load()
	for _, tc := range []struct {
		name string
		pkt  []byte
	}{
		{"ipv4", udp4Packet(pod2, pod1, 64, 1, false)},
		{"ipv6", udp6Packet(pod2v6, pod1v6, 64, 1)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if w.f.checkInner(tc.pkt, r, t) != noDrop {
					b.Fatal("dropped a good packet")
				}
			}
		})
	}
}

// TestOwnNets6: the IPv6 destination rule across prefix lengths on both
// sides of the 64-bit boundary.
func TestOwnNets6(t *testing.T) {
	o := newOwnNets([]netip.Prefix{netip.MustParsePrefix("2001:2:0:1001::/64"), netip.MustParsePrefix("2001:2:0:2000::/52"),
		netip.MustParsePrefix("2001:2:0:3000::8:0/112")})
	for _, tc := range []struct {
		addr string
		want bool
	}{
		{"2001:2:0:1001::", true}, {"2001:2:0:1001:ffff:ffff:ffff:ffff", true}, {"2001:2:0:1002::1", false},
		{"2001:2:0:2abc::1", true}, {"2001:2:0:3000::1", false},
		{"2001:2:0:3000::8:1234", true}, {"2001:2:0:3000::9:0", false},
		{"ff02::1", false},
	} {
		a := netip.MustParseAddr(tc.addr).As16()
		if got := o.dst6(a[:]); got != tc.want {
			t.Errorf("dst6(%s): got %v, want %v", tc.addr, got, tc.want)
		}
	}
}
