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

// collectWaitSet fills the spinner's wait set with own's descriptor and
// those of the directions whose owners sleep: off the poller, or on their
// own descriptor (an owner that went to sleep while the spinner waited;
// the next packet then wakes both, and the owner goes off the poller when
// it sleeps again); false if one of them is not a rawfd.FD.
func (f *Forwarder) collectWaitSet(own *dir) bool {
	s := &f.sp.set
	s.Reset()
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
	return true
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
