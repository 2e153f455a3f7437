package bench

import (
	"context"
	"testing"
	"time"

	"github.com/vxtun/vxtun/internal/nettest"
)

// TestRunGenVeth sends a paced trial across a plain veth: every datagram
// arrives once, and pacing never offers more than asked (plus one batch
// per thread).
func TestRunGenVeth(t *testing.T) {
	th := nettest.NewTwoHosts(t)
	a, b := th.Hosts[0], th.Hosts[1]
	// Resolve the neighbour first: datagrams sent while ARP is pending are
	// dropped beyond the kernel's small queue (on a busy machine that can be
	// the whole trial), which would not be the generator's loss.
	if err := nettest.WaitPing(context.Background(), a.NS, a.Underlay, b.Underlay, 10*time.Second, nil); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		size, threads int
		rate          float64
	}{{64, 2, 5e6}, {1400, 1, 50e6}} {
		cfg := GenConfig{Size: tc.size, Rate: tc.rate, Threads: tc.threads, Duration: 300 * time.Millisecond, Batch: 16}
		r, err := RunGen(context.Background(), a.NS, b.NS, a.Underlay, b.Underlay, 9000, cfg)
		if err != nil {
			t.Fatalf("%d B: %v", tc.size, err)
		}
		maxSent := uint64(tc.rate/(8*float64(tc.size))*cfg.Duration.Seconds()) + uint64(tc.threads*cfg.Batch)
		if r.Sent == 0 || r.Sent > maxSent {
			t.Errorf("%d B: got %d sent, want 1..%d", tc.size, r.Sent, maxSent)
		}
		if r.Received != r.Sent || r.Dups != 0 {
			t.Errorf("%d B: got %d received (%d dups) of %d sent, want all once", tc.size, r.Received, r.Dups, r.Sent)
		}
		if r.Threads != tc.threads {
			t.Errorf("%d B: got %d threads, want %d", tc.size, r.Threads, tc.threads)
		}
	}
}
