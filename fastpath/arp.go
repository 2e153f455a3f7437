package fastpath

import (
	"github.com/vxtun/vxtun/encap"
	"github.com/vxtun/vxtun/fastpath/routing"
	"github.com/vxtun/vxtun/fastpath/udp"
)

// The ARP responder: requests for our VTEP address (VXLAN only) arrive on
// the inbound side and are answered, encapsulated, to the asking peer.

// answerARP queues a reply to an ARP request for our VTEP address, sent back
// encapsulated to the asking peer.
func (w *worker) answerARP(req []byte, r *routing.Route) {
	in := &w.ib
	vx := w.f.enc.(*vxlanEncap) // ARP arrives only over VXLAN
	k := len(in.arpMsgs)
	if !w.f.vtepIP.Is4() || k == cap(in.arpMsgs) {
		w.dropIn(r, dropARP)
		return
	}
	b := in.arpBufs[k]
	n, err := encap.BuildARPReply(b[encap.VXLANOverhead:], req, vx.mac[:], w.f.vtepIP)
	if err != nil {
		w.dropIn(r, dropARP)
		return
	}
	to := encap.ARP(b[encap.VXLANOverhead:]).TargetMAC()
	encap.EncapVXLAN(b, encap.VXLANOverhead, vx.vni, to, vx.mac[:], encap.EtherTypeARP)
	in.arpMsgs = append(in.arpMsgs, udp.Message{Buf: b[:encap.VXLANOverhead+n], Addr: &r.Sockaddr})
}

func (w *worker) sendARP() {
	in := &w.ib
	w.sendMu.Lock()
	for sent := 0; sent < len(in.arpMsgs); {
		k, err := w.tx.WriteBatch(in.arpMsgs[sent:])
		if err == nil || isClosed(err) {
			break
		}
		w.logRare(&in.lastLog, "arp reply send", err)
		sent += k + 1
	}
	w.sendMu.Unlock()
	clear(in.arpMsgs)
	in.arpMsgs = in.arpMsgs[:0]
}
