package encap

// Independent oracle: everything our encoders write must decode with
// github.com/gopacket/gopacket/layers to the same fields, checksums
// included, and packets gopacket serializes must parse with our views.

import (
	"bytes"
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// decodeVXLAN decodes a VXLAN UDP payload with gopacket and returns its layers.
func decodeVXLAN(t *testing.T, b []byte) gopacket.Packet {
	t.Helper()
	p := gopacket.NewPacket(b, layers.LayerTypeVXLAN, gopacket.Default)
	if el := p.ErrorLayer(); el != nil {
		t.Fatalf("gopacket: %v", el.Error())
	}
	return p
}

func checkVXLANEth(t *testing.T, p gopacket.Packet, vni uint32, dst, src []byte, et layers.EthernetType) {
	t.Helper()
	vx, ok := p.Layer(layers.LayerTypeVXLAN).(*layers.VXLAN)
	if !ok {
		t.Fatalf("no VXLAN layer in %v", p)
	}
	if !vx.ValidIDFlag || vx.VNI != vni || vx.GBPExtension || vx.GBPGroupPolicyID != 0 {
		t.Errorf("gopacket VXLAN: got I=%v VNI=%#x G=%v, want I VNI=%#x no GBP", vx.ValidIDFlag, vx.VNI, vx.GBPExtension, vni)
	}
	eth, ok := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	if !ok {
		t.Fatalf("no Ethernet layer")
	}
	if !bytes.Equal(eth.DstMAC, dst) || !bytes.Equal(eth.SrcMAC, src) || eth.EthernetType != et {
		t.Errorf("gopacket Ethernet: got %v > %v type %v, want %x > %x %v", eth.DstMAC, eth.SrcMAC, eth.EthernetType, dst, src, et)
	}
}

func checkValid(t *testing.T, what string, err error, r gopacket.ChecksumVerificationResult) {
	t.Helper()
	if err != nil || !r.Valid {
		t.Errorf("%s checksum: got %#04x, gopacket wants %#04x (err %v)", what, r.Actual, r.Correct, err)
	}
}

func TestOracleVXLANIPv4UDP(t *testing.T) {
	for _, size := range []int{28, 29, 64, 513, 1400} {
		inner := udp4(size, ip4a, ip4b)
		const off = VXLANOverhead + 10
		buf := make([]byte, off+len(inner))
		copy(buf[off:], inner)
		start := EncapVXLAN(buf, off, 0x00beef, macB, macA, EtherTypeIPv4)
		p := decodeVXLAN(t, buf[start:])
		checkVXLANEth(t, p, 0x00beef, macB, macA, layers.EthernetTypeIPv4)
		ip, ok := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		if !ok {
			t.Fatalf("no IPv4 layer")
		}
		if ip.Version != 4 || ip.IHL != 5 || int(ip.Length) != size || ip.TTL != 64 || ip.Protocol != layers.IPProtocolUDP ||
			ip.Flags != layers.IPv4DontFragment || !ip.SrcIP.Equal(ip4a.AsSlice()) || !ip.DstIP.Equal(ip4b.AsSlice()) {
			t.Errorf("gopacket IPv4 disagrees: %+v", ip)
		}
		err, r := ip.VerifyChecksum()
		checkValid(t, "ipv4", err, r)
		udp, ok := p.Layer(layers.LayerTypeUDP).(*layers.UDP)
		if !ok {
			t.Fatalf("no UDP layer")
		}
		if udp.SrcPort != 1234 || udp.DstPort != 5678 || int(udp.Length) != size-20 {
			t.Errorf("gopacket UDP disagrees: %+v", udp)
		}
		_ = udp.SetNetworkLayerForChecksum(ip)
		err, r = udp.VerifyChecksum()
		checkValid(t, "udp", err, r)
	}
}

func TestOracleVXLANIPv6TCP(t *testing.T) {
	for _, size := range []int{60, 61, 512, 1400} {
		inner := make([]byte, size)
		h := IPv6(inner)
		h.Encode(&IPv6Fields{TrafficClass: 0x10, FlowLabel: 0x12345, PayloadLength: uint16(size - 40), NextHeader: ProtocolTCP, HopLimit: 63, Src: ip6a, Dst: ip6b})
		tcp := TCP(inner[40:])
		tcp.Encode(&TCPFields{SrcPort: 443, DstPort: 55555, Seq: 0xdeadbeef, Ack: 0x01020304, Flags: TCPFlagACK | TCPFlagPSH, Window: 65000})
		for i := 60; i < size; i++ {
			inner[i] = byte(i * 7)
		}
		tcp.SetChecksum(tcp.CalculateChecksum(PseudoHeaderChecksum(ProtocolTCP, h.Src(), h.Dst(), uint16(len(tcp)))))
		buf := make([]byte, VXLANOverhead+size)
		copy(buf[VXLANOverhead:], inner)
		start := EncapVXLAN(buf, VXLANOverhead, MaxVNI, macB, macA, EtherTypeIPv6)
		p := decodeVXLAN(t, buf[start:])
		checkVXLANEth(t, p, MaxVNI, macB, macA, layers.EthernetTypeIPv6)
		ip, ok := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
		if !ok {
			t.Fatalf("no IPv6 layer")
		}
		if ip.TrafficClass != 0x10 || ip.FlowLabel != 0x12345 || int(ip.Length) != size-40 || ip.NextHeader != layers.IPProtocolTCP ||
			ip.HopLimit != 63 || !ip.SrcIP.Equal(ip6a.AsSlice()) || !ip.DstIP.Equal(ip6b.AsSlice()) {
			t.Errorf("gopacket IPv6 disagrees: %+v", ip)
		}
		tl, ok := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
		if !ok {
			t.Fatalf("no TCP layer")
		}
		if tl.SrcPort != 443 || tl.DstPort != 55555 || tl.Seq != 0xdeadbeef || tl.Ack != 0x01020304 || !tl.ACK || !tl.PSH || tl.SYN ||
			tl.Window != 65000 || tl.DataOffset != 5 || len(tl.Payload) != size-60 {
			t.Errorf("gopacket TCP disagrees: %+v", tl)
		}
		_ = tl.SetNetworkLayerForChecksum(ip)
		err, r := tl.VerifyChecksum()
		checkValid(t, "tcp", err, r)
	}
}

func TestOracleARPReply(t *testing.T) {
	vtep := netip.MustParseAddr("198.19.2.0")
	buf := make([]byte, VXLANOverhead+ARPSize)
	copy(buf[VXLANOverhead:], arpRequest(vtep))
	if err := AnswerARP(buf[VXLANOverhead:], macB, vtep); err != nil {
		t.Fatal(err)
	}
	start := EncapVXLAN(buf, VXLANOverhead, 1, ARP(buf[VXLANOverhead:]).TargetMAC(), macB, EtherTypeARP)
	p := decodeVXLAN(t, buf[start:])
	checkVXLANEth(t, p, 1, macA, macB, layers.EthernetTypeARP)
	a, ok := p.Layer(layers.LayerTypeARP).(*layers.ARP)
	if !ok {
		t.Fatalf("no ARP layer")
	}
	if a.AddrType != layers.LinkTypeEthernet || a.Protocol != layers.EthernetTypeIPv4 || a.HwAddressSize != 6 || a.ProtAddressSize != 4 ||
		a.Operation != layers.ARPReply || !bytes.Equal(a.SourceHwAddress, macB) || !bytes.Equal(a.SourceProtAddress, vtep.AsSlice()) ||
		!bytes.Equal(a.DstHwAddress, macA) || !bytes.Equal(a.DstProtAddress, ip4a.AsSlice()) {
		t.Errorf("gopacket ARP disagrees: %+v", a)
	}
}

func TestOracleICMPv4(t *testing.T) {
	orig := udp4(1400, ip4a, ip4b)
	for _, tc := range []struct {
		name string
		code uint8
		mtu  uint16
	}{{"frag needed", 4, 1450}, {"net unreachable", 0, 0}} {
		buf := make([]byte, 1500)
		var n int
		var err error
		if tc.code == 4 {
			n, err = ICMPv4FragNeeded(buf, router4, orig, tc.mtu)
		} else {
			n, err = ICMPv4NetUnreachable(buf, router4, orig)
		}
		if err != nil {
			t.Fatal(err)
		}
		p := gopacket.NewPacket(buf[:n], layers.LayerTypeIPv4, gopacket.Default)
		ip, ok := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		if !ok {
			t.Fatalf("%s: no IPv4 layer: %v", tc.name, p)
		}
		if int(ip.Length) != n || ip.Protocol != layers.IPProtocolICMPv4 || !ip.SrcIP.Equal(router4.AsSlice()) || !ip.DstIP.Equal(ip4a.AsSlice()) {
			t.Errorf("%s: gopacket IPv4 disagrees: %+v", tc.name, ip)
		}
		err, r := ip.VerifyChecksum()
		checkValid(t, tc.name+" ipv4", err, r)
		ic, ok := p.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
		if !ok {
			t.Fatalf("%s: no ICMPv4 layer", tc.name)
		}
		if ic.TypeCode != layers.CreateICMPv4TypeCode(3, tc.code) || ic.Seq != tc.mtu || ic.Id != 0 {
			t.Errorf("%s: gopacket ICMPv4 disagrees: %v id %d seq %d", tc.name, ic.TypeCode, ic.Id, ic.Seq)
		}
		err, r = ic.VerifyChecksum()
		checkValid(t, tc.name+" icmpv4", err, r)
		if !bytes.Equal(ic.Payload, orig[:548]) {
			t.Errorf("%s: quoted %d bytes, want the first 548 of the packet", tc.name, len(ic.Payload))
		}
	}
}

func TestOracleICMPv6(t *testing.T) {
	orig := udp6(1500, ip6a, ip6b)
	for _, typ := range []uint8{ICMPv6TypePacketTooBig, ICMPv6TypeDestUnreachable} {
		buf := make([]byte, 1500)
		var n int
		var err error
		if typ == ICMPv6TypePacketTooBig {
			n, err = ICMPv6PacketTooBig(buf, router6, orig, 1430)
		} else {
			n, err = ICMPv6DestUnreachable(buf, router6, orig, 0)
		}
		if err != nil {
			t.Fatal(err)
		}
		p := gopacket.NewPacket(buf[:n], layers.LayerTypeIPv6, gopacket.Default)
		ip, ok := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
		if !ok {
			t.Fatalf("type %d: no IPv6 layer", typ)
		}
		if int(ip.Length) != n-40 || ip.NextHeader != layers.IPProtocolICMPv6 || !ip.SrcIP.Equal(router6.AsSlice()) || !ip.DstIP.Equal(ip6a.AsSlice()) {
			t.Errorf("type %d: gopacket IPv6 disagrees: %+v", typ, ip)
		}
		ic, ok := p.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6)
		if !ok {
			t.Fatalf("type %d: no ICMPv6 layer", typ)
		}
		if ic.TypeCode != layers.CreateICMPv6TypeCode(typ, 0) {
			t.Errorf("gopacket ICMPv6: got %v, want type %d code 0", ic.TypeCode, typ)
		}
		_ = ic.SetNetworkLayerForChecksum(ip)
		err, r := ic.VerifyChecksum()
		checkValid(t, "icmpv6", err, r)
		// gopacket leaves bytes 4–7 (MTU / unused) and the quote in Payload.
		want := uint32(0)
		if typ == ICMPv6TypePacketTooBig {
			want = 1430
		}
		if got := ICMPv6(ip.Payload).RestOfHeader(); got != want || !bytes.Equal(ic.Payload[4:], orig[:1280-48]) {
			t.Errorf("type %d: rest %d (want %d), quote %d bytes", typ, got, want, len(ic.Payload)-4)
		}
	}
}

