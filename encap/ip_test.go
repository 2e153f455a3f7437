package encap

import (
	"math/rand/v2"
	"net/netip"
	"testing"
)

var (
	ip4a = netip.MustParseAddr("198.19.1.10")
	ip4b = netip.MustParseAddr("198.19.2.20")
	ip6a = netip.MustParseAddr("fd00:198:19:1::10")
	ip6b = netip.MustParseAddr("fd00:198:19:2::20")
)

func TestValidateIP(t *testing.T) {
	v4 := func(n int, mutate func(IPv4)) []byte {
		b := make([]byte, n)
		IPv4(b).Encode(&IPv4Fields{TotalLength: 40, TTL: 64, Protocol: ProtocolTCP, Src: ip4a, Dst: ip4b})
		if mutate != nil {
			mutate(IPv4(b))
		}
		return b
	}
	v6 := func(n int, plen uint16) []byte {
		b := make([]byte, n)
		IPv6(b).Encode(&IPv6Fields{PayloadLength: plen, NextHeader: ProtocolUDP, HopLimit: 64, Src: ip6a, Dst: ip6b})
		return b
	}
	for _, tc := range []struct {
		name    string
		pkt     []byte
		wantLen int
		wantErr error
	}{
		{"v4 exact", v4(40, nil), 40, nil},
		{"v4 padded", v4(46, nil), 40, nil},
		{"v4 with options", v4(40, func(b IPv4) { b[0] = 0x46 }), 40, nil},
		{"v4 total beyond data", v4(39, nil), 0, ErrIPLength},
		{"v4 IHL 4", v4(40, func(b IPv4) { b[0] = 0x44 }), 0, ErrIPHeaderLen},
		{"v4 IHL 0", v4(40, func(b IPv4) { b[0] = 0x40 }), 0, ErrIPHeaderLen},
		{"v4 IHL beyond total", v4(40, func(b IPv4) { b[0] = 0x4f }), 0, ErrIPHeaderLen},
		{"v4 total below header", v4(40, func(b IPv4) { b.SetTotalLength(19) }), 0, ErrIPHeaderLen},
		{"v4 19 bytes", v4(40, nil)[:19], 0, ErrShort},
		{"v6 exact", v6(48, 8), 48, nil},
		{"v6 padded", v6(60, 8), 48, nil},
		{"v6 empty payload", v6(40, 0), 40, nil},
		{"v6 payload beyond data", v6(47, 8), 0, ErrIPLength},
		{"v6 39 bytes", v6(40, 0)[:39], 0, ErrShort},
		{"version 5", []byte{0x50, 0, 0, 20}, 0, ErrIPVersion},
		{"version 0", make([]byte, 40), 0, ErrIPVersion},
		{"empty", nil, 0, ErrShort},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := ValidateIP(tc.pkt); err != tc.wantErr {
				t.Fatalf("ValidateIP: got %v, want %v", err, tc.wantErr)
			}
			got, err := TrimIP(tc.pkt)
			if err != tc.wantErr || len(got) != tc.wantLen {
				t.Fatalf("TrimIP: got %d bytes, %v; want %d, %v", len(got), err, tc.wantLen, tc.wantErr)
			}
		})
	}
}

