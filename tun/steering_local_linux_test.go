package tun

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vxtun/vxtun/encap"
	"github.com/vxtun/vxtun/internal/nettest"
)

// TestLocalCPUSteering: with LocalCPUs a datagram goes to the queue of
// the CPU that sends it; a flow that pauses longer than flowletGap moves to
// the sender's new CPU; one that sends again at once from another CPU
// keeps its queue (a busy flow is never split over two queues).
func TestLocalCPUSteering(t *testing.T) {
	nettest.RequirePrivileged(t)
	nettest.RequireCPUs(t, 2)
	ns := nettest.NewNS(t, "lcpu")
	// Queue 0 serves CPU 1, queue 1 CPU 0: the index is not the CPU.
	cpus := []int{1, 0}
	m := openIn(t, ns, "vxt0", 2, Options{LocalCPUs: cpus})
	if m.Offloads()&OffloadLocalCPU == 0 {
		t.Fatalf("offloads %v: got no local_cpu, want the CPU-local program loaded", m.Offloads())
	}
	configureIn(t, ns, "vxt0", 1500, []netip.Prefix{netip.MustParsePrefix("198.19.1.1/32")}, []netip.Prefix{netip.MustParsePrefix("198.19.2.0/24")})
	queueOf := map[int]int{1: 0, 0: 1}

	var c *net.UDPConn
	if err := ns.Do(func() error {
		var err error
		c, err = net.DialUDP("udp4", &net.UDPAddr{IP: net.IPv4(198, 19, 1, 1), Port: 40100}, &net.UDPAddr{IP: net.IPv4(198, 19, 2, 5), Port: 9})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// sendOn sends one datagram of the flow from a thread on each of cpus
	// in turn (one thread, moved between them) and returns the time between
	// the first and the last send.
	sendOn := func(cpus ...int) time.Duration {
		t.Helper()
		var first, last time.Time
		if err := nettest.OnCPU(cpus[0], func() error {
			for _, cpu := range cpus {
				var set unix.CPUSet
				set.Set(cpu)
				if err := unix.SchedSetaffinity(0, &set); err != nil { // migrates this thread
					return err
				}
				last = time.Now()
				if first.IsZero() {
					first = last
				}
				if _, err := c.Write([]byte("x")); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return last.Sub(first)
	}
	for _, cpu := range []int{0, 1, 0} {
		time.Sleep(5 * flowletGap * time.Nanosecond) // a pause: a new flowlet
		sendOn(cpu)
		if got, want := readFlows(t, m, 1)[40100], queueOf[cpu]; got != want {
			t.Errorf("after a pause, sent on cpu %d: got queue %d, want %d", cpu, got, want)
		}
	}
	// Back to back from the other CPU: the flow stays where it is. The pair counts only
	// when the second send came within half the gap (a slow VM may take
	// longer to migrate the thread); a few tries.
	checked := false
	for try := 0; try < 20 && !checked; try++ {
		time.Sleep(5 * flowletGap * time.Nanosecond)
		d := sendOn(1, 0)
		qs := readQueues(t, m, 2)
		if d > flowletGap*time.Nanosecond/2 {
			continue
		}
		checked = true
		if qs[0] != queueOf[1] || qs[1] != queueOf[1] {
			t.Errorf("sent on cpu 1, then %v later on cpu 0: got queues %v, want %d (cpu 1's) for both", d, qs, queueOf[1])
		}
	}
	if !checked {
		t.Log("no back-to-back send within half the flowlet gap in 20 tries: that case was not checked")
	}
}

// readQueues reads n datagrams to 198.19.2.5:9 from m's queues and returns
// the queue of each (in queue order, not sending order).
func readQueues(t *testing.T, m *Multi, n int) []int {
	t.Helper()
	var got []int
	scanQueues(t, m, func() bool { return len(got) >= n }, func(qi int, _ encap.UDP) { got = append(got, qi) })
	if len(got) < n {
		t.Fatalf("got %d datagrams, want %d", len(got), n)
	}
	return got
}
