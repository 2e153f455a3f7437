package encap

import (
	"encoding/binary"
	"errors"
)

// VXLAN header (RFC 7348 §5), the payload of the outer UDP datagram:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|G|R|R|R|I|R|R|R|R|D|R|R|A|R|R|R|       Group Policy ID         |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|          VXLAN Network Identifier (VNI)       |   Reserved    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Only I (0x08 in byte 0) is defined by RFC 7348. G, D, A and the policy ID
// are the Group Based Policy extension (draft-smith-vxlan-group-policy)
// that Linux implements with the "gbp" flag and flannel enables with GBP=true.
// vxtun sends exactly 08 00 00 00 | VNI | 00 and accepts GBP on receive.
type VXLAN []byte

// Sizes of the headers vxtun writes in front of an inner IP packet.
const (
	// VXLANHeaderLen is the size of the VXLAN header.
	VXLANHeaderLen = 8
	// EthernetHeaderLen is the size of an untagged Ethernet header without FCS.
	EthernetHeaderLen = 14
	// VXLANOverhead is what EncapVXLAN writes in headroom in front of the
	// inner IP packet: VXLAN header plus inner Ethernet header. The kernel
	// adds the outer IP and UDP headers when the datagram is sent.
	VXLANOverhead = VXLANHeaderLen + EthernetHeaderLen
	// VXLANOverheadIPv4 is the full on-wire overhead of VXLAN over an IPv4
	// underlay (outer IPv4 20 + UDP 8 + VXLANOverhead): TUN MTU = underlay MTU − 50.
	VXLANOverheadIPv4 = IPv4MinimumSize + UDPMinimumSize + VXLANOverhead
	// VXLANOverheadIPv6 is the same for an IPv6 underlay (70).
	VXLANOverheadIPv6 = IPv6MinimumSize + UDPMinimumSize + VXLANOverhead

	// VXLANPort is the Linux and flannel default VXLAN UDP port.
	VXLANPort = 8472
	// VXLANPortIANA is the IANA-assigned VXLAN port (RFC 7348 §5).
	VXLANPortIANA = 4789
	// MaxVNI is the largest 24-bit VNI.
	MaxVNI = 1<<24 - 1
)

// VXLAN flag bits.
const (
	VXLANFlagI = 0x08 // byte 0: VNI is valid (must be set)
	VXLANFlagG = 0x80 // byte 0: GBP extension present
	VXLANFlagD = 0x40 // byte 1 (GBP): don't learn
	VXLANFlagA = 0x08 // byte 1 (GBP): policy applied
)

// Drop reasons of the parsers. Callers count drops with errors.Is (or ==:
// parsers return these sentinels unwrapped so the comparison is cheap).
var (
	// ErrShort: the input is shorter than the header it must contain.
	ErrShort = errors.New("packet too short")
	// ErrNoIBit: the VXLAN I flag (valid VNI) is not set.
	ErrNoIBit = errors.New("vxlan: I flag not set")
	// ErrBadFlags: a VXLAN flag bit other than I (and GBP's G, D, A) is set.
	ErrBadFlags = errors.New("vxlan: unknown flag set")
	// ErrReserved: a VXLAN reserved field is not zero.
	ErrReserved = errors.New("vxlan: reserved field not zero")
	// ErrEtherType: the inner Ethernet type is not IPv4, IPv6 or ARP.
	ErrEtherType = errors.New("unsupported ethertype")
	// ErrDstMAC: the inner destination MAC is not our VTEP MAC.
	ErrDstMAC = errors.New("inner destination mac is not ours")
)

// Flags returns byte 0 of the header (I = 0x08, G = 0x80).
func (v VXLAN) Flags() uint8 { return v[0] }

// GBPFlags returns byte 1 of the header (D = 0x40, A = 0x08); meaningful only
// when the G flag is set.
func (v VXLAN) GBPFlags() uint8 { return v[1] }

// GroupPolicyID returns the GBP policy ID (bytes 2–3); meaningful only when
// the G flag is set.
func (v VXLAN) GroupPolicyID() uint16 { return binary.BigEndian.Uint16(v[2:4]) }

// HasGBP reports whether the G (group based policy) flag is set.
func (v VXLAN) HasGBP() bool { return v[0]&VXLANFlagG != 0 }

// VNI returns the 24-bit VXLAN network identifier.
func (v VXLAN) VNI() uint32 { return binary.BigEndian.Uint32(v[4:8]) >> 8 }

// Reserved returns the last reserved byte.
func (v VXLAN) Reserved() uint8 { return v[7] }

// SetVNI sets the VNI (the low 24 bits of vni) and clears the last reserved byte.
func (v VXLAN) SetVNI(vni uint32) { binary.BigEndian.PutUint32(v[4:8], vni<<8) }

