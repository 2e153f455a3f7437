package tun

import (
	"errors"
	"io"
	"testing"

	"github.com/vxtun/vxtun/encap"
)

type splitCase struct {
	name    string
	spec    pktSpec
	mss     int
	wantSeg []int // payload sizes
}

func TestSplit(t *testing.T) {
	cases := []splitCase{
		{"tcp4 even", pktSpec{seq: 1000, id: 7, payload: pattern(3000, 1)}, 1000, []int{1000, 1000, 1000}},
		{"tcp4 short last", pktSpec{seq: 0xffffff00, id: 0xfffe, payload: pattern(2500, 2), flags: encap.TCPFlagACK | encap.TCPFlagPSH | encap.TCPFlagFIN}, 1000, []int{1000, 1000, 500}},
		{"tcp4 cwr options", pktSpec{seq: 5, payload: pattern(4344, 3), flags: encap.TCPFlagACK | encap.TCPFlagCWR, tsopt: true}, 1448, []int{1448, 1448, 1448}},
		{"tcp4 one segment", pktSpec{seq: 5, payload: pattern(100, 4)}, 1448, []int{100}},
		{"tcp4 odd sizes", pktSpec{seq: 9, payload: pattern(2999, 5)}, 1001, []int{1001, 1001, 997}},
		{"tcp6 64k", pktSpec{v6: true, seq: 1, payload: pattern(65535-40-32, 6), tsopt: true, flags: encap.TCPFlagACK | encap.TCPFlagPSH}, 1428, nil},
		{"tcp4 64k", pktSpec{seq: 1, payload: pattern(65535-20-20, 7)}, 1460, nil},
		{"udp4", pktSpec{udp: true, id: 3, payload: pattern(3500, 8)}, 1200, []int{1200, 1200, 1100}},
		{"udp6", pktSpec{v6: true, udp: true, payload: pattern(2400, 9)}, 1200, []int{1200, 1200}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pkt := c.spec.build(t)
			orig := verify(t, pkt)
			h := gsoHdr(t, pkt, c.mss)
			g, err := parseGSO(h, pkt)
			if err != nil {
				t.Fatalf("parseGSO: %v", err)
			}
			want := c.wantSeg
			if want == nil {
				for rest := len(c.spec.payload); rest > 0; rest -= c.mss {
					want = append(want, min(rest, c.mss))
				}
			}
			if g.nseg != len(want) {
				t.Fatalf("segments: got %d, want %d", g.nseg, len(want))
			}
			const offset = 60
			bufs, sizes := makeBufs(DefaultBatchSize, offset+c.mss+100)
			snapshot := append([]byte(nil), pkt...)
			n, err := splitGSO(pkt, &g, 0, bufs, sizes, offset)
			if err != nil || n != len(want) {
				t.Fatalf("splitGSO: got %d, %v; want %d, nil", n, err, len(want))
			}
			equalBytes(t, "input after split", pkt, snapshot)
			var all []byte
			for i := range n {
				seg := bufs[i][offset : offset+sizes[i]]
				d := verify(t, seg)
				if len(d.payload) != want[i] {
					t.Fatalf("segment %d payload: got %d bytes, want %d", i, len(d.payload), want[i])
				}
				all = append(all, d.payload...)
				if !d.v6 && d.id != c.spec.id+uint16(i) {
					t.Errorf("segment %d ip id: got %d, want %d", i, d.id, c.spec.id+uint16(i))
				}
				if d.tcp != nil {
					if wantSeq := c.spec.seq + uint32(i*c.mss); d.tcp.Seq != wantSeq {
						t.Errorf("segment %d seq: got %d, want %d", i, d.tcp.Seq, wantSeq)
					}
					last := i == n-1
					if d.tcp.FIN != (last && orig.tcp.FIN) || d.tcp.PSH != (last && orig.tcp.PSH) {
						t.Errorf("segment %d FIN/PSH: got %v/%v, want %v/%v", i, d.tcp.FIN, d.tcp.PSH, last && orig.tcp.FIN, last && orig.tcp.PSH)
					}
					if d.tcp.CWR != (i == 0 && orig.tcp.CWR) {
						t.Errorf("segment %d CWR: got %v, want %v", i, d.tcp.CWR, i == 0 && orig.tcp.CWR)
					}
					if !d.tcp.ACK || d.tcp.Ack != orig.tcp.Ack || len(d.tcp.Options) != len(orig.tcp.Options) {
						t.Errorf("segment %d: ack/options differ from the super-packet", i)
					}
				}
			}
			equalBytes(t, "payload", all, c.spec.payload)
		})
	}
}

