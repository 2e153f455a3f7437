package fastpath

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vxtun/vxtun/config"
	"github.com/vxtun/vxtun/fastpath/routing"
	"github.com/vxtun/vxtun/fastpath/udp"
	"github.com/vxtun/vxtun/tun"
)

// Headroom is the offset at which the pipeline places inner packets in the
// buffers it hands to tun.Device.Read: room for the VXLAN header and inner
// Ethernet header (encap.VXLANOverhead, 22 bytes) written in place in front
// of the packet, rounded up. (The tun package keeps its virtio-net headers in
// its own buffers.)
const Headroom = 32

// rxBatch is how many UDP messages one ReadBatch asks for; each buffer holds
// a whole GRO super-datagram (udp.MaxRead).
const rxBatch = 64

// Forwarder moves packets between TUN queues and the underlay: one worker per
// TUN queue, each with its own UDP socket. Create it with New, give it peers
// with SetPeers, and call Run once.
type Forwarder struct {
	cfg    Config
	log    *slog.Logger
	enc    encapsulation
	hdrLen int // enc.headerLen()
	vtepIP netip.Addr
	own    ownNets      // our subnets: accepted inner destinations
	icmp   *icmpLimiter // rate limits of the ICMP errors we make
	mtu    int          // underlay MTU
	// maxInner4 and maxInner6 are the largest inner packets that fit mtu
	// to a peer on an IPv4 or IPv6 underlay.
	maxInner4, maxInner6 int
	v6Underlay           bool           // the sockets are bound to an IPv6 address
	laddr                netip.AddrPort // where the sockets are bound
	laddr6               netip.AddrPort // where the IPv6 underlay's are (underlay6.go), or zero
	table                routing.Holder
	tableMu              sync.Mutex // serialises SetPeers (builders read the previous table)
	workers              []*worker

	sp    spinState // the wait loop's spinner (poll.go)
	procs int       // GOMAXPROCS at New

	ran       atomic.Bool
	stopping  atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

// sockOpts are the options of a worker's receiving socket, or of its
// send-only one: with a spinner (Config.Spins) the sockets stay out of
// the runtime poller, which would otherwise wake a thread for every
// datagram the spinner reads (see "Waiting" in doc.go).
func (f *Forwarder) sockOpts(sendOnly bool) *udp.Options {
	o := &udp.Options{SendOnly: sendOnly, NoReusePort: sendOnly, Unpolled: f.cfg.Unpolled()}
	if !sendOnly {
		o.LocalCPUs = f.cfg.LocalCPUs
	}
	return o
}

// New creates a forwarder with one worker per TUN queue in devs; each worker
// opens its own UDP socket (SO_REUSEPORT) bound to cfg.ListenAddr in the
// calling goroutine's network namespace. The forwarder routes nothing until
// SetPeers is called.
func New(cfg Config, devs []tun.Device) (*Forwarder, error) {
	if len(devs) == 0 {
		return nil, errors.New("new forwarder: no tun device")
	}
	if n := len(cfg.LocalCPUs); n > 0 && n != len(devs) {
		return nil, fmt.Errorf("new forwarder: %d local cpus for %d workers", n, len(devs))
	}
	f := &Forwarder{cfg: cfg, log: cfg.Logger, mtu: cfg.UnderlayMTU, vtepIP: cfg.VtepIP.Unmap(),
		own: newOwnNets(cfg.Subnets), icmp: newICMPLimiter(cfg.ICMP, nil)}
	f.sp.epoch, f.procs = time.Now(), runtime.GOMAXPROCS(0)
	switch {
	case cfg.BusyPoll:
		f.sp.spin = -1
	case cfg.IdleSpin > 0:
		f.sp.spin = cfg.IdleSpin
		f.sp.pollAhead = cfg.PollAhead
	}
	if f.log == nil {
		f.log = slog.Default()
	}
	if len(f.own.v4)+len(f.own.v6) == 0 {
		f.log.Warn("forwarder has no own subnets: every packet from peers will be dropped as foreign_destination")
	}
	enc, err := newEncapsulation(cfg.Backend, cfg.VNI, cfg.VtepMAC)
	if err != nil {
		return nil, fmt.Errorf("new forwarder: %w", err)
	}
	f.enc, f.hdrLen = enc, enc.headerLen()
	port := cfg.ListenAddr.Port()
	if port == 0 {
		port = enc.defaultPort()
	}
	if f.mtu == 0 {
		f.mtu = 1500
	}
	if f.mtu < 576 || f.mtu > 65535 {
		return nil, fmt.Errorf("new forwarder: underlay mtu %d out of range", f.mtu)
	}
	f.maxInner4, f.maxInner6 = f.mtu-enc.overhead(false), f.mtu-enc.overhead(true)
	laddr := netip.AddrPortFrom(cfg.ListenAddr.Addr(), port)
	f.v6Underlay = laddr.Addr().Is6() && !laddr.Addr().Is4In6()
	laddr6, err := underlay6(cfg, laddr)
	if err != nil {
		return nil, fmt.Errorf("new forwarder: %w", err)
	}
	maxInner := f.mtu - f.Overhead()
	if mtu, err := devs[0].MTU(); err == nil && mtu > maxInner {
		f.log.Warn("tun mtu exceeds what the underlay carries: larger packets get icmp frag-needed / packet-too-big",
			"tun", devs[0].Name(), "tun_mtu", mtu, "underlay_mtu", f.mtu, "largest_inner", maxInner)
	}
	for i, d := range devs {
		conn, err := udp.Listen(laddr, f.sockOpts(false))
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("new forwarder: worker %d: %w", i, err)
		}
		tx := conn
		if !cfg.SharedSourcePort {
			// A source port per worker (RFC 7348 §5 entropy, per worker):
			// the receiver's SO_REUSEPORT group and ECMP in the underlay
			// spread one peer's traffic by worker. Peers check the source
			// address only.
			tx, err = udp.Listen(netip.AddrPortFrom(laddr.Addr(), 0), f.sockOpts(true))
			if err != nil {
				conn.Close()
				f.Close()
				return nil, fmt.Errorf("new forwarder: worker %d send socket: %w", i, err)
			}
		}
		f.workers = append(f.workers, newWorker(f, i, d, conn, tx))
	}
	f.laddr = f.workers[0].conn.LocalAddr()
	if laddr6.IsValid() {
		if err := f.openUnderlay6(laddr6); err != nil {
			f.Close()
			return nil, fmt.Errorf("new forwarder: %w", err)
		}
	}
	if f.sp.pollAhead {
		w, err := newAheadWaker()
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("new forwarder: poll ahead: %w", err)
		}
		f.sp.waker = w
	}
	return f, nil
}