// Payload returns the inner Ethernet frame.
func (v VXLAN) Payload() []byte { return v[VXLANHeaderLen:] }

// CheckVXLAN validates a VXLAN header the way a Linux receiver with GBP
// enabled does: the I flag must be set; G may be set and then D, A and the
// policy ID are accepted; any other set bit is ErrBadFlags; a non-zero
// reserved field is ErrReserved.
func CheckVXLAN(b []byte) error {
	if len(b) < VXLANHeaderLen {
		return ErrShort
	}
	f := b[0]
	if f&VXLANFlagI == 0 {
		return ErrNoIBit
	}
	if f&^(VXLANFlagI|VXLANFlagG) != 0 {
		return ErrBadFlags
	}
	if f&VXLANFlagG != 0 {
		if b[1]&^(VXLANFlagD|VXLANFlagA) != 0 {
			return ErrBadFlags
		}
	} else if b[1]|b[2]|b[3] != 0 {
		return ErrReserved
	}
	if b[7] != 0 {
		return ErrReserved
	}
	return nil
}

// EncapVXLAN writes the VXLAN header and the inner Ethernet header into the
// VXLANOverhead bytes of headroom in front of the inner packet at
// buf[offset:], in place (the packet is not copied). It returns the index
// where the VXLAN payload starts, offset-VXLANOverhead: the UDP payload to
// send is buf[start:offset+len(packet)]. offset must be ≥ VXLANOverhead and
// dstMAC and srcMAC must be 6 bytes.
func EncapVXLAN(buf []byte, offset int, vni uint32, dstMAC, srcMAC []byte, etherType uint16) (start int) {
	start = offset - VXLANOverhead
	h := buf[start:offset:offset]
	_ = h[VXLANOverhead-1]
	binary.BigEndian.PutUint32(h[0:4], VXLANFlagI<<24)
	binary.BigEndian.PutUint32(h[4:8], vni<<8)
	copy(h[8:14], dstMAC[:6])
	copy(h[14:20], srcMAC[:6])
	binary.BigEndian.PutUint16(h[20:22], etherType)
	return start
}

// DecapVXLAN validates a received VXLAN datagram payload and its inner
// Ethernet header and returns the VNI, the inner ethertype and the inner
// packet, which is always pkt[VXLANOverhead:] (inner frames carry no VLAN
// tag). Drop reasons, as sentinels: ErrShort, ErrNoIBit, ErrBadFlags,
// ErrReserved, ErrEtherType (not IPv4, IPv6 or ARP) and ErrDstMAC (the inner
// destination is not vtepMAC; a broadcast ARP frame is accepted). A nil
// vtepMAC skips the MAC check. The inner IP packet itself is not checked;
// use ValidateIP or TrimIP.
func DecapVXLAN(pkt []byte, vtepMAC []byte) (vni uint32, etherType uint16, inner []byte, err error) {
	if len(pkt) < VXLANOverhead {
		return 0, 0, nil, ErrShort
	}
	pkt = pkt[:len(pkt):len(pkt)]
	hdr := binary.BigEndian.Uint64(pkt[0:8])
	// Fast path: the canonical header 08 00 00 00 | VNI | 00.
	if hdr&0xffffffff_000000ff != VXLANFlagI<<56 {
		if err := CheckVXLAN(pkt); err != nil {
			return 0, 0, nil, err
		}
	}
	etherType = binary.BigEndian.Uint16(pkt[20:22])
	switch etherType {
	case EtherTypeIPv4, EtherTypeIPv6:
		if vtepMAC != nil && !macEqual(pkt[8:14], vtepMAC) {
			return 0, 0, nil, ErrDstMAC
		}
	case EtherTypeARP:
		if vtepMAC != nil && !macEqual(pkt[8:14], vtepMAC) && !isBroadcast(pkt[8:14]) {
			return 0, 0, nil, ErrDstMAC
		}
	default:
		return 0, 0, nil, ErrEtherType
	}
	return uint32(hdr>>8) & MaxVNI, etherType, pkt[VXLANOverhead:], nil
}

func macEqual(a, b []byte) bool {
	if len(b) != 6 {
		return false
	}
	return binary.BigEndian.Uint32(a[0:4]) == binary.BigEndian.Uint32(b[0:4]) &&
		binary.BigEndian.Uint16(a[4:6]) == binary.BigEndian.Uint16(b[4:6])
}

func isBroadcast(a []byte) bool {
	return binary.BigEndian.Uint32(a[0:4]) == 0xffffffff && binary.BigEndian.Uint16(a[4:6]) == 0xffff
}
