package fastpath

import (
	"fmt"
	"net/netip"

	"github.com/vxtun/vxtun/fastpath/routing"
	"github.com/vxtun/vxtun/fastpath/udp"
)

// The second underlay: a node with a public IP of each family
// (Config.ListenAddr6 next to an IPv4 ListenAddr) talks to peers whose
// public IP is IPv6 over sockets of that family, as flanneld's
// flannel-v6.1 does. Each worker gets a sibling that owns the IPv6 sockets
// (a receiving one in the listen port's SO_REUSEPORT group, a send-only
// one unless Config.SharedSourcePort) and runs an inbound goroutine of its
// own, with its own buffers and counters, writing into the same TUN queue
// (the worker's tunMu). The outbound goroutine stays one per queue: it
// routes as before and, at the end of a batch, moves the messages whose
// peer is on the IPv6 underlay to the sibling's socket (sendByFamily). The
// routing table, the outer-source lookup and the address filter need no
// change: a peer's route carries its underlay address, whatever its family,
// and a datagram is only accepted from the family's socket it came in on.
// Without ListenAddr6 none of this exists and the hot path is as before.

// openUnderlay6 gives every worker its IPv6 sibling, bound to laddr6.
func (f *Forwarder) openUnderlay6(laddr6 netip.AddrPort) error {
	for _, w := range f.workers {
		conn, err := udp.Listen(laddr6, f.sockOpts(false))
		if err != nil {
			return fmt.Errorf("worker %d: ipv6 underlay: %w", w.id, err)
		}
		tx := conn
		if !f.cfg.SharedSourcePort {
			if tx, err = udp.Listen(netip.AddrPortFrom(laddr6.Addr(), 0), f.sockOpts(true)); err != nil {
				conn.Close()
				return fmt.Errorf("worker %d: ipv6 underlay send socket: %w", w.id, err)
			}
		}
		s := &worker{f: f, id: w.id, dev: w.dev, conn: conn, tx: tx, tunMu: w.tunMu}
		s.ib.init()
		s.inDir.try, s.inDir.wait, s.inDir.wake = s.inTry, conn.WaitRead, make(chan struct{}, 1)
		s.inDir.fd = rawFD(conn)
		w.v6 = s
		n := cap(w.ob.msgs)
		w.ob.msgs6, w.ob.msgRoute6 = make([]udp.Message, 0, n), make([]*routing.Route, 0, n)
	}
	f.laddr6 = f.workers[0].v6.conn.LocalAddr()
	return nil
}

// underlay6 checks Config.ListenAddr6 against the IPv4 listen address
// laddr and returns it with its port filled in (zero when unset).
func underlay6(cfg Config, laddr netip.AddrPort) (netip.AddrPort, error) {
	a := cfg.ListenAddr6
	if !a.IsValid() {
		return netip.AddrPort{}, nil
	}
	if !a.Addr().Is6() || a.Addr().Is4In6() {
		return netip.AddrPort{}, fmt.Errorf("ipv6 listen address %v is not IPv6", a)
	}
	if !laddr.Addr().Is4() {
		return netip.AddrPort{}, fmt.Errorf("ipv6 listen address %v next to listen address %v: want an IPv4 one", a, laddr)
	}
	if a.Port() == 0 {
		a = netip.AddrPortFrom(a.Addr(), laddr.Port())
	}
	return a, nil
}

// sendByFamily sends the batch's messages, o.msgs, those to IPv4-underlay
// peers on w's socket and the others on the v6 sibling's: one sendmmsg per
// family, the order within a peer kept.
func (w *worker) sendByFamily() error {
	o := &w.ob
	v4 := 0
	for i := range o.msgs {
		if o.msgRoute[i].Underlay.Addr().Is4() {
			o.msgs[v4], o.msgRoute[v4] = o.msgs[i], o.msgRoute[i]
			v4++
			continue
		}
		o.msgs6 = append(o.msgs6, o.msgs[i])
		o.msgRoute6 = append(o.msgRoute6, o.msgRoute[i])
	}
	var err error
	if v4 > 0 {
		err = w.send(w, o.msgs[:v4], o.msgRoute[:v4])
	}
	if len(o.msgs6) > 0 && err == nil {
		err = w.send(w.v6, o.msgs6, o.msgRoute6)
	}
	clear(o.msgs6)
	o.msgs6 = o.msgs6[:0]
	clear(o.msgRoute6)
	o.msgRoute6 = o.msgRoute6[:0]
	return err
}

// LocalAddr6 is the address the IPv6 underlay's sockets are bound to (the
// zero AddrPort without Config.ListenAddr6).
func (f *Forwarder) LocalAddr6() netip.AddrPort { return f.laddr6 }
