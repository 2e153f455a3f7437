package encap

import (
	"encoding/binary"
	"errors"
	"net/netip"
)

// ARP is an ARP packet view for Ethernet/IPv4 (RFC 826):
//
//	+--------+--------+--------+--------+
//	| HW type (1)     | proto (0x0800)  |
//	+--------+--------+--------+--------+
//	| hlen 6 | plen 4 |  op (1 req/2 rep)|
//	+--------+--------+--------+--------+
//	| sender MAC (6) | sender IP (4) | target MAC (6) | target IP (4) |
type ARP []byte

// ARP constants.
const (
	ARPSize       = 28
	ARPOpRequest  = 1
	ARPOpReply    = 2
	arpHWEthernet = 1
)

// ARP errors.
var (
	// ErrARPFormat: not an Ethernet/IPv4 ARP packet.
	ErrARPFormat = errors.New("arp: not ethernet/ipv4")
	// ErrARPOp: not a request.
	ErrARPOp = errors.New("arp: not a request")
	// ErrARPNotForUs: the request asks for another address.
	ErrARPNotForUs = errors.New("arp: target is not our address")
)

// HardwareType returns the hardware type (1 = Ethernet).
func (a ARP) HardwareType() uint16 { return binary.BigEndian.Uint16(a[0:2]) }

// ProtocolType returns the protocol type (0x0800 = IPv4).
func (a ARP) ProtocolType() uint16 { return binary.BigEndian.Uint16(a[2:4]) }

// HardwareLen returns the hardware address length.
func (a ARP) HardwareLen() uint8 { return a[4] }

// ProtocolLen returns the protocol address length.
func (a ARP) ProtocolLen() uint8 { return a[5] }

// Op returns the operation (ARPOpRequest, ARPOpReply).
func (a ARP) Op() uint16 { return binary.BigEndian.Uint16(a[6:8]) }

// SenderMAC returns the sender hardware address (a sub-slice).
func (a ARP) SenderMAC() []byte { return a[8:14:14] }

// SenderIP returns the sender protocol address (a sub-slice).
func (a ARP) SenderIP() []byte { return a[14:18:18] }

// TargetMAC returns the target hardware address (a sub-slice).
func (a ARP) TargetMAC() []byte { return a[18:24:24] }

// TargetIP returns the target protocol address (a sub-slice).
func (a ARP) TargetIP() []byte { return a[24:28:28] }

// ParseARP checks that b holds an Ethernet/IPv4 ARP packet and returns the
// 28-byte view.
func ParseARP(b []byte) (ARP, error) {
	if len(b) < ARPSize {
		return nil, ErrShort
	}
	a := ARP(b[:ARPSize])
	if a.HardwareType() != arpHWEthernet || a.ProtocolType() != EtherTypeIPv4 ||
		a.HardwareLen() != 6 || a.ProtocolLen() != 4 {
		return nil, ErrARPFormat
	}
	return a, nil
}

// ARPFields describes an Ethernet/IPv4 ARP packet for Encode.
type ARPFields struct {
	Op                   uint16
	SenderMAC, TargetMAC [6]byte
	SenderIP, TargetIP   netip.Addr
}

// Encode writes f into a[:28].
func (a ARP) Encode(f *ARPFields) {
	_ = a[ARPSize-1]
	binary.BigEndian.PutUint16(a[0:2], arpHWEthernet)
	binary.BigEndian.PutUint16(a[2:4], EtherTypeIPv4)
	a[4], a[5] = 6, 4
	binary.BigEndian.PutUint16(a[6:8], f.Op)
	s, t := f.SenderIP.As4(), f.TargetIP.As4()
	copy(a[8:14], f.SenderMAC[:])
	copy(a[14:18], s[:])
	copy(a[18:24], f.TargetMAC[:])
	copy(a[24:28], t[:])
}

// AnswerARP turns the ARP request in b into our reply, in place, when it
// asks for ourIP: op becomes reply, the requester becomes the target and
// ourMAC/ourIP the sender. The reply goes back to the requester's MAC,
// ARP(b).TargetMAC() after the call. Errors: ErrShort, ErrARPFormat,
// ErrARPOp, ErrARPNotForUs, ErrAddrFamily (ourIP not IPv4).
func AnswerARP(b []byte, ourMAC []byte, ourIP netip.Addr) error {
	if !ourIP.Is4() {
		return ErrAddrFamily
	}
	a, err := ParseARP(b)
	if err != nil {
		return err
	}
	if a.Op() != ARPOpRequest {
		return ErrARPOp
	}
	ip := ourIP.As4()
	if [4]byte(a[24:28]) != ip {
		return ErrARPNotForUs
	}
	binary.BigEndian.PutUint16(a[6:8], ARPOpReply)
	copy(a[18:28], a[8:18]) // requester becomes target
	copy(a[8:14], ourMAC[:6])
	copy(a[14:18], ip[:])
	return nil
}

// BuildARPReply writes into b (at least 28 bytes) our reply to the request
// req, leaving req untouched, and returns ARPSize. Errors as AnswerARP plus
// ErrShortBuffer.
func BuildARPReply(b []byte, req []byte, ourMAC []byte, ourIP netip.Addr) (int, error) {
	if len(b) < ARPSize {
		return 0, ErrShortBuffer
	}
	if len(req) < ARPSize {
		return 0, ErrShort
	}
	copy(b[:ARPSize], req[:ARPSize])
	if err := AnswerARP(b, ourMAC, ourIP); err != nil {
		return 0, err
	}
	return ARPSize, nil
}
