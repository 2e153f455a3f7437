package fastpath

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/vxtun/vxtun/encap"
	"github.com/vxtun/vxtun/fastpath/routing"
	"github.com/vxtun/vxtun/fastpath/udp"
)

// Outbound flow, one goroutine per worker (functions in this order):
//
//  1. outboundLoop: tun.Device.Read fills a vector of packets at Headroom.
//  2. outbound: route each packet on the snapshot loaded once per batch;
//     no route → ICMP unreachable, too big → fragment or ICMP too-big (icmp.go).
//  3. enqueue: encapsulate in place, into the headroom, and file the frame
//     under its peer's slot of the batch.
//  4. sendGrouped: lay the frames out peer by peer, cut each peer's run into
//     UDP GSO messages (udp.AppendGSO) and send them with one sendmmsg.

func (w *worker) outboundLoop() error {
	if w.outDir.try != nil {
		return w.ownLoop(&w.outDir)
	}
	o := &w.ob
	fails := 0
	for {
		n, err := w.dev.Read(o.bufs, o.sizes, Headroom)
		if w.f.stopping.Load() {
			return nil
		}
		if n > 0 {
			if ferr := w.outbound(n); ferr != nil {
				if w.f.stopping.Load() {
					return nil
				}
				return fmt.Errorf("worker %d: %w", w.id, ferr)
			}
		}
		if err == nil {
			fails = 0
			continue
		}
		if isClosed(err) || fails >= errorBudget {
			return fmt.Errorf("worker %d: %w", w.id, err)
		}
		fails++
		w.logRare(&o.lastLog, "tun read", err)
	}
}

// outbound forwards the n packets in o.bufs.
func (w *worker) outbound(n int) error {
	o := &w.ob
	f := w.f
	snap := f.table.Load()
	w.out.follow(snap)
	o.pkts = o.pkts[:0]
	o.slots = o.slots[:0]
	o.icmpOut = o.icmpOut[:0]
	o.lastSlot, o.lastRoute = -1, nil
	o.nfrag = 0
	for i := 0; i < n; i++ {
		size := o.sizes[i]
		buf := o.bufs[i]
		pkt := buf[Headroom : Headroom+size]
		var r *routing.Route
		var etherType uint16
		switch {
		case size >= encap.IPv4MinimumSize && encap.IPVersion(pkt) == 4:
			r = snap.Lookup(encap.IPv4(pkt).Dst())
			etherType = encap.EtherTypeIPv4
		case size >= encap.IPv6MinimumSize && encap.IPVersion(pkt) == 6:
			r = snap.Lookup(encap.IPv6(pkt).Dst())
			etherType = encap.EtherTypeIPv6
		default:
			o.c.drop(dropBadInner, 1)
			continue
		}
		if r == nil {
			o.c.drop(dropNoRoute, 1)
			w.icmpError(pkt, false, 0)
			continue
		}
		if maxInner := f.maxInner(r); size > maxInner {
			if etherType == encap.EtherTypeIPv4 && !encap.IPv4(pkt).DF() && w.fragment(pkt, maxInner, r) {
				continue
			}
			o.c.drop(dropTooBig, 1)
			w.out.peerDrop(r, dropTooBig, 1)
			if etherType == encap.EtherTypeIPv6 || encap.IPv4(pkt).DF() {
				w.icmpError(pkt, true, maxInner)
			}
			continue
		}
		w.enqueue(buf, size, r, etherType)
	}
	err := w.sendGrouped()
	if len(o.icmpOut) > 0 {
		if terr := w.writeTun(o.icmpOut, Headroom); terr != nil && err == nil {
			err = terr
		}
	}
	o.c.flush(&w.out)
	return err
}

