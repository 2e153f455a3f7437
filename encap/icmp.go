package encap

import (
	"encoding/binary"
	"errors"
	"net/netip"
)

// ICMPv4 is an ICMPv4 message view (RFC 792):
//
//	+--------+--------+--------+--------+
//	|  Type  |  Code  |    Checksum     |
//	+--------+--------+--------+--------+
//	|  rest of header (e.g. unused|MTU) |
//	+--------+--------+--------+--------+
//	|  data: quoted IP header + data ...
type ICMPv4 []byte

// ICMPv6 is an ICMPv6 message view (RFC 4443), laid out like ICMPv4; for
// Packet Too Big the rest of header is the 32-bit MTU.
type ICMPv6 []byte

// ICMP constants.
const (
	ICMPv4MinimumSize = 8
	ICMPv6MinimumSize = 8

	ICMPv4TypeEchoReply       = 0
	ICMPv4TypeDestUnreachable = 3
	ICMPv4TypeEcho            = 8
	ICMPv4TypeTimeExceeded    = 11

	ICMPv4CodeNetUnreachable  = 0
	ICMPv4CodeHostUnreachable = 1
	ICMPv4CodeFragNeeded      = 4

	ICMPv6TypeDestUnreachable = 1
	ICMPv6TypePacketTooBig    = 2
	ICMPv6TypeTimeExceeded    = 3
	ICMPv6TypeEchoRequest     = 128
	ICMPv6TypeEchoReply       = 129

	ICMPv6CodeNoRoute = 0

	// ICMPv4ErrorMaxLen is the largest ICMPv4 error datagram vxtun builds:
	// like Linux (and RFC 1812 §4.3.2.3), as much of the offending packet as
	// fits in 576 bytes.
	ICMPv4ErrorMaxLen = 576
	// ICMPv6ErrorMaxLen is the largest ICMPv6 error datagram: as much as
	// fits in the IPv6 minimum MTU (RFC 4443 §2.4(c)).
	ICMPv6ErrorMaxLen = IPv6MinimumMTU

	// icmpErrorTTL is the TTL/hop limit of the errors we originate.
	icmpErrorTTL = 64
)

// ICMP builder errors.
var (
	// ErrNoICMP: the rules of RFC 1812 §4.3.2.7 / RFC 4443 §2.4(e) forbid an
	// error about this packet (it is an ICMP error itself, a non-first
	// fragment, or to/from a multicast, broadcast or unspecified address).
	ErrNoICMP = errors.New("icmp: no error message allowed for this packet")
	// ErrShortBuffer: the output buffer cannot hold the message.
	ErrShortBuffer = errors.New("buffer too small")
	// ErrAddrFamily: the router address is not of the packet's family.
	ErrAddrFamily = errors.New("address family mismatch")
)

// Type returns the message type.
func (b ICMPv4) Type() uint8 { return b[0] }

// Code returns the message code.
func (b ICMPv4) Code() uint8 { return b[1] }

// Checksum returns the checksum field.
func (b ICMPv4) Checksum() uint16 { return binary.BigEndian.Uint16(b[2:4]) }

// RestOfHeader returns bytes 4–7.
func (b ICMPv4) RestOfHeader() uint32 { return binary.BigEndian.Uint32(b[4:8]) }

// MTU returns the next-hop MTU of a fragmentation-needed message (RFC 1191).
func (b ICMPv4) MTU() uint16 { return binary.BigEndian.Uint16(b[6:8]) }

// Payload returns the quoted packet.
func (b ICMPv4) Payload() []byte { return b[ICMPv4MinimumSize:] }

// SetChecksum sets the checksum field.
func (b ICMPv4) SetChecksum(v uint16) { binary.BigEndian.PutUint16(b[2:4], v) }

// CalculateChecksum returns the checksum the whole message b should carry.
func (b ICMPv4) CalculateChecksum() uint16 {
	s := Checksum(b[:2], 0)
	return ^Checksum(b[4:], uint32(s))
}

// Type returns the message type.
func (b ICMPv6) Type() uint8 { return b[0] }

// Code returns the message code.
func (b ICMPv6) Code() uint8 { return b[1] }

