package encap

import (
	"encoding/binary"
	"errors"
	"net/netip"
)

// IPv4 is an IPv4 header view (RFC 791):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|Version|  IHL  |Type of Service|          Total Length         |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|         Identification        |Flags|      Fragment Offset    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Time to Live |    Protocol   |         Header Checksum       |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                       Source Address                          |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                    Destination Address                        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                    Options                    |    Padding    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Accessors assume len ≥ IPv4MinimumSize (and ≥ HeaderLength for Payload);
// ValidateIP checks that.
type IPv4 []byte

// IPv6 is an IPv6 fixed header view (RFC 8200):
//
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|Version| Traffic Class |           Flow Label                  |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|         Payload Length        |  Next Header  |   Hop Limit   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                Source Address (128 bits)                      |
//	|                Destination Address (128 bits)                 |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
type IPv6 []byte

// Header sizes and protocol numbers.
const (
	IPv4MinimumSize       = 20
	IPv4MaximumHeaderSize = 60
	IPv6MinimumSize       = 40
	IPv6MinimumMTU        = 1280

	ProtocolICMPv4 = 1
	ProtocolTCP    = 6
	ProtocolUDP    = 17
	ProtocolICMPv6 = 58

	// IPv4 flag bits as they appear in the 16-bit flags/fragment-offset field.
	IPv4FlagDF = 0x4000
	IPv4FlagMF = 0x2000
)

// Inner IP packet errors (ValidateIP, TrimIP).
var (
	// ErrIPVersion: the version nibble is neither 4 nor 6.
	ErrIPVersion = errors.New("ip: bad version")
	// ErrIPHeaderLen: the IPv4 IHL is below 5 or beyond the data.
	ErrIPHeaderLen = errors.New("ip: bad header length")
	// ErrIPLength: the IP total/payload length disagrees with the data.
	ErrIPLength = errors.New("ip: length beyond data")
)

// IPVersion returns the version nibble of an IP packet, or 0 when b is empty.
func IPVersion(b []byte) int {
	if len(b) == 0 {
		return 0
	}
	return int(b[0] >> 4)
}

// ValidateIP checks that pkt is one IPv4 or IPv6 packet whose header fits
// and whose declared length fits in pkt (trailing bytes, such as Ethernet
// padding, are allowed; TrimIP removes them). Both decapsulation paths use
// it. It returns ErrShort, ErrIPVersion, ErrIPHeaderLen or ErrIPLength.
func ValidateIP(pkt []byte) error {
	_, err := ipLen(pkt)
	return err
}

// TrimIP validates pkt like ValidateIP and returns it cut to the length its
// IP header declares.
func TrimIP(pkt []byte) ([]byte, error) {
	n, err := ipLen(pkt)
	if err != nil {
		return nil, err
	}
	return pkt[:n], nil
}

func ipLen(pkt []byte) (int, error) {
	if len(pkt) == 0 {
		return 0, ErrShort
	}
	switch pkt[0] >> 4 {
	case 4:
		if len(pkt) < IPv4MinimumSize {
			return 0, ErrShort
		}
		hl := int(pkt[0]&0xf) * 4
		tl := int(binary.BigEndian.Uint16(pkt[2:4]))
		if hl < IPv4MinimumSize || hl > tl {
			return 0, ErrIPHeaderLen
		}
		if tl > len(pkt) {
			return 0, ErrIPLength
		}
		return tl, nil
	case 6:
		if len(pkt) < IPv6MinimumSize {
			return 0, ErrShort
		}
		n := IPv6MinimumSize + int(binary.BigEndian.Uint16(pkt[4:6]))
		// A zero payload length with data means a jumbogram (RFC 2675),
		// which cannot cross a VXLAN link; treat it as an empty payload.
		if n > len(pkt) {
			return 0, ErrIPLength
		}
		return n, nil
	default:
		return 0, ErrIPVersion
	}
}

// Version returns the version nibble (4).
func (b IPv4) Version() uint8 { return b[0] >> 4 }

// HeaderLength returns the header length in bytes (IHL × 4).
func (b IPv4) HeaderLength() int { return int(b[0]&0xf) * 4 }

// TOS returns the type-of-service (DSCP and ECN) byte.
func (b IPv4) TOS() uint8 { return b[1] }

// TotalLength returns the total length field.
func (b IPv4) TotalLength() uint16 { return binary.BigEndian.Uint16(b[2:4]) }

// ID returns the identification field.
func (b IPv4) ID() uint16 { return binary.BigEndian.Uint16(b[4:6]) }

