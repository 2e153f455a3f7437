package fastpath

import (
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vxtun/vxtun/internal/rawfd"
)

// waitSet is the spinner's set of descriptors for waitAhead.
type waitSet = rawfd.Set

// dirFD is a direction's descriptor outside the runtime poller.
type dirFD = *rawfd.FD

// rawFD is x's descriptor if it is outside the runtime poller
// (udp.Options.Unpolled, tun.Options.Unpolled), else nil.
func rawFD(x any) *rawfd.FD {
	s, ok := x.(interface{ SyscallConn() syscall.RawConn })
	if !ok {
		return nil
	}
	fd, _ := s.SyscallConn().(*rawfd.FD)
	return fd
}

// aheadWaker is what an owner that goes to sleep on its own descriptor
// while the spinner waits uses to make the spinner collect its wait set
// again (rescan).
type aheadWaker = *rawfd.Waker

func newAheadWaker() (aheadWaker, error) { return rawfd.NewWaker() }

// collectWaitSet fills the spinner's wait set with own's descriptor and
// those of the directions whose owners sleep: off the poller, or on their
// own descriptor (an owner that went to sleep while the spinner waited
// wakes the spinner to be added, rescan; the next packet then wakes both,
// and the owner goes off the poller when it sleeps again); false if one
// of them is not a rawfd.FD.
func (f *Forwarder) collectWaitSet(own *dir) bool {
	s := &f.sp.set
	s.Reset()
	// Cleared before the owners are looked at: one that parks later and
	// wakes the spinner ends the coming wait.
	f.sp.waker.Clear()
	s.AddWaker(f.sp.waker)
	for _, w := range f.workers {
		for _, d := range w.dirs() {
			if d == nil || d.try == nil || (d != own && !d.parked.Load()) {
				continue
			}
			if d.fd == nil {
				return false
			}
			s.Add(d.fd)
		}
	}
	f.sp.ahead.setLen.Store(int32(s.Len()))
	return true
}

// rescan wakes the spinner if it waits (waitAhead), to collect its wait
// set again: the calling owner goes to sleep on its own descriptor, which the set
// may not hold. Without it the spinner would sleep until maxAheadWait
// while the owners handled every packet, and nothing would be predicted.
func (f *Forwarder) rescan() {
	if f.sp.waker != nil && f.sp.blocked.Load() && f.spinning() {
		f.sp.waker.Wake()
	}
}

// waitSet waits for the set (see rawfd.Set.WaitRead). With a timeout the
// thread's timer slack is set to 1 µs first (the default 50 µs would eat
// half of aheadMargin); the setting stays with the thread, and only makes
// its timers more precise.
func (sp *spinState) waitSet(timeout time.Duration) error {
	if timeout < maxAheadWait {
		unix.RawSyscall(unix.SYS_PRCTL, unix.PR_SET_TIMERSLACK, 1000, 0)
	}
	return sp.set.WaitRead(timeout)
}