func TestSplitInPieces(t *testing.T) {
	// A super-packet with more segments than bufs comes out over several
	// calls starting at the next segment.
	pkt := pktSpec{seq: 100, payload: pattern(10000, 1)}.build(t)
	h := gsoHdr(t, pkt, 1000)
	g, err := parseGSO(h, pkt)
	if err != nil {
		t.Fatal(err)
	}
	bufs, sizes := makeBufs(3, 1100)
	var all []byte
	for at := 0; at < g.nseg; {
		n, err := splitGSO(pkt, &g, at, bufs, sizes, 0)
		if err != nil || n == 0 {
			t.Fatalf("splitGSO at %d: got %d, %v", at, n, err)
		}
		for i := range n {
			d := verify(t, bufs[i][:sizes[i]])
			if want := uint32(100 + (at+i)*1000); d.tcp.Seq != want {
				t.Fatalf("seq: got %d, want %d", d.tcp.Seq, want)
			}
			all = append(all, d.payload...)
		}
		at += n
	}
	equalBytes(t, "payload", all, pattern(10000, 1))
}

func TestSplitShortBuffer(t *testing.T) {
	pkt := pktSpec{payload: pattern(3000, 1)}.build(t)
	g, err := parseGSO(gsoHdr(t, pkt, 1000), pkt)
	if err != nil {
		t.Fatal(err)
	}
	bufs, sizes := makeBufs(4, 500)
	if _, err := splitGSO(pkt, &g, 0, bufs, sizes, 0); !errors.Is(err, io.ErrShortBuffer) {
		t.Fatalf("got %v, want io.ErrShortBuffer", err)
	}
}

func TestParseGSOErrors(t *testing.T) {
	good := pktSpec{payload: pattern(3000, 1)}.build(t)
	goodHdr := gsoHdr(t, good, 1000)
	mod := func(f func(h VirtioNetHdrFields) VirtioNetHdrFields) []byte {
		h := make([]byte, VirtioNetHdrLen)
		fs := f(VirtioNetHdr(goodHdr).Decode())
		VirtioNetHdr(h).Encode(&fs)
		return h
	}
	cases := []struct {
		name string
		h    []byte
		pkt  []byte
		want error
	}{
		{"ufo", mod(func(h VirtioNetHdrFields) VirtioNetHdrFields { h.GSOType = GSOUDP; return h }), good, ErrUnsupportedGSO},
		{"unknown type", mod(func(h VirtioNetHdrFields) VirtioNetHdrFields { h.GSOType = 9; return h }), good, ErrUnsupportedGSO},
		{"zero gso size", mod(func(h VirtioNetHdrFields) VirtioNetHdrFields { h.GSOSize = 0; return h }), good, ErrBadFrame},
		{"csum start past end", mod(func(h VirtioNetHdrFields) VirtioNetHdrFields { h.CsumStart = 9999; return h }), good, ErrBadFrame},
		{"csum start in ip header", mod(func(h VirtioNetHdrFields) VirtioNetHdrFields { h.CsumStart = 4; return h }), good, ErrBadFrame},
		{"tcpv6 on ipv4", mod(func(h VirtioNetHdrFields) VirtioNetHdrFields { h.GSOType = GSOTCPv6; return h }), good, ErrBadFrame},
		{"short", goodHdr, good[:15], ErrBadFrame},
		{"truncated tcp", goodHdr, good[:30], ErrBadFrame},
		{"bad version", goodHdr, append([]byte{0x75}, good[1:]...), ErrBadFrame},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := parseGSO(c.h, c.pkt); !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
}

func TestFinishChecksum(t *testing.T) {
	for _, s := range []pktSpec{
		{payload: pattern(777, 1)},
		{v6: true, payload: pattern(1001, 2)},
		{udp: true, payload: pattern(64, 3)},
		{v6: true, udp: true, payload: pattern(3, 4)},
	} {
		p := s.build(t)
		h := gsoHdr(t, p, 1500) // puts the pseudo-header sum into the field
		var f = VirtioNetHdr(h).Decode()
		f.GSOType = GSONone
		VirtioNetHdr(h).Encode(&f)
		if err := finishChecksum(h, p); err != nil {
			t.Fatal(err)
		}
		verify(t, p)
	}
	p := pktSpec{payload: pattern(10, 1)}.build(t)
	h := gsoHdr(t, p, 1500)
	f := VirtioNetHdr(h).Decode()
	f.CsumOffset = uint16(len(p))
	VirtioNetHdr(h).Encode(&f)
	if err := finishChecksum(h, p); !errors.Is(err, ErrBadFrame) {
		t.Fatalf("csum_offset past end: got %v, want ErrBadFrame", err)
	}
}
