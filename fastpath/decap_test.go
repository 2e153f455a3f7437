package fastpath

import (
	"encoding/binary"
	"log/slog"
	"net"
	"net/netip"
	"testing"

	"github.com/vxtun/vxtun/config"
	"github.com/vxtun/vxtun/encap"
	"github.com/vxtun/vxtun/fastpath/routing"
)

// newTestWorker returns a worker (no socket, no running goroutines) with one
// peer, node2, for exercising the per-packet code directly.
func newTestWorker(t testing.TB, backend config.Backend) (*worker, *routing.Route) {
	t.Helper()
	enc, err := newEncapsulation(backend, 1, mac1)
	if err != nil {
		t.Fatal(err)
	}
	f := &Forwarder{
		cfg: Config{Backend: backend}, log: slog.Default(), enc: enc, hdrLen: enc.headerLen(),
		vtepIP: netip.MustParseAddr("198.19.1.0"), mtu: 1500,
		own:  newOwnNets([]netip.Prefix{netip.MustParsePrefix("198.19.1.0/24"), netip.MustParsePrefix("2001:2:0:1::/64")}),
		icmp: newICMPLimiter(ICMPLimits{}, nil),
	}
	tbl, err := routing.NewTable([]config.Peer{{
		Name: "node2", PublicIP: netip.MustParseAddr("198.18.0.2"), Backend: backend, VNI: 1, VtepMAC: mac2,
		Subnets: []netip.Prefix{netip.MustParsePrefix("198.19.2.0/24"), netip.MustParsePrefix("2001:2:0:2::/64")},
	}})
	if err != nil {
		t.Fatal(err)
	}
	f.table.Store(tbl)
	w := newWorker(f, 0, newFakeDev("fake", func([][]byte, int) {}), nil, nil)
	f.workers = append(f.workers, w)
	w.in.follow(tbl) // what inbound does once per batch
	return w, tbl.Route(0)
}

func vxlanFrame(flags0 byte, vni uint32, dst net.HardwareAddr, etherType uint16, inner []byte) []byte {
	b := make([]byte, encap.VXLANOverhead+len(inner))
	copy(b[encap.VXLANOverhead:], inner)
	encap.EncapVXLAN(b, encap.VXLANOverhead, vni, dst, mac2, etherType)
	b[0] = flags0
	return b
}

func arpRequest(target netip.Addr) []byte {
	a := make(encap.ARP, encap.ARPSize)
	a.Encode(&encap.ARPFields{Op: encap.ARPOpRequest, SenderMAC: [6]byte(mac2), SenderIP: netip.MustParseAddr("198.19.2.0"), TargetIP: target})
	return a
}

