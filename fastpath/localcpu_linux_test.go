package fastpath

import (
	"context"
	"testing"

	"github.com/vxtun/vxtun/config"
	"github.com/vxtun/vxtun/internal/nettest"
)

// TestLocalLoop: with LocalCPUs and no spinner each worker has one owner
// goroutine for its TUN queue and socket (localLoop). Pings and a verified
// TCP transfer cross two such nodes both ways; at the node that answers a
// ping, the kernel's echo reply is queued on the TUN queue of the CPU that
// wrote the request before the write returns, and the same goroutine
// reads it next: one wait per ping there, where a worker's two owners
// would wait twice (once each).
func TestLocalLoop(t *testing.T) {
	nettest.RequirePrivileged(t)
	nettest.RequireCommand(t, "ping")
	nettest.RequireCPUs(t, 2)
	h := nettest.NewTwoHosts(t)
	ua, ub := nettest.UnderlayAddr(1), nettest.UnderlayAddr(2)
	local := func(c *Config) { c.LocalCPUs = []int{1, 0} } // worker ≠ CPU number on purpose
	a := startVXTUN(t, h.A, 1, ua, config.BackendVXLAN, 0, 1500, []config.Peer{peerFor(2, ub, config.BackendVXLAN, 0)}, local)
	b := startVXTUN(t, h.B, 2, ub, config.BackendVXLAN, 0, 1500, []config.Peer{peerFor(1, ua, config.BackendVXLAN, 0)}, local)
	for _, v := range []*vnode{a, b} {
		for _, w := range v.f.workers {
			if !w.singleOwner() {
				t.Fatalf("node %d worker %d: got two owners, want one (LocalCPUs, no spinner)", v.n, w.id)
			}
		}
	}
	waits := func(v *vnode) uint64 { return v.f.Stats().Waits }
	ping(t, h.A, nettest.PodAddr(1), nettest.PodAddr(2), 3) // ARP, flowlets
	const pings = 200
	before := waits(b)
	r, err := nettest.Ping(context.Background(), h.A, nettest.PodAddr(1), nettest.PodAddr(2), "-c", "200", "-i", "0.005", "-W", "2")
	if err != nil {
		t.Fatalf("ping: %v", err)
	}
	if r.Received != pings {
		t.Errorf("ping 1→2: got %d of %d replies, want all", r.Received, r.Transmitted)
	}
	// Each ping: the request wakes node 2's worker once; after the reply
	// nothing is left and it waits. Fewer when requests queue up behind a
	// worker held up by a loaded machine (two read in one round), a few
	// more for a spurious wake-up.
	if got := waits(b) - before; got < pings/2 || got > pings*3/2 {
		t.Errorf("%d pings answered by node 2: got %d waits of its workers, want %d to %d (about one per ping, the reply read without one)", pings, got, pings/2, pings*3/2)
	}
	transfer(t, h.A, h.B, nettest.PodAddr(1), nettest.PodAddr(2), 5201, raceTransferSize, nil)
	transfer(t, h.B, h.A, nettest.PodAddr(2), nettest.PodAddr(1), 5202, raceTransferSize, nil)
}