// Overhead is the number of bytes the encapsulation adds around an inner
// packet on the underlay the sockets are bound to: 50 (VXLAN) or 28 (legacy
// UDP) over IPv4, 70 or 48 over IPv6 (also with a second, IPv6 underlay:
// the larger of the two).
func (f *Forwarder) Overhead() int { return f.enc.overhead(f.v6Underlay || f.laddr6.IsValid()) }

// maxInner is the largest inner packet that fits the underlay MTU to r.
func (f *Forwarder) maxInner(r *routing.Route) int {
	if r.Underlay.Addr().Is4() {
		return f.maxInner4
	}
	return f.maxInner6
}

// LocalAddr is the underlay address the workers' sockets are bound to.
func (f *Forwarder) LocalAddr() netip.AddrPort { return f.laddr }

// SourcePorts lists the outer source port each worker sends from, in worker
// order: the listen port for every worker with Config.SharedSourcePort, else
// one ephemeral port per worker.
func (f *Forwarder) SourcePorts() []uint16 {
	ports := make([]uint16, len(f.workers))
	for i, w := range f.workers {
		ports[i] = w.tx.LocalAddr().Port()
	}
	return ports
}

// SourcePorts6 is SourcePorts for the IPv6 underlay's send sockets, nil
// without Config.ListenAddr6.
func (f *Forwarder) SourcePorts6() []uint16 {
	if !f.laddr6.IsValid() {
		return nil
	}
	ports := make([]uint16, 0, len(f.workers))
	for _, w := range f.workers {
		if w.v6 != nil {
			ports = append(ports, w.v6.tx.LocalAddr().Port())
		}
	}
	return ports
}

// SetPeers atomically replaces the routing snapshot; invalid peers are an
// error and leave the old table in place. Workers pick up the new table at
// their next batch; a packet routed in both tables is never dropped.
func (f *Forwarder) SetPeers(peers []config.Peer) error {
	f.tableMu.Lock()
	defer f.tableMu.Unlock()
	scope := config.PeerScope{Backend: f.cfg.Backend, IPv4Only: f.laddr.Addr().Is4() && !f.laddr6.IsValid()}
	// Incremental when only some peers' data changed (routing.Update).
	t, err := routing.Update(f.table.Load(), peers, func(p *config.Peer) error { return p.Check(scope) })
	if err != nil {
		return fmt.Errorf("set peers: %w", err)
	}
	f.table.Store(t)
	return nil
}

