package fastpath

import (
	"encoding/binary"

	"github.com/vxtun/vxtun/encap"
)

// completePartialChecksum finishes an inner TCP/UDP checksum that a Linux
// sender left partial. A kernel vxlan device sending over veth (or any
// device with checksum offload that the packet never reaches a NIC through)
// keeps the inner packet CHECKSUM_PARTIAL: the L4 checksum field holds only
// the folded pseudo-header sum, and a UDP socket hands those bytes to
// userspace as they are. Written into the TUN, the kernel would drop such a
// packet as corrupt. So: when the field equals the pseudo-header sum and the
// packet does not already verify, compute the real checksum. A complete
// checksum costs one pseudo-header sum to recognise (the full pass runs only
// for partial packets and for the 1-in-65536 that collide).
func completePartialChecksum(pkt []byte) {
	var proto uint8
	var l4, src, dst []byte
	v4 := pkt[0]>>4 == 4
	if v4 {
		ihl := int(pkt[0]&0x0f) * 4
		if binary.BigEndian.Uint16(pkt[6:8])&0x3fff != 0 || len(pkt) < ihl {
			return // a fragment: partial checksums never are
		}
		proto, l4, src, dst = pkt[9], pkt[ihl:], pkt[12:16], pkt[16:20]
	} else {
		proto, l4, src, dst = pkt[6], pkt[encap.IPv6MinimumSize:], pkt[8:24], pkt[24:40]
	}
	var off int
	switch proto {
	case encap.ProtocolTCP:
		if len(l4) < encap.TCPMinimumSize {
			return
		}
		off = 16
	case encap.ProtocolUDP:
		if len(l4) < encap.UDPMinimumSize {
			return
		}
		off = 6
	default:
		return
	}
	field := binary.BigEndian.Uint16(l4[off:])
	ps := encap.PseudoHeaderChecksum(proto, src, dst, uint16(len(l4)))
	if field != ps || (proto == encap.ProtocolUDP && v4 && field == 0) {
		return
	}
	if encap.Checksum(l4, uint32(ps)) == 0xffff {
		return // complete already
	}
	l4[off], l4[off+1] = 0, 0
	c := ^encap.Checksum(l4, uint32(ps))
	if c == 0 && proto == encap.ProtocolUDP {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(l4[off:], c)
}