func TestDecapVXLAN(t *testing.T) {
	ip := udp4Packet(pod2, pod1, 100, 1, false)
	padded := append(append([]byte(nil), ip...), 0, 0, 0, 0) // Ethernet padding after the IP packet
	bcast := net.HardwareAddr(encap.BroadcastMAC[:])
	for _, tc := range []struct {
		name  string
		frame []byte
		want  string // drop reason, "" for delivered, "arp-reply"
	}{
		{"plain", vxlanFrame(0x08, 1, mac1, encap.EtherTypeIPv4, ip), ""},
		{"padded", vxlanFrame(0x08, 1, mac1, encap.EtherTypeIPv4, padded), ""},
		{"gbp", func() []byte {
			b := vxlanFrame(0x88, 1, mac1, encap.EtherTypeIPv4, ip)
			b[1], b[2], b[3] = 0x48, 0x12, 0x34
			return b
		}(), ""},
		{"no I bit", vxlanFrame(0x00, 1, mac1, encap.EtherTypeIPv4, ip), DropNoIBit},
		{"unknown flag", vxlanFrame(0x0c, 1, mac1, encap.EtherTypeIPv4, ip), DropBadHeader},
		{"reserved byte", func() []byte { b := vxlanFrame(0x08, 1, mac1, encap.EtherTypeIPv4, ip); b[7] = 1; return b }(), DropBadHeader},
		{"wrong vni", vxlanFrame(0x08, 2, mac1, encap.EtherTypeIPv4, ip), DropUnknownVNI},
		{"wrong mac", vxlanFrame(0x08, 1, mac2, encap.EtherTypeIPv4, ip), DropWrongMAC},
		{"broadcast ip", vxlanFrame(0x08, 1, bcast, encap.EtherTypeIPv4, ip), DropWrongMAC},
		{"short", vxlanFrame(0x08, 1, mac1, encap.EtherTypeIPv4, nil)[:10], DropShort},
		{"ethertype", vxlanFrame(0x08, 1, mac1, 0x88cc, ip), DropBadInner},
		{"v6 ethertype, v4 packet", vxlanFrame(0x08, 1, mac1, encap.EtherTypeIPv6, ip), DropBadInner},
		{"truncated ip", vxlanFrame(0x08, 1, mac1, encap.EtherTypeIPv4, ip[:60]), DropBadInner},
		{"arp for us", vxlanFrame(0x08, 1, bcast, encap.EtherTypeARP, arpRequest(netip.MustParseAddr("198.19.1.0"))), "arp-reply"},
		{"arp unicast", vxlanFrame(0x08, 1, mac1, encap.EtherTypeARP, arpRequest(netip.MustParseAddr("198.19.1.0"))), "arp-reply"},
		{"arp not for us", vxlanFrame(0x08, 1, bcast, encap.EtherTypeARP, arpRequest(netip.MustParseAddr("198.19.1.7"))), DropARP},
		{"arp other mac", vxlanFrame(0x08, 1, mac2, encap.EtherTypeARP, arpRequest(netip.MustParseAddr("198.19.1.0"))), DropWrongMAC},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, r := newTestWorker(t, config.BackendVXLAN)
			w.decap(tc.frame, r, w.f.table.Load())
			in := &w.ib
			got := ""
			for i, n := range in.c.drops {
				if n > 0 {
					got = dropNames[i]
				}
			}
			if len(in.arpMsgs) > 0 {
				got = "arp-reply"
			}
			if got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
			if pd := w.f.Stats().PeerDrops; got != "" && got != "arp-reply" && pd["node2"][got] != 1 {
				t.Errorf("peer drops %v, want %s counted for node2", pd, got)
			}
			switch tc.want {
			case "":
				if len(in.wout) != 1 || string(in.wout[0][encap.VXLANOverhead:]) != string(ip) {
					t.Fatalf("queued %d packets, want the inner packet (trimmed) once", len(in.wout))
				}
			case "arp-reply":
				m := in.arpMsgs[0]
				if m.Addr != &r.Sockaddr {
					t.Errorf("ARP reply to %v, want the peer's underlay address %v", m.Addr, &r.Sockaddr)
				}
				vni, et, a, err := encap.DecapVXLAN(m.Buf, mac2)
				if err != nil || vni != 1 || et != encap.EtherTypeARP {
					t.Fatalf("reply: vni %d ethertype %#x err %v, want vni 1 ARP to node2's MAC", vni, et, err)
				}
				reply := encap.ARP(a)
				if reply.Op() != encap.ARPOpReply || net.HardwareAddr(reply.SenderMAC()).String() != mac1.String() ||
					netip.AddrFrom4([4]byte(reply.SenderIP())) != netip.MustParseAddr("198.19.1.0") {
					t.Errorf("reply op %d sender %s/%v, want reply from %s/198.19.1.0", reply.Op(), net.HardwareAddr(reply.SenderMAC()), reply.SenderIP(), mac1)
				}
			}
		})
	}
}

