package fastpath

import (
	"slices"
	"sync/atomic"
	"time"
)

// Polling ahead (Config.PollAhead; see "Waiting" in doc.go). With IdleSpin
// the spinner, once no batch has come for IdleSpin, does not hand the
// directions back to their owners (each would wait in a thread of its
// own, and the next packet would wake one of them, on a VM often a halted
// vCPU): it stays the spinner and waits itself, in one ppoll for every
// direction whose owner sleeps (waitAhead). When the
// traffic comes at a steady rate (a ping every millisecond, a periodic
// request), it sets that wait to end aheadMargin before the next burst is
// due, so the burst finds it polling: the wake-up the packet would have
// caused happens earlier, off the packet's path.

// aheadMargin is how long before a burst is due the spinner wakes, and how
// long after it keeps polling for it, on top of the spread of the gaps.
// It covers the timer's lateness (the wake-up of a halted vCPU: 35–50 µs
// measured on a 2-vCPU VM) and the first rounds after a long sleep, which
// are slow (caches): with 1 000 pings at 1 ms, p50 84 µs at 50 µs, 78 at
// 100, 59 at 300, against 50 with polling that never stops.
const aheadMargin = 250 * time.Microsecond

// maxAheadPeriod is the longest gap between bursts that is predicted;
// above it a wake-up costs too little, relative, to be worth avoiding.
const maxAheadPeriod = 50 * time.Millisecond

// maxAheadWait bounds a wait without a predicted burst: a safety net (a
// direction is read within this time even if it were missing from the
// wait) that costs one wake-up per 5 s while idle.
const maxAheadWait = 5 * time.Second

// burstGaps is how many gaps between bursts the prediction uses.
const burstGaps = 8

// maxLag is the longest cycle of bursts predicted: 2 covers a request and
// its reply that come back too late to be polled for (more than IdleSpin
// after it), so that gaps alternate.
const maxLag = 2

// aheadState is the spinner's: only the goroutine that is the spinner
// touches it, except the counters.
type aheadState struct {
	quiet  bool                              // no batch since the last wait: the next one starts a burst
	starts [burstGaps + maxLag]time.Duration // burst starts since spinState.epoch, a ring
	n      int                               // bursts recorded since the last pause, at most len(starts)
	last   int                               // where the latest start is in starts
	until  time.Duration                     // keep polling until then (a predicted burst's window)
	sorted [burstGaps]time.Duration
	timed  bool // the last wait ended at its timeout, ahead of a burst

	// waits counts the spinner's waits, wakes those ended ahead of a
	// predicted burst, hits the bursts such a wake found (the first batch
	// after it): Stats. setLen is the number of descriptors in the latest
	// wait (tests).
	waits, wakes, hits atomic.Uint64
	setLen             atomic.Int32
}

// burst records that a burst started at now.
func (a *aheadState) burst(now time.Duration) {
	a.quiet = false
	if a.timed {
		a.timed = false
		a.hits.Add(1)
	}
	if a.n > 0 && now-a.starts[a.last] > maxAheadPeriod {
		a.n = 0 // the traffic paused: start over
	}
	a.last = (a.last + 1) % len(a.starts)
	a.starts[a.last] = now
	a.n = min(a.n+1, len(a.starts))
}

// start is the burst start back bursts before the latest.
func (a *aheadState) start(back int) time.Duration {
	return a.starts[(a.last-back+len(a.starts))%len(a.starts)]
}

// predict returns when the next burst is due and how early to wake for
// it, if the bursts came at a steady rate: for a cycle of 1 or 2 bursts
// (lag), at least half of burstGaps gaps of lag bursts recorded, the
// middle half of them within a quarter of their median. A burst that did
// not come when due ends the prediction (the traffic stopped or changed)
// until new bursts are recorded.
func (a *aheadState) predict(now time.Duration) (due, margin time.Duration, ok bool) {
	for lag := 1; lag <= maxLag; lag++ {
		n := min(a.n-lag, burstGaps)
		if n < burstGaps/2 {
			return 0, 0, false
		}
		s := a.sorted[:n]
		for i := range s {
			s[i] = a.start(i) - a.start(i+lag)
		}
		slices.Sort(s)
		med, spread := s[n/2], s[n*3/4]-s[n/4]
		if spread > med/4 || med > maxAheadPeriod {
			continue
		}
		margin = aheadMargin + spread
		due = a.start(lag-1) + med
		if now > due+margin {
			return 0, 0, false
		}
		return due, margin, true
	}
	return 0, 0, false
}

// waitAhead is the spinner's wait when no batch has come for IdleSpin: in
// one wait for its own direction and every direction whose owner sleeps,
// until one is readable or, with a steady rate, until just before the next
// burst is due. It reports false if it cannot (a direction outside
// internal/rawfd): the spinner then stops and wakes the owners, as
// without PollAhead.
func (f *Forwarder) waitAhead(own *dir) (bool, error) {
	sp := &f.sp
	a := &sp.ahead
	sp.blocked.Store(true)
	defer sp.blocked.Store(false)
	// An owner going to sleep after this point sees blocked and waits on
	// its own descriptor (sleepOffPoll); one that went before is in the
	// set.
	if !f.collectWaitSet(own) {
		return false, nil
	}
	now := f.now()
	timeout := maxAheadWait
	if due, margin, ok := a.predict(now); ok {
		a.until = due + margin
		if timeout = due - margin - now; timeout <= 0 {
			return true, nil
		}
	}
	a.waits.Add(1)
	err := sp.waitSet(timeout)
	a.quiet = true
	if a.timed = timeout < maxAheadWait && f.now()-now >= timeout; a.timed {
		a.wakes.Add(1)
	}
	return true, err
}

// now is the time since the forwarder's epoch.
func (f *Forwarder) now() time.Duration { return time.Since(f.sp.epoch) }
