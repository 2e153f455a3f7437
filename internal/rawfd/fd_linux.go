package rawfd

import (
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// FD is a non-blocking descriptor outside the runtime poller.
type FD struct {
	fd        int
	closedErr error
	mu        sync.RWMutex // read-held by Control/Read/Write, held by Close
	closed    atomic.Bool
	rwake     int          // eventfd: wakes Read (SetReadDeadline, Close)
	wwake     int          // eventfd: wakes Write (Close)
	deadline  atomic.Int64 // read deadline in UnixNano; 0: none
}

var _ syscall.RawConn = (*FD)(nil)

// New takes ownership of fd, sets it non-blocking and returns it wrapped.
// Operations on a closed FD fail with closedErr (os.ErrClosed for a file,
// net.ErrClosed for a socket). On error fd is closed.
func New(fd int, closedErr error) (*FD, error) {
	fail := func(err error) (*FD, error) {
		unix.Close(fd)
		return nil, err
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		return fail(fmt.Errorf("set non-blocking: %w", err))
	}
	r, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return fail(fmt.Errorf("eventfd: %w", err))
	}
	w, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(r)
		return fail(fmt.Errorf("eventfd: %w", err))
	}
	return &FD{fd: fd, closedErr: closedErr, rwake: r, wwake: w}, nil
}

// Control runs fn with the descriptor.
func (f *FD) Control(fn func(fd uintptr)) error {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.closed.Load() {
		return f.closedErr
	}
	fn(uintptr(f.fd))
	return nil
}

// Read runs fn until it returns true, waiting for the descriptor to become
// readable after each false. It fails with os.ErrDeadlineExceeded once the
// read deadline has passed (checked before each call of fn, as the runtime
// poller does) and with the closed error after Close.
func (f *FD) Read(fn func(fd uintptr) bool) error {
	return f.run(fn, unix.POLLIN, f.rwake, true)
}

// Write runs fn until it returns true, waiting for the descriptor to become
// writable after each false.
func (f *FD) Write(fn func(fd uintptr) bool) error {
	return f.run(fn, unix.POLLOUT, f.wwake, false)
}

func (f *FD) run(fn func(fd uintptr) bool, events int16, wake int, deadline bool) error {
	f.mu.RLock()
	defer f.mu.RUnlock()
	var pfd [2]unix.PollFd
	var ts unix.Timespec
	for {
		if f.closed.Load() {
			return f.closedErr
		}
		tsp := uintptr(0) // no timeout
		if deadline {
			if d := f.deadline.Load(); d != 0 {
				left := d - time.Now().UnixNano()
				if left <= 0 {
					return os.ErrDeadlineExceeded
				}
				ts = unix.NsecToTimespec(left)
				tsp = uintptr(unsafe.Pointer(&ts))
			}
		}
		if fn(uintptr(f.fd)) {
			return nil
		}
		pfd[0] = unix.PollFd{Fd: int32(f.fd), Events: events}
		pfd[1] = unix.PollFd{Fd: int32(wake), Events: unix.POLLIN}
		// Syscall, not RawSyscall: the wait may be long, and the runtime
		// must know this thread is blocked.
		_, _, e := syscall.Syscall6(unix.SYS_PPOLL, uintptr(unsafe.Pointer(&pfd[0])), 2, tsp, 0, 0, 0)
		if e != 0 && e != unix.EINTR {
			return fmt.Errorf("ppoll: %w", e)
		}
		if pfd[1].Revents != 0 && !f.closed.Load() {
			drain(wake)
		}
	}
}

// SetReadDeadline sets the deadline of pending and future Reads (a zero t:
// none) and wakes a waiting Read to apply it.
func (f *FD) SetReadDeadline(t time.Time) error {
	if f.closed.Load() {
		return f.closedErr
	}
	d := int64(0)
	if !t.IsZero() {
		d = max(t.UnixNano(), 1)
	}
	f.deadline.Store(d)
	kick(f.rwake)
	return nil
}

// Close wakes any waiting Read and Write, waits until every operation has
// returned and closes the descriptor. Closing twice fails with the closed
// error.
func (f *FD) Close() error {
	if f.closed.Swap(true) {
		return f.closedErr
	}
	kick(f.rwake)
	kick(f.wwake)
	f.mu.Lock()
	defer f.mu.Unlock()
	unix.Close(f.rwake)
	unix.Close(f.wwake)
	if err := unix.Close(f.fd); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	return nil
}

// kick makes the eventfd readable.
func kick(efd int) {
	one := [8]byte{1}
	unix.Write(efd, one[:])
}

// drain makes the eventfd unreadable again.
func drain(efd int) {
	var b [8]byte
	unix.Read(efd, b[:])
}
