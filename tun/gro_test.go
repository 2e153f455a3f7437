package tun

import (
	"encoding/binary"
	"testing"

	"github.com/vxtun/vxtun/encap"
)

// tcpFlow returns n consecutive segments of one TCP flow with payload size
// mss (the last one last bytes if > 0).
func tcpFlow(t testing.TB, base pktSpec, n, mss, last int) [][]byte {
	var pkts [][]byte
	seq, id := base.seq, base.id
	for i := range n {
		s := base
		size := mss
		if i == n-1 && last > 0 {
			size = last
		}
		s.seq, s.id = seq, id
		s.payload = pattern(size, byte(i))
		if i != n-1 {
			s.flags &^= encap.TCPFlagPSH
		}
		pkts = append(pkts, s.build(t))
		seq += uint32(size)
		id++
	}
	return pkts
}

// withHeadroom copies pkts into buffers with offset bytes of headroom and no
// capacity beyond the packet.
func withHeadroom(pkts [][]byte, offset int) [][]byte {
	bufs := make([][]byte, len(pkts))
	for i, p := range pkts {
		b := make([]byte, offset+len(p))
		copy(b[offset:], p)
		bufs[i] = b[:len(b):len(b)]
	}
	return bufs
}

// runOut is one packet as the device would write it.
type runOut struct {
	vh      VirtioNetHdrFields
	pkt     []byte
	members []int
}

func coalesceAll(t testing.TB, pkts [][]byte, udp bool) []runOut {
	t.Helper()
	const offset = 16
	bufs := withHeadroom(pkts, offset)
	var g groTable
	g.coalesce(bufs, offset, udp)
	var out []runOut
	for ri := range g.runs {
		r := &g.runs[ri]
		vh := make([]byte, VirtioNetHdrLen)
		finishRun(r, bufs, offset, vh)
		o := runOut{vh: VirtioNetHdr(vh).Decode(), pkt: appendRun(nil, r, &g, bufs, offset)}
		for i := r.first; i >= 0; i = g.next[i] {
			o.members = append(o.members, i)
		}
		out = append(out, o)
	}
	return out
}

// checkRoundTrip splits each coalesced run back (as the kernel would
// segment it) and checks that the segments are exactly the inputs.
func checkRoundTrip(t *testing.T, pkts [][]byte, out []runOut) {
	t.Helper()
	seen := 0
	for ri, o := range out {
		seen += len(o.members)
		if o.vh.GSOType == GSONone {
			if len(o.members) != 1 {
				t.Fatalf("run %d: %d members without gso", ri, len(o.members))
			}
			equalBytes(t, "passthrough packet", o.pkt, pkts[o.members[0]])
			continue
		}
		if o.vh.Flags != VirtioNetHdrFNeedsCsum {
			t.Fatalf("run %d flags: got %#x, want NEEDS_CSUM", ri, o.vh.Flags)
		}
		// The checksum field must hold the pseudo-header sum: completing it
		// gives a valid packet.
		full := append([]byte(nil), o.pkt...)
		vh := make([]byte, VirtioNetHdrLen)
		VirtioNetHdr(vh).Encode(&o.vh)
		if err := finishChecksum(vh, full); err != nil {
			t.Fatal(err)
		}
		verify(t, full)
		g, err := parseGSO(vh, o.pkt)
		if err != nil {
			t.Fatalf("run %d: parseGSO: %v", ri, err)
		}
		if int(o.vh.HdrLen) != g.hdrLen {
			t.Fatalf("run %d hdr_len: got %d, want %d", ri, o.vh.HdrLen, g.hdrLen)
		}
		bufs, sizes := makeBufs(len(o.members)+1, 70000)
		n, err := splitGSO(o.pkt, &g, 0, bufs, sizes, 0)
		if err != nil || n != len(o.members) {
			t.Fatalf("run %d: split back: got %d, %v; want %d", ri, n, err, len(o.members))
		}
		for k, m := range o.members {
			equalBytes(t, "segment after round trip", bufs[k][:sizes[k]], pkts[m])
		}
	}
	if seen != len(pkts) {
		t.Fatalf("runs cover %d packets, want %d", seen, len(pkts))
	}
}

