package tun

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/vxtun/vxtun/encap"
)

// Errors of GSO splitting and frame handling.
var (
	// ErrBadFrame: a frame from the kernel (or a fuzzer) is malformed.
	ErrBadFrame = errors.New("malformed frame")
	// ErrUnsupportedGSO: a GSO type vxtun does not split (legacy UFO).
	ErrUnsupportedGSO = errors.New("unsupported gso type")
)

// gsoInfo is what a split needs to know about a super-packet, derived from
// the packet itself and the virtio-net header.
type gsoInfo struct {
	v6      bool
	udp     bool
	l4off   int // start of the TCP/UDP header
	hdrLen  int // l4off + L4 header length
	gsoSize int // payload bytes per segment
	nseg    int
}

// parseGSO validates pkt against h and returns the split parameters.
func parseGSO(h VirtioNetHdr, pkt []byte) (gsoInfo, error) {
	var g gsoInfo
	typ := h.GSOType() &^ GSOECN
	switch typ {
	case GSOTCPv4, GSOTCPv6, GSOUDPL4:
	case GSOUDP:
		return g, ErrUnsupportedGSO
	default:
		return g, fmt.Errorf("gso type %d: %w", typ, ErrUnsupportedGSO)
	}
	if len(pkt) < 20 {
		return g, fmt.Errorf("gso packet of %d bytes: %w", len(pkt), ErrBadFrame)
	}
	var proto uint8
	switch pkt[0] >> 4 {
	case 4:
		ihl := int(pkt[0]&0xf) * 4
		if ihl < 20 || len(pkt) < ihl {
			return g, fmt.Errorf("ipv4 ihl %d: %w", ihl, ErrBadFrame)
		}
		if typ == GSOTCPv6 {
			return g, fmt.Errorf("tcpv6 gso on ipv4 packet: %w", ErrBadFrame)
		}
		proto = pkt[9]
		g.l4off = ihl
	case 6:
		if len(pkt) < 40 {
			return g, fmt.Errorf("ipv6 packet of %d bytes: %w", len(pkt), ErrBadFrame)
		}
		if typ == GSOTCPv4 {
			return g, fmt.Errorf("tcpv4 gso on ipv6 packet: %w", ErrBadFrame)
		}
		g.v6 = true
		var err error
		if g.l4off, proto, err = ipv6L4(pkt); err != nil {
			return g, err
		}
	default:
		return g, fmt.Errorf("ip version %d: %w", pkt[0]>>4, ErrBadFrame)
	}
	// The L4 header is where the IP header says, of the protocol the GSO
	// type names, and csum_start/csum_offset (NEEDS_CSUM, always set by the
	// kernel for GSO) must point at its checksum. The kernel's
	// virtio_net_hdr_to_skb checks csum_offset against the GSO type but
	// csum_start only against a minimal network header; its segmentation
	// (inet_gso_segment,
	// ipv6_gso_segment) finds the L4 header and protocol from the IP header
	// alone: a frame on which the two disagree never becomes segments there,
	// so here it is a bad frame, never split by a csum_start of its own.
	want := uint8(encap.ProtocolTCP)
	if typ == GSOUDPL4 {
		want = encap.ProtocolUDP
	}
	if proto != want {
		return g, fmt.Errorf("gso type %d with ip protocol %d: %w", typ, proto, ErrBadFrame)
	}
	if h.Flags()&VirtioNetHdrFNeedsCsum != 0 {
		wantOff := 16 // offsetof(struct tcphdr, check)
		if typ == GSOUDPL4 {
			wantOff = 6 // offsetof(struct udphdr, check)
		}
		if cs, co := int(h.CsumStart()), int(h.CsumOffset()); cs != g.l4off || co != wantOff {
			return g, fmt.Errorf("csum_start %d csum_offset %d, want %d %d: %w", cs, co, g.l4off, wantOff, ErrBadFrame)
		}
	}
	if typ == GSOUDPL4 {
		g.udp = true
		g.hdrLen = g.l4off + 8
	} else {
		if len(pkt) < g.l4off+20 {
			return g, fmt.Errorf("short tcp header: %w", ErrBadFrame)
		}
		doff := int(pkt[g.l4off+12]>>4) * 4
		if doff < 20 {
			return g, fmt.Errorf("tcp data offset %d: %w", doff, ErrBadFrame)
		}
		g.hdrLen = g.l4off + doff
	}
	if g.hdrLen > len(pkt) {
		return g, fmt.Errorf("headers of %d bytes in %d-byte packet: %w", g.hdrLen, len(pkt), ErrBadFrame)
	}
	g.gsoSize = int(h.GSOSize())
	if g.gsoSize == 0 {
		return g, fmt.Errorf("gso_size 0: %w", ErrBadFrame)
	}
	payload := len(pkt) - g.hdrLen
	g.nseg = (payload + g.gsoSize - 1) / g.gsoSize
	if g.nseg == 0 {
		g.nseg = 1 // header-only packet: one segment
	}
	return g, nil
}

