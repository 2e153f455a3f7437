package encap

import "encoding/binary"

// Linux's default ip_local_port_range, which the kernel vxlan driver uses
// for the outer source port when no "srcport MIN MAX" is configured
// (udp_flow_src_port in include/net/udp_tunnel.h → inet_get_local_port_range).
const (
	SourcePortMin = 32768
	SourcePortMax = 60999 // the range end; udp_flow_src_port never returns it
)

// FlowHash hashes the inner IP packet's addresses, protocol and, for the
// first fragment of TCP/UDP/SCTP/UDP-Lite, ports, so all packets of a flow
// get the same outer source port (RFC 7348 §5 entropy for ECMP) and
// different flows spread. IPv6 also mixes the flow label; extension headers
// are not walked (such packets hash by addresses and next header). It never
// allocates, and returns 0 for input that is not an IPv4/IPv6 header.
func FlowHash(pkt []byte) uint32 {
	if len(pkt) < 1 {
		return 0
	}
	var h uint64
	var proto uint8
	var l4 []byte
	switch pkt[0] >> 4 {
	case 4:
		if len(pkt) < IPv4MinimumSize {
			return 0
		}
		proto = pkt[9]
		h = uint64(binary.LittleEndian.Uint32(pkt[12:16]))<<32 | uint64(binary.LittleEndian.Uint32(pkt[16:20]))
		hl := int(pkt[0]&0xf) * 4
		if binary.BigEndian.Uint16(pkt[6:8])&0x1fff == 0 && hl >= IPv4MinimumSize && len(pkt) >= hl+4 {
			l4 = pkt[hl:]
		}
	case 6:
		if len(pkt) < IPv6MinimumSize {
			return 0
		}
		proto = pkt[6]
		h = mix64(binary.LittleEndian.Uint64(pkt[8:16]) ^ uint64(binary.BigEndian.Uint32(pkt[0:4])&0xfffff))
		h = mix64(h ^ binary.LittleEndian.Uint64(pkt[16:24]))
		h = mix64(h ^ binary.LittleEndian.Uint64(pkt[24:32]))
		h ^= binary.LittleEndian.Uint64(pkt[32:40])
		if len(pkt) >= IPv6MinimumSize+4 {
			l4 = pkt[IPv6MinimumSize:]
		}
	default:
		return 0
	}
	var ports uint64
	switch proto {
	case ProtocolTCP, ProtocolUDP, 132 /* SCTP */, 136 /* UDP-Lite */ :
		if l4 != nil {
			ports = uint64(binary.LittleEndian.Uint32(l4[0:4]))
		}
	}
	h = mix64(h ^ (ports<<8 | uint64(proto)))
	return uint32(h ^ h>>32)
}

// mix64 is the SplitMix64/Murmur3 finalizer: every input bit affects every
// output bit.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// SourcePort maps a flow hash to a UDP source port in [min, max) the way the
// Linux kernel's udp_flow_src_port does: fold the low half into the high
// half, then scale the 32-bit value into the range. With min ≥ max it uses
// the kernel default [SourcePortMin, SourcePortMax).
func SourcePort(hash uint32, min, max uint16) uint16 {
	if min >= max {
		min, max = SourcePortMin, SourcePortMax
	}
	hash ^= hash << 16
	return uint16(uint64(hash)*uint64(max-min)>>32) + min
}