func TestCompletePartialChecksum(t *testing.T) {
	tcp := func(v6 bool) []byte {
		var p []byte
		if v6 {
			p = udp6Packet(pod2v6, pod1v6, 40+20+100, 1)
			p[6] = encap.ProtocolTCP
			return p
		}
		p = udp4Packet(pod2, pod1, 20+20+100, 1, true)
		p[9] = encap.ProtocolTCP
		encap.IPv4(p).UpdateChecksum()
		return p
	}
	for _, tc := range []struct {
		name string
		pkt  []byte
	}{
		{"tcp4", tcp(false)},
		{"tcp6", tcp(true)},
		{"udp4", udp4Packet(pod2, pod1, 200, 1, true)},
		{"udp6", udp6Packet(pod2v6, pod1v6, 200, 1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.pkt
			v4 := p[0]>>4 == 4
			l4off, proto := 40, p[6]
			src, dst := p[8:24], p[24:40]
			if v4 {
				l4off, proto, src, dst = 20, p[9], p[12:16], p[16:20]
			}
			l4 := p[l4off:]
			off := 6
			if proto == encap.ProtocolTCP {
				off = 16
			}
			ps := encap.PseudoHeaderChecksum(proto, src, dst, uint16(len(l4)))
			// Partial, as a Linux sender with checksum offload leaves it.
			binary.BigEndian.PutUint16(l4[off:], ps)
			completePartialChecksum(p)
			if got := encap.Checksum(l4, uint32(ps)); got != 0xffff {
				t.Fatalf("after completing: checksum sums to %#x, want 0xffff", got)
			}
			full := binary.BigEndian.Uint16(l4[off:])
			// A complete checksum is left alone.
			completePartialChecksum(p)
			if got := binary.BigEndian.Uint16(l4[off:]); got != full {
				t.Fatalf("complete checksum changed from %#x to %#x", full, got)
			}
			// A corrupt (neither partial nor complete) checksum is left for the
			// kernel to reject.
			binary.BigEndian.PutUint16(l4[off:], full^0x0101)
			completePartialChecksum(p)
			if got := binary.BigEndian.Uint16(l4[off:]); got != full^0x0101 {
				t.Fatalf("corrupt checksum rewritten to %#x", got)
			}
		})
	}
}

// FuzzDecap feeds arbitrary datagrams to both decapsulation paths: never a
// panic; every datagram is delivered, answered (ARP) or counted as exactly
// one drop; a delivered packet is a whole, valid IP packet.
func FuzzDecap(f *testing.F) {
	ip := udp4Packet(pod2, pod1, 100, 1, false)
	f.Add(vxlanFrame(0x08, 1, mac1, encap.EtherTypeIPv4, ip))
	f.Add(vxlanFrame(0x88, 1, mac1, encap.EtherTypeIPv4, ip))
	f.Add(vxlanFrame(0x08, 1, net.HardwareAddr(encap.BroadcastMAC[:]), encap.EtherTypeARP, arpRequest(netip.MustParseAddr("198.19.1.0"))))
	f.Add(vxlanFrame(0x08, 1, mac1, encap.EtherTypeIPv6, udp6Packet(pod2v6, pod1v6, 80, 1)))
	f.Add(ip)
	f.Add([]byte{0x08, 0, 0, 0})
	f.Add([]byte{})
	wx, rx := newTestWorker(f, config.BackendVXLAN)
	wu, ru := newTestWorker(f, config.BackendUDP)
	f.Fuzz(func(t *testing.T, d []byte) {
		for _, c := range []struct {
			w *worker
			r *routing.Route
		}{{wx, rx}, {wu, ru}} {
			w := c.w
			w.ib.c = batchCounts{}
			w.ib.wout = w.ib.wout[:0]
			w.ib.arpMsgs = w.ib.arpMsgs[:0]
			b := append([]byte(nil), d...)
			w.decap(b, c.r, c.w.f.table.Load())
			off := w.f.hdrLen
			var drops uint64
			for _, n := range w.ib.c.drops {
				drops += n
			}
			out := uint64(len(w.ib.wout) + len(w.ib.arpMsgs))
			if drops+out != 1 {
				t.Fatalf("%s: %d drops, %d delivered/answered; want exactly one outcome", w.f.cfg.Backend, drops, out)
			}
			if len(w.ib.wout) == 1 {
				pkt := w.ib.wout[0][off:]
				if tr, err := encap.TrimIP(pkt); err != nil || len(tr) != len(pkt) {
					t.Fatalf("delivered an invalid or untrimmed IP packet (%v)", err)
				}
			}
		}
	})
}
