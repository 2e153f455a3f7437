package fastpath

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vxtun/vxtun/fastpath/udp"
)

// The wait loop (see "Waiting" in doc.go). Each direction of a worker
// (its TUN queue outbound, its UDP socket inbound) has an owner goroutine
// and a token, dir.mu: whoever holds the token reads the direction without
// waiting and handles the batch. The owner sleeps in the runtime poller
// only without the token and only after its own read found the direction
// empty, so every packet that arrives later wakes it. A goroutine whose
// direction has gone empty may become the process's one spinner (only
// with GOMAXPROCS > 1, so a P stays free for the runtime poller and
// everything else): until spin has passed since the last batch (forever
// with Config.BusyPoll) it reads the directions of its forwarder whose
// owner sleeps, yielding the CPU between empty rounds. A reply that comes
// back within that time is handled by a goroutine that is already running
// instead of one that must be woken (on a VM, often on a halted vCPU).
// While a spinner runs, owners sleep off the poller (sleepOffPoll), so a
// packet the spinner reads wakes none of them.

// dir is one direction of a worker as the wait loop sees it.
type dir struct {
	mu sync.Mutex // the token: held while reading and handling a batch
	// kick is set by the owner before it tries for the token: a spinner
	// that held it reads the direction again after letting it go, so a
	// packet whose wake-up the owner took while the spinner held the token
	// is read by the spinner.
	kick atomic.Bool
	// parked is set while the owner sleeps in wait: the spinner polls
	// only such directions and leaves a busy owner its work, so under load
	// the directions stay spread over their goroutines (CPUs).
	parked atomic.Bool
	// offPoll is set while the owner sleeps on wake instead of in the
	// runtime poller (busy-poll: the spinner reads the direction, and no
	// readiness wakes the owner); streak counts the spinner's consecutive
	// non-empty reads of it, and at handBack the owner is woken to take
	// its direction back (load).
	offPoll atomic.Bool
	wake    chan struct{}
	streak  int
	// handBacks counts the owner's wake-ups by handBackUnderLoad (tests).
	handBacks atomic.Uint64
	// fd is the direction's descriptor when it is outside the runtime
	// poller (waitAhead waits for it), else nil.
	fd   dirFD
	try  func() (bool, error) // read without waiting and handle; false: nothing was queued
	wait func() error         // block until readable (owner only, without mu)
}

// pollTUN is a TUN queue that can be read without waiting (tun.Queue, on
// Linux).
type pollTUN interface {
	TryRead(bufs [][]byte, sizes []int, offset int) (int, error)
	WaitRead() error
}

// pollConn is a socket that can be read without waiting (udp.Conn).
type pollConn interface {
	TryReadBatch(msgs []udp.Message) (int, error)
	WaitRead() error
}

var _ pollConn = (*udp.Conn)(nil)

// initDirs sets up the worker's directions; the outbound one only if the
// TUN device can be read without waiting (fakes cannot: outboundLoop then
// blocks in Read as before).
func (w *worker) initDirs() {
	w.inDir.try = w.inTry
	w.inDir.wake = make(chan struct{}, 1)
	w.outDir.wake = make(chan struct{}, 1)
	w.inDir.wait = w.conn.WaitRead
	w.inDir.fd = rawFD(w.conn)
	if p, ok := w.dev.(pollTUN); ok {
		w.ptun = p
		w.outDir.try = w.outTry
		w.outDir.wait = p.WaitRead
		w.outDir.fd = rawFD(p)
	}
}