// FlagsFragmentOffset returns the 16-bit flags and fragment offset field
// (IPv4FlagDF, IPv4FlagMF, offset in 8-byte units in the low 13 bits).
func (b IPv4) FlagsFragmentOffset() uint16 { return binary.BigEndian.Uint16(b[6:8]) }

// DF reports whether the don't-fragment flag is set.
func (b IPv4) DF() bool { return b[6]&0x40 != 0 }

// MF reports whether the more-fragments flag is set.
func (b IPv4) MF() bool { return b[6]&0x20 != 0 }

// FragmentOffset returns the fragment offset in bytes.
func (b IPv4) FragmentOffset() int { return int(binary.BigEndian.Uint16(b[6:8])&0x1fff) * 8 }

// IsFragment reports whether the packet is a fragment: MF set or a non-zero
// fragment offset.
func (b IPv4) IsFragment() bool {
	return binary.BigEndian.Uint16(b[6:8])&(IPv4FlagMF|0x1fff) != 0
}

// TTL returns the time to live.
func (b IPv4) TTL() uint8 { return b[8] }

// Protocol returns the payload protocol number.
func (b IPv4) Protocol() uint8 { return b[9] }

// Checksum returns the header checksum field.
func (b IPv4) Checksum() uint16 { return binary.BigEndian.Uint16(b[10:12]) }

// Src returns the source address bytes (a sub-slice).
func (b IPv4) Src() []byte { return b[12:16:16] }

// Dst returns the destination address bytes (a sub-slice).
func (b IPv4) Dst() []byte { return b[16:20:20] }

// SrcAddr returns the source address.
func (b IPv4) SrcAddr() netip.Addr { return netip.AddrFrom4([4]byte(b[12:16])) }

// DstAddr returns the destination address.
func (b IPv4) DstAddr() netip.Addr { return netip.AddrFrom4([4]byte(b[16:20])) }

// Payload returns the bytes after the header up to TotalLength (clamped to
// the data).
func (b IPv4) Payload() []byte {
	end := int(b.TotalLength())
	if end > len(b) {
		end = len(b)
	}
	hl := b.HeaderLength()
	if hl > end {
		return nil
	}
	return b[hl:end]
}

// SetTOS sets the type-of-service byte (the checksum is not updated).
func (b IPv4) SetTOS(v uint8) { b[1] = v }

// SetTotalLength sets the total length (the checksum is not updated).
func (b IPv4) SetTotalLength(v uint16) { binary.BigEndian.PutUint16(b[2:4], v) }

// SetID sets the identification (the checksum is not updated).
func (b IPv4) SetID(v uint16) { binary.BigEndian.PutUint16(b[4:6], v) }

// SetFlagsFragmentOffset sets the flags/fragment field (the checksum is not updated).
func (b IPv4) SetFlagsFragmentOffset(v uint16) { binary.BigEndian.PutUint16(b[6:8], v) }

// SetTTL sets the TTL (the checksum is not updated).
func (b IPv4) SetTTL(v uint8) { b[8] = v }

// SetProtocol sets the protocol (the checksum is not updated).
func (b IPv4) SetProtocol(v uint8) { b[9] = v }

// SetChecksum sets the header checksum field.
func (b IPv4) SetChecksum(v uint16) { binary.BigEndian.PutUint16(b[10:12], v) }

// SetSrc sets the source address (the checksum is not updated).
func (b IPv4) SetSrc(a netip.Addr) { a4 := a.As4(); copy(b[12:16], a4[:]) }

// SetDst sets the destination address (the checksum is not updated).
func (b IPv4) SetDst(a netip.Addr) { a4 := a.As4(); copy(b[16:20], a4[:]) }

// CalculateChecksum returns the header checksum the header should carry
// (computed with the checksum field treated as zero).
func (b IPv4) CalculateChecksum() uint16 {
	hl := b.HeaderLength()
	s := Checksum(b[:10], 0)
	s = Checksum(b[12:hl], uint32(s))
	return ^s
}

// UpdateChecksum computes and stores the header checksum.
func (b IPv4) UpdateChecksum() { b.SetChecksum(b.CalculateChecksum()) }

// IsChecksumValid reports whether the header checksum is correct.
func (b IPv4) IsChecksumValid() bool {
	return Checksum(b[:b.HeaderLength()], 0) == 0xffff
}

