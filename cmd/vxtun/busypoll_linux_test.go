package main

import (
	"context"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vxtun/vxtun/internal/nettest"
)

// TestBusyPoll: two daemons with --busy-poll (node 1) and VXTUN_BUSY_POLL
// with VXTUN_BUSY_POLL_IDLE=5ms and VXTUN_BUSY_POLL_AHEAD (node 2: after
// 5 ms without a packet its spinner waits for all descriptors, ahead of
// the pings at 2 ms) carry ping and a verified TCP
// transfer between their pods, say that they poll, keep their TUN queues
// and UDP sockets out of the Go runtime poller (which would wake a thread
// for every packet the spinner reads), node 2 uses (almost) no CPU once
// idle, and both stop promptly on SIGTERM although a thread spins.
func TestBusyPoll(t *testing.T) {
	h := nettest.NewTwoHosts(t)
	n1 := newTestNode(t, h.A, 1, 2)
	n2 := newTestNode(t, h.B, 2, 1)
	p1 := startVxtun(t, h.A, n1.args("--busy-poll")...)
	p2 := nettest.StartDaemon(t, &nettest.Daemon{Name: "vxtun", NS: h.B, Argv: append([]string{vxtunBin}, n2.args()...),
		Env: []string{"VXTUN_BUSY_POLL=true", "VXTUN_BUSY_POLL_IDLE=5ms", "VXTUN_BUSY_POLL_AHEAD=true"}})
	waitPing(t, h.A, "198.19.1.1", "198.19.2.1", p1, p2)

	r, err := nettest.Ping(context.Background(), h.A, netip.MustParseAddr("198.19.1.1"), netip.MustParseAddr("198.19.2.1"),
		"-c", "200", "-i", "0.002", "-W", "2")
	if err != nil {
		t.Fatalf("ping: %v", err)
	}
	if r.Received != r.Transmitted || r.Received != 200 {
		t.Errorf("ping: got %d of %d replies, want 200 of 200", r.Received, r.Transmitted)
	}
	t.Logf("ping with busy polling: rtt min/avg/max %v/%v/%v", r.Min, r.Avg, r.Max)
	if err := transfer(h.A, h.B, 5001, 16<<20, 0); err != nil {
		t.Fatalf("TCP transfer: %v", err)
	}
	// Idle: node 2 stops polling 5 ms after the last packet; node 1 spins
	// on (its CPU is not asserted: it yields to whatever else runs).
	time.Sleep(100 * time.Millisecond)
	cpu0, err := nettest.ProcCPU(p2.PID())
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	cpu1, _ := nettest.ProcCPU(p2.PID())
	if used := cpu1 - cpu0; used > 0.2 {
		t.Errorf("node 2 (--busy-poll-idle 5ms --busy-poll-ahead): got %.2f CPU-s in 1 s without traffic, want < 0.2 (polling stopped)", used)
	} else {
		t.Logf("node 2 idle for 1 s: %.2f CPU-s", used)
	}
	for _, p := range []*nettest.Daemon{p1, p2} {
		tunFds, udpFds := nettest.DataplaneFds(t, p.PID())
		if len(tunFds) < 2 || len(udpFds) < 4 {
			t.Errorf("pid %d: got %d TUN queues and %d UDP sockets, want 2 and 4 (two workers)", p.PID(), len(tunFds), len(udpFds))
		}
		polled := nettest.EpollTargetsOf(t, strconv.Itoa(p.PID()))
		for _, fd := range append(tunFds, udpFds...) {
			if polled[fd] {
				t.Errorf("pid %d: got fd %d (a TUN queue or UDP socket) in the runtime poller, want it outside", p.PID(), fd)
			}
		}
		want := "busy polling"
		if p == p2 {
			want = "(--busy-poll-ahead)"
		}
		if out := p.Output(); !strings.Contains(out, want) {
			t.Errorf("daemon log has no %q line:\n%s", want, p.LogTail(20))
		}
		start := time.Now()
		if err := p.Stop(10 * time.Second); err != nil {
			t.Errorf("SIGTERM while busy polling: %v", err)
		}
		t.Logf("stopped in %v:\n%s", time.Since(start).Round(time.Millisecond), p.LogTail(2))
	}
}
