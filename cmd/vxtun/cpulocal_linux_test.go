package main

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/vxtun/vxtun/internal/nettest"
)

// TestCPULocal: two daemons with --cpu-local (node 1) and VXTUN_CPU_LOCAL
// (node 2) carry ping and a verified TCP transfer, load the CPU-local
// steering program (local_cpu in the offloads), say so, run each worker's
// one owner thread pinned to one CPU — both CPUs covered — and keep their TUN
// queues and sockets out of the runtime poller.
func TestCPULocal(t *testing.T) {
	nettest.RequireCPUs(t, 2)
	h := nettest.NewTwoHosts(t)
	n1 := newTestNode(t, h.A, 1, 2)
	n2 := newTestNode(t, h.B, 2, 1)
	p1 := startVxtun(t, h.A, n1.args("--cpu-local", "--workers", "2")...)
	p2 := nettest.StartDaemon(t, &nettest.Daemon{Name: "vxtun", NS: h.B, Argv: append([]string{vxtunBin}, n2.args("--workers", "2")...),
		Env: []string{"VXTUN_CPU_LOCAL=true"}})
	waitPing(t, h.A, "198.19.1.1", "198.19.2.1", p1, p2)
	waits := metrics(t, h.B, n2.debug)["vxtun_waits_total"]
	r, err := nettest.Ping(context.Background(), h.A, netip.MustParseAddr("198.19.1.1"), netip.MustParseAddr("198.19.2.1"),
		"-c", "200", "-i", "0.002", "-W", "2")
	if err != nil {
		t.Fatalf("ping: %v", err)
	}
	if r.Received != 200 {
		t.Errorf("ping: got %d of %d replies, want 200 of 200", r.Received, r.Transmitted)
	}
	t.Logf("ping with cpu-local workers: rtt min/avg/max %v/%v/%v", r.Min, r.Avg, r.Max)
	// Node 2's one owner per worker waits once per ping it answers (the
	// reply it writes is read back without a wait; fastpath's
	// TestLocalLoop), as /metrics shows.
	if got := metrics(t, h.B, n2.debug)["vxtun_waits_total"] - waits; got < 100 || got > 300 {
		t.Errorf("200 pings answered by node 2: got vxtun_waits_total +%v, want 100 to 300 (about one per ping)", got)
	}
	if err := transfer(h.A, h.B, 5001, 16<<20, 0); err != nil {
		t.Fatalf("TCP transfer: %v", err)
	}
	for _, p := range []*nettest.Daemon{p1, p2} {
		out := p.Output()
		for _, want := range []string{"local_cpu", "cpu-local workers"} {
			if !strings.Contains(out, want) {
				t.Errorf("pid %d: daemon log has no %q:\n%s", p.PID(), want, p.LogTail(20))
			}
		}
		pinned := pinnedThreads(t, p.PID())
		if pinned["0"] != 1 || pinned["1"] != 1 || len(pinned) != 2 {
			t.Errorf("pid %d: got threads pinned per CPU %v, want one on each of CPUs 0 and 1 (a worker's one owner)", p.PID(), pinned)
		}
		tunFds, udpFds := nettest.DataplaneFds(t, p.PID())
		polled := nettest.EpollTargetsOf(t, strconv.Itoa(p.PID()))
		for _, fd := range append(tunFds, udpFds...) {
			if polled[fd] {
				t.Errorf("pid %d: got fd %d (a TUN queue or UDP socket) in the runtime poller, want it outside", p.PID(), fd)
			}
		}
	}
}

// pinnedThreads counts pid's threads whose affinity is a single CPU, by
// CPU (Cpus_allowed_list in /proc/pid/task/*/status).
func pinnedThreads(t *testing.T, pid int) map[string]int {
	t.Helper()
	tasks, err := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/status")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, f := range tasks {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // the thread ended
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok {
				v = strings.TrimSpace(v)
				if !strings.ContainsAny(v, ",-") {
					got[v]++
				}
			}
		}
	}
	return got
}