// Run forwards until ctx is done or a fatal error occurs (a TUN queue or a
// socket failing for good), then stops all workers and returns; it returns
// nil when ctx ended it. Run may be called once. It closes the forwarder's
// sockets on the way out but does not close devs: a worker blocked reading
// its TUN queue exits when the device is closed (or at once, if the device
// has a SetReadDeadline method, which Run uses to wake it).
func (f *Forwarder) Run(ctx context.Context) error {
	if !f.ran.CompareAndSwap(false, true) {
		return errors.New("run forwarder: already run")
	}
	if f.stopping.Load() {
		return errors.New("run forwarder: closed")
	}
	errc := make(chan error, 3*len(f.workers))
	var wg sync.WaitGroup
	for _, w := range f.workers {
		if w.singleOwner() {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := w.localLoop(); err != nil {
					errc <- err
				}
			}()
			continue
		}
		_, wakeable := w.dev.(readDeadliner)
		if wakeable {
			wg.Add(1)
		}
		go func() {
			if wakeable {
				defer wg.Done()
			}
			if err := w.outboundLoop(); err != nil {
				errc <- err
			}
		}()
		for _, in := range []*worker{w, w.v6} {
			if in == nil {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := in.inboundLoop(); err != nil {
					errc <- err
				}
			}()
		}
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	f.stopping.Store(true)
	for _, w := range f.workers {
		if d, ok := w.dev.(readDeadliner); ok {
			_ = d.SetReadDeadline(time.Now())
		}
	}
	cerr := f.Close()
	wg.Wait()
	for _, w := range f.workers {
		if d, ok := w.dev.(readDeadliner); ok {
			_ = d.SetReadDeadline(time.Time{}) // the device stays usable
		}
	}
	if err == nil && ctx.Err() == nil {
		err = cerr
	}
	return err
}

// readDeadliner is implemented by TUN devices whose blocked Read can be woken.
type readDeadliner interface {
	SetReadDeadline(time.Time) error
}

// Close releases the sockets (idempotent). It stops a running forwarder's
// inbound side; Run returns after its context ends.
func (f *Forwarder) Close() error {
	f.closeOnce.Do(func() {
		f.stopping.Store(true)
		var errs []error
		for _, w := range f.workers {
			for _, s := range []*worker{w, w.v6} {
				if s == nil {
					continue
				}
				if err := s.conn.Close(); err != nil {
					errs = append(errs, err)
				}
				if s.tx != s.conn {
					if err := s.tx.Close(); err != nil {
						errs = append(errs, err)
					}
				}
			}
		}
		if f.sp.waker != nil {
			if err := f.sp.waker.Close(); err != nil {
				errs = append(errs, err)
			}
		}
		f.closeErr = errors.Join(errs...)
	})
	return f.closeErr
}

// Stats returns a snapshot of the counters summed over all workers.
func (f *Forwarder) Stats() Stats {
	s := Stats{Drops: map[string]uint64{}, PeerDrops: map[string]map[string]uint64{}}
	t := f.table.Load()
	live := make(map[string]bool, t.Len())
	for _, r := range t.Routes() {
		live[r.Name] = true
	}
	for _, w := range f.workers {
		dirs := []*dirCounters{&w.out, &w.in}
		s.Waits += w.waits.Load()
		s.TxPackets += w.out.packets.Load()
		s.TxBytes += w.out.bytes.Load()
		for _, in := range []*worker{w, w.v6} {
			if in == nil {
				continue
			}
			if in != w {
				dirs = append(dirs, &in.in)
			}
			s.RxPackets += in.in.packets.Load()
			s.RxBytes += in.in.bytes.Load()
			if in.conn != nil { // unit tests build workers without sockets
				s.UDPRxQueueOverflows += in.conn.RxQueueOverflows()
			}
		}
		for _, c := range dirs {
			for r := range c.drops {
				if v := c.drops[r].Load(); v > 0 {
					s.Drops[dropNames[r]] += v
				}
			}
			c.addPeerDrops(s.PeerDrops, live)
		}
	}
	a := &f.sp.ahead
	s.Waits += a.waits.Load()
	s.AheadWakes, s.AheadHits = a.wakes.Load(), a.hits.Load()
	return s
}

// isClosed reports whether err means a device or socket was closed for good.
func isClosed(err error) bool {
	return errors.Is(err, os.ErrClosed) || errors.Is(err, net.ErrClosed) || errors.Is(err, tun.ErrDeviceRemoved)
}
