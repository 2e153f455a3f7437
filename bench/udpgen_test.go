package bench

import (
	"testing"
	"time"
)

func TestSeqCounter(t *testing.T) {
	type dg struct {
		stream uint32
		seq    uint64
	}
	for _, tc := range []struct {
		name                                       string
		in                                         []dg
		foreign                                    int
		wantRecv, wantDups, wantReord, wantForeign uint64
	}{
		{name: "in order", in: []dg{{0, 0}, {0, 1}, {0, 2}, {1, 0}}, wantRecv: 4},
		{name: "loss", in: []dg{{0, 0}, {0, 2}, {0, 5}}, wantRecv: 3},
		{name: "duplicate", in: []dg{{0, 0}, {0, 1}, {0, 1}, {0, 0}}, wantRecv: 2, wantDups: 2},
		{name: "reorder", in: []dg{{0, 1}, {0, 0}, {0, 3}, {0, 2}}, wantRecv: 4, wantReord: 2},
		{name: "streams independent", in: []dg{{0, 5}, {1, 0}, {1, 1}}, wantRecv: 3},
		{name: "large sequence grows bitmap", in: []dg{{2, 1 << 20}, {2, 1<<20 + 1}, {2, 1 << 20}}, wantRecv: 2, wantDups: 1},
		{name: "foreign", in: []dg{{0, 0}}, foreign: 3, wantRecv: 1, wantForeign: 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c seqCounter
			b := make([]byte, 64)
			for _, d := range tc.in {
				putGenHeader(b, d.stream, d.seq)
				c.add(b)
			}
			for i := 0; i < tc.foreign; i++ {
				c.add([]byte("not a generator datagram"))
			}
			if c.received != tc.wantRecv || c.dups != tc.wantDups || c.reorder != tc.wantReord || c.foreign != tc.wantForeign {
				t.Errorf("got received %d dups %d reorder %d foreign %d, want %d %d %d %d",
					c.received, c.dups, c.reorder, c.foreign, tc.wantRecv, tc.wantDups, tc.wantReord, tc.wantForeign)
			}
		})
	}
}

func TestSeqCounterAllocs(t *testing.T) {
	var c seqCounter
	b := make([]byte, 64)
	putGenHeader(b, 0, 0)
	c.add(b) // first datagram of a stream allocates its bitmap
	seq := uint64(1)
	if n := testing.AllocsPerRun(1000, func() {
		putGenHeader(b, 0, seq)
		seq++
		c.add(b)
	}); n != 0 {
		t.Errorf("got %v allocs per datagram, want 0", n)
	}
}

func TestGenResult(t *testing.T) {
	r := GenResult{Sent: 1000, Received: 990, Elapsed: time.Second}
	if got, want := r.LossPercent(), 1.0; got != want {
		t.Errorf("got loss %v %%, want %v", got, want)
	}
	if got, want := r.RecvBps(64), 990*64*8.0; got != want {
		t.Errorf("got %v bit/s, want %v", got, want)
	}
	if got := (GenResult{Sent: 5, Received: 6}).LossPercent(); got != 0 {
		t.Errorf("got loss %v with more received than sent, want 0", got)
	}
	for _, c := range []GenConfig{{Size: 8, Rate: 1, Duration: time.Second}, {Size: 64, Rate: 0, Duration: time.Second}, {Size: 64, Rate: 1, Duration: time.Second, Threads: 65}} {
		if err := c.validate(); err == nil {
			t.Errorf("config %+v: got nil error, want one", c)
		}
	}
}
