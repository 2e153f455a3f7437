package encap

import "encoding/binary"

// UDP is a UDP header view (RFC 768):
//
//	+--------+--------+--------+--------+
//	|   Source Port   | Destination Port|
//	+--------+--------+--------+--------+
//	|     Length      |    Checksum     |
//	+--------+--------+--------+--------+
type UDP []byte

// TCP is a TCP header view (RFC 9293):
//
//	+--------+--------+--------+--------+
//	|   Source Port   | Destination Port|
//	+--------+--------+--------+--------+
//	|          Sequence Number          |
//	+--------+--------+--------+--------+
//	|       Acknowledgment Number       |
//	+--------+--------+--------+--------+
//	|Off|Rsv|  Flags  |     Window      |
//	+--------+--------+--------+--------+
//	|    Checksum     | Urgent Pointer  |
//	+--------+--------+--------+--------+
type TCP []byte

// Transport header sizes and TCP flags.
const (
	UDPMinimumSize = 8
	TCPMinimumSize = 20

	TCPFlagFIN = 0x01
	TCPFlagSYN = 0x02
	TCPFlagRST = 0x04
	TCPFlagPSH = 0x08
	TCPFlagACK = 0x10
	TCPFlagURG = 0x20
	TCPFlagECE = 0x40
	TCPFlagCWR = 0x80
)

// SrcPort returns the source port.
func (b UDP) SrcPort() uint16 { return binary.BigEndian.Uint16(b[0:2]) }

// DstPort returns the destination port.
func (b UDP) DstPort() uint16 { return binary.BigEndian.Uint16(b[2:4]) }

// Length returns the length field (header + payload).
func (b UDP) Length() uint16 { return binary.BigEndian.Uint16(b[4:6]) }

// Checksum returns the checksum field (0 means none, IPv4 only).
func (b UDP) Checksum() uint16 { return binary.BigEndian.Uint16(b[6:8]) }

// Payload returns what follows the header.
func (b UDP) Payload() []byte { return b[UDPMinimumSize:] }

// SetSrcPort sets the source port.
func (b UDP) SetSrcPort(v uint16) { binary.BigEndian.PutUint16(b[0:2], v) }

// SetDstPort sets the destination port.
func (b UDP) SetDstPort(v uint16) { binary.BigEndian.PutUint16(b[2:4], v) }

// SetLength sets the length field.
func (b UDP) SetLength(v uint16) { binary.BigEndian.PutUint16(b[4:6], v) }

// SetChecksum sets the checksum field.
func (b UDP) SetChecksum(v uint16) { binary.BigEndian.PutUint16(b[6:8], v) }

// UDPFields describes a UDP header for Encode.
type UDPFields struct {
	SrcPort, DstPort, Length, Checksum uint16
}

// Encode writes f into b[:8].
func (b UDP) Encode(f *UDPFields) {
	_ = b[UDPMinimumSize-1]
	binary.BigEndian.PutUint16(b[0:2], f.SrcPort)
	binary.BigEndian.PutUint16(b[2:4], f.DstPort)
	binary.BigEndian.PutUint16(b[4:6], f.Length)
	binary.BigEndian.PutUint16(b[6:8], f.Checksum)
}

// CalculateChecksum returns the checksum b (header and all its payload,
// len(b) bytes) should carry, given the pseudo-header sum; the stored
// checksum field is ignored. A computed 0 is returned as 0xffff (RFC 768).
func (b UDP) CalculateChecksum(pseudo uint16) uint16 {
	s := Checksum(b[:6], uint32(pseudo))
	s = ^Checksum(b[8:], uint32(s))
	if s == 0 {
		return 0xffff
	}
	return s
}

// SrcPort returns the source port.
func (b TCP) SrcPort() uint16 { return binary.BigEndian.Uint16(b[0:2]) }

// DstPort returns the destination port.
func (b TCP) DstPort() uint16 { return binary.BigEndian.Uint16(b[2:4]) }

// Seq returns the sequence number.
func (b TCP) Seq() uint32 { return binary.BigEndian.Uint32(b[4:8]) }

// Ack returns the acknowledgment number.
func (b TCP) Ack() uint32 { return binary.BigEndian.Uint32(b[8:12]) }

// DataOffset returns the header length in bytes.
func (b TCP) DataOffset() int { return int(b[12]>>4) * 4 }

// Flags returns the flag byte (TCPFlag*).
func (b TCP) Flags() uint8 { return b[13] }

// Window returns the window size.
func (b TCP) Window() uint16 { return binary.BigEndian.Uint16(b[14:16]) }

// Checksum returns the checksum field.
func (b TCP) Checksum() uint16 { return binary.BigEndian.Uint16(b[16:18]) }

// UrgentPointer returns the urgent pointer.
func (b TCP) UrgentPointer() uint16 { return binary.BigEndian.Uint16(b[18:20]) }

// Options returns the option bytes (nil if the data offset is invalid).
func (b TCP) Options() []byte {
	off := b.DataOffset()
	if off < TCPMinimumSize || off > len(b) {
		return nil
	}
	return b[TCPMinimumSize:off]
}

// Payload returns what follows the header (nil if the data offset is invalid).
func (b TCP) Payload() []byte {
	off := b.DataOffset()
	if off < TCPMinimumSize || off > len(b) {
		return nil
	}
	return b[off:]
}

// SetChecksum sets the checksum field.
func (b TCP) SetChecksum(v uint16) { binary.BigEndian.PutUint16(b[16:18], v) }

// TCPFields describes an option-less TCP header for Encode.
type TCPFields struct {
	SrcPort, DstPort uint16
	Seq, Ack         uint32
	DataOffset       uint8 // bytes; 0 means TCPMinimumSize
	Flags            uint8
	Window           uint16
	Checksum         uint16
	UrgentPointer    uint16
}

// Encode writes f into b[:20].
func (b TCP) Encode(f *TCPFields) {
	_ = b[TCPMinimumSize-1]
	off := f.DataOffset
	if off == 0 {
		off = TCPMinimumSize
	}
	binary.BigEndian.PutUint16(b[0:2], f.SrcPort)
	binary.BigEndian.PutUint16(b[2:4], f.DstPort)
	binary.BigEndian.PutUint32(b[4:8], f.Seq)
	binary.BigEndian.PutUint32(b[8:12], f.Ack)
	b[12] = (off / 4) << 4
	b[13] = f.Flags
	binary.BigEndian.PutUint16(b[14:16], f.Window)
	binary.BigEndian.PutUint16(b[16:18], f.Checksum)
	binary.BigEndian.PutUint16(b[18:20], f.UrgentPointer)
}

// CalculateChecksum returns the checksum b (header, options and payload)
// should carry, given the pseudo-header sum; the stored field is ignored.
func (b TCP) CalculateChecksum(pseudo uint16) uint16 {
	s := Checksum(b[:16], uint32(pseudo))
	return ^Checksum(b[18:], uint32(s))
}
