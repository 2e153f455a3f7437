package tun

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/vxtun/vxtun/encap"
	"github.com/vxtun/vxtun/internal/ebpf"
	"github.com/vxtun/vxtun/internal/nettest"
)

// TestSteeringProgramsAssemble: every jump of both programs lands inside
// them, and they end with exit.
func TestSteeringProgramsAssemble(t *testing.T) {
	for name, prog := range map[string][]ebpf.Asm{
		"flow hash": steeringProgram(),
		"local cpu": localSteeringProgram([]int{0, 1, 5}, 3),
	} {
		insns, err := ebpf.Assemble(prog)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for i, in := range insns {
			if in.Code&0x07 == 0x05 && in.Off != 0 {
				if to := i + 1 + int(in.Off); to <= i || to >= len(insns) {
					t.Errorf("%s: insn %d: jump to %d, want a later instruction below %d", name, i, to, len(insns))
				}
			}
		}
		if last := insns[len(insns)-1]; last.Code != ebpf.Exit {
			t.Errorf("%s: last insn: got code %#x, want exit %#x", name, last.Code, ebpf.Exit)
		}
	}
}

// TestSteeringKeepsFlowsOnTheirQueue sends 16 UDP flows out of a two-queue
// TUN, writes a reply of each flow on the queue it did not leave from (as a
// worker does when the peer's SO_REUSEPORT choice and the TUN's disagree)
// and sends again. With the steering program every flow leaves from the
// same queue both times, and the flows use both queues; with the kernel's
// flow table (NoSteering) the flows follow their replies, which is what made
// TCP flows flip between workers.
func TestSteeringKeepsFlowsOnTheirQueue(t *testing.T) {
	nettest.RequirePrivileged(t)
	ns := nettest.NewNS(t, "steer")
	for _, tc := range []struct {
		name     string
		opts     Options
		steering bool
	}{
		{"steering", Options{}, true},
		{"flow table", Options{NoSteering: true}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := openIn(t, ns, "vxt0", 2, tc.opts)
			if got := m.Offloads()&OffloadSteering != 0; got != tc.steering {
				t.Fatalf("offloads %v: got steering %v, want %v", m.Offloads(), got, tc.steering)
			}
			configureIn(t, ns, "vxt0", 1500, []netip.Prefix{netip.MustParsePrefix("198.19.1.1/32")}, []netip.Prefix{netip.MustParsePrefix("198.19.2.0/24")})
			const flows, basePort = 16, 40001
			var conns []*net.UDPConn
			if err := ns.Do(func() error {
				for i := range flows {
					c, err := net.DialUDP("udp4", &net.UDPAddr{IP: net.IPv4(198, 19, 1, 1), Port: basePort + i}, &net.UDPAddr{IP: net.IPv4(198, 19, 2, 5), Port: 9})
					if err != nil {
						return err
					}
					conns = append(conns, c)
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				for _, c := range conns {
					c.Close()
				}
			})
			send := func() map[uint16]int {
				t.Helper()
				for _, c := range conns {
					if _, err := c.Write([]byte("x")); err != nil {
						t.Fatal(err)
					}
				}
				return readFlows(t, m, flows)
			}
			first := send()
			// A reply of each flow on the other queue.
			for port, qi := range first {
				reply := pktSpec{udp: true, src: "198.19.2.5", dst: "198.19.1.1", sport: 9, dport: port, payload: []byte("y")}.build(t)
				if _, err := m.Queues()[1-qi].Write([][]byte{reply}, 0); err != nil {
					t.Fatal(err)
				}
			}
			second := send()
			used := map[int]bool{}
			moved := 0
			for port, qi := range first {
				used[qi] = true
				if second[port] != qi {
					moved++
				}
			}
			if tc.steering {
				if moved != 0 {
					t.Errorf("%d of %d flows moved to the queue of their reply, want 0 (first %v, second %v)", moved, flows, first, second)
				}
				if len(used) != 2 {
					t.Errorf("flows used queues %v, want both", used)
				}
			} else if moved != flows {
				t.Errorf("flow table: %d of %d flows followed their reply, want all (the kernel's behaviour the program replaces)", moved, flows)
			}
		})
	}
}

// readFlows reads from both queues until the datagrams of n flows to
// 198.19.2.5:9 have arrived and returns each flow's (source port's) queue.
func readFlows(t *testing.T, m *Multi, n int) map[uint16]int {
	t.Helper()
	got := map[uint16]int{}
	scanQueues(t, m, func() bool { return len(got) >= n }, func(qi int, u encap.UDP) {
		if prev, ok := got[u.SrcPort()]; ok && prev != qi {
			t.Fatalf("flow %d left from queues %d and %d in one round", u.SrcPort(), prev, qi)
		}
		got[u.SrcPort()] = qi
	})
	if len(got) < n {
		t.Fatalf("got datagrams of %d flows, want %d", len(got), n)
	}
	return got
}

// scanQueues reads every queue of m in turn, giving each UDP datagram to
// 198.19.2.5 to visit with its queue, until done or 5 s have passed, then
// clears the read deadlines.
func scanQueues(t *testing.T, m *Multi, done func() bool, visit func(qi int, u encap.UDP)) {
	t.Helper()
	bufs, sizes := makeBufs(DefaultBatchSize, 2048)
	deadline := time.Now().Add(5 * time.Second)
	for !done() && time.Now().Before(deadline) {
		for qi, q := range m.Queues() {
			if err := q.SetReadDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
				t.Fatal(err)
			}
			k, err := q.Read(bufs, sizes, 0)
			if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatal(err)
			}
			for i := range k {
				p := bufs[i][:sizes[i]]
				if len(p) < encap.IPv4MinimumSize+encap.UDPMinimumSize || encap.IPVersion(p) != 4 {
					continue
				}
				ip := encap.IPv4(p)
				if ip.Protocol() != encap.ProtocolUDP || ip.DstAddr() != netip.AddrFrom4([4]byte{198, 19, 2, 5}) {
					continue
				}
				visit(qi, encap.UDP(ip.Payload()))
			}
		}
	}
	for _, q := range m.Queues() {
		if err := q.SetReadDeadline(time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
}
