package tun

import (
	"testing"

	"github.com/vxtun/vxtun/encap"
)

// TestCoalesceOversize: a packet above the MTU is written as a GSO
// super-packet of its own with segments of at most the MTU, or dropped;
// never as it is, never as a member of a run.
func TestCoalesceOversize(t *testing.T) {
	const mtu = 1450
	icmp := func(t testing.TB) []byte {
		p := pktSpec{udp: true, payload: pattern(3000, 1)}.build(t)
		p[9] = encap.ProtocolICMPv4
		fixIPv4(p)
		return p
	}
	badLen := func(t testing.TB) []byte {
		p := pktSpec{payload: pattern(3000, 1)}.build(t)
		encap.IPv4(p).SetTotalLength(2000)
		fixIPv4(p)
		return p
	}
	tests := []struct {
		name     string
		pkt      func(t testing.TB) []byte
		uso, tso bool
		want     VirtioNetHdrFields // GSOType 0 and drop: dropped
		drop     bool
	}{
		{"tcp4 7000", func(t testing.TB) []byte { return pktSpec{payload: pattern(7000, 1)}.build(t) }, true, true,
			VirtioNetHdrFields{Flags: VirtioNetHdrFNeedsCsum, GSOType: GSOTCPv4, HdrLen: 40, GSOSize: mtu - 40, CsumStart: 20, CsumOffset: 16}, false},
		{"tcp6 7000 options", func(t testing.TB) []byte {
			return pktSpec{v6: true, tsopt: true, payload: pattern(7000, 2)}.build(t)
		}, true, true,
			VirtioNetHdrFields{Flags: VirtioNetHdrFNeedsCsum, GSOType: GSOTCPv6, HdrLen: 72, GSOSize: mtu - 72, CsumStart: 40, CsumOffset: 16}, false},
		{"tcp4 cwr", func(t testing.TB) []byte {
			return pktSpec{flags: encap.TCPFlagACK | encap.TCPFlagCWR, payload: pattern(3000, 3)}.build(t)
		}, true, true,
			VirtioNetHdrFields{Flags: VirtioNetHdrFNeedsCsum, GSOType: GSOTCPv4 | GSOECN, HdrLen: 40, GSOSize: mtu - 40, CsumStart: 20, CsumOffset: 16}, false},
		{"udp4 with uso", func(t testing.TB) []byte { return pktSpec{udp: true, payload: pattern(4000, 4)}.build(t) }, true, true,
			VirtioNetHdrFields{Flags: VirtioNetHdrFNeedsCsum, GSOType: GSOUDPL4, HdrLen: 28, GSOSize: mtu - 28, CsumStart: 20, CsumOffset: 6}, false},
		{"udp6 with uso", func(t testing.TB) []byte { return pktSpec{v6: true, udp: true, payload: pattern(4000, 5)}.build(t) }, true, true,
			VirtioNetHdrFields{Flags: VirtioNetHdrFNeedsCsum, GSOType: GSOUDPL4, HdrLen: 48, GSOSize: mtu - 48, CsumStart: 40, CsumOffset: 6}, false},
		{"udp without uso", func(t testing.TB) []byte { return pktSpec{udp: true, payload: pattern(4000, 4)}.build(t) }, false, true, VirtioNetHdrFields{}, true},
		{"tcp without tso", func(t testing.TB) []byte { return pktSpec{payload: pattern(7000, 1)}.build(t) }, true, false, VirtioNetHdrFields{}, true},
		{"icmp", icmp, true, true, VirtioNetHdrFields{}, true},
		{"ip length disagrees", badLen, true, true, VirtioNetHdrFields{}, true},
		{"exactly the mtu", func(t testing.TB) []byte { return pktSpec{payload: pattern(mtu-40, 6)}.build(t) }, true, true, VirtioNetHdrFields{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.pkt(t)
			bufs := withHeadroom([][]byte{p}, 16)
			g := groTable{mtu: mtu, tso: tt.tso}
			g.coalesce(bufs, 16, tt.uso)
			if len(g.runs) != 1 {
				t.Fatalf("got %d runs, want 1", len(g.runs))
			}
			r := &g.runs[0]
			if r.drop != tt.drop {
				t.Fatalf("drop: got %v, want %v", r.drop, tt.drop)
			}
			if tt.drop {
				return
			}
			vh := make([]byte, VirtioNetHdrLen)
			finishRun(r, bufs, 16, vh)
			if got := VirtioNetHdr(vh).Decode(); got != tt.want {
				t.Fatalf("virtio-net header: got %+v, want %+v", got, tt.want)
			}
			out := bufs[0][16:]
			if tt.want.GSOType == GSONone {
				equalBytes(t, "plain packet", out, p)
				return
			}
			// The L4 checksum field holds the pseudo-header sum, as the
			// kernel expects with NEEDS_CSUM.
			ip := encap.IPv4(out)
			var src, dst []byte
			if tt.want.GSOType&^GSOECN == GSOTCPv6 || out[0]>>4 == 6 {
				src, dst = encap.IPv6(out).Src(), encap.IPv6(out).Dst()
			} else {
				src, dst = ip.Src(), ip.Dst()
				if !ip.IsChecksumValid() {
					t.Fatalf("ipv4 header checksum invalid after finishRun")
				}
			}
			proto := uint8(encap.ProtocolTCP)
			if tt.want.GSOType == GSOUDPL4 {
				proto = encap.ProtocolUDP
			}
			l4 := out[tt.want.CsumStart:]
			want := encap.PseudoHeaderChecksum(proto, src, dst, uint16(len(l4)))
			got := uint16(l4[tt.want.CsumOffset])<<8 | uint16(l4[tt.want.CsumOffset+1])
			if got != want {
				t.Fatalf("l4 checksum field: got %#04x, want the pseudo-header sum %#04x", got, want)
			}
		})
	}
}

// TestCoalesceOversizeNeverJoins: in a flow whose segments coalesce, an
// oversize packet is a run of its own and closes the flow's open run, so
// the order of the flow's packets is kept and no run exceeds MSS-size
// segments.
func TestCoalesceOversizeNeverJoins(t *testing.T) {
	const mtu = 1450
	flow := tcpFlow(t, pktSpec{seq: 1000, id: 10}, 3, 1000, 0)
	big := pktSpec{seq: 4000, id: 13, payload: pattern(5000, 9)}.build(t)
	after := tcpFlow(t, pktSpec{seq: 9000, id: 14}, 2, 1000, 0)
	pkts := concat(flow, [][]byte{big}, after)
	bufs := withHeadroom(pkts, 0)
	g := groTable{mtu: mtu, tso: true}
	g.coalesce(bufs, 0, true)
	var got []int
	for _, r := range g.runs {
		got = append(got, r.count)
		if r.gso && r.first != 3 {
			t.Errorf("oversize run starts at packet %d, want 3", r.first)
		}
	}
	if want := []int{3, 1, 2}; len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("run sizes: got %v, want %v", got, want)
	}
	if !g.runs[1].gso || g.runs[1].gsoSize != mtu-40 {
		t.Fatalf("oversize run: got gso %v size %d, want true, %d", g.runs[1].gso, g.runs[1].gsoSize, mtu-40)
	}
}
