package tun

import (
	"bytes"
	"encoding/binary"

	"github.com/vxtun/vxtun/encap"
)

// GRO: coalescing the packets of one Write into super-packets.
//
// A run is one packet written to the TUN: either a single packet passed
// through unchanged, or a leader packet followed by the payloads of members
// of the same TCP (or UDP) flow. Runs are kept in the order of their first
// packet; a packet of a flow that cannot join the flow's open run closes it,
// so the packets of one flow never overtake each other. Members are not
// copied: the device writes a run with writev from the caller's buffers.

// maxOpenRuns bounds the flows coalesced at the same time in one batch. When
// all slots are taken a new flow replaces the newest open run, so that with
// more flows than slots most of them still coalesce (replacing the oldest
// would thrash under round-robin arrival).
const maxOpenRuns = 32

// maxSuperPacket is the largest IP packet a run may grow to.
const maxSuperPacket = 65535

// maxUDPSegments bounds the datagrams of a UDP (USO) run: the kernel refuses
// a UDP_L4 GSO packet from a TUN with more than UDP_MAX_SEGMENTS segments
// (EINVAL in virtio_net_hdr_to_skb; 64 on older kernels, 128 on newer ones),
// which small datagrams reach long before 64 KiB.
const maxUDPSegments = 64

type groRun struct {
	first, last int // packet indices in bufs
	count       int
	passthrough bool // written as-is, never joined
	closed      bool // no more members
	gso         bool // one packet above the MTU, written as a super-packet
	drop        bool // one packet above the MTU that GSO cannot express
	udp, v6     bool
	l4off       int
	hdrLen      int
	gsoSize     int
	payload     int    // payload bytes of all packets in the run
	nextSeq     uint32 // TCP: sequence number the next member must have
	lastID      uint16 // IPv4 id of the last packet
	lastFlags   uint8  // TCP flags of the last packet
	hash        uint32 // encap.FlowHash, to skip most sameFlow calls
}

// groTable is reused by one device for every Write; it allocates only when a
// batch is larger than any before.
type groTable struct {
	// mtu is the device MTU (0: unknown, no limit): no packet above it is
	// written as a plain packet or joins a run. tso says the device takes
	// TCP super-packets. The Queue sets both before each coalesce.
	mtu  int
	tso  bool
	next []int // next member of a run, -1 at the end; indexed like bufs
	// badCsum counts the packets of the last coalesce that were not joined
	// because a checksum they carry (IPv4 header, TCP/UDP) did not verify.
	badCsum int
	runs    []groRun
	open    []int // indices into runs, oldest first
}

// groPkt is the parsed form of a candidate packet.
type groPkt struct {
	ok     bool // TCP or UDP, flow identifiable
	join   bool // may be coalesced
	hdrBad bool // IPv4 header checksum does not verify
	// badCsum: would be joinable but for a checksum that did not verify
	// (IPv4 header or TCP/UDP); the packet is written alone, as it is.
	badCsum bool
	v6      bool
	udp     bool
	l4off   int
	hdrLen  int
}

