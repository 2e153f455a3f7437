package tun

import (
	"bytes"
	"encoding/binary"
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
	v6Dest, v6DestHdr := withIPv6ExtHdr(t, encap.ProtocolIPv6DestOpts, 1000)
	v6Routing, v6RoutingHdr := withIPv6ExtHdr(t, encap.ProtocolIPv6Routing, 1000)
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
		{"csum start past ipv4 header", mod(func(h VirtioNetHdrFields) VirtioNetHdrFields { h.CsumStart = 24; return h }), good, ErrBadFrame},
		{"csum offset of udp on tcp", mod(func(h VirtioNetHdrFields) VirtioNetHdrFields { h.CsumOffset = 6; return h }), good, ErrBadFrame},
		{"udp_l4 on tcp", mod(func(h VirtioNetHdrFields) VirtioNetHdrFields { h.GSOType, h.CsumOffset = GSOUDPL4, 6; return h }), good, ErrBadFrame},
		{"udp_l4 on ipv4 protocol 48, csum start 49", mod(func(h VirtioNetHdrFields) VirtioNetHdrFields {
			h.GSOType, h.CsumStart, h.CsumOffset = GSOUDPL4, 49, 6
			return h
		}), withProto(good, 48), ErrBadFrame},
		{"tcpv4 on ipv4 protocol udp", goodHdr, withProto(good, encap.ProtocolUDP), ErrBadFrame},
		{"tcpv4 on ipv4 protocol udp, no needs_csum", mod(func(h VirtioNetHdrFields) VirtioNetHdrFields { h.Flags = 0; return h }), withProto(good, encap.ProtocolUDP), ErrBadFrame},
		{"tcpv6 behind a routing header", v6RoutingHdr, v6Routing, ErrBadFrame},
		{"tcpv6 behind a truncated destination options header", v6DestHdr, v6Dest[:41], ErrBadFrame},
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

// withProto returns a copy of the IPv4 packet p with protocol proto (and a
// valid header checksum).
func withProto(p []byte, proto uint8) []byte {
	p = append([]byte(nil), p...)
	p[9] = proto
	fixIPv4(p)
	return p
}

// withIPv6ExtHdr returns a TCPv6 super-packet with an 8-byte extension
// header of type ext between the IPv6 and TCP headers, and the virtio-net
// header the kernel would give it (csum_start after the extension header).
func withIPv6ExtHdr(t testing.TB, ext uint8, mss int) ([]byte, []byte) {
	p := pktSpec{v6: true, seq: 7, payload: pattern(3*mss, 3)}.build(t)
	h := gsoHdr(t, p, mss) // pseudo-header sum for the TCP header at 40
	q := make([]byte, 0, len(p)+8)
	q = append(q, p[:40]...)
	q = append(q, encap.ProtocolTCP, 0, 1, 4, 0, 0, 0, 0) // PadN option
	q = append(q, p[40:]...)
	q[6] = ext
	binary.BigEndian.PutUint16(q[4:], uint16(len(q)-40))
	f := VirtioNetHdr(h).Decode()
	f.CsumStart, f.HdrLen = 48, f.HdrLen+8
	VirtioNetHdr(h).Encode(&f)
	return q, h
}

// TestSplitIPv6DestOpts: a TCPv6 super-packet behind a destination options
// header splits into segments that keep the header, with valid checksums.
func TestSplitIPv6DestOpts(t *testing.T) {
	const mss = 1000
	pkt, h := withIPv6ExtHdr(t, encap.ProtocolIPv6DestOpts, mss)
	g, err := parseGSO(h, pkt)
	if err != nil {
		t.Fatalf("parseGSO: %v", err)
	}
	if g.l4off != 48 || g.nseg != 3 {
		t.Fatalf("got l4off %d, %d segments; want 48, 3", g.l4off, g.nseg)
	}
	bufs, sizes := makeBufs(4, 2000)
	n, err := splitGSO(pkt, &g, 0, bufs, sizes, 0)
	if err != nil || n != 3 {
		t.Fatalf("splitGSO: got %d, %v; want 3, nil", n, err)
	}
	for i := range n {
		seg := bufs[i][:sizes[i]]
		if got, want := int(binary.BigEndian.Uint16(seg[4:])), len(seg)-40; got != want {
			t.Errorf("segment %d payload length: got %d, want %d", i, got, want)
		}
		if !bytes.Equal(seg[40:48], pkt[40:48]) {
			t.Errorf("segment %d destination options: got %x, want %x", i, seg[40:48], pkt[40:48])
		}
		if !l4Valid(seg, 48, true, encap.ProtocolTCP) {
			t.Errorf("segment %d: invalid tcp checksum", i)
		}
	}
}
