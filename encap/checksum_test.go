package encap

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// refChecksum is the RFC 1071 textbook loop: big-endian 16-bit words summed
// in 32 bits and folded.
func refChecksum(b []byte, initial uint32) uint16 {
	s := uint64(initial)
	for len(b) >= 2 {
		s += uint64(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint64(b[0]) << 8
	}
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

func TestChecksumMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 2000+16)
	for i := range buf {
		buf[i] = byte(rng.Uint32())
	}
	for n := 0; n <= 2000; n++ {
		for _, align := range []int{0, 1, 3, 7} {
			b := buf[align : align+n]
			initial := rng.Uint32()
			if n%3 == 0 {
				initial = 0
			}
			if got, want := Checksum(b, initial), refChecksum(b, initial); got != want {
				t.Fatalf("len %d align %d initial %#x: got %#04x, want %#04x", n, align, initial, got, want)
			}
		}
	}
}

func TestChecksumAllOnes(t *testing.T) {
	// Worst case for carries: every word 0xffff.
	for n := 0; n <= 300; n++ {
		b := make([]byte, n)
		for i := range b {
			b[i] = 0xff
		}
		for _, initial := range []uint32{0, 0xffff, 0xffffffff} {
			if got, want := Checksum(b, initial), refChecksum(b, initial); got != want {
				t.Fatalf("len %d initial %#x: got %#04x, want %#04x", n, initial, got, want)
			}
		}
	}
}