// Checksum returns the checksum field.
func (b ICMPv6) Checksum() uint16 { return binary.BigEndian.Uint16(b[2:4]) }

// RestOfHeader returns bytes 4–7.
func (b ICMPv6) RestOfHeader() uint32 { return binary.BigEndian.Uint32(b[4:8]) }

// MTU returns the MTU of a Packet Too Big message.
func (b ICMPv6) MTU() uint32 { return binary.BigEndian.Uint32(b[4:8]) }

// Payload returns the quoted packet.
func (b ICMPv6) Payload() []byte { return b[ICMPv6MinimumSize:] }

// SetChecksum sets the checksum field.
func (b ICMPv6) SetChecksum(v uint16) { binary.BigEndian.PutUint16(b[2:4], v) }

// CalculateChecksum returns the checksum the whole message b should carry,
// given the pseudo-header sum (PseudoHeaderChecksum(ProtocolICMPv6, ...)).
func (b ICMPv6) CalculateChecksum(pseudo uint16) uint16 {
	s := Checksum(b[:2], uint32(pseudo))
	return ^Checksum(b[4:], uint32(s))
}

// ICMPv4FragNeeded builds into b a complete IPv4 packet carrying an ICMP
// "fragmentation needed and DF set" (type 3 code 4) error about orig with
// the given next-hop MTU, from router to orig's source. It returns the
// packet length. See ICMPv4Error.
func ICMPv4FragNeeded(b []byte, router netip.Addr, orig []byte, mtu uint16) (int, error) {
	return ICMPv4Error(b, router, orig, ICMPv4TypeDestUnreachable, ICMPv4CodeFragNeeded, uint32(mtu))
}

// ICMPv4NetUnreachable builds an ICMP "net unreachable" (type 3 code 0)
// error about orig into b. See ICMPv4Error.
func ICMPv4NetUnreachable(b []byte, router netip.Addr, orig []byte) (int, error) {
	return ICMPv4Error(b, router, orig, ICMPv4TypeDestUnreachable, ICMPv4CodeNetUnreachable, 0)
}

// ICMPv4Error builds into b an IPv4 packet (TOS 0xc0, TTL 64) from router to
// the source of orig carrying an ICMP error of the given type and code with
// rest as header bytes 4–7, quoting as much of orig as fits in 576 bytes
// and in b (at least orig's IP header and 8 bytes, RFC 792). It returns the
// length written, ErrNoICMP when no error may be sent about orig, an
// ValidateIP error when orig is not a valid IPv4 packet, ErrShortBuffer or
// ErrAddrFamily.
func ICMPv4Error(b []byte, router netip.Addr, orig []byte, typ, code uint8, rest uint32) (int, error) {
	if !router.Is4() {
		return 0, ErrAddrFamily
	}
	orig, err := TrimIP(orig)
	if err != nil {
		return 0, err
	}
	ip := IPv4(orig)
	if ip.Version() != 4 {
		return 0, ErrAddrFamily
	}
	if ip.FragmentOffset() != 0 || !unicast4(ip.Src()) || !unicast4(ip.Dst()) {
		return 0, ErrNoICMP
	}
	if ip.Protocol() == ProtocolICMPv4 {
		if p := ip.Payload(); len(p) < 1 || !icmpv4Informational(p[0]) {
			return 0, ErrNoICMP
		}
	}
	const hdr = IPv4MinimumSize + ICMPv4MinimumSize
	n := len(orig)
	if n > ICMPv4ErrorMaxLen-hdr {
		n = ICMPv4ErrorMaxLen - hdr
	}
	if n > len(b)-hdr {
		n = len(b) - hdr
		if min := ip.HeaderLength() + 8; n < min && n < len(orig) {
			return 0, ErrShortBuffer
		}
	}
	total := hdr + n
	src := ip.SrcAddr()
	// orig may overlap b: copy the quote before writing headers.
	copy(b[hdr:total], orig[:n])
	out := IPv4(b[:total])
	out.Encode(&IPv4Fields{
		TOS:         0xc0,
		TotalLength: uint16(total),
		TTL:         icmpErrorTTL,
		Protocol:    ProtocolICMPv4,
		Src:         router,
		Dst:         src,
	})
	m := ICMPv4(b[IPv4MinimumSize:total])
	m[0], m[1] = typ, code
	m[2], m[3] = 0, 0
	binary.BigEndian.PutUint32(m[4:8], rest)
	m.SetChecksum(m.CalculateChecksum())
	return total, nil
}