func TestIPv4Accessors(t *testing.T) {
	b := make([]byte, 28)
	f := IPv4Fields{TOS: 0xb8, TotalLength: 28, ID: 0x1234, Flags: IPv4FlagDF | 0x0012, TTL: 17, Protocol: ProtocolUDP, Src: ip4a, Dst: ip4b}
	h := IPv4(b)
	h.Encode(&f)
	if h.Version() != 4 || h.HeaderLength() != 20 || h.TOS() != 0xb8 || h.TotalLength() != 28 ||
		h.ID() != 0x1234 || !h.DF() || h.MF() || h.FragmentOffset() != 0x12*8 || h.TTL() != 17 ||
		h.Protocol() != ProtocolUDP || h.SrcAddr() != ip4a || h.DstAddr() != ip4b || len(h.Payload()) != 8 {
		t.Fatalf("accessors disagree with %+v: % x", f, b)
	}
	if !h.IsChecksumValid() || h.CalculateChecksum() != h.Checksum() {
		t.Fatalf("checksum %#04x not valid (computed %#04x)", h.Checksum(), h.CalculateChecksum())
	}
	h.SetDst(ip4a)
	if h.IsChecksumValid() {
		t.Fatalf("checksum still valid after changing the destination")
	}
	h.UpdateChecksum()
	if !h.IsChecksumValid() {
		t.Fatalf("UpdateChecksum did not fix the checksum")
	}
}

func TestIPv6Accessors(t *testing.T) {
	b := make([]byte, 48)
	h := IPv6(b)
	h.Encode(&IPv6Fields{TrafficClass: 0xb8, FlowLabel: 0xabcde, PayloadLength: 8, NextHeader: ProtocolTCP, HopLimit: 9, Src: ip6a, Dst: ip6b})
	if h.Version() != 6 || h.TrafficClass() != 0xb8 || h.FlowLabel() != 0xabcde || h.PayloadLength() != 8 ||
		h.NextHeader() != ProtocolTCP || h.HopLimit() != 9 || h.SrcAddr() != ip6a || h.DstAddr() != ip6b || len(h.Payload()) != 8 {
		t.Fatalf("accessors wrong: % x", b)
	}
	h.SetTrafficClass(0x01)
	if h.TrafficClass() != 1 || h.FlowLabel() != 0xabcde || h.Version() != 6 {
		t.Fatalf("SetTrafficClass clobbered neighbours: % x", b[:4])
	}
	h.SetHopLimit(1)
	if b[7] != 1 || h.NextHeader() != ProtocolTCP {
		t.Fatalf("SetHopLimit(1): got hop limit byte %d next header %d, want 1 and %d", b[7], h.NextHeader(), ProtocolTCP)
	}
}

func TestChecksumUpdate(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	b := make([]byte, 64)
	for i := 0; i < 20000; i++ {
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		hc := ^Checksum(b, 0)
		k := 2 * rng.IntN(len(b)/2)
		old := uint16(b[k])<<8 | uint16(b[k+1])
		nw := uint16(rng.Uint32())
		if i%7 == 0 {
			nw = 0
		}
		b[k], b[k+1] = byte(nw>>8), byte(nw)
		got := ChecksumUpdate(hc, old, nw)
		// Both checksums must verify: the sum of data and checksum is 0xffff.
		if s := ChecksumCombine(Checksum(b, 0), got); s != 0xffff {
			t.Fatalf("word %d %#04x->%#04x: updated checksum %#04x does not verify (full %#04x)", k, old, nw, got, ^Checksum(b, 0))
		}
	}
}

func TestPseudoHeaderChecksum(t *testing.T) {
	// Against the reference over the explicit pseudo-header bytes.
	s4, d4 := ip4a.As4(), ip4b.As4()
	ph := append(append(append([]byte{}, s4[:]...), d4[:]...), 0, ProtocolUDP, 0x01, 0x23)
	if got, want := PseudoHeaderChecksum(ProtocolUDP, s4[:], d4[:], 0x123), refChecksum(ph, 0); got != want {
		t.Errorf("v4: got %#04x, want %#04x", got, want)
	}
	s6, d6 := ip6a.As16(), ip6b.As16()
	ph = append(append(append([]byte{}, s6[:]...), d6[:]...), 0, 0, 0x01, 0x23, 0, 0, 0, ProtocolTCP)
	if got, want := PseudoHeaderChecksum(ProtocolTCP, s6[:], d6[:], 0x123), refChecksum(ph, 0); got != want {
		t.Errorf("v6: got %#04x, want %#04x", got, want)
	}
}
