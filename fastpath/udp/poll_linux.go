package udp

import (
	"fmt"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TryReadBatch is ReadBatch without waiting: it returns 0, nil when no
// datagram is queued. It does not take the runtime poller's read lock, so
// it may run while another goroutine is blocked in WaitRead on the same
// Conn (but, like ReadBatch, never concurrently with another ReadBatch or
// TryReadBatch: the callers serialise those).
func (c *Conn) TryReadBatch(msgs []Message) (int, error) {
	return c.readBatch(msgs, false)
}

// WaitRead blocks until the socket has become readable since the last
// read found it empty, or until Close (net.ErrClosed). It reads nothing and
// may return although another reader (TryReadBatch) has taken what
// arrived: callers read with TryReadBatch afterwards and wait again on 0.
// At most one goroutine may wait at a time.
func (c *Conn) WaitRead() error {
	c.waited = false
	if err := c.rc.Read(c.waitFn); err != nil {
		return fmt.Errorf("wait udp: %w", err)
	}
	return nil
}

// doWait makes RawConn.Read wait for readability once, then return. The
// runtime forgets readiness it saw before the wait began (RawConn.Read
// resets it), so the first call asks the kernel whether a datagram is
// already queued: then there is nothing to wait for.
func (c *Conn) doWait(fd uintptr) bool {
	if c.waited {
		return true
	}
	c.waited = true
	return readable(fd, &c.pfd, &c.ts0)
}

// readable reports whether fd has something to read now (ppoll without
// waiting; pfd and ts are the caller's, so nothing is allocated).
func readable(fd uintptr, pfd *unix.PollFd, ts *unix.Timespec) bool {
	pfd.Fd, pfd.Events, pfd.Revents = int32(fd), unix.POLLIN, 0
	n, _, e := unix.RawSyscall6(unix.SYS_PPOLL, uintptr(unsafe.Pointer(pfd)), 1, uintptr(unsafe.Pointer(ts)), 0, 0, 0)
	return e == 0 && n > 0
}

// doTryRead is doRead for TryReadBatch: an empty queue is 0 messages.
func (c *Conn) doTryRead(fd uintptr) {
	if !c.doRead(fd) {
		c.rgot = 0
	}
}

// SyscallConn returns the socket's raw connection (to read socket options,
// or for tests to find its descriptor).
func (c *Conn) SyscallConn() syscall.RawConn { return c.rc }
