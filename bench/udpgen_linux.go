package bench

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vxtun/vxtun/fastpath/udp"
	"github.com/vxtun/vxtun/internal/nettest"
)

// genDrain is how long the receiver keeps counting after the senders stop:
// datagrams still queued on the path arrive meanwhile.
const genDrain = 300 * time.Millisecond

// RunGen sends cfg's trial from src (in namespace srcNS) to dst:port (in
// dstNS) and counts what arrives. Each sending thread has its own socket
// (so its own source port, one flow each), is locked to its OS thread and
// pinned to a CPU, builds batches of datagrams in buffers allocated once and
// sends each batch with one sendmmsg (no GSO: every datagram is a message of
// its own, as a real sender's would be). Pacing: a thread sends the
// datagrams that are due by now (never more than a batch at once) and
// sleeps until the next one is due; a sender that cannot keep up (sendmmsg
// blocks on a full socket buffer) falls behind, which shows as Sent below
// the offered rate: the trial is then generator-bound. The receiver is a
// SO_REUSEPORT group of one socket per CPU with UDP GRO, each drained by its
// own goroutine into a per-stream sequence bitmap.
func RunGen(ctx context.Context, srcNS, dstNS *nettest.NS, src, dst netip.Addr, port int, cfg GenConfig) (GenResult, error) {
	if err := cfg.validate(); err != nil {
		return GenResult{}, err
	}
	if cfg.Threads == 0 {
		cfg.Threads = runtime.NumCPU()
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 64
	}
	nrecv := runtime.NumCPU()
	var rconns, sconns []*udp.Conn
	closeAll := func() {
		for _, c := range append(rconns, sconns...) {
			_ = c.Close()
		}
	}
	defer closeAll()
	laddr := netip.AddrPortFrom(dst, uint16(port))
	if err := dstNS.Do(func() error {
		for i := 0; i < nrecv; i++ {
			c, err := udp.Listen(laddr, nil)
			if err != nil {
				return fmt.Errorf("udp generator: receiver: %w", err)
			}
			rconns = append(rconns, c)
		}
		return nil
	}); err != nil {
		return GenResult{}, err
	}
	if err := srcNS.Do(func() error {
		for i := 0; i < cfg.Threads; i++ {
			c, err := udp.Listen(netip.AddrPortFrom(src, 0), &udp.Options{DisableGSO: true, DisableGRO: true, NoReusePort: true, BatchSize: cfg.Batch})
			if err != nil {
				return fmt.Errorf("udp generator: sender: %w", err)
			}
			sconns = append(sconns, c)
		}
		return nil
	}); err != nil {
		return GenResult{}, err
	}

	counters := make([]*seqCounter, nrecv)
	var rwg sync.WaitGroup
	for i, c := range rconns {
		counters[i] = &seqCounter{}
		rwg.Add(1)
		go func() {
			defer rwg.Done()
			receiveGen(c, counters[i])
		}()
	}

	pps := cfg.Rate / (8 * float64(cfg.Size)) / float64(cfg.Threads)
	dstAddr := udp.NewAddr(laddr)
	sent := make([]uint64, cfg.Threads)
	errs := make([]error, cfg.Threads)
	cpu0, cpuErr := ReadMachineCPU()
	start := time.Now()
	end := start.Add(cfg.Duration)
	var swg sync.WaitGroup
	for i, c := range sconns {
		swg.Add(1)
		go func() {
			defer swg.Done()
			sent[i], errs[i] = sendGen(ctx, c, uint32(i), &dstAddr, cfg, pps, start, end)
		}()
	}
	swg.Wait()
	elapsed := time.Since(start)
	cpu1, cpuErr1 := ReadMachineCPU()
	select {
	case <-ctx.Done():
	case <-time.After(genDrain):
	}
	for _, c := range rconns {
		_ = c.Close()
	}
	rwg.Wait()

	r := GenResult{Offered: cfg.Rate, Elapsed: min(elapsed, cfg.Duration+cfg.Duration/10), Threads: cfg.Threads}
	if cpuErr == nil && cpuErr1 == nil && elapsed > 0 {
		r.Busy = min(1, cpu1.Sub(cpu0)/elapsed.Seconds()/float64(runtime.NumCPU()))
	}
	for _, n := range sent {
		r.Sent += n
	}
	for _, c := range counters {
		r.Received += c.received
		r.Dups += c.dups
		r.Reorder += c.reorder
	}
	if err := ctx.Err(); err != nil {
		return r, err
	}
	return r, errors.Join(errs...)
}

// sendGen is one sending thread.
func sendGen(ctx context.Context, c *udp.Conn, stream uint32, dst *udp.Addr, cfg GenConfig, pps float64, start, end time.Time) (uint64, error) {
	runtime.LockOSThread() // the thread ends with the goroutine: its affinity goes with it
	var set unix.CPUSet
	set.Set(int(stream) % runtime.NumCPU())
	_ = unix.SchedSetaffinity(0, &set) // best effort: a restricted cpuset may refuse

	msgs := make([]udp.Message, cfg.Batch)
	for i := range msgs {
		msgs[i] = udp.Message{Buf: make([]byte, cfg.Size), Addr: dst}
	}
	var seq uint64
	for {
		if ctx.Err() != nil {
			return seq, nil
		}
		now := time.Now()
		if !now.Before(end) {
			return seq, nil
		}
		due := uint64(now.Sub(start).Seconds()*pps) + 1
		if due <= seq {
			next := start.Add(time.Duration(float64(seq+1) / pps * float64(time.Second)))
			time.Sleep(min(next.Sub(now), end.Sub(now)))
			continue
		}
		n := int(min(due-seq, uint64(len(msgs))))
		for i := 0; i < n; i++ {
			putGenHeader(msgs[i].Buf, stream, seq+uint64(i))
		}
		k, err := c.WriteBatch(msgs[:n])
		seq += uint64(k)
		if err != nil {
			if errors.Is(err, unix.ENOBUFS) || errors.Is(err, unix.EAGAIN) {
				continue // a full device queue: the datagram is not sent, try again
			}
			return seq, fmt.Errorf("udp generator: stream %d: %w", stream, err)
		}
	}
}

// receiveGen counts until c is closed.
func receiveGen(c *udp.Conn, cnt *seqCounter) {
	msgs := make([]udp.Message, 64)
	for i := range msgs {
		msgs[i].Buf = make([]byte, udp.MaxRead)
	}
	dgrams := make([][]byte, 0, udp.MaxSegments)
	for {
		n, err := c.ReadBatch(msgs)
		if err != nil {
			return
		}
		for i := 0; i < n; i++ {
			dgrams = msgs[i].Datagrams(dgrams[:0])
			for _, d := range dgrams {
				cnt.add(d)
			}
		}
	}
}