// parseGROPkt classifies p. ok reports that p is TCP or UDP in a plain IPv4
// (no options, not a fragment) or IPv6 (no extension headers) packet whose
// length fields agree with len(p); join additionally that its flags and
// payload allow coalescing and that every checksum a run rewrites or hands
// to the kernel to recompute verifies, as the kernel's GRO requires
// (inet_gro_receive: the IPv4 header; tcp4/udp4_gro_receive: the L4 sum).
// A run rewrites the leader's IPv4 header checksum and drops the members'
// headers, and the kernel recomputes every segment's L4 checksum from the
// pseudo-header sum: joining an unverified packet would launder it.
func parseGROPkt(p []byte, udpOK bool) groPkt {
	var g groPkt
	var proto uint8
	switch {
	case len(p) >= 20 && p[0] == 0x45:
		if int(binary.BigEndian.Uint16(p[2:])) != len(p) || binary.BigEndian.Uint16(p[6:])&0x3fff != 0 {
			return g
		}
		proto, g.l4off = p[9], 20
		g.hdrBad = encap.ChecksumFold(encap.ChecksumAdd(p[:20], 0)) != 0xffff
	case len(p) >= 40 && p[0]>>4 == 6:
		if int(binary.BigEndian.Uint16(p[4:]))+40 != len(p) {
			return g
		}
		proto, g.l4off, g.v6 = p[6], 40, true
	default:
		return g
	}
	l4 := p[g.l4off:]
	switch proto {
	case encap.ProtocolTCP:
		if len(l4) < 20 {
			return g
		}
		doff := int(l4[12]>>4) * 4
		if doff < 20 || doff > len(l4) {
			return g
		}
		g.hdrLen = g.l4off + doff
		g.ok = true
		if l4[13]&^encap.TCPFlagPSH != encap.TCPFlagACK || len(p) == g.hdrLen {
			return g
		}
	case encap.ProtocolUDP:
		if len(l4) < 8 {
			return g
		}
		g.udp, g.hdrLen, g.ok = true, g.l4off+8, true
		if !udpOK || int(binary.BigEndian.Uint16(l4[4:])) != len(l4) || len(p) == g.hdrLen {
			return g
		}
		if binary.BigEndian.Uint16(l4[6:]) == 0 {
			// IPv4 without checksum: no L4 sum to verify. IPv6: invalid.
			g.join = !g.v6 && !g.hdrBad
			g.badCsum = !g.join
			return g
		}
	default:
		return g
	}
	g.join = !g.hdrBad && l4Valid(p, g.l4off, g.v6, proto)
	g.badCsum = !g.join
	return g
}

// l4Valid verifies the TCP or UDP checksum of p.
func l4Valid(p []byte, l4off int, v6 bool, proto uint8) bool {
	var ps uint64
	if v6 {
		ps = uint64(encap.PseudoHeaderChecksum(proto, p[8:24], p[24:40], uint16(len(p)-l4off)))
	} else {
		ps = uint64(encap.PseudoHeaderChecksum(proto, p[12:16], p[16:20], uint16(len(p)-l4off)))
	}
	return encap.ChecksumFold(encap.ChecksumAdd(p[l4off:], ps)) == 0xffff
}

// sameFlow reports whether p and q (both ok, same L4 protocol) have equal
// addresses and ports.
func sameFlow(p, q []byte, pg, qg *groPkt) bool {
	if pg.v6 != qg.v6 || pg.udp != qg.udp {
		return false
	}
	if pg.v6 {
		return bytes.Equal(p[8:40], q[8:40]) && binary.BigEndian.Uint32(p[40:]) == binary.BigEndian.Uint32(q[40:])
	}
	return binary.BigEndian.Uint64(p[12:]) == binary.BigEndian.Uint64(q[12:]) &&
		binary.BigEndian.Uint32(p[20:]) == binary.BigEndian.Uint32(q[20:])
}

// canJoin reports whether q (parsed as qg) may be appended to run r whose
// leader is l.
func canJoin(r *groRun, l, q []byte, qg *groPkt) bool {
	if r.closed || !qg.join || qg.hdrLen != r.hdrLen {
		return false
	}
	pl := len(q) - qg.hdrLen
	if pl > r.gsoSize || r.hdrLen+r.payload+pl > maxSuperPacket {
		return false
	}
	if r.v6 {
		// Version, traffic class, flow label; hop limit.
		if binary.BigEndian.Uint32(l) != binary.BigEndian.Uint32(q) || l[7] != q[7] {
			return false
		}
	} else {
		// TOS, DF, TTL; consecutive ids.
		if l[1] != q[1] || l[6]&0x40 != q[6]&0x40 || l[8] != q[8] ||
			binary.BigEndian.Uint16(q[4:]) != r.lastID+1 {
			return false
		}
	}
	if r.udp {
		return r.count < maxUDPSegments
	}
	lt, qt := l[r.l4off:r.hdrLen], q[r.l4off:r.hdrLen]
	return binary.BigEndian.Uint32(qt[4:]) == r.nextSeq &&
		binary.BigEndian.Uint32(qt[8:]) == binary.BigEndian.Uint32(lt[8:]) && // ack
		qt[13]&^encap.TCPFlagPSH == lt[13] &&
		bytes.Equal(qt[20:], lt[20:]) // options
}

