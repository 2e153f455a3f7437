package tun

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

func naiveSum(b []byte, init uint64) uint16 {
	s := init
	for i := 0; i+1 < len(b); i += 2 {
		s += uint64(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		s += uint64(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s>>16 + s&0xffff
	}
	return uint16(s)
}

// TestChecksumPaths compares the scalar and the vector path with a naive
// 16-bit sum over many lengths, alignments and carry-heavy data.
func TestChecksumPaths(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	big := make([]byte, 70000+64)
	for _, fill := range []string{"random", "ones"} {
		for i := range big {
			if fill == "ones" {
				big[i] = 0xff
			} else {
				big[i] = byte(rng.Uint32())
			}
		}
		for _, n := range []int{0, 1, 63, 64, 255, 256, 257, 319, 1448, 1500, 4096, 65535, 70000} {
			for align := range 3 {
				b := big[align : align+n]
				want := naiveSum(b, 0x1234)
				for _, avx := range []bool{false, true} {
					if avx && !useAVX2 {
						continue
					}
					old := useAVX2
					setAVX2(avx)
					got := fold64(csumAdd(b, 0x1234))
					setAVX2(old)
					if got != want {
						t.Errorf("%s len %d align %d avx2 %v: got %#04x, want %#04x", fill, n, align, avx, got, want)
					}
				}
			}
		}
	}
}

func FuzzChecksum(f *testing.F) {
	f.Add([]byte{1, 2, 3}, uint32(0))
	f.Add(make([]byte, 300), uint32(0xffff))
	f.Fuzz(func(t *testing.T, b []byte, init uint32) {
		if got, want := fold64(csumAdd(b, uint64(init))), naiveSum(b, uint64(init)); got != want {
			t.Fatalf("len %d: got %#04x, want %#04x", len(b), got, want)
		}
	})
}