func concat(parts ...[][]byte) [][]byte {
	var out [][]byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func TestCoalesce(t *testing.T) {
	a := pktSpec{seq: 1000, id: 10, ack: 5, tsopt: true, tsval: 9}
	b := pktSpec{seq: 77, id: 500, sport: 40001, dport: 5201}
	a6 := pktSpec{v6: true, seq: 0xfffffff0, ack: 1, flags: encap.TCPFlagACK | encap.TCPFlagPSH}
	u := pktSpec{udp: true, id: 1}
	u6 := pktSpec{v6: true, udp: true}
	mod := func(p []byte, f func([]byte)) []byte { p = append([]byte(nil), p...); f(p); return p }

	flowA := tcpFlow(t, a, 5, 1000, 0)
	cases := []struct {
		name string
		pkts [][]byte
		udp  bool
		want []int // members per output packet
		gso  []uint8
	}{
		{"one flow", flowA, false, []int{5}, []uint8{GSOTCPv4}},
		{"short last", tcpFlow(t, a, 4, 1000, 300), false, []int{4}, []uint8{GSOTCPv4}},
		{"ipv6 psh on last", tcpFlow(t, a6, 3, 1200, 0), false, []int{3}, []uint8{GSOTCPv6}},
		{"single", flowA[:1], false, []int{1}, []uint8{GSONone}},
		{"short middle closes", tcpFlow(t, a, 2, 1000, 500)[0:2:2], false, []int{2}, []uint8{GSOTCPv4}},
		{"after short starts anew", concat(tcpFlow(t, a, 2, 1000, 500), tcpFlow(t, pktSpec{seq: 2500, id: 12, ack: 5, tsopt: true, tsval: 9}, 2, 1000, 0)), false, []int{2, 2}, []uint8{GSOTCPv4, GSOTCPv4}},
		{"psh in middle", concat(tcpFlow(t, pktSpec{seq: 1000, id: 10, flags: encap.TCPFlagACK | encap.TCPFlagPSH}, 2, 1000, 0), tcpFlow(t, pktSpec{seq: 3000, id: 12}, 2, 1000, 0)), false, []int{2, 2}, []uint8{GSOTCPv4, GSOTCPv4}},
		{"seq gap", concat(flowA[:2], flowA[3:]), false, []int{2, 2}, []uint8{GSOTCPv4, GSOTCPv4}},
		{"interleaved flows", [][]byte{flowA[0], tcpFlow(t, b, 2, 1000, 0)[0], flowA[1], tcpFlow(t, b, 2, 1000, 0)[1], flowA[2]}, false, []int{3, 2}, []uint8{GSOTCPv4, GSOTCPv4}},
		{"bad checksum passes through", [][]byte{flowA[0], mod(flowA[1], func(p []byte) { p[len(p)-1] ^= 0xff }), flowA[2]}, false, []int{1, 1, 1}, []uint8{GSONone, GSONone, GSONone}},
		{"different ack", [][]byte{flowA[0], mod(flowA[1], func(p []byte) {
			p[28+12]++ // ack+1 (header at 20, ack at 8..12), fix checksum below
			fixTCPChecksum(p)
		})}, false, []int{1, 1}, []uint8{GSONone, GSONone}},
		{"different options", [][]byte{flowA[0], tcpFlow(t, pktSpec{seq: 2000, id: 11, ack: 5, tsopt: true, tsval: 10}, 1, 1000, 0)[0]}, false, []int{1, 1}, []uint8{GSONone, GSONone}},
		{"ip id not consecutive", [][]byte{flowA[0], tcpFlow(t, pktSpec{seq: 2000, id: 30, ack: 5, tsopt: true, tsval: 9}, 1, 1000, 0)[0]}, false, []int{1, 1}, []uint8{GSONone, GSONone}},
		{"ttl differs", [][]byte{flowA[0], tcpFlow(t, pktSpec{seq: 2000, id: 11, ack: 5, tsopt: true, tsval: 9, ttl: 3}, 1, 1000, 0)[0]}, false, []int{1, 1}, []uint8{GSONone, GSONone}},
		{"fin not joined, order kept", concat(flowA[:2], tcpFlow(t, pktSpec{seq: 3000, id: 12, ack: 5, tsopt: true, tsval: 9, flags: encap.TCPFlagACK | encap.TCPFlagFIN}, 1, 1000, 0)), false, []int{2, 1}, []uint8{GSOTCPv4, GSONone}},
		{"syn", tcpFlow(t, pktSpec{flags: encap.TCPFlagSYN}, 2, 0, 0)[:1], false, []int{1}, []uint8{GSONone}},
		{"bigger than gso size", [][]byte{flowA[0], tcpFlow(t, pktSpec{seq: 2000, id: 11, ack: 5, tsopt: true, tsval: 9}, 1, 1001, 0)[0]}, false, []int{1, 1}, []uint8{GSONone, GSONone}},
		{"64k limit", tcpFlow(t, pktSpec{seq: 1}, 50, 1460, 0), false, []int{44, 6}, []uint8{GSOTCPv4, GSOTCPv4}},
		{"udp off", tcpFlow(t, u, 3, 1200, 0), false, []int{1, 1, 1}, []uint8{GSONone, GSONone, GSONone}},
		{"udp4", tcpFlow(t, u, 3, 1200, 100), true, []int{3}, []uint8{GSOUDPL4}},
		{"udp6", tcpFlow(t, u6, 4, 1200, 0), true, []int{4}, []uint8{GSOUDPL4}},
		{"udp segment limit", tcpFlow(t, u, 2*maxUDPSegments+3, 64, 0), true, []int{maxUDPSegments, maxUDPSegments, 3}, []uint8{GSOUDPL4, GSOUDPL4, GSOUDPL4}},
		{"ipv4 fragment", [][]byte{mod(flowA[0], func(p []byte) { p[6] |= 0x20; fixIPv4(p) }), flowA[1]}, false, []int{1, 1}, []uint8{GSONone, GSONone}},
		{"not ip", [][]byte{{0x00, 1, 2, 3}, {}, flowA[0], flowA[1]}, false, []int{1, 1, 2}, []uint8{GSONone, GSONone, GSOTCPv4}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := coalesceAll(t, c.pkts, c.udp)
			var got []int
			var gso []uint8
			for _, o := range out {
				got = append(got, len(o.members))
				gso = append(gso, o.vh.GSOType)
			}
			if len(got) != len(c.want) {
				t.Fatalf("runs: got %v, want %v", got, c.want)
			}
			for i := range got {
				if got[i] != c.want[i] || gso[i] != c.gso[i] {
					t.Fatalf("runs: got %v gso %v, want %v gso %v", got, gso, c.want, c.gso)
				}
			}
			if c.name == "not ip" {
				return // the non-IP inputs cannot be verified by gopacket
			}
			checkRoundTrip(t, c.pkts, out)
		})
	}
}

