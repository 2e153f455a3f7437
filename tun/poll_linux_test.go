package tun

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/vxtun/vxtun/internal/nettest"
)

// TestTryReadWaitRead: TryRead on an empty queue returns 0 without
// waiting; WaitRead returns at once for a frame queued before it began
// (the runtime poller alone would have forgotten that readiness) and wakes
// for one queued while it sleeps; TryRead then returns the frame; after
// Close, WaitRead fails.
func TestTryReadWaitRead(t *testing.T) {
	nettest.RequirePrivileged(t)
	ns := nettest.NewNS(t, "tunpoll")
	// No IPv6 on the link: nothing of its own arrives while the test
	// expects the queue empty.
	if err := ns.Do(func() error { return nettest.SetSysctl("net/ipv6/conf/all/disable_ipv6", "1") }); err != nil {
		t.Fatal(err)
	}
	m := openIn(t, ns, "vxt0", 1, Options{})
	configureIn(t, ns, "vxt0", 1500, []netip.Prefix{netip.MustParsePrefix("198.19.1.1/32")}, []netip.Prefix{netip.MustParsePrefix("198.19.2.0/24")})
	q := m.Queues()[0]
	bufs, sizes := makeBufs(q.BatchSize(), 2048)
	drain := func() int {
		total := 0
		for {
			n, err := q.TryRead(bufs, sizes, 0)
			if err != nil {
				t.Fatalf("TryRead: %v", err)
			}
			if n == 0 {
				return total
			}
			total += n
		}
	}
	send := func() {
		t.Helper()
		if err := ns.Do(func() error {
			c, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(198, 19, 2, 5), Port: 9})
			if err != nil {
				return err
			}
			defer c.Close()
			_, err = c.Write([]byte{1})
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	wait := func() <-chan error {
		c := make(chan error, 1)
		go func() { c <- q.WaitRead() }()
		return c
	}
	drain() // whatever the link sent of its own
	if n := drain(); n != 0 {
		t.Fatalf("TryRead on an empty queue: got %d packets, want 0", n)
	}

	send()
	select {
	case err := <-wait():
		if err != nil {
			t.Fatalf("WaitRead with a frame queued: got %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("WaitRead did not return for a frame queued before it began")
	}
	if n := drain(); n < 1 {
		t.Fatalf("TryRead after WaitRead: got %d packets, want at least 1", n)
	}

	w := wait()
	select {
	case err := <-w:
		t.Fatalf("WaitRead on an empty queue returned at once: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	send()
	select {
	case err := <-w:
		if err != nil {
			t.Fatalf("WaitRead woken by a frame: got %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("WaitRead did not wake for a frame queued while it slept")
	}
	if n := drain(); n < 1 {
		t.Fatalf("TryRead after the wake-up: got %d packets, want at least 1", n)
	}

	m.Close()
	if err := q.WaitRead(); err == nil {
		t.Fatal("WaitRead after Close: got nil, want an error")
	}
}
