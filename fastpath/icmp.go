package fastpath

import (
	"net/netip"

	"github.com/vxtun/vxtun/encap"
	"github.com/vxtun/vxtun/fastpath/routing"
	"github.com/vxtun/vxtun/fastpath/udp"
)

// What the outbound side does with packets it cannot send as they are:
// ICMP errors into the TUN (no route, too big), fragmentation of IPv4
// packets without DF, and too-big answers when the kernel refuses a send
// because the path MTU to a peer has shrunk.

// icmpError queues an ICMP error about orig for the TUN: net unreachable, or
// with tooBig frag-needed / packet-too-big carrying mtu, if the rate limits
// allow one to orig's source now (icmplimit.go; else it counts as
// icmp_ratelimited). Its source is this node's own overlay address
// (<own subnet>.0, the TUN's address: Config.Subnets), so the error shows
// where it came from; the dataplane sets accept_local on the TUN, without
// which the kernel would drop a packet from one of its own addresses as a
// martian. Without an own subnet of orig's family it is orig's
// destination, which routes via the TUN.
func (w *worker) icmpError(orig []byte, tooBig bool, mtu int) {
	o := &w.ob
	k := len(o.icmpOut)
	if k == cap(o.icmpOut) {
		o.c.drop(dropICMPRateLimited, 1)
		return
	}
	b := o.icmp[k][Headroom:]
	var n int
	var err error
	var to, about netip.Addr
	if encap.IPVersion(orig) == 4 {
		ip := encap.IPv4(orig)
		router, ok := w.f.own.first(false)
		if !ok {
			router = ip.DstAddr()
		}
		if tooBig {
			n, err = encap.ICMPv4FragNeeded(b, router, orig, uint16(mtu))
		} else {
			n, err = encap.ICMPv4NetUnreachable(b, router, orig)
		}
		to = ip.SrcAddr()
		if tooBig {
			about = ip.DstAddr()
		}
	} else {
		ip := encap.IPv6(orig)
		if ip.DstAddr().IsMulticast() {
			return
		}
		router, ok := w.f.own.first(true)
		if !ok {
			router = ip.DstAddr()
		}
		if tooBig {
			n, err = encap.ICMPv6PacketTooBig(b, router, orig, uint32(mtu))
		} else {
			n, err = encap.ICMPv6DestUnreachable(b, router, orig, encap.ICMPv6CodeNoRoute)
		}
		to = ip.SrcAddr()
		if tooBig {
			about = ip.DstAddr()
		}
	}
	if err != nil || n == 0 {
		return
	}
	if !w.f.icmp.allow(to, about) {
		o.c.drop(dropICMPRateLimited, 1)
		return
	}
	o.icmpOut = append(o.icmpOut, o.icmp[k][:Headroom+n])
}

// fragment splits the IPv4 packet pkt (DF clear) into fragments of at most
// maxInner bytes, as a router on the path would (RFC 791), and enqueues
// them for r. It returns false, leaving pkt to be dropped as too big, for a
// header with options or when the batch's fragment buffers run out.
func (w *worker) fragment(pkt []byte, maxInner int, r *routing.Route) bool {
	o := &w.ob
	ip := encap.IPv4(pkt)
	if ip.HeaderLength() != encap.IPv4MinimumSize || len(pkt) < int(ip.TotalLength()) {
		return false
	}
	payload := ip.Payload()
	chunk := (maxInner - encap.IPv4MinimumSize) &^ 7
	if chunk <= 0 {
		return false
	}
	nfrag := (len(payload) + chunk - 1) / chunk
	if o.frag == nil {
		o.frag = make([][]byte, maxFragBufs)
		for i := range o.frag {
			o.frag[i] = make([]byte, Headroom+w.f.mtu)
		}
	}
	if o.nfrag+nfrag > len(o.frag) {
		return false
	}
	off0 := ip.FragmentOffset() / 8 // in 8-byte units
	more := ip.MF()
	for k := 0; k < nfrag; k++ {
		part := payload[k*chunk : min((k+1)*chunk, len(payload))]
		buf := o.frag[o.nfrag]
		o.nfrag++
		h := encap.IPv4(buf[Headroom : Headroom+encap.IPv4MinimumSize])
		copy(h, ip[:encap.IPv4MinimumSize])
		copy(buf[Headroom+encap.IPv4MinimumSize:], part)
		flags := uint16(off0+k*chunk/8) & 0x1fff
		if k < nfrag-1 || more {
			flags |= encap.IPv4FlagMF
		}
		h.SetFlagsFragmentOffset(flags)
		h.SetTotalLength(uint16(encap.IPv4MinimumSize + len(part)))
		h.UpdateChecksum()
		w.enqueue(buf, encap.IPv4MinimumSize+len(part), r, encap.EtherTypeIPv4)
	}
	return true
}

// answerTooBig handles a message the kernel refused (on socket tx) as too big although it
// fit Config.UnderlayMTU: the path MTU to the peer has shrunk (a route MTU,
// or an ICMP error the host received). Each inner packet of m larger than
// what now fits gets ICMP frag-needed (IPv4 with DF) or packet-too-big
// (IPv6) into the TUN, carrying that size, so the sender lowers its path MTU
// instead of retransmitting into a silent drop.
func (w *worker) answerTooBig(tx *udp.Conn, m *udp.Message, r *routing.Route) {
	pmtu, err := tx.PathMTU(&r.Sockaddr)
	if err != nil {
		return
	}
	maxInner := pmtu - w.f.enc.overhead(!r.Underlay.Addr().Is4())
	if maxInner < 68 || pmtu >= w.f.mtu {
		return // nothing smaller to report: the refusal had another cause
	}
	skip := w.f.hdrLen
	frame := func(d []byte) {
		if len(d) <= skip {
			return
		}
		pkt := d[skip:]
		if len(pkt) <= maxInner {
			return
		}
		if v := encap.IPVersion(pkt); v == 6 || (v == 4 && len(pkt) >= encap.IPv4MinimumSize && encap.IPv4(pkt).DF()) {
			w.icmpError(pkt, true, maxInner)
		}
	}
	switch {
	case m.Bufs != nil:
		for _, d := range m.Bufs {
			frame(d)
		}
	case m.SegmentSize > 0:
		for b := m.Buf; len(b) > 0; {
			n := min(m.SegmentSize, len(b))
			frame(b[:n])
			b = b[n:]
		}
	default:
		frame(m.Buf)
	}
}
