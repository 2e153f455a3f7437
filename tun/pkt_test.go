package tun

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/vxtun/vxtun/encap"
)

// Packet construction and independent verification for the tests, built on
// gopacket so that checksums are checked by code other than tun's.

type pktSpec struct {
	v6      bool
	udp     bool
	src     string // default per family
	dst     string
	sport   uint16
	dport   uint16
	seq     uint32
	ack     uint32
	id      uint16
	flags   uint8 // TCP flags; 0 means ACK
	payload []byte
	tsopt   bool // add a timestamp option (and two NOPs)
	tsval   uint32
	ttl     uint8
}

func (s pktSpec) build(t testing.TB) []byte {
	t.Helper()
	src, dst := s.src, s.dst
	if src == "" {
		src, dst = "198.19.1.1", "198.19.2.1"
		if s.v6 {
			src, dst = "2001:db8::1", "2001:db8::2"
		}
	}
	ttl := s.ttl
	if ttl == 0 {
		ttl = 64
	}
	var ip gopacket.NetworkLayer
	var ls []gopacket.SerializableLayer
	proto := layers.IPProtocolTCP
	if s.udp {
		proto = layers.IPProtocolUDP
	}
	if s.v6 {
		ip6 := &layers.IPv6{Version: 6, HopLimit: ttl, NextHeader: proto, SrcIP: net.ParseIP(src), DstIP: net.ParseIP(dst)}
		ip, ls = ip6, append(ls, ip6)
	} else {
		ip4 := &layers.IPv4{Version: 4, IHL: 5, TTL: ttl, Id: s.id, Flags: layers.IPv4DontFragment, Protocol: proto,
			SrcIP: net.ParseIP(src).To4(), DstIP: net.ParseIP(dst).To4()}
		ip, ls = ip4, append(ls, ip4)
	}
	sport, dport := s.sport, s.dport
	if sport == 0 {
		sport, dport = 40000, 5201
	}
	if s.udp {
		u := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
		if err := u.SetNetworkLayerForChecksum(ip); err != nil {
			t.Fatal(err)
		}
		ls = append(ls, u)
	} else {
		f := s.flags
		if f == 0 {
			f = encap.TCPFlagACK
		}
		tc := &layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: layers.TCPPort(dport), Seq: s.seq, Ack: s.ack, Window: 502,
			FIN: f&encap.TCPFlagFIN != 0, SYN: f&encap.TCPFlagSYN != 0, RST: f&encap.TCPFlagRST != 0, PSH: f&encap.TCPFlagPSH != 0,
			ACK: f&encap.TCPFlagACK != 0, URG: f&encap.TCPFlagURG != 0, ECE: f&encap.TCPFlagECE != 0, CWR: f&encap.TCPFlagCWR != 0}
		if s.tsopt {
			ts := make([]byte, 8)
			binary.BigEndian.PutUint32(ts, s.tsval)
			binary.BigEndian.PutUint32(ts[4:], 77)
			tc.Options = []layers.TCPOption{{OptionType: layers.TCPOptionKindNop}, {OptionType: layers.TCPOptionKindNop},
				{OptionType: layers.TCPOptionKindTimestamps, OptionLength: 10, OptionData: ts}}
		}
		if err := tc.SetNetworkLayerForChecksum(ip); err != nil {
			t.Fatal(err)
		}
		ls = append(ls, tc)
	}
	ls = append(ls, gopacket.Payload(s.payload))
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

// decoded is what verify extracts from a packet.
type decoded struct {
	v6      bool
	id      uint16
	tcp     *layers.TCP
	udp     *layers.UDP
	payload []byte
}

