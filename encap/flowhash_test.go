package encap

import (
	"encoding/binary"
	"testing"
)

func TestFlowHashFields(t *testing.T) {
	for _, tc := range []struct {
		name string
		pkt  func() []byte
		ip   int
	}{
		{"v4", func() []byte { return udp4(64, ip4a, ip4b) }, 4},
		{"v6", func() []byte { return udp6(64, ip6a, ip6b) }, 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := FlowHash(tc.pkt())
			if base == 0 {
				t.Fatalf("hash is 0")
			}
			hl := IPv4MinimumSize
			if tc.ip == 6 {
				hl = IPv6MinimumSize
			}
			same := tc.pkt()
			// Payload, lengths, TTL and checksums are not part of the flow.
			same[len(same)-1] ^= 0xff
			same[hl+6] ^= 0xff
			if tc.ip == 4 {
				same[8]--
			} else {
				same[7]--
			}
			if got := FlowHash(same); got != base {
				t.Errorf("payload/ttl change altered the hash: %#x vs %#x", got, base)
			}
			if got := FlowHash(tc.pkt()[:hl+4]); got != base {
				t.Errorf("hash of the headers alone differs: %#x vs %#x", got, base)
			}
			// Every address, port and protocol byte must matter.
			var fields []int
			if tc.ip == 4 {
				fields = []int{9, 12, 13, 14, 15, 16, 17, 18, 19, hl, hl + 1, hl + 2, hl + 3}
			} else {
				fields = []int{6, hl, hl + 1, hl + 2, hl + 3}
				for i := 8; i < 40; i++ {
					fields = append(fields, i)
				}
			}
			for _, i := range fields {
				p := tc.pkt()
				p[i] ^= 0x01
				if FlowHash(p) == base {
					t.Errorf("flipping byte %d did not change the hash", i)
				}
			}
		})
	}
	// Non-first fragments and non-port protocols hash by addresses only.
	frag := udp4(64, ip4a, ip4b)
	binary.BigEndian.PutUint16(frag[6:8], 100)
	frag2 := append([]byte{}, frag...)
	frag2[20] ^= 0xff
	if FlowHash(frag) != FlowHash(frag2) {
		t.Errorf("non-first fragment hashed its (absent) ports")
	}
	for _, bad := range [][]byte{nil, {0x45}, make([]byte, 19), {0x60, 0, 0, 0}, make([]byte, 40)} {
		if got := FlowHash(bad); got != 0 {
			t.Errorf("FlowHash(% x): got %#x, want 0", bad, got)
		}
	}
}

func TestFlowHashSpread(t *testing.T) {
	// 4096 flows differing only in the source port should fill the kernel
	// port range roughly evenly: 16 buckets, none below half its share.
	var buckets [16]int
	p := udp4(64, ip4a, ip4b)
	const flows = 4096
	for i := 0; i < flows; i++ {
		UDP(p[20:]).SetSrcPort(uint16(10000 + i))
		port := SourcePort(FlowHash(p), 0, 0)
		if port < SourcePortMin || port >= SourcePortMax {
			t.Fatalf("port %d outside [%d, %d)", port, SourcePortMin, SourcePortMax)
		}
		buckets[int(port-SourcePortMin)*16/(SourcePortMax-SourcePortMin)]++
	}
	for i, n := range buckets {
		if n < flows/16/2 {
			t.Errorf("bucket %d got %d of %d flows: %v", i, n, flows, buckets)
		}
	}
}

func TestSourcePort(t *testing.T) {
	// The kernel's udp_flow_src_port formula, spelled out.
	kernel := func(hash uint32, lo, hi int) uint16 {
		hash ^= hash << 16
		return uint16((uint64(hash)*uint64(hi-lo))>>32) + uint16(lo)
	}
	for _, h := range []uint32{0, 1, 0xffff, 0x10000, 0xdeadbeef, 0xffffffff} {
		if got, want := SourcePort(h, 0, 0), kernel(h, 32768, 60999); got != want {
			t.Errorf("SourcePort(%#x) default: got %d, want %d", h, got, want)
		}
		if got, want := SourcePort(h, 4789, 4790), uint16(4789); got != want {
			t.Errorf("SourcePort(%#x, 4789, 4790): got %d, want %d", h, got, want)
		}
		if got := SourcePort(h, 1000, 2000); got < 1000 || got >= 2000 {
			t.Errorf("SourcePort(%#x, 1000, 2000): got %d", h, got)
		}
	}
	if got := SourcePort(0xffff, 0, 0); got != SourcePortMax-1 { // 0xffff^0xffff0000 = 0xffffffff
		t.Errorf("largest: got %d, want %d", got, SourcePortMax-1)
	}
}
