package tun

import (
	"encoding/binary"
	"math/bits"
)

// The encap package is meant to own checksums; until it exports one, tun
// keeps this private implementation. It sums the buffer as little-endian
// 64-bit words with an add-with-carry chain (the one's complement sum is
// byte-order independent up to a final byte swap).

// avx2Min is the length from which the vector loop pays off.
const avx2Min = 256

// csumAdd returns the one's complement sum of b added to initial (a
// not-yet-folded partial sum in network byte order, as from csumFold's input).
func csumAdd(b []byte, initial uint64) uint64 {
	// Work in little-endian space: convert initial (big-endian 16-bit lanes)
	// by swapping bytes of the folded value.
	acc := uint64(bits.ReverseBytes16(fold64(initial)))
	var c, acc2, c2 uint64
	if useAVX2 && len(b) >= avx2Min {
		n := len(b) &^ 63
		acc, c = bits.Add64(acc, csumAVX2(&b[0], n), 0)
		acc += c
		c = 0
		b = b[n:]
	}
	// Two independent add-with-carry chains let the CPU overlap them.
	for len(b) >= 64 {
		acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(b[0:]), c)
		acc2, c2 = bits.Add64(acc2, binary.LittleEndian.Uint64(b[8:]), c2)
		acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(b[16:]), c)
		acc2, c2 = bits.Add64(acc2, binary.LittleEndian.Uint64(b[24:]), c2)
		acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(b[32:]), c)
		acc2, c2 = bits.Add64(acc2, binary.LittleEndian.Uint64(b[40:]), c2)
		acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(b[48:]), c)
		acc2, c2 = bits.Add64(acc2, binary.LittleEndian.Uint64(b[56:]), c2)
		b = b[64:]
	}
	acc, c = bits.Add64(acc, acc2, c)
	acc, c = bits.Add64(acc, c2, c)
	acc += c
	for len(b) >= 8 {
		acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(b), 0)
		acc += c
		b = b[8:]
	}
	if len(b) >= 4 {
		acc, c = bits.Add64(acc, uint64(binary.LittleEndian.Uint32(b)), 0)
		acc += c
		b = b[4:]
	}
	if len(b) >= 2 {
		acc, c = bits.Add64(acc, uint64(binary.LittleEndian.Uint16(b)), 0)
		acc += c
		b = b[2:]
	}
	if len(b) == 1 {
		acc, c = bits.Add64(acc, uint64(b[0]), 0)
		acc += c
	}
	return uint64(bits.ReverseBytes16(fold64(acc)))
}

// fold64 folds a 64-bit one's complement sum to 16 bits.
func fold64(s uint64) uint16 {
	s = (s >> 32) + (s & 0xffffffff)
	s = (s >> 32) + (s & 0xffffffff)
	s = (s >> 16) + (s & 0xffff)
	s = (s >> 16) + (s & 0xffff)
	return uint16(s)
}

// csumFinish returns the checksum field value for a full sum: the one's
// complement of the folded sum.
func csumFinish(s uint64) uint16 { return ^fold64(s) }

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
