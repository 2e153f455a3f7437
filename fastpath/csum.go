package fastpath

import "github.com/vxtun/vxtun/encap"

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
	v4 := encap.IPVersion(pkt) == 4
	if v4 {
		ip := encap.IPv4(pkt)
		if ip.IsFragment() || len(pkt) < ip.HeaderLength() {
			return // a fragment: partial checksums never are
		}
		proto, l4, src, dst = ip.Protocol(), ip.Payload(), ip.Src(), ip.Dst()
	} else {
		ip := encap.IPv6(pkt)
		proto, l4, src, dst = ip.NextHeader(), ip.Payload(), ip.Src(), ip.Dst()
	}
	var field uint16
	switch proto {
	case encap.ProtocolTCP:
		if len(l4) < encap.TCPMinimumSize {
			return
		}
		field = encap.TCP(l4).Checksum()
	case encap.ProtocolUDP:
		if len(l4) < encap.UDPMinimumSize {
			return
		}
		field = encap.UDP(l4).Checksum()
	default:
		return
	}
	ps := encap.PseudoHeaderChecksum(proto, src, dst, uint16(len(l4)))
	if field != ps || (proto == encap.ProtocolUDP && v4 && field == 0) {
		return
	}
	if encap.Checksum(l4, uint32(ps)) == 0xffff {
		return // complete already
	}
	setL4Checksum(proto, l4, 0)
	c := ^encap.Checksum(l4, uint32(ps))
	if c == 0 && proto == encap.ProtocolUDP {
		c = 0xffff
	}
	setL4Checksum(proto, l4, c)
}

// setL4Checksum writes the checksum field of the TCP or UDP header l4.
func setL4Checksum(proto uint8, l4 []byte, c uint16) {
	if proto == encap.ProtocolTCP {
		encap.TCP(l4).SetChecksum(c)
	} else {
		encap.UDP(l4).SetChecksum(c)
	}
}
