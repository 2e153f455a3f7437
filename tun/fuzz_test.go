package tun

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/vxtun/vxtun/encap"
)

// FuzzSplit feeds a virtio-net header and packet to the splitter: it must
// not panic, and every segment it produces must carry lengths that match and
// a valid L4 checksum.
func FuzzSplit(f *testing.F) {
	for _, s := range []struct {
		spec pktSpec
		mss  int
	}{
		{pktSpec{seq: 1, payload: pattern(3000, 1), flags: encap.TCPFlagACK | encap.TCPFlagPSH}, 1000},
		{pktSpec{v6: true, seq: 1, payload: pattern(2000, 2), tsopt: true}, 700},
		{pktSpec{udp: true, payload: pattern(1000, 3)}, 300},
		{pktSpec{v6: true, udp: true, payload: pattern(10, 4)}, 3},
	} {
		p := s.spec.build(f)
		h := gsoHdr(f, p, s.mss)
		f.Add(append(h, p...))
	}
	bufs, sizes := makeBufs(64, 4096)
	f.Fuzz(func(t *testing.T, frame []byte) {
		if len(frame) < VirtioNetHdrLen {
			return
		}
		h, pkt := VirtioNetHdr(frame[:VirtioNetHdrLen]), frame[VirtioNetHdrLen:]
		g, err := parseGSO(h, pkt)
		if err != nil {
			return
		}
		snapshot := append([]byte(nil), pkt...)
		var payload []byte
		for at := 0; at < g.nseg; {
			n, err := splitGSO(pkt, &g, at, bufs, sizes, 8)
			if err != nil {
				return // segments larger than the test's buffers
			}
			for i := range n {
				seg := bufs[i][8 : 8+sizes[i]]
				proto := uint8(encap.ProtocolTCP)
				if g.udp {
					proto = encap.ProtocolUDP
				}
				if !l4Valid(seg, g.l4off, g.v6, proto) {
					t.Fatalf("segment %d: invalid l4 checksum", at+i)
				}
				if !g.v6 && int(binary.BigEndian.Uint16(seg[2:])) != len(seg) {
					t.Fatalf("segment %d: ipv4 length %d, want %d", at+i, binary.BigEndian.Uint16(seg[2:]), len(seg))
				}
				if !g.v6 && encap.ChecksumFold(encap.ChecksumAdd(seg[:g.l4off], 0)) != 0xffff {
					t.Fatalf("segment %d: invalid ipv4 header checksum", at+i)
				}
				payload = append(payload, seg[g.hdrLen:]...)
			}
			at += n
		}
		if !bytes.Equal(payload, pkt[g.hdrLen:]) {
			t.Fatalf("payload of segments differs from the super-packet's")
		}
		if !bytes.Equal(pkt, snapshot) {
			t.Fatalf("split modified its input")
		}
	})
}

// FuzzCoalesce feeds a batch of packets (each prefixed by a 2-byte length)
// to the coalescer: every packet must appear in exactly one run, and a
// coalesced run split back must give the members' payloads and sequence
// numbers with valid checksums.
func FuzzCoalesce(f *testing.F) {
	enc := func(pkts [][]byte) []byte {
		var b []byte
		for _, p := range pkts {
			b = binary.BigEndian.AppendUint16(b, uint16(len(p)))
			b = append(b, p...)
		}
		return b
	}
	f.Add(enc(tcpFlow(f, pktSpec{seq: 1, tsopt: true}, 4, 300, 100)), true)
	f.Add(enc(tcpFlow(f, pktSpec{v6: true, seq: 1, flags: encap.TCPFlagACK | encap.TCPFlagPSH}, 3, 200, 0)), false)
	f.Add(enc(tcpFlow(f, pktSpec{udp: true}, 3, 100, 50)), true)
	f.Add(enc(tcpFlow(f, pktSpec{v6: true, udp: true}, 3, 100, 0)), true)
	f.Add(enc(concat(tcpFlow(f, pktSpec{seq: 1}, 2, 100, 0), tcpFlow(f, pktSpec{sport: 9, dport: 10}, 2, 100, 0))), false)
	var g groTable
	f.Fuzz(func(t *testing.T, data []byte, udp bool) {
		var pkts [][]byte
		for len(data) >= 2 && len(pkts) < 128 {
			n := min(int(binary.BigEndian.Uint16(data)), len(data)-2)
			pkts = append(pkts, append([]byte(nil), data[2:2+n]...))
			data = data[2+n:]
		}
		const offset = 4
		bufs := withHeadroom(pkts, offset)
		g.coalesce(bufs, offset, udp)
		seen := make([]int, len(pkts))
		vh := make([]byte, VirtioNetHdrLen)
		for ri := range g.runs {
			r := &g.runs[ri]
			var members []int
			for i := r.first; i >= 0; i = g.next[i] {
				members = append(members, i)
				seen[i]++
			}
			if len(members) != r.count {
				t.Fatalf("run %d: %d members, count %d", ri, len(members), r.count)
			}
			finishRun(r, bufs, offset, vh)
			if r.count == 1 {
				continue
			}
			super := appendRun(nil, r, &g, bufs, offset)
			gi, err := parseGSO(vh, super)
			if err != nil {
				t.Fatalf("run %d: parseGSO: %v", ri, err)
			}
			sb, ss := makeBufs(r.count, 70000)
			n, err := splitGSO(super, &gi, 0, sb, ss, 0)
			if err != nil || n != r.count {
				t.Fatalf("run %d: split back %d, %v; want %d", ri, n, err, r.count)
			}
			for k, m := range members {
				seg, orig := sb[k][:ss[k]], pkts[m]
				if !bytes.Equal(seg[gi.hdrLen:], orig[gi.hdrLen:]) {
					t.Fatalf("run %d member %d: payload differs", ri, k)
				}
				if !gi.udp && !bytes.Equal(seg[gi.l4off+4:gi.l4off+8], orig[gi.l4off+4:gi.l4off+8]) {
					t.Fatalf("run %d member %d: seq differs", ri, k)
				}
			}
		}
		for i, c := range seen {
			if c != 1 {
				t.Fatalf("packet %d in %d runs, want 1", i, c)
			}
		}
	})
}