// IPv4Fields describes an option-less IPv4 header for Encode.
type IPv4Fields struct {
	TOS         uint8
	TotalLength uint16
	ID          uint16
	Flags       uint16 // IPv4FlagDF/IPv4FlagMF and fragment offset field
	TTL         uint8
	Protocol    uint8
	Src, Dst    netip.Addr
}

// Encode writes a 20-byte header from f into b and computes its checksum.
func (b IPv4) Encode(f *IPv4Fields) {
	_ = b[IPv4MinimumSize-1]
	b[0] = 0x45
	b[1] = f.TOS
	binary.BigEndian.PutUint16(b[2:4], f.TotalLength)
	binary.BigEndian.PutUint16(b[4:6], f.ID)
	binary.BigEndian.PutUint16(b[6:8], f.Flags)
	b[8] = f.TTL
	b[9] = f.Protocol
	b[10], b[11] = 0, 0
	s, d := f.Src.As4(), f.Dst.As4()
	copy(b[12:16], s[:])
	copy(b[16:20], d[:])
	b.SetChecksum(^Checksum(b[:IPv4MinimumSize], 0))
}

// Version returns the version nibble (6).
func (b IPv6) Version() uint8 { return b[0] >> 4 }

// TrafficClass returns the traffic class.
func (b IPv6) TrafficClass() uint8 { return uint8(binary.BigEndian.Uint16(b[0:2]) >> 4) }

// FlowLabel returns the 20-bit flow label.
func (b IPv6) FlowLabel() uint32 { return binary.BigEndian.Uint32(b[0:4]) & 0xfffff }

// PayloadLength returns the payload length field.
func (b IPv6) PayloadLength() uint16 { return binary.BigEndian.Uint16(b[4:6]) }

// NextHeader returns the next header (protocol) number.
func (b IPv6) NextHeader() uint8 { return b[6] }

// HopLimit returns the hop limit.
func (b IPv6) HopLimit() uint8 { return b[7] }

// Src returns the source address bytes (a sub-slice).
func (b IPv6) Src() []byte { return b[8:24:24] }

// Dst returns the destination address bytes (a sub-slice).
func (b IPv6) Dst() []byte { return b[24:40:40] }

// SrcAddr returns the source address.
func (b IPv6) SrcAddr() netip.Addr { return netip.AddrFrom16([16]byte(b[8:24])) }

// DstAddr returns the destination address.
func (b IPv6) DstAddr() netip.Addr { return netip.AddrFrom16([16]byte(b[24:40])) }

// Payload returns the bytes after the fixed header up to PayloadLength
// (clamped to the data).
func (b IPv6) Payload() []byte {
	end := IPv6MinimumSize + int(b.PayloadLength())
	if end > len(b) {
		end = len(b)
	}
	return b[IPv6MinimumSize:end]
}

// SetTrafficClass sets the traffic class.
func (b IPv6) SetTrafficClass(tc uint8) {
	v := binary.BigEndian.Uint16(b[0:2])&0xf00f | uint16(tc)<<4
	binary.BigEndian.PutUint16(b[0:2], v)
}

// SetPayloadLength sets the payload length.
func (b IPv6) SetPayloadLength(v uint16) { binary.BigEndian.PutUint16(b[4:6], v) }

// SetNextHeader sets the next header.
func (b IPv6) SetNextHeader(v uint8) { b[6] = v }

// SetHopLimit sets the hop limit.
func (b IPv6) SetHopLimit(v uint8) { b[7] = v }

// SetSrc sets the source address.
func (b IPv6) SetSrc(a netip.Addr) { a16 := a.As16(); copy(b[8:24], a16[:]) }

// SetDst sets the destination address.
func (b IPv6) SetDst(a netip.Addr) { a16 := a.As16(); copy(b[24:40], a16[:]) }

// IPv6Fields describes an IPv6 fixed header for Encode.
type IPv6Fields struct {
	TrafficClass  uint8
	FlowLabel     uint32
	PayloadLength uint16
	NextHeader    uint8
	HopLimit      uint8
	Src, Dst      netip.Addr
}

// Encode writes the fixed header from f into b.
func (b IPv6) Encode(f *IPv6Fields) {
	_ = b[IPv6MinimumSize-1]
	binary.BigEndian.PutUint32(b[0:4], 6<<28|uint32(f.TrafficClass)<<20|f.FlowLabel&0xfffff)
	binary.BigEndian.PutUint16(b[4:6], f.PayloadLength)
	b[6] = f.NextHeader
	b[7] = f.HopLimit
	s, d := f.Src.As16(), f.Dst.As16()
	copy(b[8:24], s[:])
	copy(b[24:40], d[:])
}
