package tun

import (
	"bytes"
	"testing"

	"github.com/vxtun/vxtun/encap"
)

// TestCoalesceVerifiesChecksums: the coalescer rewrites the leader's IPv4
// header checksum and hands the L4 checksum to the kernel, so it must never
// join a packet whose IPv4 header or TCP/UDP checksum is wrong (the kernel's
// GRO does not): such a packet is written alone, byte for byte, and counted.
func TestCoalesceVerifiesChecksums(t *testing.T) {
	flow := func() [][]byte { return tcpFlow(t, pktSpec{seq: 1, id: 100}, 8, 1000, 0) }
	udp := func() [][]byte { return tcpFlow(t, pktSpec{udp: true, id: 100}, 8, 1000, 0) }
	badHdr := func(p []byte) { p[10] ^= 0x5a }      // IPv4 header checksum
	badL4 := func(p []byte) { p[len(p)-1] ^= 0xff } // payload, so the L4 sum
	refix := func(p []byte) { p[11]++; fixIPv4(p) } // spoiled, then recomputed: valid
	spoil := func(pkts [][]byte, f func([]byte), idx ...int) [][]byte {
		for _, i := range idx {
			f(pkts[i])
		}
		return pkts
	}
	all := []int{0, 1, 2, 3, 4, 5, 6, 7}
	tests := []struct {
		name    string
		pkts    [][]byte
		udp     bool
		want    []int // members per written packet
		badCsum int
	}{
		{"tcp4 all bad ipv4 header", spoil(flow(), badHdr, all...), false, []int{1, 1, 1, 1, 1, 1, 1, 1}, 8},
		{"udp4 all bad ipv4 header", spoil(udp(), badHdr, all...), true, []int{1, 1, 1, 1, 1, 1, 1, 1}, 8},
		{"bad header leader", spoil(flow(), badHdr, 0), false, []int{1, 7}, 1},
		{"bad header member", spoil(flow(), badHdr, 3), false, []int{3, 1, 4}, 1},
		{"bad header last", spoil(flow(), badHdr, 7), false, []int{7, 1}, 1},
		{"bad tcp checksum member", spoil(flow(), badL4, 5), false, []int{5, 1, 2}, 1},
		{"bad udp checksum member", spoil(udp(), badL4, 2), true, []int{2, 1, 5}, 1},
		{"fixed header still joins", spoil(flow(), refix, 2), false, []int{8}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := make([][]byte, len(tt.pkts))
			for i, p := range tt.pkts {
				in[i] = append([]byte(nil), p...)
			}
			const offset = 16
			bufs := withHeadroom(tt.pkts, offset)
			var g groTable
			g.coalesce(bufs, offset, tt.udp)
			var got []int
			vh := make([]byte, VirtioNetHdrLen)
			for ri := range g.runs {
				r := &g.runs[ri]
				got = append(got, r.count)
				finishRun(r, bufs, offset, vh)
				if r.count != 1 {
					continue
				}
				// A packet written alone goes out as it came in, bad
				// checksum included, without a GSO header.
				if f := VirtioNetHdr(vh).Decode(); f != (VirtioNetHdrFields{}) {
					t.Errorf("run %d: virtio-net header %+v, want zero", ri, f)
				}
				if out := appendRun(nil, r, &g, bufs, offset); !bytes.Equal(out, in[r.first]) {
					t.Errorf("run %d: packet %d written as %x..., want it unchanged %x...", ri, r.first, head(out), head(in[r.first]))
				}
			}
			if !equalInts(got, tt.want) {
				t.Errorf("members per written packet: got %v, want %v", got, tt.want)
			}
			if g.badCsum != tt.badCsum {
				t.Errorf("refused for a bad checksum: got %d, want %d", g.badCsum, tt.badCsum)
			}
		})
	}
}

// TestCoalesceOversizeBadIPv4Header: a packet above the MTU becomes a GSO
// super-packet of its own only if its IPv4 header verifies; otherwise it is
// dropped like any oversize packet with bad headers.
func TestCoalesceOversizeBadIPv4Header(t *testing.T) {
	p := pktSpec{payload: pattern(3000, 1)}.build(t)
	p[10] ^= 0x5a
	bufs := withHeadroom([][]byte{p}, 16)
	g := groTable{mtu: 1450, tso: true}
	g.coalesce(bufs, 16, true)
	if len(g.runs) != 1 || !g.runs[0].drop || g.runs[0].gso {
		t.Fatalf("got runs %+v, want one run to drop", g.runs)
	}
	if encap.IPv4(bufs[0][16:]).Checksum() != encap.IPv4(p).Checksum() {
		t.Fatalf("ipv4 checksum rewritten")
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
