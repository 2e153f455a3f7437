package encap

import (
	"encoding/binary"
	"math/bits"
)

// avx2Min is the length from which the vector loop pays off.
const avx2Min = 256

// Checksum returns the 16-bit one's complement sum (RFC 1071) of b, taken as
// big-endian 16-bit words (an odd last byte is padded with zero), added to
// initial, a partial sum from an earlier call or a pseudo-header. The result
// is not complemented: a header checksum field gets ^Checksum(...), and a
// header that verifies sums to 0xffff.
//
// It adds 8 bytes at a time into a 64-bit accumulator with carry (the sum is
// byte-order independent, RFC 1071 §2(B), so words are loaded little-endian
// and the result swapped once at the end); on amd64 with AVX2, buffers of at
// least avx2Min bytes go through a vector loop first. b may start at any
// alignment.
func Checksum(b []byte, initial uint32) uint16 {
	// Fold initial to 16 bits and move it into the little-endian domain.
	in := initial>>16 + initial&0xffff
	in = in>>16 + in&0xffff
	sum := uint64(bits.ReverseBytes16(uint16(in)))
	var c uint64
	if len(b) >= avx2Min && useAVX2 {
		n := len(b) &^ 63
		sum, c = bits.Add64(sum, csumAVX2(&b[0], n), 0)
		b = b[n:]
	}
	for len(b) >= 64 {
		sum, c = bits.Add64(sum, binary.LittleEndian.Uint64(b[0:8]), c)
		sum, c = bits.Add64(sum, binary.LittleEndian.Uint64(b[8:16]), c)
		sum, c = bits.Add64(sum, binary.LittleEndian.Uint64(b[16:24]), c)
		sum, c = bits.Add64(sum, binary.LittleEndian.Uint64(b[24:32]), c)
		sum, c = bits.Add64(sum, binary.LittleEndian.Uint64(b[32:40]), c)
		sum, c = bits.Add64(sum, binary.LittleEndian.Uint64(b[40:48]), c)
		sum, c = bits.Add64(sum, binary.LittleEndian.Uint64(b[48:56]), c)
		sum, c = bits.Add64(sum, binary.LittleEndian.Uint64(b[56:64]), c)
		b = b[64:]
	}
	for len(b) >= 8 {
		sum, c = bits.Add64(sum, binary.LittleEndian.Uint64(b[0:8]), c)
		b = b[8:]
	}
	if len(b) >= 4 {
		sum, c = bits.Add64(sum, uint64(binary.LittleEndian.Uint32(b[0:4])), c)
		b = b[4:]
	}
	if len(b) >= 2 {
		sum, c = bits.Add64(sum, uint64(binary.LittleEndian.Uint16(b[0:2])), c)
		b = b[2:]
	}
	if len(b) == 1 {
		sum, c = bits.Add64(sum, uint64(b[0]), c)
	}
	// Fold 64 bits (plus the pending carry) to 16 with end-around carry.
	s := sum&0xffffffff + sum>>32 + c // < 2^33+1
	s = s&0xffff + s>>16              // < 2^18
	s = s&0xffff + s>>16
	s = s&0xffff + s>>16
	return bits.ReverseBytes16(uint16(s))
}

// ChecksumAdd returns the one's complement sum of b (big-endian 16-bit
// words, an odd last byte padded with zero) added to initial, an unfolded
// 64-bit partial sum such as a pseudo-header sum plus lengths. The result is
// folded to 16 bits (it is < 0x10000), so it can be passed on as initial,
// added to further partial sums, or given to ChecksumFold.
func ChecksumAdd(b []byte, initial uint64) uint64 {
	return uint64(Checksum(b, uint32(ChecksumFold(initial))))
}

// ChecksumFold folds a 64-bit one's complement partial sum to 16 bits with
// end-around carry. It is not complemented: a checksum field gets
// ^ChecksumFold(s).
func ChecksumFold(s uint64) uint16 {
	s = (s >> 32) + (s & 0xffffffff)
	s = (s >> 32) + (s & 0xffffffff)
	s = (s >> 16) + (s & 0xffff)
	s = (s >> 16) + (s & 0xffff)
	return uint16(s)
}

// ChecksumCombine adds two 16-bit one's complement sums.
func ChecksumCombine(a, b uint16) uint16 {
	s := uint32(a) + uint32(b)
	return uint16(s + s>>16)
}

// ChecksumUpdate returns the checksum field hc updated for one 16-bit word
// of the covered data changing from old to new, per RFC 1624 eqn. 3:
// HC' = ~(~HC + ~m + m').
func ChecksumUpdate(hc, old, new uint16) uint16 {
	s := uint32(^hc) + uint32(^old) + uint32(new)
	s = s&0xffff + s>>16
	s = s&0xffff + s>>16
	return ^uint16(s)
}

// PseudoHeaderChecksum returns the one's complement sum of the TCP/UDP
// pseudo-header (RFC 768, RFC 793; RFC 8200 §8.1 for IPv6): source and
// destination address (both 4 or both 16 bytes), protocol and the
// upper-layer length. Pass it as initial to Checksum over the transport
// header and payload.
func PseudoHeaderChecksum(protocol uint8, src, dst []byte, length uint16) uint16 {
	s := uint32(protocol) + uint32(length)
	for i := 0; i+1 < len(src); i += 2 {
		s += uint32(binary.BigEndian.Uint16(src[i:]))
	}
	for i := 0; i+1 < len(dst); i += 2 {
		s += uint32(binary.BigEndian.Uint16(dst[i:]))
	}
	s = s&0xffff + s>>16
	s = s&0xffff + s>>16
	return uint16(s)
}
