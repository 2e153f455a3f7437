package fastpath

import (
	"net/netip"
	"testing"
	"time"
)

// TestICMPLimiter drives the buckets with a fake clock: each step advances
// the clock, asks n times for errors to one destination and counts what
// was allowed.
func TestICMPLimiter(t *testing.T) {
	a, b := netip.MustParseAddr("198.19.1.1"), netip.MustParseAddr("198.19.1.2")
	peer2 := netip.MustParseAddr("198.19.2.1")
	type step struct {
		advance   time.Duration
		to, about netip.Addr
		n, want   int
	}
	for _, tc := range []struct {
		name   string
		limits ICMPLimits
		steps  []step
	}{
		{"global burst then rate", ICMPLimits{PerDestInterval: -1}, []step{
			{0, a, netip.Addr{}, 80, 50},                     // burst 50
			{10 * time.Millisecond, b, netip.Addr{}, 80, 10}, // 1000/s: 10 in 10 ms, any destination
			{5 * time.Second, a, netip.Addr{}, 80, 50},       // refill caps at the burst
			{500 * time.Microsecond, a, netip.Addr{}, 5, 0},  // less than one token
			{500 * time.Microsecond, a, netip.Addr{}, 5, 1},  // now one
		}},
		{"per destination: burst 6, one a second", ICMPLimits{PerSecond: -1}, []step{
			{0, a, netip.Addr{}, 10, 6},
			{0, b, netip.Addr{}, 10, 6}, // another destination has its own bucket
			{999 * time.Millisecond, a, netip.Addr{}, 10, 0},
			{time.Millisecond, a, netip.Addr{}, 10, 1},
			{10 * time.Second, a, netip.Addr{}, 10, 6}, // refilled, capped at 6
		}},
		{"pmtu errors per original destination", ICMPLimits{PerSecond: -1}, []step{
			{0, a, peer2, 10, 6},
			{0, a, b, 10, 6},            // same sender, another destination: own bucket
			{0, a, netip.Addr{}, 10, 6}, // unreachables are separate again
		}},
		{"both: per-destination refusals leave the global credit", ICMPLimits{PerSecond: 10, Burst: 8}, []step{
			{0, a, netip.Addr{}, 20, 6}, // per-destination stops at 6, global keeps 2
			{0, b, netip.Addr{}, 20, 2},
			{time.Second, b, netip.Addr{}, 20, 5}, // global refilled to 8; b spent 2 of 6, got 1 back
		}},
		{"custom per destination", ICMPLimits{PerSecond: -1, PerDestInterval: 100 * time.Millisecond, PerDestBurst: 2}, []step{
			{0, a, netip.Addr{}, 5, 2},
			{100 * time.Millisecond, a, netip.Addr{}, 5, 1},
			{time.Second, a, netip.Addr{}, 5, 2},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			now := time.Unix(1000, 0)
			il := newICMPLimiter(tc.limits, func() time.Time { return now })
			for i, s := range tc.steps {
				now = now.Add(s.advance)
				got := 0
				for range s.n {
					if il.allow(s.to, s.about) {
						got++
					}
				}
				if got != s.want {
					t.Fatalf("step %d (+%v, %d to %s about %v): got %d allowed, want %d", i, s.advance, s.n, s.to, s.about, got, s.want)
				}
			}
		})
	}
}

// TestICMPLimiterTableBounded: a flood of errors to ever new destinations
// keeps the per-destination table within maxICMPDests.
func TestICMPLimiterTableBounded(t *testing.T) {
	now := time.Unix(1000, 0)
	il := newICMPLimiter(ICMPLimits{PerSecond: -1}, func() time.Time { return now })
	for i := range 3 * maxICMPDests {
		il.allow(netip.AddrFrom4([4]byte{198, 19, byte(i >> 8), byte(i)}), netip.Addr{})
		if len(il.dests) > maxICMPDests {
			t.Fatalf("after %d destinations: table has %d entries, want at most %d", i+1, len(il.dests), maxICMPDests)
		}
	}
}
