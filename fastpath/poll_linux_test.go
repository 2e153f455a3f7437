package fastpath

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vxtun/vxtun/config"
	"github.com/vxtun/vxtun/internal/nettest"
)

// waitModes are the wait loop's settings under test: owners only, a short
// spin, a longer one, and busy polling.
var waitModes = []struct {
	name string
	cfg  func(*Config)
}{
	{"no polling (default)", func(*Config) {}},
	{"spin 20µs", func(c *Config) { c.IdleSpin = 20 * time.Microsecond }},
	{"spin 200µs", func(c *Config) { c.IdleSpin = 200 * time.Microsecond }},
	{"busy poll", func(c *Config) { c.BusyPoll = true }},
}

// TestWaitLoopNoLostWakeup: stop-and-wait UDP echoes between two pods
// over real TUNs, with pauses around the spin's length before each probe,
// so that probes arrive just as a spin ends, just after, while spinning
// and while every goroutine sleeps. A probe that no goroutine reads (a lost
// wake-up) is never echoed, as nothing else is in flight: the probe times
// out.
func TestWaitLoopNoLostWakeup(t *testing.T) {
	probes := 1500
	if raceEnabled {
		probes = 300
	}
	gaps := []time.Duration{0, 5 * time.Microsecond, 15 * time.Microsecond, 20 * time.Microsecond,
		25 * time.Microsecond, 60 * time.Microsecond, 190 * time.Microsecond, 200 * time.Microsecond,
		210 * time.Microsecond, 400 * time.Microsecond}
	for _, mode := range waitModes {
		t.Run(mode.name, func(t *testing.T) {
			h := nettest.NewTwoHosts(t)
			ua, ub := netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("198.18.0.2")
			a := startVXTUN(t, h.A, 1, ua, config.BackendVXLAN, 0, 1500,
				[]config.Peer{peerFor(2, ub, config.BackendVXLAN, 0)}, mode.cfg)
			b := startVXTUN(t, h.B, 2, ub, config.BackendVXLAN, 0, 1500,
				[]config.Peer{peerFor(1, ua, config.BackendVXLAN, 0)}, mode.cfg)
			srv, cli := echoPair(t, h.A, h.B)
			go echo(srv)

			out, in := make([]byte, 64), make([]byte, 64)
			for i := range probes {
				if d := gaps[i%len(gaps)]; d > 0 {
					time.Sleep(d)
				}
				binary.BigEndian.PutUint32(out, uint32(i))
				if _, err := cli.Write(out); err != nil {
					t.Fatalf("probe %d: send: %v", i, err)
				}
				// The first probes may meet ARP/route setup; later ones
				// have nothing to wait for but the forwarders.
				timeout := time.Second
				if i < 3 {
					timeout = 5 * time.Second
				}
				if err := cli.SetReadDeadline(time.Now().Add(timeout)); err != nil {
					t.Fatal(err)
				}
				n, err := cli.Read(in)
				if err != nil {
					t.Fatalf("probe %d (after a %v pause): got no echo within %v: %v (stats a %+v, b %+v)",
						i, gaps[i%len(gaps)], timeout, err, a.f.Stats(), b.f.Stats())
				}
				if got := binary.BigEndian.Uint32(in[:n]); n != len(out) || got != uint32(i) {
					t.Fatalf("probe %d: got echo %d (%d bytes), want %d (%d bytes)", i, got, n, i, len(out))
				}
			}
			for _, v := range []*vnode{a, b} {
				if s := v.f.Stats(); len(s.Drops) != 0 {
					t.Errorf("node %d: got drops %v, want none", v.n, s.Drops)
				}
			}
		})
	}
}

// echoPair opens a UDP echo socket on pod 2 (in nsB) and a client on pod 1
// (in nsA) connected to it; both are closed when the test ends.
func echoPair(t *testing.T, nsA, nsB *nettest.NS) (srv, cli *net.UDPConn) {
	t.Helper()
	srvAddr := netip.AddrPortFrom(nettest.PodAddr(2), 7007)
	if err := nsB.Do(func() error {
		var err error
		srv, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(srvAddr))
		return err
	}); err != nil {
		t.Fatalf("echo server: %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	if err := nsA.Do(func() error {
		var err error
		cli, err = net.DialUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(nettest.PodAddr(1), 0)),
			net.UDPAddrFromAddrPort(srvAddr))
		return err
	}); err != nil {
		t.Fatalf("echo client: %v", err)
	}
	t.Cleanup(func() { cli.Close() })
	return srv, cli
}

// echo sends every datagram back until c is closed.
func echo(c *net.UDPConn) {
	buf := make([]byte, 2048)
	for {
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		if _, err := c.WriteToUDPAddrPort(buf[:n], from); err != nil && errors.Is(err, net.ErrClosed) {
			return
		}
	}
}

// TestShutdownWhileWaiting: Run returns promptly, leaving no goroutine
// behind, whether its goroutines sleep in the poller (no polling) or one
// of them is spinning (busy poll) when the context ends.
func TestShutdownWhileWaiting(t *testing.T) {
	nettest.RequirePrivileged(t)
	for _, tc := range []struct {
		name     string
		cfg      Config
		spinning bool
	}{
		{"blocked", Config{}, false},
		{"spinning", Config{BusyPoll: true}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := nettest.NewNS(t, "fpwait")
			m, f := openTunForwarder(t, ns, tc.cfg)
			defer m.Close()
			ignore := goleak.IgnoreCurrent()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- f.Run(ctx) }()
			// Give the goroutines time to reach their wait (or spin).
			deadline := time.Now().Add(2 * time.Second)
			for f.spinning() != tc.spinning && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			time.Sleep(20 * time.Millisecond)
			if got := f.spinning(); got != tc.spinning {
				t.Fatalf("before cancel: got spinning %v, want %v", got, tc.spinning)
			}
			cancel()
			waitRunReturned(t, done)
			if f.spinning() {
				t.Error("after Run: got a spinner still marked spinning, want none")
			}
			goleak.VerifyNone(t, ignore)
		})
	}
}
