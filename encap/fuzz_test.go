package encap

import (
	"bytes"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

var writeCorpus = flag.Bool("write-corpus", false, "write the fuzz seed corpus to testdata/fuzz")

// exact returns b with cap == len, so a parser that slices past its input
// panics under the fuzzer instead of silently reading neighbouring memory.
func exact(b []byte) []byte { return b[:len(b):len(b)] }

// ipSeeds are inner IP packets, valid and broken.
func ipSeeds() [][]byte {
	ihl4 := udp4(40, ip4a, ip4b)
	ihl4[0] = 0x44
	ihl0 := udp4(40, ip4a, ip4b)
	ihl0[0] = 0x40
	long := udp4(60, ip4a, ip4b)[:50] // total length 60 beyond 50 bytes of data
	opts := udp4(48, ip4a, ip4b)
	opts[0] = 0x47
	frag := udp4(40, ip4a, ip4b)
	frag[7] = 1
	icmpErr := udp4(56, ip4a, ip4b)
	icmpErr[9], icmpErr[20] = ProtocolICMPv4, 3
	v6long := udp6(80, ip6a, ip6b)[:60]
	icmp6 := udp6(60, ip6a, ip6b)
	icmp6[6], icmp6[40] = ProtocolICMPv6, 128
	return [][]byte{
		{}, {0x45}, {0x60}, udp4(28, ip4a, ip4b), udp4(1400, ip4a, ip4b), ihl4, ihl0, long, opts, frag, icmpErr,
		udp4(40, ip4a, ip4b)[:19], udp6(48, ip6a, ip6b), udp6(48, ip6a, ip6b)[:39], v6long, icmp6,
		{0x50, 0, 0, 20, 0, 0, 0, 0, 64, 17, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8},
		arpRequest(netip.MustParseAddr("198.19.2.0")),
	}
}

// vxlanSeeds covers the cases issue 2 lists: 0–7 byte payloads, exactly 8
// bytes, truncated inner Ethernet, broken inner IPv4, flags 0x00/0x0C/0x88,
// non-zero reserved bytes, VNI 0 and 0xFFFFFF.
func vxlanSeeds() [][]byte {
	frame := func(hdr []byte, dst []byte, et uint16, inner []byte) []byte {
		b := make([]byte, VXLANOverhead+len(inner))
		copy(b[VXLANOverhead:], inner)
		EncapVXLAN(b, VXLANOverhead, 1, dst, macA, et)
		copy(b, hdr)
		return b
	}
	ok := []byte{0x08, 0, 0, 0, 0, 0, 1, 0}
	var s [][]byte
	for n := 0; n <= 8; n++ {
		s = append(s, append([]byte{}, ok[:n]...))
	}
	full := frame(ok, macB, EtherTypeIPv4, udp4(64, ip4a, ip4b))
	for n := VXLANHeaderLen + 1; n < VXLANOverhead; n += 4 {
		s = append(s, full[:n]) // truncated inner Ethernet
	}
	for _, hdr := range [][]byte{
		{0x00, 0, 0, 0, 0, 0, 1, 0},
		{0x0c, 0, 0, 0, 0, 0, 1, 0},
		{0x88, 0, 0, 0, 0, 0, 1, 0},
		{0x88, 0x48, 0x12, 0x34, 0, 0, 1, 0},
		{0x08, 0x01, 0, 0, 0, 0, 1, 0},
		{0x08, 0, 0xff, 0, 0, 0, 1, 0},
		{0x08, 0, 0, 0x01, 0, 0, 1, 0},
		{0x08, 0, 0, 0, 0, 0, 1, 0xff},
		{0x08, 0, 0, 0, 0, 0, 0, 0},
		{0x08, 0, 0, 0, 0xff, 0xff, 0xff, 0},
		{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
	} {
		s = append(s, frame(hdr, macB, EtherTypeIPv4, udp4(64, ip4a, ip4b)))
	}
	for _, in := range ipSeeds() {
		s = append(s, frame(ok, macB, EtherTypeIPv4, in), frame(ok, macB, EtherTypeIPv6, in))
	}
	s = append(s,
		frame(ok, BroadcastMAC[:], EtherTypeARP, arpRequest(netip.MustParseAddr("198.19.2.0"))),
		frame(ok, macA, EtherTypeIPv4, udp4(64, ip4a, ip4b)),
		frame(ok, macB, 0x8100, udp4(64, ip4a, ip4b)),
	)
	return s
}

func addSeeds(f *testing.F, seeds [][]byte) {
	for _, s := range seeds {
		f.Add(s)
	}
	if *writeCorpus {
		dir := filepath.Join("testdata", "fuzz", f.Name())
		if err := os.MkdirAll(dir, 0o755); err != nil {
			f.Fatal(err)
		}
		for i, s := range seeds {
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%s)\n", strconv.Quote(string(s)))
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%03d", i)), []byte(body), 0o644); err != nil {
				f.Fatal(err)
			}
		}
	}
}

