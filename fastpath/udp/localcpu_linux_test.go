package udp

import (
	"fmt"
	"testing"
	"time"

	"github.com/vxtun/vxtun/internal/nettest"
)

// TestLocalCPUGroup: with LocalCPUs the SO_REUSEPORT group hands a
// datagram to the socket of the CPU it is received on. Over a veth the
// receive runs on the sending CPU, so 32 flows sent from CPU 0 all reach
// the socket that serves CPU 0, and 32 from CPU 1 the other one (by hash
// they would spread, see TestReusePort).
func TestLocalCPUGroup(t *testing.T) {
	nettest.RequireCPUs(t, 2)
	h := nettest.NewTwoHosts(t)
	cpus := []int{1, 0} // socket 0 serves CPU 1
	rx0 := listenIn(t, h.B, "198.18.0.2:0", &Options{DisableGRO: true, LocalCPUs: cpus})
	rx1 := listenIn(t, h.B, fmt.Sprintf("198.18.0.2:%d", rx0.LocalAddr().Port()), &Options{DisableGRO: true, LocalCPUs: cpus})
	if !rx0.LocalCPU() || !rx1.LocalCPU() {
		t.Fatalf("got LocalCPU %v, %v, want the program attached to both", rx0.LocalCPU(), rx1.LocalCPU())
	}
	dst := NewAddr(rx0.LocalAddr())
	const flows = 32
	for _, tc := range []struct {
		cpu  int
		want [2]int
	}{{0, [2]int{0, flows}}, {1, [2]int{flows, 0}}} {
		txs := make([]*Conn, flows)
		for i := range txs {
			txs[i] = listenIn(t, h.A, "198.18.0.1:0", nil)
		}
		if err := nettest.OnCPU(tc.cpu, func() error {
			for i, tx := range txs {
				if n, err := tx.WriteBatch([]Message{{Buf: pattern(64, i), Addr: &dst}}); n != 1 || err != nil {
					return fmt.Errorf("flow %d: WriteBatch: %d, %v", i, n, err)
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		for _, tx := range txs {
			tx.Close()
		}
		var got [2]int
		deadline := time.Now().Add(5 * time.Second)
		for got[0]+got[1] < flows && time.Now().Before(deadline) {
			for i, c := range []*Conn{rx0, rx1} {
				n, err := readNonBlocking(c, []Message{{Buf: make([]byte, 2048)}})
				if err != nil {
					t.Fatal(err)
				}
				got[i] += n
			}
		}
		if got != tc.want {
			t.Errorf("%d flows sent from cpu %d: got %v datagrams on sockets 0 and 1, want %v", flows, tc.cpu, got, tc.want)
		}
	}
}
