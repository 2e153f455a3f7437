package tun

import (
	"encoding/binary"

	"github.com/vxtun/vxtun/encap"
)

// Checksums come from encap (ChecksumAdd, ChecksumFold); these are the
// offload-specific helpers around them, on unfolded 64-bit partial sums.

// csumFinish returns the checksum field value for a full sum: the one's
// complement of the folded sum.
func csumFinish(s uint64) uint16 { return ^encap.ChecksumFold(s) }

// pseudoSum returns the (unfolded) sum of the IPv4 or IPv6 pseudo-header for
// protocol proto and L4 length l4len. src and dst are 4 or 16 bytes.
func pseudoSum(src, dst []byte, proto uint8, l4len int) uint64 {
	var s uint64
	for i := 0; i+1 < len(src); i += 2 {
		s += uint64(binary.BigEndian.Uint16(src[i:]))
		s += uint64(binary.BigEndian.Uint16(dst[i:]))
	}
	s += uint64(proto)
	s += uint64(l4len>>16) + uint64(l4len&0xffff)
	return s
}

// ipv4HeaderChecksum computes and stores the checksum of the IPv4 header h
// (the whole IHL*4 bytes, at least 20).
func ipv4HeaderChecksum(h []byte) {
	h[10], h[11] = 0, 0
	_ = h[19]
	s := uint64(binary.BigEndian.Uint32(h[0:])) + uint64(binary.BigEndian.Uint32(h[4:])) +
		uint64(binary.BigEndian.Uint32(h[8:])) + uint64(binary.BigEndian.Uint32(h[12:])) +
		uint64(binary.BigEndian.Uint32(h[16:]))
	for i := 20; i+3 < len(h); i += 4 {
		s += uint64(binary.BigEndian.Uint32(h[i:]))
	}
	binary.BigEndian.PutUint16(h[10:], csumFinish(s))
}
