package tun

import "fmt"

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

// doWait makes RawConn.Read wait for readability once, then return.
func (q *Queue) doWait(uintptr) bool {
	if q.waited {
		return true
	}
	q.waited = true
	return false
}
