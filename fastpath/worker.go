package fastpath

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vxtun/vxtun/config"
	"github.com/vxtun/vxtun/encap"
	"github.com/vxtun/vxtun/fastpath/routing"
	"github.com/vxtun/vxtun/fastpath/udp"
	"github.com/vxtun/vxtun/tun"
)

// worker owns one TUN queue and one UDP socket. Two goroutines run it: the
// outbound one reads the TUN queue and sends on the socket, the inbound one
// receives on the socket and writes the TUN queue. Each owns its state
// (outState, inState) and counters; the two meet only at tunMu (ICMP errors
// the outbound side writes into the TUN) and sendMu (ARP replies the inbound
// side sends), each taken once per batch.
type worker struct {
	f    *Forwarder
	id   int
	dev  tun.Device
	conn *udp.Conn

	tunMu  sync.Mutex // serialises dev.Write
	sendMu sync.Mutex // serialises conn.WriteBatch

	out, in dirCounters

	peerMu    sync.Mutex
	peerDrops map[string]*[numDrops]uint64

	ob outState
	ib inState
}

// outState is the outbound goroutine's: TUN read → route → encap → send.
type outState struct {
	bufs     [][]byte
	sizes    []int
	pkts     []outPkt
	slots    []*routing.Route // distinct peers of this batch
	slotOff  []int
	frames   [][]byte // frames grouped by peer, batch order kept per peer
	msgs     []udp.Message
	msgRoute []*routing.Route
	icmp     [][]byte
	icmpOut  [][]byte
	frag     [][]byte // fragment buffers, allocated at the first fragmentation
	nfrag    int
	c        batchCounts
	lastLog  time.Time

	lastSlot  int
	lastRoute *routing.Route
}

type outPkt struct {
	slot  int
	frame []byte
}

// inState is the inbound goroutine's: receive → check → decap → TUN write.
type inState struct {
	msgs    []udp.Message
	wout    [][]byte
	arpBufs [][]byte
	arpMsgs []udp.Message
	c       batchCounts
	lastLog time.Time
}

// maxSlots bounds the distinct peers grouped per outbound batch; packets to
// further peers go out in batch order without grouping.
const maxSlots = 64

const (
	maxFragBufs     = 64 // IPv4 fragments one outbound batch can produce
	maxICMPPerBatch = 16
	maxARPPerBatch  = 16
	maxTunWrite     = 1024
	errorBudget     = 100 // consecutive non-fatal I/O errors before giving up
)

func newWorker(f *Forwarder, id int, dev tun.Device, conn *udp.Conn) *worker {
	w := &worker{f: f, id: id, dev: dev, conn: conn, peerDrops: map[string]*[numDrops]uint64{}}
	bs := max(dev.BatchSize(), 1)
	o := &w.ob
	// A TUN read returns packets of at most the device MTU (super-packets
	// come split); room for a 9000-byte MTU keeps a later MTU raise working.
	size := 65536
	if mtu, err := dev.MTU(); err == nil && mtu > 0 {
		size = min(max(mtu, 9000), size)
	}
	o.bufs = make([][]byte, bs)
	for i := range o.bufs {
		o.bufs[i] = make([]byte, Headroom+size)
	}
	o.sizes = make([]int, bs)
	o.pkts = make([]outPkt, 0, bs+maxFragBufs)
	o.slots = make([]*routing.Route, 0, maxSlots)
	o.slotOff = make([]int, maxSlots+1)
	o.frames = make([][]byte, bs+maxFragBufs)
	o.msgs = make([]udp.Message, 0, bs+maxFragBufs)
	o.msgRoute = make([]*routing.Route, 0, bs+maxFragBufs)
	o.icmp = make([][]byte, maxICMPPerBatch)
	for i := range o.icmp {
		o.icmp[i] = make([]byte, Headroom+encap.ICMPv6ErrorMaxLen)
	}
	o.icmpOut = make([][]byte, 0, maxICMPPerBatch)

	in := &w.ib
	in.msgs = make([]udp.Message, rxBatch)
	for i := range in.msgs {
		in.msgs[i].Buf = make([]byte, udp.MaxRead)
	}
	in.wout = make([][]byte, 0, maxTunWrite)
	in.arpBufs = make([][]byte, maxARPPerBatch)
	for i := range in.arpBufs {
		in.arpBufs[i] = make([]byte, encap.VXLANOverhead+encap.ARPSize)
	}
	in.arpMsgs = make([]udp.Message, 0, maxARPPerBatch)
	return w
}

