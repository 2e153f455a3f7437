package rawfd

import (
	"fmt"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Set waits for any of several FDs at once: one thread in one ppoll for
// descriptors that would otherwise each need a waiting thread. Its buffers
// are reused, so a Set is owned by one goroutine; the FDs' own Read and
// Write may run meanwhile from others.
type Set struct {
	fds []*FD
	pfd []unix.PollFd
}

// Reset empties the set.
func (s *Set) Reset() { s.fds = s.fds[:0] }

// Add adds f to the set.
func (s *Set) Add(f *FD) { s.fds = append(s.fds, f) }

// Len is the number of FDs in the set.
func (s *Set) Len() int { return len(s.fds) }

// WaitRead blocks until one of the set's FDs is readable, a Read of one
// of them is woken (SetReadDeadline, Close) or timeout has passed (< 0: no
// timeout). It reads nothing. It returns at once when an FD is closed or
// being closed: Close does not wait for it, and callers find out by
// reading.
func (s *Set) WaitRead(timeout time.Duration) error {
	held := 0
	defer func() {
		for _, f := range s.fds[:held] {
			f.mu.RUnlock()
		}
	}()
	s.pfd = s.pfd[:0]
	for _, f := range s.fds {
		if !f.mu.TryRLock() { // Close is waiting for the lock
			return nil
		}
		held++
		if f.closed.Load() {
			return nil
		}
		s.pfd = append(s.pfd,
			unix.PollFd{Fd: int32(f.fd), Events: unix.POLLIN},
			unix.PollFd{Fd: int32(f.rwake), Events: unix.POLLIN})
	}
	if len(s.pfd) == 0 {
		return nil
	}
	tsp := uintptr(0)
	var ts unix.Timespec
	if timeout >= 0 {
		ts = unix.NsecToTimespec(int64(timeout))
		tsp = uintptr(unsafe.Pointer(&ts))
	}
	// Syscall: the runtime must know the thread is blocked.
	_, _, e := syscall.Syscall6(unix.SYS_PPOLL, uintptr(unsafe.Pointer(&s.pfd[0])), uintptr(len(s.pfd)), tsp, 0, 0, 0)
	if e != 0 && e != unix.EINTR {
		return fmt.Errorf("ppoll: %w", e)
	}
	// A wake-up meant for a Read (a deadline set, Close) is left in its
	// eventfd for the FD's own Read, which may be waiting too: until that
	// Read takes it, WaitRead returns at once.
	return nil
}