func FuzzCheckVXLAN(f *testing.F) {
	addSeeds(f, vxlanSeeds())
	f.Fuzz(func(t *testing.T, b []byte) {
		b = exact(b)
		err := CheckVXLAN(b)
		if err != nil {
			if len(b) >= VXLANHeaderLen && b[0] == VXLANFlagI && b[1]|b[2]|b[3]|b[7] == 0 {
				t.Fatalf("canonical header % x rejected: %v", b[:8], err)
			}
			return
		}
		vni := VXLAN(b).VNI()
		if len(b) < VXLANHeaderLen || b[0]&VXLANFlagI == 0 || vni > MaxVNI || len(VXLAN(b).Payload()) != len(b)-VXLANHeaderLen {
			t.Fatalf("accepted % x as vni %#x", b, vni)
		}
		if b[0] == VXLANFlagI {
			// Without GBP only the canonical header is accepted, and we re-encode it exactly.
			var h [VXLANOverhead]byte
			EncapVXLAN(h[:], VXLANOverhead, vni, make([]byte, 6), make([]byte, 6), EtherTypeIPv4)
			if !bytes.Equal(h[:VXLANHeaderLen], b[:VXLANHeaderLen]) {
				t.Fatalf("accepted % x, re-encoded % x", b[:8], h[:VXLANHeaderLen])
			}
		}
	})
}

func FuzzDecapVXLAN(f *testing.F) {
	addSeeds(f, vxlanSeeds())
	f.Fuzz(func(t *testing.T, b []byte) {
		b = exact(b)
		for _, mac := range [][]byte{macB, nil} {
			vni, et, inner, err := DecapVXLAN(b, mac)
			if err != nil {
				continue
			}
			if len(inner) != len(b)-VXLANOverhead || vni != VXLAN(b).VNI() || et != Ethernet(b[8:]).EtherType() {
				t.Fatalf("decap of % x: vni %#x type %#x inner %d", b, vni, et, len(inner))
			}
			if mac != nil && !bytes.Equal(b[8:14], mac) && !(et == EtherTypeARP && bytes.Equal(b[8:14], BroadcastMAC[:])) {
				t.Fatalf("accepted dst mac %x", b[8:14])
			}
			if p, err := TrimIP(inner); err == nil {
				_ = FlowHash(p)
			}
		}
	})
}

func FuzzParseEthernet(f *testing.F) {
	var seeds [][]byte
	for _, s := range vxlanSeeds() {
		if len(s) >= VXLANHeaderLen {
			seeds = append(seeds, s[VXLANHeaderLen:])
		}
	}
	addSeeds(f, seeds)
	f.Fuzz(func(t *testing.T, b []byte) {
		b = exact(b)
		e, payload, err := ParseEthernet(b)
		if err != nil {
			if len(b) >= EthernetHeaderLen {
				t.Fatalf("rejected %d bytes", len(b))
			}
			return
		}
		_, _, _ = e.Dst(), e.Src(), e.EtherType()
		if len(payload) != len(b)-EthernetHeaderLen {
			t.Fatalf("payload %d of %d", len(payload), len(b))
		}
	})
}