// coalesce groups bufs[i][offset:] into runs. It does not modify bufs; see
// finishRun.
func (t *groTable) coalesce(bufs [][]byte, offset int, udpOK bool) {
	if cap(t.next) < len(bufs) {
		t.next = make([]int, len(bufs))
		t.runs = make([]groRun, 0, len(bufs))
	}
	if t.open == nil {
		t.open = make([]int, 0, maxOpenRuns)
	}
	t.next = t.next[:len(bufs)]
	t.runs = t.runs[:0]
	t.open = t.open[:0]
	t.badCsum = 0
	for i := range bufs {
		t.next[i] = -1
		q := bufs[i][offset:]
		if t.mtu > 0 && len(q) > t.mtu {
			// Never a segment of a run (its size is no MSS), never written
			// as it is (forwarding would drop it): a super-packet of its
			// own, or dropped.
			t.runs = append(t.runs, t.oversize(i, q, udpOK))
			continue
		}
		qg := parseGROPkt(q, udpOK)
		if qg.badCsum {
			t.badCsum++
		}
		if !qg.ok {
			t.runs = append(t.runs, groRun{first: i, last: i, count: 1, passthrough: true, closed: true})
			continue
		}
		// Find the flow's open run.
		slot := -1
		h := encap.FlowHash(q)
		for k, ri := range t.open {
			r := &t.runs[ri]
			if r.hash != h {
				continue
			}
			l := bufs[r.first][offset:]
			lg := groPkt{v6: r.v6, udp: r.udp, l4off: r.l4off}
			if sameFlow(l, q, &lg, &qg) {
				slot = k
				break
			}
		}
		if slot >= 0 {
			r := &t.runs[t.open[slot]]
			if canJoin(r, bufs[r.first][offset:], q, &qg) {
				pl := len(q) - qg.hdrLen
				t.next[r.last] = i
				r.last = i
				r.count++
				r.payload += pl
				if !r.v6 {
					r.lastID = binary.BigEndian.Uint16(q[4:])
				}
				if !r.udp {
					r.nextSeq += uint32(pl)
					r.lastFlags = q[r.l4off+13]
					if r.lastFlags&encap.TCPFlagPSH != 0 {
						r.closed = true
					}
				}
				if pl < r.gsoSize {
					r.closed = true
				}
				continue
			}
			// The flow continues in a new run; the old one is closed.
			t.runs[t.open[slot]].closed = true
			t.open = append(t.open[:slot], t.open[slot+1:]...)
		}
		nr := groRun{
			first: i, last: i, count: 1,
			udp: qg.udp, v6: qg.v6, l4off: qg.l4off, hdrLen: qg.hdrLen,
			gsoSize: len(q) - qg.hdrLen, payload: len(q) - qg.hdrLen,
			hash: h,
		}
		if !qg.join {
			nr.closed = true
		}
		if !nr.v6 {
			nr.lastID = binary.BigEndian.Uint16(q[4:])
		}
		if !nr.udp {
			l4 := q[qg.l4off:]
			nr.nextSeq = binary.BigEndian.Uint32(l4[4:]) + uint32(nr.payload)
			nr.lastFlags = l4[13]
			if nr.lastFlags&encap.TCPFlagPSH != 0 {
				nr.closed = true
			}
		}
		t.runs = append(t.runs, nr)
		if nr.closed {
			continue
		}
		if len(t.open) == maxOpenRuns {
			t.runs[t.open[len(t.open)-1]].closed = true
			t.open = t.open[:len(t.open)-1]
		}
		t.open = append(t.open, len(t.runs)-1)
	}
}

