package tun

import (
	"fmt"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TryRead is Read without waiting: it returns 0, nil when nothing is
// queued (segments of a super-packet already read come first, as in Read).
// It does not take the runtime poller's read lock, so it may run while
// another goroutine is blocked in WaitRead on the same queue; it must not
// run concurrently with Read or another TryRead (callers serialise those).
func (q *Queue) TryRead(bufs [][]byte, sizes []int, offset int) (int, error) {
	return q.readBatch(bufs, sizes, offset, false)
}

// WaitRead blocks until the queue has become readable since a read last
// found it empty, the read deadline passes (os.ErrDeadlineExceeded) or the
// queue is closed (os.ErrClosed). It reads nothing and may return although
// another reader (TryRead) has taken what arrived: callers read with
// TryRead afterwards and wait again on 0. Segments of a super-packet that
// a Read or TryRead left in the queue's buffer do not count as readable:
// read until TryRead returns 0 before waiting. At most one goroutine may
// wait at a time; WaitRead touches no read state, so it may run while
// another goroutine calls TryRead.
func (q *Queue) WaitRead() error {
	q.waited = false
	if err := q.rc.Read(q.waitFn); err != nil {
		return fmt.Errorf("wait tun %s: %w", q.m.name, q.closedErr(err))
	}
	return nil
}

// doWait makes RawConn.Read wait for readability once, then return. The
// runtime forgets readiness it saw before the wait began (RawConn.Read
// resets it), so the first call asks the kernel whether a frame is
// already queued: then there is nothing to wait for.
func (q *Queue) doWait(fd uintptr) bool {
	if q.waited {
		return true
	}
	q.waited = true
	q.pfd.Fd, q.pfd.Events, q.pfd.Revents = int32(fd), unix.POLLIN, 0
	n, _, e := unix.RawSyscall6(unix.SYS_PPOLL, uintptr(unsafe.Pointer(&q.pfd)), 1, uintptr(unsafe.Pointer(&q.ts0)), 0, 0, 0)
	return e == 0 && n > 0
}

// SyscallConn returns the queue's raw connection (for tests to find its
// descriptor, or to read its settings).
func (q *Queue) SyscallConn() syscall.RawConn { return q.rc }