// ownLoop is the owner goroutine of direction d.
func (w *worker) ownLoop(d *dir) error {
	f := w.f
	w.pinOwner()
	waitFails := 0
	for {
		d.kick.Store(true)
		if d.mu.TryLock() {
			d.kick.Store(false)
			got, err := d.try()
			d.mu.Unlock()
			if f.stopping.Load() {
				return nil
			}
			if err != nil {
				return err
			}
			if got {
				continue
			}
			if err := f.spinPoll(d); err != nil {
				if f.stopping.Load() {
					return nil
				}
				return err
			}
		}
		// Else the spinner holds the token and reads again after it lets
		// go (kick): wait for what comes next.
		if f.stopping.Load() {
			return nil
		}
		d.parked.Store(true)
		if f.sleepOffPoll(d) {
			d.parked.Store(false)
			continue
		}
		f.rescan()
		w.waits.Add(1)
		err := d.wait()
		d.parked.Store(false)
		if err != nil {
			if f.stopping.Load() {
				return nil
			}
			if isClosed(err) || waitFails >= errorBudget {
				return fmt.Errorf("worker %d: %w", w.id, err)
			}
			waitFails++ // e.g. a read deadline set from outside: read again
			continue
		}
		waitFails = 0
	}
}

// inTry receives and handles one inbound batch, if one is queued.
func (w *worker) inTry() (bool, error) {
	in := &w.ib
	n, err := w.conn.TryReadBatch(in.msgs)
	if w.f.stopping.Load() {
		return false, nil
	}
	if err != nil {
		if isClosed(err) || in.fails >= errorBudget {
			return false, fmt.Errorf("worker %d: %w", w.id, err)
		}
		in.fails++
		w.logRare(&in.lastLog, "underlay receive", err)
		return true, nil // read again
	}
	in.fails = 0
	if n == 0 {
		return false, nil
	}
	w.f.active()
	if err := w.inbound(n); err != nil && !w.f.stopping.Load() {
		return false, fmt.Errorf("worker %d: %w", w.id, err)
	}
	return true, nil
}

// outTry reads and forwards one outbound batch, if one is queued.
func (w *worker) outTry() (bool, error) {
	o := &w.ob
	n, err := w.ptun.TryRead(o.bufs, o.sizes, Headroom)
	if w.f.stopping.Load() {
		return false, nil
	}
	if n > 0 {
		w.f.active()
		if ferr := w.outbound(n); ferr != nil && !w.f.stopping.Load() {
			return false, fmt.Errorf("worker %d: %w", w.id, ferr)
		}
	}
	if err == nil {
		o.fails = 0
		return n > 0, nil
	}
	if isClosed(err) || o.fails >= errorBudget {
		return false, fmt.Errorf("worker %d: %w", w.id, err)
	}
	o.fails++
	w.logRare(&o.lastLog, "tun read", err)
	return true, nil // read again
}

// spinner is the forwarder whose goroutine spins, if any: one per process.
// A spinning goroutine keeps its P busy, and with every P spinning the
// runtime would look for ready network I/O only every 10 ms (sysmon).
var spinner atomic.Pointer[Forwarder]

// spinState is the forwarder's: how long to spin, and when a batch was
// last handled.
type spinState struct {
	spin  time.Duration // 0: never spin; < 0: spin until stopped (Config.BusyPoll)
	epoch time.Time
	last  atomic.Int64 // time.Since(epoch) of the last batch, in ns

	// With Config.PollAhead (pollahead.go): the spinner waits itself
	// instead of stopping; blocked is set while it does.
	pollAhead bool
	blocked   atomic.Bool
	ahead     aheadState
	set       waitSet
	waker     aheadWaker // in set: ends the wait (rescan)
}

// active records that a batch is being handled now.
func (f *Forwarder) active() {
	f.sp.last.Store(int64(time.Since(f.sp.epoch)))
}

// spinning reports whether one of f's goroutines is the spinner.
func (f *Forwarder) spinning() bool { return spinner.Load() == f }