// ipv6L4 returns the offset and protocol of the header after pkt's IPv6
// header and any hop-by-hop and destination options headers, which GSO
// steps over (ipv6_gso_pull_exthdrs). A routing header is not stepped
// over: it would change the pseudo-header's destination, which splitGSO
// takes from the IPv6 header, so such a frame is refused by its protocol.
func ipv6L4(pkt []byte) (int, uint8, error) {
	off, nh := 40, pkt[6]
	for nh == encap.ProtocolIPv6HopByHop || nh == encap.ProtocolIPv6DestOpts {
		if len(pkt) < off+2 {
			return 0, 0, fmt.Errorf("ipv6 extension header %d at %d: %w", nh, off, ErrBadFrame)
		}
		nh, off = pkt[off], off+(int(pkt[off+1])+1)*8
	}
	if off > len(pkt) {
		return 0, 0, fmt.Errorf("ipv6 extension headers end at %d in %d-byte packet: %w", off, len(pkt), ErrBadFrame)
	}
	return off, nh, nil
}

// splitGSO writes segments first, first+1, ... of the super-packet pkt
// (described by g) into bufs[i][offset:], setting sizes[i], until bufs or
// segments run out. It returns the number written. Each segment gets its own
// IP header (IPv4: total length, id+k, header checksum; IPv6: payload
// length), TCP sequence number (FIN/PSH only on the last segment, CWR only on
// the first) or UDP length, and a complete L4 checksum. pkt is not modified;
// it must not overlap bufs.
func splitGSO(pkt []byte, g *gsoInfo, first int, bufs [][]byte, sizes []int, offset int) (int, error) {
	hdr := pkt[:g.hdrLen]
	var src, dst []byte
	var id uint16
	var proto uint8 = encap.ProtocolTCP
	if g.udp {
		proto = encap.ProtocolUDP
	}
	if g.v6 {
		src, dst = pkt[8:24], pkt[24:40]
	} else {
		src, dst = pkt[12:16], pkt[16:20]
		id = binary.BigEndian.Uint16(pkt[4:])
	}
	// IPv4 header sum without total length, id and checksum, which differ
	// per segment: summed once from pkt, not re-read from each segment
	// (re-reading words just written narrower stalls store forwarding).
	var hsum uint64
	if !g.v6 {
		for i := 0; i+1 < g.l4off; i += 2 {
			if i != 2 && i != 4 && i != 10 {
				hsum += uint64(binary.BigEndian.Uint16(pkt[i:]))
			}
		}
	}
	pbase := uint64(encap.PseudoHeaderChecksum(proto, src, dst, 0))
	var seq uint32
	var flags uint8
	if !g.udp {
		seq = binary.BigEndian.Uint32(pkt[g.l4off+4:])
		flags = pkt[g.l4off+13]
	}
	n := 0
	for k := first; k < g.nseg && n < len(bufs); k++ {
		start := g.hdrLen + k*g.gsoSize
		end := min(start+g.gsoSize, len(pkt))
		segLen := g.hdrLen + end - start
		b := bufs[n]
		if len(b) < offset+segLen {
			if n > 0 {
				return n, nil
			}
			return 0, fmt.Errorf("buffer of %d bytes for %d-byte segment at offset %d: %w", len(b), segLen, offset, io.ErrShortBuffer)
		}
		seg := b[offset : offset+segLen]
		copy(seg, hdr)
		copy(seg[g.hdrLen:], pkt[start:end])
		if g.v6 {
			binary.BigEndian.PutUint16(seg[4:], uint16(segLen-40))
		} else {
			sid := id + uint16(k)
			binary.BigEndian.PutUint16(seg[2:], uint16(segLen))
			binary.BigEndian.PutUint16(seg[4:], sid)
			binary.BigEndian.PutUint16(seg[10:], csumFinish(hsum+uint64(segLen)+uint64(sid)))
		}
		l4 := seg[g.l4off:]
		var csumOff int
		if g.udp {
			binary.BigEndian.PutUint16(l4[4:], uint16(len(l4)))
			csumOff = 6
		} else {
			binary.BigEndian.PutUint32(l4[4:], seq+uint32(k*g.gsoSize))
			f := flags
			if k != g.nseg-1 {
				f &^= encap.TCPFlagFIN | encap.TCPFlagPSH
			}
			if k != 0 {
				f &^= encap.TCPFlagCWR
			}
			l4[13] = f
			csumOff = 16
		}
		l4[csumOff], l4[csumOff+1] = 0, 0
		c := csumFinish(encap.ChecksumAdd(l4, pbase+uint64(len(l4))))
		if g.udp && c == 0 {
			c = 0xffff
		}
		binary.BigEndian.PutUint16(l4[csumOff:], c)
		sizes[n] = segLen
		n++
	}
	return n, nil
}

// finishChecksum completes the checksum of a non-GSO packet the kernel handed
// over with NEEDS_CSUM: the field at csum_start+csum_offset holds the
// pseudo-header sum, the rest is summed here.
func finishChecksum(h VirtioNetHdr, pkt []byte) error {
	cs, co := int(h.CsumStart()), int(h.CsumOffset())
	if cs >= len(pkt) || co > len(pkt)-cs-2 {
		return fmt.Errorf("csum_start %d csum_offset %d in %d-byte packet: %w", cs, co, len(pkt), ErrBadFrame)
	}
	c := csumFinish(encap.ChecksumAdd(pkt[cs:], 0))
	if c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(pkt[cs+co:], c)
	return nil
}