func unicast4(a []byte) bool {
	switch {
	case a[0] == 0: // 0.0.0.0/8 "this network"
		return false
	case a[0] >= 224: // multicast, reserved, limited broadcast
		return false
	}
	return true
}

func icmpv4Informational(t uint8) bool {
	switch t {
	case 0, 8, 9, 10, 13, 14, 15, 16, 17, 18:
		return true
	}
	return false
}

// ICMPv6PacketTooBig builds an ICMPv6 "packet too big" (type 2) error with
// the given MTU about orig into b. See ICMPv6Error.
func ICMPv6PacketTooBig(b []byte, router netip.Addr, orig []byte, mtu uint32) (int, error) {
	return ICMPv6Error(b, router, orig, ICMPv6TypePacketTooBig, 0, mtu)
}

// ICMPv6DestUnreachable builds an ICMPv6 "destination unreachable" (type 1)
// error with the given code (ICMPv6CodeNoRoute = 0) about orig into b.
func ICMPv6DestUnreachable(b []byte, router netip.Addr, orig []byte, code uint8) (int, error) {
	return ICMPv6Error(b, router, orig, ICMPv6TypeDestUnreachable, code, 0)
}

// ICMPv6Error builds into b an IPv6 packet (hop limit 64) from router to the
// source of orig carrying an ICMPv6 error with the given type, code and rest
// (header bytes 4–7), quoting as much of orig as fits in 1280 bytes and in
// b. RFC 4443 §2.4(e): no error about an ICMPv6 error, about a packet from
// the unspecified or a multicast address, or (except Packet Too Big) to a
// multicast address; those give ErrNoICMP.
func ICMPv6Error(b []byte, router netip.Addr, orig []byte, typ, code uint8, rest uint32) (int, error) {
	if !router.Is6() || router.Is4In6() {
		return 0, ErrAddrFamily
	}
	orig, err := TrimIP(orig)
	if err != nil {
		return 0, err
	}
	ip := IPv6(orig)
	if ip.Version() != 6 {
		return 0, ErrAddrFamily
	}
	src, dst := ip.SrcAddr(), ip.DstAddr()
	if src.IsUnspecified() || src.IsMulticast() || (dst.IsMulticast() && typ != ICMPv6TypePacketTooBig) {
		return 0, ErrNoICMP
	}
	if ip.NextHeader() == ProtocolICMPv6 {
		if p := ip.Payload(); len(p) < 1 || p[0] < 128 {
			return 0, ErrNoICMP
		}
	}
	const hdr = IPv6MinimumSize + ICMPv6MinimumSize
	n := len(orig)
	if n > ICMPv6ErrorMaxLen-hdr {
		n = ICMPv6ErrorMaxLen - hdr
	}
	if n > len(b)-hdr {
		n = len(b) - hdr
		if n < IPv6MinimumSize+8 && n < len(orig) {
			return 0, ErrShortBuffer
		}
	}
	total := hdr + n
	copy(b[hdr:total], orig[:n])
	out := IPv6(b[:total])
	out.Encode(&IPv6Fields{
		PayloadLength: uint16(ICMPv6MinimumSize + n),
		NextHeader:    ProtocolICMPv6,
		HopLimit:      icmpErrorTTL,
		Src:           router,
		Dst:           src,
	})
	m := ICMPv6(b[IPv6MinimumSize:total])
	m[0], m[1] = typ, code
	m[2], m[3] = 0, 0
	binary.BigEndian.PutUint32(m[4:8], rest)
	m.SetChecksum(m.CalculateChecksum(PseudoHeaderChecksum(ProtocolICMPv6, out.Src(), out.Dst(), uint16(len(m)))))
	return total, nil
}