// verify decodes p with gopacket and checks IP length and every checksum.
func verify(t testing.TB, p []byte) decoded {
	t.Helper()
	var d decoded
	var pkt gopacket.Packet
	switch p[0] >> 4 {
	case 4:
		pkt = gopacket.NewPacket(p, layers.LayerTypeIPv4, gopacket.Default)
		ip := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		if int(ip.Length) != len(p) {
			t.Fatalf("ipv4 total length: got %d, want %d", ip.Length, len(p))
		}
		if err, res := ip.VerifyChecksum(); err != nil || !res.Valid {
			t.Fatalf("ipv4 header checksum: got %#04x, want %#04x (%v)", res.Actual, res.Correct, err)
		}
		d.id = ip.Id
	case 6:
		pkt = gopacket.NewPacket(p, layers.LayerTypeIPv6, gopacket.Default)
		ip := pkt.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
		if int(ip.Length)+40 != len(p) {
			t.Fatalf("ipv6 payload length: got %d, want %d", ip.Length, len(p)-40)
		}
		d.v6 = true
	default:
		t.Fatalf("ip version %d", p[0]>>4)
	}
	if el := pkt.ErrorLayer(); el != nil {
		t.Fatalf("decode: %v", el.Error())
	}
	if l := pkt.Layer(layers.LayerTypeTCP); l != nil {
		d.tcp = l.(*layers.TCP)
		if err := d.tcp.SetNetworkLayerForChecksum(pkt.NetworkLayer()); err != nil {
			t.Fatal(err)
		}
		if err, res := d.tcp.VerifyChecksum(); err != nil || !res.Valid {
			t.Fatalf("tcp checksum: got %#04x, want %#04x (%v)", res.Actual, res.Correct, err)
		}
		d.payload = d.tcp.Payload
	} else if l := pkt.Layer(layers.LayerTypeUDP); l != nil {
		d.udp = l.(*layers.UDP)
		if err := d.udp.SetNetworkLayerForChecksum(pkt.NetworkLayer()); err != nil {
			t.Fatal(err)
		}
		if int(d.udp.Length) != len(d.udp.Contents)+len(d.udp.Payload) {
			t.Fatalf("udp length: got %d, want %d", d.udp.Length, len(d.udp.Contents)+len(d.udp.Payload))
		}
		if err, res := d.udp.VerifyChecksum(); err != nil || !res.Valid {
			t.Fatalf("udp checksum: got %#04x, want %#04x (%v)", res.Actual, res.Correct, err)
		}
		d.payload = d.udp.Payload
	} else {
		t.Fatalf("no tcp or udp layer")
	}
	return d
}

// pattern returns n bytes of a recognisable, position-dependent pattern.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) ^ seed ^ byte(i>>8)
	}
	return b
}

// gsoHdr returns a virtio-net header as the kernel writes it for a GSO
// super-packet p, and puts the pseudo-header sum into p's checksum field.
func gsoHdr(t testing.TB, p []byte, mss int) []byte {
	t.Helper()
	v6 := p[0]>>4 == 6
	l4off := 20
	if v6 {
		l4off = 40
	}
	var f VirtioNetHdrFields
	f.Flags = VirtioNetHdrFNeedsCsum
	f.GSOSize = uint16(mss)
	f.CsumStart = uint16(l4off)
	var proto uint8
	if (v6 && p[6] == encap.ProtocolUDP) || (!v6 && p[9] == encap.ProtocolUDP) {
		f.GSOType, f.CsumOffset, f.HdrLen, proto = GSOUDPL4, 6, uint16(l4off+8), encap.ProtocolUDP
	} else {
		f.GSOType, f.CsumOffset, f.HdrLen, proto = GSOTCPv4, 16, uint16(l4off+int(p[l4off+12]>>4)*4), encap.ProtocolTCP
		if v6 {
			f.GSOType = GSOTCPv6
		}
	}
	var ps uint64
	if v6 {
		ps = uint64(encap.PseudoHeaderChecksum(proto, p[8:24], p[24:40], uint16(len(p)-l4off)))
	} else {
		ps = uint64(encap.PseudoHeaderChecksum(proto, p[12:16], p[16:20], uint16(len(p)-l4off)))
	}
	binary.BigEndian.PutUint16(p[l4off+int(f.CsumOffset):], encap.ChecksumFold(ps))
	h := make([]byte, VirtioNetHdrLen)
	VirtioNetHdr(h).Encode(&f)
	return h
}

func makeBufs(n, size int) ([][]byte, []int) {
	bufs := make([][]byte, n)
	for i := range bufs {
		bufs[i] = make([]byte, size)
	}
	return bufs, make([]int, n)
}

func equalBytes(t testing.TB, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: got %d bytes %x..., want %d bytes %x...", what, len(got), head(got), len(want), head(want))
	}
}

func head(b []byte) []byte {
	if len(b) > 32 {
		return b[:32]
	}
	return b
}
