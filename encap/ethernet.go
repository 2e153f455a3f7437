package encap

import "encoding/binary"

// Ethernet is an untagged Ethernet II header without FCS, as carried inside
// VXLAN:
//
//	+--------------+--------------+-----------+
//	| dst MAC (6)  | src MAC (6)  | type (2)  |
//	+--------------+--------------+-----------+
type Ethernet []byte

// EtherTypes vxtun handles.
const (
	EtherTypeIPv4 = 0x0800
	EtherTypeARP  = 0x0806
	EtherTypeIPv6 = 0x86DD
)

// BroadcastMAC is ff:ff:ff:ff:ff:ff.
var BroadcastMAC = [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// Dst returns the destination MAC (a sub-slice, not a copy).
func (e Ethernet) Dst() []byte { return e[0:6:6] }

// Src returns the source MAC (a sub-slice, not a copy).
func (e Ethernet) Src() []byte { return e[6:12:12] }

// EtherType returns the ethertype.
func (e Ethernet) EtherType() uint16 { return binary.BigEndian.Uint16(e[12:14]) }

// Payload returns what follows the header.
func (e Ethernet) Payload() []byte { return e[EthernetHeaderLen:] }

// EthernetFields describes an Ethernet header for Encode.
type EthernetFields struct {
	Dst, Src  [6]byte
	EtherType uint16
}

// Encode writes f into e[:EthernetHeaderLen].
func (e Ethernet) Encode(f *EthernetFields) {
	_ = e[EthernetHeaderLen-1]
	copy(e[0:6], f.Dst[:])
	copy(e[6:12], f.Src[:])
	binary.BigEndian.PutUint16(e[12:14], f.EtherType)
}

// EncodeEthernet writes an Ethernet header into b[:14]; dst and src must be
// 6 bytes.
func EncodeEthernet(b, dst, src []byte, etherType uint16) {
	_ = b[EthernetHeaderLen-1]
	copy(b[0:6], dst[:6])
	copy(b[6:12], src[:6])
	binary.BigEndian.PutUint16(b[12:14], etherType)
}

// ParseEthernet checks that b holds an Ethernet header and returns the view
// and the payload.
func ParseEthernet(b []byte) (Ethernet, []byte, error) {
	if len(b) < EthernetHeaderLen {
		return nil, nil, ErrShort
	}
	return Ethernet(b[:EthernetHeaderLen]), b[EthernetHeaderLen:], nil
}