// TestOracleReverse serializes random packets with gopacket and checks that
// our views read the same fields and our checksums match gopacket's.
func TestOracleReverse(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	opts := gopacket.SerializeOptions{ComputeChecksums: true, FixLengths: true}
	for i := 0; i < 300; i++ {
		payload := make([]byte, rng.IntN(1500))
		for j := range payload {
			payload[j] = byte(rng.Uint32())
		}
		v6 := i%2 == 1
		useTCP := i%4 >= 2
		vni := rng.Uint32() & MaxVNI
		var net4 layers.IPv4
		var net6 layers.IPv6
		var netLayer gopacket.SerializableLayer
		var nl gopacket.NetworkLayer
		et := layers.EthernetTypeIPv4
		proto := layers.IPProtocolUDP
		if useTCP {
			proto = layers.IPProtocolTCP
		}
		if v6 {
			et = layers.EthernetTypeIPv6
			net6 = layers.IPv6{Version: 6, HopLimit: uint8(rng.Uint32()), NextHeader: proto, FlowLabel: rng.Uint32() & 0xfffff,
				SrcIP: net.IP(ip6a.AsSlice()), DstIP: net.IP(ip6b.AsSlice())}
			netLayer, nl = &net6, &net6
		} else {
			net4 = layers.IPv4{Version: 4, IHL: 5, TTL: uint8(rng.Uint32()), Id: uint16(rng.Uint32()), Protocol: proto, TOS: uint8(rng.Uint32()),
				SrcIP: net.IP(ip4a.AsSlice()), DstIP: net.IP(ip4b.AsSlice())}
			netLayer, nl = &net4, &net4
		}
		var tr gopacket.SerializableLayer
		sport, dport := uint16(rng.Uint32()), uint16(rng.Uint32())
		if useTCP {
			l := &layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: layers.TCPPort(dport), Seq: rng.Uint32(), Ack: rng.Uint32(), ACK: true, Window: 1000}
			_ = l.SetNetworkLayerForChecksum(nl)
			tr = l
		} else {
			l := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
			_ = l.SetNetworkLayerForChecksum(nl)
			tr = l
		}
		sb := gopacket.NewSerializeBuffer()
		err := gopacket.SerializeLayers(sb, opts,
			&layers.VXLAN{ValidIDFlag: true, VNI: vni},
			&layers.Ethernet{DstMAC: macB, SrcMAC: macA, EthernetType: et},
			netLayer, tr, gopacket.Payload(payload))
		if err != nil {
			t.Fatal(err)
		}
		pkt := sb.Bytes()
		gotVNI, gotET, inner, err := DecapVXLAN(pkt, macB)
		if err != nil || gotVNI != vni || gotET != uint16(et) {
			t.Fatalf("DecapVXLAN(gopacket): vni %#x type %#x err %v; want %#x %#x", gotVNI, gotET, err, vni, uint16(et))
		}
		if err := ValidateIP(inner); err != nil {
			t.Fatalf("ValidateIP(gopacket): %v", err)
		}
		var l4 []byte
		var ph uint16
		if v6 {
			h := IPv6(inner)
			l4 = h.Payload()
			ph = PseudoHeaderChecksum(uint8(proto), h.Src(), h.Dst(), uint16(len(l4)))
		} else {
			h := IPv4(inner)
			if !h.IsChecksumValid() || h.TTL() != net4.TTL || h.ID() != net4.Id || h.TOS() != net4.TOS {
				t.Fatalf("IPv4 view of gopacket packet disagrees: % x", inner[:20])
			}
			l4 = h.Payload()
			ph = PseudoHeaderChecksum(uint8(proto), h.Src(), h.Dst(), uint16(len(l4)))
		}
		if useTCP {
			tc := TCP(l4)
			if tc.SrcPort() != sport || tc.DstPort() != dport || tc.Checksum() != tc.CalculateChecksum(ph) || !bytes.Equal(tc.Payload(), payload) {
				t.Fatalf("TCP view disagrees: checksum %#04x, ours %#04x", tc.Checksum(), tc.CalculateChecksum(ph))
			}
		} else {
			u := UDP(l4)
			if u.SrcPort() != sport || u.DstPort() != dport || int(u.Length()) != len(l4) || u.Checksum() != u.CalculateChecksum(ph) {
				t.Fatalf("UDP view disagrees: checksum %#04x, ours %#04x", u.Checksum(), u.CalculateChecksum(ph))
			}
		}
	}
}

// TestOracleGBP: a GBP header serialized by gopacket is accepted and read.
func TestOracleGBP(t *testing.T) {
	sb := gopacket.NewSerializeBuffer()
	err := gopacket.SerializeLayers(sb, gopacket.SerializeOptions{},
		&layers.VXLAN{ValidIDFlag: true, VNI: 1, GBPExtension: true, GBPDontLearn: true, GBPApplied: true, GBPGroupPolicyID: 0x4242},
		gopacket.Payload(make([]byte, 14)))
	if err != nil {
		t.Fatal(err)
	}
	b := sb.Bytes()
	err = CheckVXLAN(b)
	v := VXLAN(b)
	vni := v.VNI()
	if err != nil || vni != 1 || !v.HasGBP() || v.GBPFlags() != VXLANFlagD|VXLANFlagA || v.GroupPolicyID() != 0x4242 {
		t.Fatalf("gopacket GBP header % x: got vni %d err %v G %v flags %#x policy %#x", b[:8], vni, err, v.HasGBP(), v.GBPFlags(), v.GroupPolicyID())
	}
}
