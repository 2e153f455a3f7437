// Package encap owns vxtun's wire formats as zero-copy byte-slice views:
// VXLAN (RFC 7348), flannel's legacy UDP format, the inner Ethernet header,
// IPv4/IPv6/UDP/TCP/ICMP/ARP helpers, Internet checksums and the inner flow hash.
//
// A header view is `type X []byte` with accessors in field order; it never
// copies and never allocates. Callers must check the length (XMinimumSize or
// the Parse*/Decap*/ValidateIP functions) before using accessors on untrusted
// input. Encoders write into caller-provided buffers, typically into headroom
// left in front of the inner packet, so encapsulation needs no copy of the
// payload:
//
//	// buf[off:off+n] holds the inner IP packet, off ≥ VXLANOverhead.
//	start := EncapVXLAN(buf, off, vni, peerMAC, ourMAC, EtherTypeIPv4)
//	send(buf[start : off+n]) // the kernel adds outer IP + UDP
//
//	vni, etherType, inner, err := DecapVXLAN(datagram, ourMAC)
//	pkt, err := TrimIP(inner) // inner == datagram[VXLANOverhead:]
//
// encap is the only home of wire constants: header sizes, the on-wire
// overheads (VXLANOverheadIPv4/IPv6, UDPLegacyOverheadIPv4/IPv6), the
// default ports (VXLANPort, UDPLegacyPort) and MaxVNI; config derives its
// names from them. Pipelines read header fields through the views
// (IPv4(pkt).Dst(), IPv4(pkt).IsFragment(), TCP(l4).Checksum(), ...), never
// by raw offsets. It imports only the standard library.
//
// Parsers report drops as preallocated sentinel errors (ErrShort, ErrNoIBit,
// ErrBadFlags, ErrReserved, ErrEtherType, ErrDstMAC, ErrIPVersion,
// ErrIPHeaderLen, ErrIPLength, ...), returned unwrapped so a dataplane can
// count by reason with a plain comparison and no allocation.
//
// Slices returned by parsers alias their input; nothing is retained after a
// call returns. The package has no state and is safe for concurrent use on
// distinct buffers.
package encap
