package rawfd

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// waitResult runs s.WaitRead(timeout) in a goroutine and returns its
// result channel.
func waitResult(s *Set, timeout time.Duration) chan error {
	done := make(chan error, 1)
	go func() { done <- s.WaitRead(timeout) }()
	return done
}

// TestSetWaitRead: a Set's wait ends when data reaches any of its FDs, at
// its timeout, at once while data is queued or an FD is closed, and when
// an FD is closed during the wait (Close then goes on: the wait does not
// hold it up).
func TestSetWaitRead(t *testing.T) {
	a, aPeer := pair(t)
	b, bPeer := pair(t)
	var s Set
	s.Add(a)
	s.Add(b)
	if got := s.Len(); got != 2 {
		t.Fatalf("Len: got %d, want 2", got)
	}

	done := waitResult(&s, -1)
	select {
	case err := <-done:
		t.Fatalf("with nothing queued: got the wait ended (%v), want it waiting", err)
	case <-time.After(30 * time.Millisecond):
	}
	unix.Write(bPeer, []byte("x"))
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("data on the second FD: got %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("data on the second FD: got the wait still waiting after 5 s, want it ended")
	}

	if err := s.WaitRead(time.Second); err != nil {
		t.Fatalf("with data queued: got %v, want nil", err)
	}
	// The wait read nothing: b still holds "x".
	buf := make([]byte, 8)
	var n int
	if err := b.Read(recvFn(buf, &n)); err != nil || n != 1 {
		t.Fatalf("read after the wait: got %d bytes, %v; want the queued byte", n, err)
	}

	start := time.Now()
	if err := s.WaitRead(20 * time.Millisecond); err != nil {
		t.Fatalf("timeout: got %v, want nil", err)
	}
	if waited := time.Since(start); waited < 15*time.Millisecond {
		t.Errorf("timeout 20ms with nothing queued: got the wait ended after %v, want about 20ms", waited)
	}

	done = waitResult(&s, -1)
	time.Sleep(20 * time.Millisecond)
	closed := make(chan error, 1)
	go func() { closed <- a.Close() }()
	for what, ch := range map[string]chan error{"the wait": done, "Close": closed} {
		select {
		case err := <-ch:
			if err != nil {
				t.Errorf("%s: got %v, want nil", what, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("closing an FD of a waiting set: got %s still running after 5 s, want it returned", what)
		}
	}
	unix.Write(aPeer, []byte("late"))
	start = time.Now()
	if err := s.WaitRead(time.Second); err != nil {
		t.Fatalf("with a closed FD: got %v, want nil", err)
	}
	if waited := time.Since(start); waited > 500*time.Millisecond {
		t.Errorf("with a closed FD: got the wait ended after %v, want at once", waited)
	}
	s.Reset()
	if got := s.Len(); got != 0 {
		t.Errorf("after Reset: got Len %d, want 0", got)
	}
}

// TestWaker: a Wake ends a Set's wait, from before the wait or during it,
// until Clear takes it back; Close ends the wait too.
func TestWaker(t *testing.T) {
	a, _ := pair(t)
	w, err := NewWaker()
	if err != nil {
		t.Fatal(err)
	}
	var s Set
	s.Add(a)
	s.AddWaker(w)
	ended := func(stage string, done chan error, want bool) {
		t.Helper()
		wait := 30 * time.Millisecond
		if want {
			wait = 5 * time.Second
		}
		select {
		case err := <-done:
			if !want || err != nil {
				t.Fatalf("%s: got the wait ended (%v), want it waiting", stage, err)
			}
		case <-time.After(wait):
			if want {
				t.Fatalf("%s: got the wait still waiting after %v, want it ended", stage, wait)
			}
		}
	}
	w.Wake()
	ended("woken before the wait", waitResult(&s, -1), true)
	ended("woken before the wait, again (not cleared)", waitResult(&s, -1), true)
	w.Clear()
	done := waitResult(&s, -1)
	ended("after Clear", done, false)
	w.Wake()
	ended("woken during the wait", done, true)
	w.Clear()
	done = waitResult(&s, -1)
	ended("after Clear, again", done, false)
	if err := w.Close(); err != nil {
		t.Fatalf("Close: got %v, want nil", err)
	}
	ended("closed during the wait", done, true)
	w.Wake() // after Close: nothing, no panic
	w.Clear()
}
