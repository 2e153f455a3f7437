package fastpath

import (
	"fmt"

	"github.com/vxtun/vxtun/fastpath/routing"
)

// Inbound flow, one goroutine per worker (functions in this order):
//
//  1. inboundLoop: recvmmsg into 64 KiB buffers (udp.Conn.ReadBatch).
//  2. inbound: cut UDP GRO messages at their segment size; the outer source
//     must be a known peer.
//  3. decap: check and strip the encapsulation; ARP goes to arp.go; the
//     inner source must be the peer's, the destination ours (filter.go).
//  4. the inner packets, in place in the receive buffers, go to
//     tun.Device.Write in vectors of up to maxTunWrite.

func (w *worker) inboundLoop() error {
	if w.inDir.try != nil {
		return w.ownLoop(&w.inDir)
	}
	in := &w.ib
	fails := 0
	for {
		n, err := w.conn.ReadBatch(in.msgs)
		if w.f.stopping.Load() {
			return nil
		}
		if err != nil {
			if isClosed(err) || fails >= errorBudget {
				return fmt.Errorf("worker %d: %w", w.id, err)
			}
			fails++
			w.logRare(&in.lastLog, "underlay receive", err)
			continue
		}
		fails = 0
		if err := w.inbound(n); err != nil {
			if w.f.stopping.Load() {
				return nil
			}
			return fmt.Errorf("worker %d: %w", w.id, err)
		}
	}
}

// inbound handles the n received messages in in.msgs.
func (w *worker) inbound(n int) error {
	in := &w.ib
	f := w.f
	snap := f.table.Load()
	w.in.follow(snap)
	offset := f.hdrLen
	var err error
	for k := 0; k < n && err == nil; k++ {
		m := &in.msgs[k]
		data := m.Buf[:m.N]
		seg := m.SegmentSize
		if seg <= 0 || seg > len(data) {
			seg = len(data)
		}
		r := snap.LookupUnderlay(m.From.Addr())
		if r == nil {
			in.c.drop(dropUnknownSource, max((len(data)+seg-1)/max(seg, 1), 1))
			continue
		}
		if len(data) == 0 || m.Trunc {
			in.c.drop(dropShort, 1)
			w.in.peerDrop(r, dropShort, 1)
			continue
		}
		for off := 0; off < len(data); off += seg {
			d := data[off:min(off+seg, len(data))]
			w.decap(d, r, snap)
			if len(in.wout) == cap(in.wout) {
				if err = w.writeTun(in.wout, offset); err != nil {
					break
				}
				in.wout = in.wout[:0]
			}
		}
	}
	if len(in.wout) > 0 && err == nil {
		err = w.writeTun(in.wout, offset)
	}
	clear(in.wout)
	in.wout = in.wout[:0]
	if len(in.arpMsgs) > 0 {
		w.sendARP()
	}
	in.c.flush(&w.in)
	return err
}

func (w *worker) dropIn(r *routing.Route, reason dropReason) {
	w.ib.c.drop(reason, 1)
	w.in.peerDrop(r, reason, 1)
}

// decap checks one datagram from peer r and queues its inner packet for
// the TUN, in place: the slice handed to the TUN starts at the encapsulation
// header, which becomes headroom (Forwarder.hdrLen bytes of it).
func (w *worker) decap(d []byte, r *routing.Route, t *routing.Table) {
	in := &w.ib
	pkt, arp, reason := w.f.enc.decap(d)
	if reason != noDrop {
		w.dropIn(r, reason)
		return
	}
	if arp {
		w.answerARP(pkt, r)
		return
	}
	if reason := w.f.checkInner(pkt, r, t); reason != noDrop {
		w.dropIn(r, reason)
		return
	}
	completePartialChecksum(pkt)
	in.wout = append(in.wout, d[:w.f.hdrLen+len(pkt)])
	in.c.packets++
	in.c.bytes += uint64(len(pkt))
}
