package fastpath

import (
	"testing"
	"time"
)

// TestAheadPredict: the spinner's prediction of the next burst, on a fake
// clock: steady and alternating gaps are predicted, irregular ones, too
// few, too long or a missed burst are not, and a pause starts over.
func TestAheadPredict(t *testing.T) {
	ms := time.Millisecond
	steady := func(n int, gap time.Duration) []time.Duration {
		s := make([]time.Duration, n)
		for i := range s {
			s[i] = ms + time.Duration(i)*gap
		}
		return s
	}
	alternating := func(n int, g1, g2 time.Duration) []time.Duration {
		s := make([]time.Duration, n)
		for i := 1; i < n; i++ {
			s[i] = s[i-1] + g1
			g1, g2 = g2, g1
		}
		return s
	}
	irregular := []time.Duration{0, ms, 6 * ms, 8 * ms, 17 * ms, 20 * ms, 21 * ms, 30 * ms, 31 * ms, 40 * ms}
	last := func(s []time.Duration) time.Duration { return s[len(s)-1] }
	tests := []struct {
		name   string
		starts []time.Duration
		now    time.Duration // after the last start
		ok     bool
		due    time.Duration // after the last start
		margin time.Duration
	}{
		{"steady 1 ms", steady(12, ms), 100 * time.Microsecond, true, ms, aheadMargin},
		{"steady 4 ms, just enough gaps", steady(burstGaps/2+1, 4*ms), 0, true, 4 * ms, aheadMargin},
		{"too few gaps", steady(burstGaps/2, 4*ms), 0, false, 0, 0},
		// A cycle of two (the last gap was the short one): the burst due
		// comes a cycle (2 ms) after the one before the last.
		{"alternating 0.3/1.7 ms", alternating(12, 300*time.Microsecond, 1700*time.Microsecond), 0, true, 1700 * time.Microsecond, aheadMargin},
		{"irregular", irregular, 0, false, 0, 0},
		{"period above maxAheadPeriod", steady(12, maxAheadPeriod+ms), 0, false, 0, 0},
		{"burst missed", steady(12, ms), ms + aheadMargin + time.Microsecond, false, 0, 0},
		{"due, within the margin", steady(12, ms), ms + aheadMargin, true, ms, aheadMargin},
		{"pause starts over", append(steady(12, ms), 12*ms+maxAheadPeriod+ms, 13*ms+maxAheadPeriod+ms), 0, false, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var a aheadState
			for _, s := range tc.starts {
				a.burst(s)
			}
			l := last(tc.starts)
			due, margin, ok := a.predict(l + tc.now)
			if ok != tc.ok {
				t.Fatalf("got ok %v (due %v after the last burst), want %v", ok, due-l, tc.ok)
			}
			if !ok {
				return
			}
			if due-l != tc.due || margin != tc.margin {
				t.Errorf("got due %v after the last burst, margin %v; want %v, %v", due-l, margin, tc.due, tc.margin)
			}
		})
	}
}

// TestAheadHits: a burst counts as found by a wake-up ahead only when the
// wait before it ended at its timeout, once per wake-up.
func TestAheadHits(t *testing.T) {
	var a aheadState
	a.burst(0)
	a.timed = true
	a.burst(time.Millisecond)
	a.burst(2 * time.Millisecond)
	if got := a.hits.Load(); got != 1 {
		t.Errorf("got %d hits, want 1", got)
	}
}
