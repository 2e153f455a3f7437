package encap

import (
	"bytes"
	"net/netip"
	"testing"
)

var (
	router4 = netip.MustParseAddr("198.19.1.0")
	router6 = netip.MustParseAddr("fd00:198:19:1::")
)

// udp4 builds an IPv4/UDP packet of total length n.
func udp4(n int, src, dst netip.Addr) []byte {
	b := make([]byte, n)
	IPv4(b).Encode(&IPv4Fields{TotalLength: uint16(n), TTL: 64, Flags: IPv4FlagDF, Protocol: ProtocolUDP, Src: src, Dst: dst})
	u := UDP(b[IPv4MinimumSize:])
	u.Encode(&UDPFields{SrcPort: 1234, DstPort: 5678, Length: uint16(n - IPv4MinimumSize)})
	for i := IPv4MinimumSize + UDPMinimumSize; i < n; i++ {
		b[i] = byte(i)
	}
	u.SetChecksum(u.CalculateChecksum(PseudoHeaderChecksum(ProtocolUDP, IPv4(b).Src(), IPv4(b).Dst(), uint16(len(u)))))
	return b
}

// udp6 builds an IPv6/UDP packet of total length n.
func udp6(n int, src, dst netip.Addr) []byte {
	b := make([]byte, n)
	IPv6(b).Encode(&IPv6Fields{PayloadLength: uint16(n - IPv6MinimumSize), NextHeader: ProtocolUDP, HopLimit: 64, Src: src, Dst: dst})
	u := UDP(b[IPv6MinimumSize:])
	u.Encode(&UDPFields{SrcPort: 1234, DstPort: 5678, Length: uint16(n - IPv6MinimumSize)})
	for i := IPv6MinimumSize + UDPMinimumSize; i < n; i++ {
		b[i] = byte(i)
	}
	u.SetChecksum(u.CalculateChecksum(PseudoHeaderChecksum(ProtocolUDP, IPv6(b).Src(), IPv6(b).Dst(), uint16(len(u)))))
	return b
}

func TestICMPv4FragNeeded(t *testing.T) {
	for _, size := range []int{28, 100, 548, 549, 1500, 9000} {
		orig := udp4(size, ip4a, ip4b)
		buf := make([]byte, 2000)
		n, err := ICMPv4FragNeeded(buf, router4, orig, 1450)
		if err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		quote := min(size, ICMPv4ErrorMaxLen-28)
		if n != 28+quote {
			t.Fatalf("size %d: got length %d, want %d", size, n, 28+quote)
		}
		ip := IPv4(buf[:n])
		if err := ValidateIP(ip); err != nil || ip.SrcAddr() != router4 || ip.DstAddr() != ip4a ||
			ip.Protocol() != ProtocolICMPv4 || ip.TTL() != 64 || !ip.IsChecksumValid() || int(ip.TotalLength()) != n {
			t.Fatalf("size %d: bad ip header % x (err %v)", size, buf[:20], err)
		}
		m := ICMPv4(ip.Payload())
		if m.Type() != 3 || m.Code() != 4 || m.MTU() != 1450 || m.RestOfHeader() != 1450 || m.CalculateChecksum() != m.Checksum() {
			t.Fatalf("size %d: bad icmp header % x", size, m[:8])
		}
		if !bytes.Equal(m.Payload(), orig[:quote]) {
			t.Fatalf("size %d: quote differs", size)
		}
	}
}

func TestICMPv4NetUnreachableInPlace(t *testing.T) {
	// The error may be built over the offending packet itself, which sits
	// behind headroom in the same buffer.
	orig := udp4(200, ip4a, ip4b)
	buf := make([]byte, 28+600)
	copy(buf[28:], orig)
	n, err := ICMPv4NetUnreachable(buf, router4, buf[28:28+200])
	if err != nil || n != 228 {
		t.Fatalf("got %d, %v; want 228, nil", n, err)
	}
	ip := IPv4(buf[:n])
	m := ICMPv4(ip.Payload())
	if ip.DstAddr() != ip4a || m.Type() != 3 || m.Code() != 0 || !bytes.Equal(m.Payload(), orig) {
		t.Fatalf("bad in-place error: dst %v type %d code %d", ip.DstAddr(), m.Type(), m.Code())
	}
}