func (w *worker) peerDrop(name string, r dropReason, n int) {
	w.peerMu.Lock()
	a := w.peerDrops[name]
	if a == nil {
		a = new([numDrops]uint64)
		w.peerDrops[name] = a
	}
	a[r] += uint64(n)
	w.peerMu.Unlock()
}

// logRare logs at most once per 10 s per direction.
func (w *worker) logRare(last *time.Time, msg string, err error) {
	if now := time.Now(); now.Sub(*last) > 10*time.Second {
		*last = now
		w.f.log.Warn(msg, "worker", w.id, "err", err)
	}
}

func (w *worker) writeTun(bufs [][]byte, offset int) error {
	w.tunMu.Lock()
	_, err := w.dev.Write(bufs, offset)
	w.tunMu.Unlock()
	return err
}

// overhead is what the underlay adds around an inner packet sent to r.
func (w *worker) overhead(r *routing.Route) int {
	return config.Overhead(w.f.cfg.Backend, !r.Underlay.Addr().Is4())
}

// ---- outbound ----

func (w *worker) outboundLoop() error {
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
		case size >= encap.IPv4MinimumSize && pkt[0]>>4 == 4:
			r = snap.Lookup(pkt[16:20])
			etherType = encap.EtherTypeIPv4
		case size >= encap.IPv6MinimumSize && pkt[0]>>4 == 6:
			r = snap.Lookup(pkt[24:40])
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
		if maxInner := f.mtu - w.overhead(r); size > maxInner {
			if etherType == encap.EtherTypeIPv4 && !encap.IPv4(pkt).DF() && w.fragment(pkt, maxInner, r) {
				continue
			}
			o.c.drop(dropTooBig, 1)
			w.peerDrop(r.Name, dropTooBig, 1)
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
	f := w.f
	frame := buf[Headroom : Headroom+size]
	if f.vxlan {
		vni := r.VNI
		if vni == 0 {
			vni = f.vni
		}
		start := encap.EncapVXLAN(buf, Headroom, vni, r.VtepMAC[:], f.mac[:], etherType)
		frame = buf[start : Headroom+size]
	}
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
	payload := pkt[encap.IPv4MinimumSize:ip.TotalLength()]
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
	ff := ip.FlagsFragmentOffset()
	off0 := int(ff & 0x1fff) // in 8-byte units
	for k := 0; k < nfrag; k++ {
		part := payload[k*chunk : min((k+1)*chunk, len(payload))]
		buf := o.frag[o.nfrag]
		o.nfrag++
		h := encap.IPv4(buf[Headroom : Headroom+encap.IPv4MinimumSize])
		copy(h, pkt[:encap.IPv4MinimumSize])
		copy(buf[Headroom+encap.IPv4MinimumSize:], part)
		flags := uint16(off0+k*chunk/8) & 0x1fff
		if k < nfrag-1 || ff&encap.IPv4FlagMF != 0 {
			flags |= encap.IPv4FlagMF
		}
		h.SetFlagsFragmentOffset(flags)
		h.SetTotalLength(uint16(encap.IPv4MinimumSize + len(part)))
		h.UpdateChecksum()
		w.enqueue(buf, encap.IPv4MinimumSize+len(part), r, encap.EtherTypeIPv4)
	}
	return true
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
	encapLen := 0
	if w.f.vxlan {
		encapLen = encap.VXLANOverhead
	}
	var err error
	w.sendMu.Lock()
	for sent := 0; sent < len(o.msgs); {
		k, werr := w.conn.WriteBatch(o.msgs[sent:])
		for _, m := range o.msgs[sent : sent+k] {
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
		segs, _ := msgSize(&o.msgs[failed])
		reason := dropSendError
		if errors.Is(werr, unix.EMSGSIZE) || errors.Is(werr, unix.EINVAL) {
			reason = dropTooBig
			w.answerTooBig(&o.msgs[failed], o.msgRoute[failed])
		}
		o.c.drop(reason, segs)
		w.peerDrop(o.msgRoute[failed].Name, reason, segs)
		w.logRare(&o.lastLog, "underlay send", werr)
		sent = failed + 1
	}
	w.sendMu.Unlock()
	clear(o.msgs) // drop references to buffers and routes
	o.msgs = o.msgs[:0]
	clear(o.msgRoute)
	o.msgRoute = o.msgRoute[:0]
	return err
}

// answerTooBig handles a message the kernel refused as too big although it
// fit Config.UnderlayMTU: the path MTU to the peer has shrunk (a route MTU,
// or an ICMP error the host received). Each inner packet of m larger than
// what now fits gets ICMP frag-needed (IPv4 with DF) or packet-too-big
// (IPv6) into the TUN, carrying that size, so the sender lowers its path MTU
// instead of retransmitting into a silent drop.
func (w *worker) answerTooBig(m *udp.Message, r *routing.Route) {
	pmtu, err := w.conn.PathMTU(&r.Sockaddr)
	if err != nil {
		return
	}
	maxInner := pmtu - w.overhead(r)
	if maxInner < 68 || pmtu >= w.f.mtu {
		return // nothing smaller to report: the refusal had another cause
	}
	skip := 0
	if w.f.vxlan {
		skip = encap.VXLANOverhead
	}
	frame := func(d []byte) {
		if len(d) <= skip {
			return
		}
		pkt := d[skip:]
		if len(pkt) <= maxInner {
			return
		}
		if pkt[0]>>4 == 6 || (len(pkt) >= encap.IPv4MinimumSize && encap.IPv4(pkt).DF()) {
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

// icmpError queues an ICMP error about orig for the TUN: net unreachable, or
// with tooBig frag-needed / packet-too-big carrying mtu. Its source is orig's
// destination: that address routes via the TUN, so the kernel accepts it
// (a source that is one of the host's own addresses would be dropped as a
// martian), and the receiver acts only on the quoted header.
func (w *worker) icmpError(orig []byte, tooBig bool, mtu int) {
	o := &w.ob
	k := len(o.icmpOut)
	if k == cap(o.icmpOut) {
		return
	}
	b := o.icmp[k][Headroom:]
	var n int
	var err error
	if orig[0]>>4 == 4 {
		router := netip.AddrFrom4([4]byte(orig[16:20]))
		if tooBig {
			n, err = encap.ICMPv4FragNeeded(b, router, orig, uint16(mtu))
		} else {
			n, err = encap.ICMPv4NetUnreachable(b, router, orig)
		}
	} else {
		router := netip.AddrFrom16([16]byte(orig[24:40]))
		if router.IsMulticast() {
			return
		}
		if tooBig {
			n, err = encap.ICMPv6PacketTooBig(b, router, orig, uint32(mtu))
		} else {
			n, err = encap.ICMPv6DestUnreachable(b, router, orig, encap.ICMPv6CodeNoRoute)
		}
	}
	if err != nil || n == 0 {
		return
	}
	o.icmpOut = append(o.icmpOut, o.icmp[k][:Headroom+n])
}

// ---- inbound ----

func (w *worker) inboundLoop() error {
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
	offset := 0
	if f.vxlan {
		offset = encap.VXLANOverhead
	}
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
			w.peerDrop(r.Name, dropShort, 1)
			continue
		}
		for off := 0; off < len(data); off += seg {
			d := data[off:min(off+seg, len(data))]
			if f.vxlan {
				w.decapVXLAN(d, r)
			} else {
				w.decapUDP(d, r)
			}
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
	w.peerDrop(r.Name, reason, 1)
}

// decapVXLAN checks one VXLAN datagram from peer r and queues its inner
// packet for the TUN (in place: the slice handed to the TUN starts at the
// VXLAN header, which becomes headroom).
func (w *worker) decapVXLAN(d []byte, r *routing.Route) {
	in := &w.ib
	vni, etherType, inner, err := encap.DecapVXLAN(d, nil)
	if err != nil {
		switch err {
		case encap.ErrShort:
			w.dropIn(r, dropShort)
		case encap.ErrNoIBit:
			w.dropIn(r, dropNoIBit)
		case encap.ErrEtherType:
			w.dropIn(r, dropBadInner)
		default:
			w.dropIn(r, dropBadHeader)
		}
		return
	}
	if vni != w.f.vni {
		w.dropIn(r, dropUnknownVNI)
		return
	}
	dst := encap.Ethernet(d[encap.VXLANHeaderLen:]).Dst()
	ours := [6]byte(dst) == w.f.mac
	if etherType == encap.EtherTypeARP {
		if !ours && [6]byte(dst) != encap.BroadcastMAC {
			w.dropIn(r, dropWrongMAC)
			return
		}
		w.answerARP(inner, r)
		return
	}
	if !ours {
		w.dropIn(r, dropWrongMAC)
		return
	}
	pkt, err := encap.TrimIP(inner)
	if err != nil || (etherType == encap.EtherTypeIPv4) != (pkt[0]>>4 == 4) {
		w.dropIn(r, dropBadInner)
		return
	}
	completePartialChecksum(pkt)
	in.wout = append(in.wout, d[:encap.VXLANOverhead+len(pkt)])
	in.c.packets++
	in.c.bytes += uint64(len(pkt))
}

// decapUDP checks one legacy-UDP datagram (a raw IP packet).
func (w *worker) decapUDP(d []byte, r *routing.Route) {
	in := &w.ib
	pkt, err := encap.TrimIP(d)
	if err != nil {
		if err == encap.ErrShort {
			w.dropIn(r, dropShort)
		} else {
			w.dropIn(r, dropBadInner)
		}
		return
	}
	completePartialChecksum(pkt)
	in.wout = append(in.wout, pkt)
	in.c.packets++
	in.c.bytes += uint64(len(pkt))
}

// answerARP queues a reply to an ARP request for our VTEP address, sent back
// encapsulated to the asking peer.
func (w *worker) answerARP(req []byte, r *routing.Route) {
	in := &w.ib
	f := w.f
	k := len(in.arpMsgs)
	if !f.vtepIP.Is4() || k == cap(in.arpMsgs) {
		w.dropIn(r, dropARP)
		return
	}
	b := in.arpBufs[k]
	n, err := encap.BuildARPReply(b[encap.VXLANOverhead:], req, f.mac[:], f.vtepIP)
	if err != nil {
		w.dropIn(r, dropARP)
		return
	}
	to := encap.ARP(b[encap.VXLANOverhead:]).TargetMAC()
	encap.EncapVXLAN(b, encap.VXLANOverhead, f.vni, to, f.mac[:], encap.EtherTypeARP)
	in.arpMsgs = append(in.arpMsgs, udp.Message{Buf: b[:encap.VXLANOverhead+n], Addr: &r.Sockaddr})
}

func (w *worker) sendARP() {
	in := &w.ib
	w.sendMu.Lock()
	for sent := 0; sent < len(in.arpMsgs); {
		k, err := w.conn.WriteBatch(in.arpMsgs[sent:])
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
