package rawfd

import (
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vxtun/vxtun/internal/nettest"
)

// pair returns the two ends of a datagram socketpair, a wrapped by New.
func pair(t *testing.T) (*FD, int) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(fds[0], net.ErrClosed)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); unix.Close(fds[1]) })
	return a, fds[1]
}

// recvFn reads one datagram into buf, reporting done unless the socket was
// empty.
func recvFn(buf []byte, n *int) func(uintptr) bool {
	return func(fd uintptr) bool {
		k, err := unix.Read(int(fd), buf)
		if err == unix.EAGAIN {
			return false
		}
		*n = k
		return true
	}
}

func TestReadWaitsForData(t *testing.T) {
	a, b := pair(t)
	go func() {
		time.Sleep(20 * time.Millisecond)
		unix.Write(b, []byte("hello"))
	}()
	buf := make([]byte, 16)
	var n int
	if err := a.Read(recvFn(buf, &n)); err != nil {
		t.Fatalf("Read: got %v, want nil", err)
	}
	if got := string(buf[:n]); got != "hello" {
		t.Errorf("got %q, want %q", got, "hello")
	}
}

func TestReadDeadline(t *testing.T) {
	a, _ := pair(t)
	buf := make([]byte, 16)
	var n int
	errc := make(chan error, 1)
	go func() { errc <- a.Read(recvFn(buf, &n)) }()
	time.Sleep(20 * time.Millisecond) // let it wait without a deadline
	if err := a.SetReadDeadline(time.Now()); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("Read after the deadline: got %v, want os.ErrDeadlineExceeded", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Read did not return after SetReadDeadline")
	}
	// Cleared, a read works again; a future deadline ends a wait by itself.
	a.SetReadDeadline(time.Time{})
	a.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
	if err := a.Read(recvFn(buf, &n)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("Read with a 30 ms deadline: got %v, want os.ErrDeadlineExceeded", err)
	}
}

func TestCloseWakesReadAndWrite(t *testing.T) {
	a, _ := pair(t)
	buf := make([]byte, 16)
	var n int
	errc := make(chan error, 2)
	go func() { errc <- a.Read(recvFn(buf, &n)) }()
	go func() { errc <- a.Write(func(uintptr) bool { return false }) }() // never writable enough
	time.Sleep(20 * time.Millisecond)
	if err := a.Close(); err != nil {
		t.Fatalf("Close: got %v, want nil", err)
	}
	for range 2 {
		select {
		case err := <-errc:
			if !errors.Is(err, net.ErrClosed) {
				t.Errorf("wait after Close: got %v, want net.ErrClosed", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("a wait did not return after Close")
		}
	}
	if err := a.Control(func(uintptr) { t.Error("Control ran after Close") }); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Control after Close: got %v, want net.ErrClosed", err)
	}
	if err := a.Close(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("second Close: got %v, want net.ErrClosed", err)
	}
}

func TestWriteWaitsForRoom(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(fds[0], net.ErrClosed)
	if err != nil {
		t.Fatal(err)
	}
	b := fds[1]
	defer func() { a.Close(); unix.Close(b) }()
	msg := make([]byte, 1024)
	fd := nettest.RawFd(t, a)
	for { // fill the peer's receive queue
		if _, err := unix.Write(fd, msg); err == unix.EAGAIN {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	go func() {
		time.Sleep(20 * time.Millisecond)
		unix.SetNonblock(b, true)
		rbuf := make([]byte, 64<<10)
		for { // drain all: the writer wakes below the low-water mark
			if _, err := unix.Read(b, rbuf); err != nil {
				return
			}
		}
	}()
	tries := 0
	err = a.Write(func(f uintptr) bool {
		tries++
		_, err := unix.Write(int(f), msg)
		return err != unix.EAGAIN
	})
	if err != nil || tries < 2 {
		t.Errorf("Write on a full socket: got err %v after %d tries, want nil after ≥ 2", err, tries)
	}
}

// TestNotInRuntimePoller is the point of the package: the runtime's epoll
// set (listed in /proc/self/fdinfo) holds a net.Conn's descriptor but not
// an FD's.
func TestNotInRuntimePoller(t *testing.T) {
	a, _ := pair(t)
	fd := nettest.RawFd(t, a)
	ln, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	sc, _ := ln.SyscallConn()
	polled := nettest.RawFd(t, sc)
	set := nettest.EpollTargets(t)
	if !set[polled] {
		t.Fatalf("control: the net.UDPConn's fd %d is not in the runtime's epoll set %v", polled, set)
	}
	if set[fd] {
		t.Errorf("got fd %d in the runtime's epoll set, want it outside", fd)
	}
}
