package rawfd

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Waker lets other goroutines end a Set's WaitRead: an eventfd the Set
// waits on with its FDs. Wake may run from any goroutine; Clear from the
// Set's owner, before it decides what to wait for, so a Wake after it ends
// the next wait.
type Waker struct {
	fd *FD
}

// NewWaker returns a Waker; Close releases its eventfd.
func NewWaker() (*Waker, error) {
	efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	fd, err := New(efd, os.ErrClosed)
	if err != nil {
		return nil, err
	}
	return &Waker{fd: fd}, nil
}

// Wake makes the Set's current or next WaitRead return (until Clear).
func (w *Waker) Wake() { w.fd.Control(func(fd uintptr) { kick(int(fd)) }) }

// Clear takes back a Wake that has not ended a wait yet.
func (w *Waker) Clear() { w.fd.Control(func(fd uintptr) { drain(int(fd)) }) }

// Close ends a WaitRead of a Set holding w and releases the eventfd.
func (w *Waker) Close() error { return w.fd.Close() }

// AddWaker adds w to the set: a Wake ends its WaitRead.
func (s *Set) AddWaker(w *Waker) { s.Add(w.fd) }