// oversize returns the run for packet i, q, which is larger than t.mtu: a
// GSO super-packet with segments of at most t.mtu bytes if q is TCP (with
// TSO) or UDP (with USO) with sound headers (an IPv4 header checksum that
// verifies among them), else a run to drop. Its L4 checksum is not verified: a
// kernel peer's tunnelled GSO packet carries only the pseudo-header sum
// there (CHECKSUM_PARTIAL), and the kernel computes each segment's checksum
// anyway.
func (t *groTable) oversize(i int, q []byte, udpOK bool) groRun {
	drop := groRun{first: i, last: i, count: 1, passthrough: true, closed: true, drop: true}
	g := parseGROPkt(q, udpOK)
	if !g.ok || g.hdrBad || (g.udp && !udpOK) || (!g.udp && !t.tso) {
		return drop
	}
	l4 := q[g.l4off:]
	if g.udp && int(encap.UDP(l4).Length()) != len(l4) {
		return drop
	}
	gsoSize := t.mtu - g.hdrLen
	payload := len(q) - g.hdrLen
	if gsoSize <= 0 || (g.udp && (payload+gsoSize-1)/gsoSize > maxUDPSegments) {
		return drop
	}
	r := groRun{
		first: i, last: i, count: 1, closed: true, gso: true,
		udp: g.udp, v6: g.v6, l4off: g.l4off, hdrLen: g.hdrLen,
		gsoSize: gsoSize, payload: payload,
	}
	if !g.udp {
		r.lastFlags = encap.TCP(l4).Flags()
	}
	return r
}

// finishRun prepares run r for writing: for a run of more than one packet it
// rewrites the leader's IP length (and IPv4 header checksum), sets PSH if the
// last member had it, puts the pseudo-header sum into the L4 checksum field
// (UDP: also the length) and fills vh with a GSO header; otherwise vh is
// zeroed. The leader's bytes are modified.
func finishRun(r *groRun, bufs [][]byte, offset int, vh []byte) {
	if r.count == 1 && !r.gso {
		clearVirtioNetHdr(vh)
		return
	}
	l := bufs[r.first][offset:]
	total := r.hdrLen + r.payload
	l4len := total - r.l4off
	var proto uint8 = encap.ProtocolTCP
	var ps uint64
	if r.udp {
		proto = encap.ProtocolUDP
	}
	f := VirtioNetHdrFields{
		Flags:     VirtioNetHdrFNeedsCsum,
		HdrLen:    uint16(r.hdrLen),
		GSOSize:   uint16(r.gsoSize),
		CsumStart: uint16(r.l4off),
	}
	if r.v6 {
		binary.BigEndian.PutUint16(l[4:], uint16(total-40))
		ps = uint64(encap.PseudoHeaderChecksum(proto, l[8:24], l[24:40], uint16(l4len)))
		f.GSOType = GSOTCPv6
	} else {
		binary.BigEndian.PutUint16(l[2:], uint16(total))
		encap.IPv4(l).UpdateChecksum()
		ps = uint64(encap.PseudoHeaderChecksum(proto, l[12:16], l[16:20], uint16(l4len)))
		f.GSOType = GSOTCPv4
	}
	l4 := l[r.l4off:]
	if r.udp {
		f.GSOType = GSOUDPL4
		f.CsumOffset = 6
		binary.BigEndian.PutUint16(l4[4:], uint16(l4len))
	} else {
		f.CsumOffset = 16
		l4[13] |= r.lastFlags & encap.TCPFlagPSH
		if r.lastFlags&encap.TCPFlagCWR != 0 {
			f.GSOType |= GSOECN // only an oversize packet (one of its own) has CWR
		}
	}
	binary.BigEndian.PutUint16(l4[f.CsumOffset:], encap.ChecksumFold(ps))
	VirtioNetHdr(vh).Encode(&f)
}

// appendRun appends the run's packet (after finishRun) to dst: the leader
// whole, then each member's payload. Used by tests and by devices that
// cannot gather.
func appendRun(dst []byte, r *groRun, t *groTable, bufs [][]byte, offset int) []byte {
	dst = append(dst, bufs[r.first][offset:]...)
	for i := t.next[r.first]; i >= 0; i = t.next[i] {
		dst = append(dst, bufs[i][offset+r.hdrLen:]...)
	}
	return dst
}
