package udp

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/vxtun/vxtun/internal/nettest"
)

// BenchmarkVeth sends 1400-byte datagrams from host A to host B over the
// two-host veth underlay, 64 datagrams per WriteBatch, with one receiver
// goroutine draining B's socket. An op is one datagram offered; MB/s and
// tx-pps are the offered rate, rx-pps, rx-Gbit/s and loss-% what arrived.
func BenchmarkVeth(b *testing.B) {
	h := nettest.NewTwoHosts(b)
	for _, bc := range []struct {
		name       string
		send, recv Options
	}{
		{"sendmmsg", Options{DisableGSO: true}, Options{}},
		{"gso", Options{RequireGSO: true}, Options{}},
		{"gso-nogro", Options{RequireGSO: true}, Options{DisableGRO: true}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			const size, batch = 1400, 64
			rx := listenIn(b, h.B, "198.18.0.2:0", &bc.recv)
			tx := listenIn(b, h.A, "198.18.0.1:0", &bc.send)
			dst := NewAddr(rx.LocalAddr())
			back := make([]byte, size*batch)
			dgrams := make([][]byte, batch)
			for i := range dgrams {
				dgrams[i] = back[i*size : (i+1)*size]
			}
			msgs := make([]Message, 0, batch)
			if bc.send.DisableGSO {
				for i := range dgrams {
					msgs = append(msgs, Message{Buf: dgrams[i], Addr: &dst})
				}
			} else {
				msgs = AppendGSO(msgs, dgrams, &dst)
			}

			var got atomic.Int64
			var last atomic.Int64
			done := make(chan struct{})
			go func() {
				defer close(done)
				rmsgs := make([]Message, 64)
				for i := range rmsgs {
					rmsgs[i].Buf = make([]byte, MaxRead)
				}
				for {
					n, err := rx.ReadBatch(rmsgs)
					if err != nil {
						return
					}
					c := int64(0)
					for _, m := range rmsgs[:n] {
						if m.SegmentSize > 0 {
							c += int64((m.N + m.SegmentSize - 1) / m.SegmentSize)
						} else {
							c++
						}
					}
					got.Add(c)
					last.Store(time.Now().UnixNano())
				}
			}()

			b.SetBytes(size)
			b.ReportAllocs()
			start := time.Now()
			sent := 0
			for sent < b.N {
				if _, err := tx.WriteBatch(msgs); err != nil {
					b.Fatal(err)
				}
				sent += batch
			}
			txDur := time.Since(start)
			b.StopTimer()
			// Let the receiver drain, then stop it.
			for prev := int64(-1); got.Load() != prev; {
				prev = got.Load()
				time.Sleep(20 * time.Millisecond)
			}
			rx.Close()
			<-done
			rxDur := time.Duration(last.Load() - start.UnixNano())
			if rxDur <= 0 {
				rxDur = txDur
			}
			n := got.Load()
			b.ReportMetric(float64(sent)/txDur.Seconds(), "tx-pps")
			b.ReportMetric(float64(n)/rxDur.Seconds(), "rx-pps")
			b.ReportMetric(float64(n)*size*8/rxDur.Seconds()/1e9, "rx-Gbit/s")
			b.ReportMetric(100*float64(int64(sent)-n)/float64(sent), "loss-%")
		})
	}
}
