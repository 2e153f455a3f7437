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

// naiveSum is the textbook 16-bit sum with a 64-bit initial value, the
// reference for ChecksumAdd.
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

// TestChecksumPaths compares the scalar and the vector path of ChecksumAdd
// with a naive 16-bit sum over many lengths, alignments and carry-heavy data.
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
					got := ChecksumFold(ChecksumAdd(b, 0x1234))
					gotChecksum := Checksum(b, 0x1234)
					setAVX2(old)
					if got != want {
						t.Errorf("%s len %d align %d avx2 %v: got %#04x, want %#04x", fill, n, align, avx, got, want)
					}
					if gotChecksum != want {
						t.Errorf("%s len %d align %d avx2 %v: Checksum got %#04x, want %#04x", fill, n, align, avx, gotChecksum, want)
					}
				}
			}
		}
	}
}

func TestChecksumAddAgainstNaive(t *testing.T) {
	for _, n := range []int{0, 1, 2, 3, 7, 8, 9, 63, 64, 65, 127, 1500, 65535} {
		for _, init := range []uint64{0, 0xffff, 0x1234_5678_9abc} {
			b := make([]byte, n)
			for i := range b {
				b[i] = byte(i*7) ^ byte(n) ^ byte(i>>8)
			}
			if n > 4 {
				b[n/2] = 0xff
			}
			sum := ChecksumAdd(b, init)
			if sum > 0xffff {
				t.Errorf("len %d init %#x: got unfolded sum %#x, want ≤ 0xffff", n, init, sum)
			}
			if got, want := ChecksumFold(sum), naiveSum(b, init); got != want {
				t.Errorf("len %d init %#x: got %#04x, want %#04x", n, init, got, want)
			}
		}
	}
}

func TestChecksumFold(t *testing.T) {
	for _, tc := range []struct {
		in   uint64
		want uint16
	}{
		{0, 0},
		{0xffff, 0xffff},
		{0x10000, 1},
		{0x1_fffe, 0xffff},
		{0xffff_ffff, 0xffff},
		{0xffff_ffff_ffff_ffff, 0xffff},
		{0x0001_0002_0003_0004, 10},
	} {
		if got := ChecksumFold(tc.in); got != tc.want {
			t.Errorf("ChecksumFold(%#x): got %#04x, want %#04x", tc.in, got, tc.want)
		}
	}
}

func TestChecksumAddAllocs(t *testing.T) {
	b := make([]byte, 65535)
	if n := testing.AllocsPerRun(100, func() { _ = ChecksumAdd(b, 0) }); n != 0 {
		t.Fatalf("got %v allocs, want 0", n)
	}
}

func FuzzChecksumAdd(f *testing.F) {
	f.Add([]byte{1, 2, 3}, uint32(0))
	f.Add(make([]byte, 300), uint32(0xffff))
	f.Fuzz(func(t *testing.T, b []byte, init uint32) {
		if got, want := ChecksumFold(ChecksumAdd(b, uint64(init))), naiveSum(b, uint64(init)); got != want {
			t.Fatalf("len %d: got %#04x, want %#04x", len(b), got, want)
		}
	})
}