func FuzzValidateIP(f *testing.F) {
	addSeeds(f, ipSeeds())
	f.Fuzz(func(t *testing.T, b []byte) {
		b = exact(b)
		_ = FlowHash(b)
		p, err := TrimIP(b)
		if (err == nil) != (ValidateIP(b) == nil) {
			t.Fatalf("TrimIP and ValidateIP disagree")
		}
		if err != nil {
			return
		}
		switch IPVersion(p) {
		case 4:
			h := IPv4(p)
			if h.HeaderLength() < IPv4MinimumSize || int(h.TotalLength()) != len(p) || h.HeaderLength() > len(p) {
				t.Fatalf("accepted bad IPv4 header % x", p)
			}
			_, _, _ = h.Payload(), h.SrcAddr(), h.IsChecksumValid()
			var tcp TCP
			if pl := h.Payload(); len(pl) >= TCPMinimumSize {
				tcp = TCP(pl)
				_, _ = tcp.Options(), tcp.Payload()
			}
		case 6:
			h := IPv6(p)
			if IPv6MinimumSize+int(h.PayloadLength()) != len(p) {
				t.Fatalf("accepted bad IPv6 header % x", p)
			}
			_ = h.Payload()
		default:
			t.Fatalf("accepted version %d", IPVersion(p))
		}
	})
}

func FuzzICMPError(f *testing.F) {
	addSeeds(f, ipSeeds())
	f.Fuzz(func(t *testing.T, b []byte) {
		b = exact(b)
		out := make([]byte, 1500)
		var n int
		var err error
		if IPVersion(b) == 6 {
			n, err = ICMPv6PacketTooBig(out, router6, b, 1280)
		} else {
			n, err = ICMPv4FragNeeded(out, router4, b, 1400)
		}
		if err != nil {
			return
		}
		p, verr := TrimIP(out[:n])
		if verr != nil || len(p) != n {
			t.Fatalf("built an invalid packet (%v): % x", verr, out[:n])
		}
		orig, _ := TrimIP(b)
		var quote []byte
		if IPVersion(p) == 4 {
			if !IPv4(p).IsChecksumValid() || ICMPv4(p[20:]).CalculateChecksum() != ICMPv4(p[20:]).Checksum() {
				t.Fatalf("bad checksums")
			}
			quote = ICMPv4(p[20:]).Payload()
		} else {
			quote = ICMPv6(p[40:]).Payload()
		}
		if !bytes.HasPrefix(orig, quote) || len(quote) < min(len(orig), 28) {
			t.Fatalf("quote is not a prefix of the packet")
		}
	})
}

func FuzzParseARP(f *testing.F) {
	vtep := netip.MustParseAddr("198.19.2.0")
	req := arpRequest(vtep)
	reply := bytes.Clone(req)
	reply[7] = ARPOpReply
	seeds := [][]byte{req, reply, req[:27], arpRequest(ip4b), {}, make([]byte, 28)}
	addSeeds(f, seeds)
	f.Fuzz(func(t *testing.T, b []byte) {
		b = exact(b)
		a, err := ParseARP(b)
		if err == nil {
			_, _, _, _ = a.SenderMAC(), a.SenderIP(), a.TargetMAC(), a.TargetIP()
		}
		c := bytes.Clone(b)
		if err := AnswerARP(c, macB, vtep); err == nil {
			r := ARP(c)
			if r.Op() != ARPOpReply || !bytes.Equal(r.SenderMAC(), macB) || !bytes.Equal(r.TargetMAC(), b[8:14]) {
				t.Fatalf("bad reply % x to % x", c, b)
			}
		} else if !bytes.Equal(c, b) {
			t.Fatalf("refused request modified")
		}
	})
}

func FuzzChecksum(f *testing.F) {
	f.Add([]byte{}, uint32(0))
	f.Add([]byte{0xff}, uint32(0xffffffff))
	f.Add(bytes.Repeat([]byte{0xff}, 127), uint32(0xffff))
	f.Add(udp4(200, ip4a, ip4b), uint32(12345))
	f.Fuzz(func(t *testing.T, b []byte, initial uint32) {
		b = exact(b)
		if got, want := Checksum(b, initial), refChecksum(b, initial); got != want && !(got^want == 0xffff && (got == 0 || want == 0)) {
			t.Fatalf("Checksum(% x, %#x): got %#04x, want %#04x", b, initial, got, want)
		}
	})
}