// enqueue encapsulates the packet at buf[Headroom:Headroom+size] for r in
// place and files it under r's slot of the batch.
func (w *worker) enqueue(buf []byte, size int, r *routing.Route, etherType uint16) {
	o := &w.ob
	frame := buf[w.f.enc.encap(buf, Headroom, r, etherType) : Headroom+size]
	// Group by peer: find (or open) the peer's slot.
	slot := o.lastSlot
	if r != o.lastRoute {
		slot = -1
		for s, sr := range o.slots {
			if sr == r {
				slot = s
				break
			}
		}
		if slot < 0 && len(o.slots) < maxSlots {
			slot = len(o.slots)
			o.slots = append(o.slots, r)
		}
		if slot < 0 {
			// Too many peers in one batch: send this one on its own.
			slot = maxSlots
		}
		o.lastSlot, o.lastRoute = slot, r
	}
	if slot == maxSlots {
		o.msgs = append(o.msgs, udp.Message{Buf: frame, Addr: &r.Sockaddr})
		o.msgRoute = append(o.msgRoute, r)
		return
	}
	o.pkts = append(o.pkts, outPkt{slot: slot, frame: frame})
}

// sendGrouped lays the batch's frames out peer by peer (order kept within a
// peer), cuts them into GSO messages and sends them.
func (w *worker) sendGrouped() error {
	o := &w.ob
	ns := len(o.slots)
	if len(o.pkts) > 0 {
		clear(o.slotOff[:ns+1])
		for _, p := range o.pkts {
			o.slotOff[p.slot+1]++
		}
		for s := 1; s <= ns; s++ {
			o.slotOff[s] += o.slotOff[s-1]
		}
		for _, p := range o.pkts {
			o.frames[o.slotOff[p.slot]] = p.frame
			o.slotOff[p.slot]++
		}
		start := 0
		for s, r := range o.slots {
			end := o.slotOff[s]
			before := len(o.msgs)
			o.msgs = udp.AppendGSO(o.msgs, o.frames[start:end], &r.Sockaddr)
			for k := before; k < len(o.msgs); k++ {
				o.msgRoute = append(o.msgRoute, r)
			}
			start = end
		}
	}
	if len(o.msgs) == 0 {
		return nil
	}
	var err error
	if w.v6 == nil {
		err = w.send(w, o.msgs, o.msgRoute)
	} else {
		err = w.sendByFamily()
	}
	clear(o.msgs) // drop references to buffers and routes
	o.msgs = o.msgs[:0]
	clear(o.msgRoute)
	o.msgRoute = o.msgRoute[:0]
	return err
}

// send sends msgs (to the peers routes) on via's socket, via being w or
// its v6 sibling, and counts them.
func (w *worker) send(via *worker, msgs []udp.Message, routes []*routing.Route) error {
	o := &w.ob
	encapLen := w.f.hdrLen
	var err error
	via.sendMu.Lock()
	for sent := 0; sent < len(msgs); {
		k, werr := via.tx.WriteBatch(msgs[sent:])
		for _, m := range msgs[sent : sent+k] {
			segs, bytes := msgSize(&m)
			o.c.packets += uint64(segs)
			o.c.bytes += uint64(bytes - segs*encapLen)
		}
		if werr == nil {
			break
		}
		if isClosed(werr) {
			err = werr
			break
		}
		failed := sent + k
		segs, _ := msgSize(&msgs[failed])
		reason := dropSendError
		if errors.Is(werr, unix.EMSGSIZE) || errors.Is(werr, unix.EINVAL) {
			reason = dropTooBig
			w.answerTooBig(via.tx, &msgs[failed], routes[failed])
		}
		o.c.drop(reason, segs)
		w.out.peerDrop(routes[failed], reason, segs)
		w.logRare(&o.lastLog, "underlay send", werr)
		sent = failed + 1
	}
	via.sendMu.Unlock()
	return err
}

// msgSize returns the datagrams and payload bytes of an outgoing message.
func msgSize(m *udp.Message) (segs, bytes int) {
	if m.Bufs != nil {
		for _, b := range m.Bufs {
			bytes += len(b)
		}
		return len(m.Bufs), bytes
	}
	bytes = len(m.Buf)
	if m.SegmentSize > 0 {
		return (bytes + m.SegmentSize - 1) / m.SegmentSize, bytes
	}
	return 1, bytes
}