func TestICMPv4ErrorRules(t *testing.T) {
	mk := func(mut func(IPv4)) []byte {
		b := udp4(60, ip4a, ip4b)
		if mut != nil {
			mut(IPv4(b))
			IPv4(b).UpdateChecksum()
		}
		return b
	}
	icmpOf := func(typ uint8) func(IPv4) {
		return func(h IPv4) { h.SetProtocol(ProtocolICMPv4); h[20] = typ }
	}
	buf := make([]byte, 1500)
	for _, tc := range []struct {
		name   string
		orig   []byte
		router netip.Addr
		want   error
	}{
		{"ok", mk(nil), router4, nil},
		{"echo request", mk(icmpOf(8)), router4, nil},
		{"first fragment", mk(func(h IPv4) { h.SetFlagsFragmentOffset(IPv4FlagMF) }), router4, nil},
		{"about an icmp error", mk(icmpOf(3)), router4, ErrNoICMP},
		{"about a time exceeded", mk(icmpOf(11)), router4, ErrNoICMP},
		{"non-first fragment", mk(func(h IPv4) { h.SetFlagsFragmentOffset(10) }), router4, ErrNoICMP},
		{"multicast dst", mk(func(h IPv4) { h.SetDst(netip.MustParseAddr("224.0.0.1")) }), router4, ErrNoICMP},
		{"broadcast dst", mk(func(h IPv4) { h.SetDst(netip.MustParseAddr("255.255.255.255")) }), router4, ErrNoICMP},
		{"zero src", mk(func(h IPv4) { h.SetSrc(netip.MustParseAddr("0.0.0.0")) }), router4, ErrNoICMP},
		{"router v6", mk(nil), router6, ErrAddrFamily},
		{"orig v6", udp6(60, ip6a, ip6b), router4, ErrAddrFamily},
		{"truncated", mk(nil)[:40], router4, ErrIPLength},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ICMPv4NetUnreachable(buf, tc.router, tc.orig); err != tc.want {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	// A buffer too small for header + quoted IP header + 8 bytes.
	if _, err := ICMPv4NetUnreachable(make([]byte, 55), router4, mk(nil)); err != ErrShortBuffer {
		t.Errorf("short buffer: got %v, want ErrShortBuffer", err)
	}
	if n, err := ICMPv4NetUnreachable(make([]byte, 56), router4, mk(nil)); err != nil || n != 56 {
		t.Errorf("56-byte buffer: got %d, %v; want 56, nil", n, err)
	}
}

func TestICMPv6Errors(t *testing.T) {
	for _, size := range []int{48, 500, 1232, 1233, 1500, 9000} {
		orig := udp6(size, ip6a, ip6b)
		buf := make([]byte, 2000)
		for _, typ := range []uint8{ICMPv6TypePacketTooBig, ICMPv6TypeDestUnreachable} {
			var n int
			var err error
			if typ == ICMPv6TypePacketTooBig {
				n, err = ICMPv6PacketTooBig(buf, router6, orig, 1430)
			} else {
				n, err = ICMPv6DestUnreachable(buf, router6, orig, ICMPv6CodeNoRoute)
			}
			if err != nil {
				t.Fatalf("size %d type %d: %v", size, typ, err)
			}
			quote := min(size, IPv6MinimumMTU-48)
			if n != 48+quote {
				t.Fatalf("size %d type %d: got length %d, want %d", size, typ, n, 48+quote)
			}
			ip := IPv6(buf[:n])
			if err := ValidateIP(ip); err != nil || ip.SrcAddr() != router6 || ip.DstAddr() != ip6a || ip.NextHeader() != ProtocolICMPv6 || ip.HopLimit() != 64 {
				t.Fatalf("size %d: bad ip header % x (%v)", size, buf[:40], err)
			}
			m := ICMPv6(ip.Payload())
			wantRest := uint32(0)
			if typ == ICMPv6TypePacketTooBig {
				wantRest = 1430
			}
			ph := PseudoHeaderChecksum(ProtocolICMPv6, ip.Src(), ip.Dst(), uint16(len(m)))
			if m.Type() != typ || m.Code() != 0 || m.RestOfHeader() != wantRest || m.CalculateChecksum(ph) != m.Checksum() {
				t.Fatalf("size %d: bad icmp header % x", size, m[:8])
			}
			if !bytes.Equal(m.Payload(), orig[:quote]) {
				t.Fatalf("size %d: quote differs", size)
			}
		}
	}
	buf := make([]byte, 1500)
	mc := netip.MustParseAddr("ff02::1")
	icmp6 := func(typ uint8) []byte {
		b := udp6(60, ip6a, ip6b)
		IPv6(b).SetNextHeader(ProtocolICMPv6)
		b[40] = typ
		return b
	}
	for _, tc := range []struct {
		name string
		orig []byte
		ptb  bool
		want error
	}{
		{"echo request", icmp6(128), false, nil},
		{"about an error", icmp6(1), false, ErrNoICMP},
		{"about a ptb", icmp6(2), true, ErrNoICMP},
		{"multicast dst unreachable", udp6(60, ip6a, mc), false, ErrNoICMP},
		{"multicast dst too big", udp6(60, ip6a, mc), true, nil},
		{"multicast src", udp6(60, mc, ip6b), true, ErrNoICMP},
		{"unspecified src", udp6(60, netip.IPv6Unspecified(), ip6b), false, ErrNoICMP},
		{"orig v4", udp4(60, ip4a, ip4b), false, ErrAddrFamily},
		{"truncated", udp6(60, ip6a, ip6b)[:50], false, ErrIPLength},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.ptb {
				_, err = ICMPv6PacketTooBig(buf, router6, tc.orig, 1280)
			} else {
				_, err = ICMPv6DestUnreachable(buf, router6, tc.orig, 0)
			}
			if err != tc.want {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := ICMPv6PacketTooBig(buf, router4, udp6(60, ip6a, ip6b), 1280); err != ErrAddrFamily {
		t.Errorf("v4 router: got %v, want ErrAddrFamily", err)
	}
	if _, err := ICMPv6PacketTooBig(make([]byte, 95), router6, udp6(200, ip6a, ip6b), 1280); err != ErrShortBuffer {
		t.Errorf("short buffer: got %v, want ErrShortBuffer", err)
	}
}