// spinPoll makes the caller, the owner of own, the spinner, unless
// another goroutine is, no batch was handled within spin, or GOMAXPROCS is
// 1. It then reads, without waiting, every direction of f whose token is
// free and whose owner sleeps (own included), until spin has passed since
// the last batch (with BusyPoll: until f stops). It returns a direction's
// fatal error.
func (f *Forwarder) spinPoll(own *dir) error {
	sp := &f.sp
	if sp.spin == 0 || (sp.spin > 0 && f.idleFor() >= sp.spin) || f.procs < 2 || !spinner.CompareAndSwap(nil, f) {
		return nil
	}
	defer f.wakeOffPoll()
	defer spinner.Store(nil)
	for !f.stopping.Load() {
		got := false
		for _, w := range f.workers {
			for _, d := range w.dirs() {
				if d == nil || d.try == nil || (d != own && !d.parked.Load()) {
					continue
				}
				// Read again at once if the owner tried for the token
				// meanwhile (kick): it went back to sleep on a wake-up
				// whose packet may still be queued.
				for again := true; again && d.mu.TryLock(); {
					g, err := d.try()
					d.mu.Unlock()
					if err != nil {
						return err
					}
					got = got || g
					again = d.kick.Swap(false)
					if d != own && d.offPoll.Load() {
						d.handBackUnderLoad(g)
					}
				}
			}
		}
		if got {
			if sp.ahead.quiet {
				sp.ahead.burst(f.now())
			}
			continue
		}
		if sp.spin > 0 && f.idleFor() >= sp.spin && f.now() >= sp.ahead.until {
			if !sp.pollAhead {
				return nil
			}
			if ok, err := f.waitAhead(own); !ok || err != nil {
				return err
			}
			continue
		}
		// Not runtime.Gosched: it wakes an idle P's thread to take the
		// spinner over, threads hand it back and forth (66 wake-ups per
		// ping round trip), and while they do forwarding stalled for
		// seconds after start. sysmon still preempts this goroutine.
		yieldCPU()
	}
	return nil
}

// idleFor is the time since the last batch.
func (f *Forwarder) idleFor() time.Duration {
	return time.Since(f.sp.epoch) - time.Duration(f.sp.last.Load())
}

// handBack is the number of consecutive non-empty reads by the spinner after
// which a direction's owner, sleeping off the poller, is woken to take it
// back: a stream, not a lone ping or ACK.
const handBack = 2

// handBackUnderLoad counts the spinner's read of d (got: it was not empty)
// and wakes d's owner at handBack.
func (d *dir) handBackUnderLoad(got bool) {
	if !got {
		d.streak = 0
		return
	}
	if d.streak++; d.streak >= handBack {
		d.streak = 0
		select {
		case d.wake <- struct{}{}:
			d.handBacks.Add(1)
		default:
		}
	}
}

// sleepOffPoll makes d's owner sleep on d.wake instead of in the runtime
// poller while a spinner of f runs (busy-poll), and reports whether it did.
// The spinner wakes it under load (handBackUnderLoad) and when it stops
// spinning (wakeOffPoll).
func (f *Forwarder) sleepOffPoll(d *dir) bool {
	if d.wake == nil || !f.spinning() || f.sp.blocked.Load() {
		return false
	}
	d.offPoll.Store(true)
	// Else the spinner left, or began to wait (waitAhead), before it could
	// see offPoll: wait on the descriptor.
	if !f.spinning() || f.sp.blocked.Load() {
		d.offPoll.Store(false)
		return false
	}
	<-d.wake
	d.offPoll.Store(false)
	return true
}

// wakeOffPoll wakes every owner sleeping off the poller: the spinner stops.
func (f *Forwarder) wakeOffPoll() {
	for _, w := range f.workers {
		for _, d := range w.dirs() {
			if d != nil && d.wake != nil {
				select {
				case d.wake <- struct{}{}:
				default:
				}
			}
		}
	}
}

// dirs are the worker's directions: inbound, outbound and the IPv6
// underlay's inbound socket (nil without one).
func (w *worker) dirs() [3]*dir {
	ds := [3]*dir{&w.inDir, &w.outDir}
	if w.v6 != nil {
		ds[2] = &w.v6.inDir
	}
	return ds
}