// TestCoalesceUDPNoChecksum: IPv4 datagrams without checksum coalesce, and
// the segments the kernel makes of them carry a computed checksum.
func TestCoalesceUDPNoChecksum(t *testing.T) {
	u := pktSpec{udp: true, id: 1}
	want := tcpFlow(t, u, 2, 500, 0)
	var in [][]byte
	for _, p := range want {
		p = append([]byte(nil), p...)
		p[26], p[27] = 0, 0
		in = append(in, p)
	}
	out := coalesceAll(t, in, true)
	if len(out) != 1 || out[0].vh.GSOType != GSOUDPL4 {
		t.Fatalf("got %d runs, want 1 UDP_L4 run", len(out))
	}
	checkRoundTrip(t, want, out)
}

// TestCoalesceOpenRunLimit: more flows than open slots still coalesce the
// most recent ones and keep every packet.
func TestCoalesceManyFlows(t *testing.T) {
	var flows [][][]byte
	for f := range maxOpenRuns + 4 {
		flows = append(flows, tcpFlow(t, pktSpec{sport: uint16(1000 + f), dport: 80, seq: uint32(f) << 20, id: uint16(f * 100)}, 3, 500, 0))
	}
	var pkts [][]byte
	for k := range 3 {
		for f := range flows {
			pkts = append(pkts, flows[f][k])
		}
	}
	out := coalesceAll(t, pkts, false)
	if len(out) >= len(pkts) {
		t.Fatalf("got %d runs for %d packets, want fewer", len(out), len(pkts))
	}
	checkRoundTrip(t, pkts, out)
}

func TestCoalesceNoAlloc(t *testing.T) {
	pkts := tcpFlow(t, pktSpec{seq: 1}, 44, 1460, 0)
	const offset = 16
	bufs := withHeadroom(pkts, offset)
	orig := withHeadroom(pkts, offset)
	var g groTable
	vh := make([]byte, VirtioNetHdrLen)
	g.coalesce(bufs, offset, true)
	allocs := testing.AllocsPerRun(100, func() {
		copy(bufs[0], orig[0])
		g.coalesce(bufs, offset, true)
		for ri := range g.runs {
			finishRun(&g.runs[ri], bufs, offset, vh)
		}
	})
	if allocs != 0 || len(g.runs) != 1 {
		t.Fatalf("got %v allocs and %d runs, want 0 allocs and 1 run", allocs, len(g.runs))
	}
}

func fixIPv4(p []byte) { encap.IPv4(p).UpdateChecksum() }

func fixTCPChecksum(p []byte) {
	l4 := p[20:]
	l4[16], l4[17] = 0, 0
	binary.BigEndian.PutUint16(l4[16:], csumFinish(encap.ChecksumAdd(l4, uint64(encap.PseudoHeaderChecksum(encap.ProtocolTCP, p[12:16], p[16:20], uint16(len(l4)))))))
}
