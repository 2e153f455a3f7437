package tun

import (
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// cpuMeter reports throughput per CPU second of the benchmarking thread
// (cpu-GB/s) beside the wall-clock MB/s: on a shared machine the wall
// clock counts time other processes ran.
type cpuMeter struct {
	b     *testing.B
	start time.Duration
}

func threadCPU() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_THREAD, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func startCPU(b *testing.B) *cpuMeter {
	runtime.LockOSThread()
	return &cpuMeter{b: b, start: threadCPU()}
}

func (m *cpuMeter) stop(bytes int64) {
	d := threadCPU() - m.start
	runtime.UnlockOSThread()
	if d > 0 {
		m.b.ReportMetric(float64(bytes)*float64(m.b.N)/d.Seconds()/1e9, "cpu-GB/s")
	}
}

// Benchmarks of the pure offload paths on a 64 KiB TCP super-packet (the
// size the kernel hands a TUN with TSO, and the size Write builds).
//
//	go test -run XXX -bench 'Split|Coalesce' -benchmem ./tun/

func BenchmarkSplit(b *testing.B) {
	for _, c := range []struct {
		name string
		spec pktSpec
		mss  int
	}{
		{"tcp4-mss1448", pktSpec{seq: 1, payload: pattern(65535-20-32, 1), tsopt: true}, 1448},
		{"tcp6-mss1428", pktSpec{v6: true, seq: 1, payload: pattern(65535-40-32, 1), tsopt: true}, 1428},
		{"udp4-1400", pktSpec{udp: true, payload: pattern(65535-28, 1)}, 1400},
	} {
		b.Run(c.name, func(b *testing.B) {
			pkt := c.spec.build(b)
			h := gsoHdr(b, pkt, c.mss)
			bufs, sizes := makeBufs(DefaultBatchSize, 64+c.mss+100)
			b.SetBytes(int64(len(pkt)))
			b.ReportAllocs()
			var segs int
			cm := startCPU(b)
			for b.Loop() {
				g, err := parseGSO(h, pkt)
				if err != nil {
					b.Fatal(err)
				}
				n, err := splitGSO(pkt, &g, 0, bufs, sizes, 64)
				if err != nil || n != g.nseg {
					b.Fatalf("split: %d, %v", n, err)
				}
				segs += n
			}
			cm.stop(int64(len(pkt)))
			b.ReportMetric(float64(segs)/b.Elapsed().Seconds(), "segments/s")
		})
	}
}

func BenchmarkCoalesce(b *testing.B) {
	for _, c := range []struct {
		name   string
		spec   pktSpec
		n, mss int
		udp    bool
	}{
		{"tcp4-44x1448", pktSpec{seq: 1, tsopt: true}, 44, 1448, false},
		{"tcp6-45x1428", pktSpec{v6: true, seq: 1, tsopt: true}, 45, 1428, false},
		{"udp4-46x1400", pktSpec{udp: true}, 46, 1400, true},
	} {
		pkts := tcpFlow(b, c.spec, c.n, c.mss, 0)
		const offset = 64
		var total int
		for _, p := range pkts {
			total += len(p)
		}
		// What Write does before writev: group, verify, rewrite the leader.
		b.Run(c.name, func(b *testing.B) {
			bufs, orig := withHeadroom(pkts, offset), withHeadroom(pkts, offset)
			var g groTable
			vh := make([]byte, VirtioNetHdrLen)
			b.SetBytes(int64(total))
			b.ReportAllocs()
			cm := startCPU(b)
			for b.Loop() {
				copy(bufs[0], orig[0]) // undo the leader rewrite
				g.coalesce(bufs, offset, c.udp)
				if len(g.runs) != 1 {
					b.Fatalf("got %d runs, want 1", len(g.runs))
				}
				finishRun(&g.runs[0], bufs, offset, vh)
			}
			cm.stop(int64(total))
		})
		// The same plus gathering the super-packet into one buffer, for a
		// device that cannot writev.
		b.Run(c.name+"-gather", func(b *testing.B) {
			bufs, orig := withHeadroom(pkts, offset), withHeadroom(pkts, offset)
			var g groTable
			vh := make([]byte, VirtioNetHdrLen)
			scratch := make([]byte, 0, 70000)
			b.SetBytes(int64(total))
			b.ReportAllocs()
			cm := startCPU(b)
			for b.Loop() {
				copy(bufs[0], orig[0])
				g.coalesce(bufs, offset, c.udp)
				finishRun(&g.runs[0], bufs, offset, vh)
				scratch = appendRun(scratch[:0], &g.runs[0], &g, bufs, offset)
			}
			cm.stop(int64(total))
		})
	}
}
