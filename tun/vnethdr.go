package tun

import "encoding/binary"

// VirtioNetHdr is a view of the virtio-net header that precedes every frame
// on a TUN opened with IFF_VNET_HDR (struct virtio_net_hdr in
// include/uapi/linux/virtio_net.h). The kernel uses host byte order for a
// TUN's header unless TUNSETVNETLE/BE is set; vxtun only runs on
// little-endian hosts.
//
//	 0        1        2        3
//	+--------+--------+--------+--------+
//	| flags  |gso_type|     hdr_len     |
//	+--------+--------+--------+--------+
//	|    gso_size     |   csum_start    |
//	+--------+--------+--------+--------+
//	|   csum_offset   |
//	+--------+--------+
type VirtioNetHdr []byte

// VirtioNetHdrLen is the size of the header (without the num_buffers field of
// the mergeable-buffer variant, which a TUN does not use by default).
const VirtioNetHdrLen = 10

// Flags of VirtioNetHdr.Flags.
const (
	// VirtioNetHdrFNeedsCsum: the L4 checksum from CsumStart to the end is
	// not computed; the field at CsumStart+CsumOffset holds the
	// pseudo-header sum.
	VirtioNetHdrFNeedsCsum = 1
	// VirtioNetHdrFDataValid: the checksum is known to be correct.
	VirtioNetHdrFDataValid = 2
)

// GSO types of VirtioNetHdr.GSOType.
const (
	GSONone  = 0
	GSOTCPv4 = 1
	GSOUDP   = 3 // UFO, legacy; not supported
	GSOTCPv6 = 4
	GSOUDPL4 = 5 // USO (UDP_SEGMENT)
	GSOECN   = 0x80
)

// VirtioNetHdrFields is the decoded form of a VirtioNetHdr.
type VirtioNetHdrFields struct {
	Flags      uint8
	GSOType    uint8
	HdrLen     uint16
	GSOSize    uint16
	CsumStart  uint16
	CsumOffset uint16
}

// Flags returns the flags byte.
func (h VirtioNetHdr) Flags() uint8 { return h[0] }

// GSOType returns the GSO type (with the ECN bit).
func (h VirtioNetHdr) GSOType() uint8 { return h[1] }

// HdrLen returns the length of the headers the kernel put in front of the
// segmented payload (informational; vxtun recomputes it).
func (h VirtioNetHdr) HdrLen() uint16 { return binary.LittleEndian.Uint16(h[2:]) }

// GSOSize returns the payload bytes per segment.
func (h VirtioNetHdr) GSOSize() uint16 { return binary.LittleEndian.Uint16(h[4:]) }

// CsumStart returns the offset of the L4 header from the start of the packet.
func (h VirtioNetHdr) CsumStart() uint16 { return binary.LittleEndian.Uint16(h[6:]) }

// CsumOffset returns the offset of the checksum field from CsumStart.
func (h VirtioNetHdr) CsumOffset() uint16 { return binary.LittleEndian.Uint16(h[8:]) }

// Decode returns the header's fields.
func (h VirtioNetHdr) Decode() VirtioNetHdrFields {
	return VirtioNetHdrFields{
		Flags: h.Flags(), GSOType: h.GSOType(), HdrLen: h.HdrLen(),
		GSOSize: h.GSOSize(), CsumStart: h.CsumStart(), CsumOffset: h.CsumOffset(),
	}
}

// Encode writes f into h (len(h) >= VirtioNetHdrLen).
func (h VirtioNetHdr) Encode(f *VirtioNetHdrFields) {
	_ = h[9]
	h[0] = f.Flags
	h[1] = f.GSOType
	binary.LittleEndian.PutUint16(h[2:], f.HdrLen)
	binary.LittleEndian.PutUint16(h[4:], f.GSOSize)
	binary.LittleEndian.PutUint16(h[6:], f.CsumStart)
	binary.LittleEndian.PutUint16(h[8:], f.CsumOffset)
}

// clearVirtioNetHdr writes an all-zero header (no GSO, checksum complete).
func clearVirtioNetHdr(h []byte) {
	_ = h[9]
	for i := range VirtioNetHdrLen {
		h[i] = 0
	}
}
