package encap

import (
	"strconv"
	"testing"
)

var benchSizes = []int{64, 512, 1400, 9000}

// benchPacket returns a buffer with VXLANOverhead of headroom followed by an
// IPv4/UDP packet of total length size.
func benchPacket(size int) []byte {
	buf := make([]byte, VXLANOverhead+size)
	copy(buf[VXLANOverhead:], udp4(size, ip4a, ip4b))
	return buf
}

func reportPPS(b *testing.B) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N)/s, "pkts/s")
	}
}

// BenchmarkEncap: write VXLAN + inner Ethernet in front of the packet, in place.
func BenchmarkEncap(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(strconv.Itoa(size), func(b *testing.B) {
			buf := benchPacket(size)
			b.ReportAllocs()
			b.SetBytes(int64(size))
			for b.Loop() {
				EncapVXLAN(buf, VXLANOverhead, 1, macB, macA, EtherTypeIPv4)
			}
			reportPPS(b)
		})
	}
}

// BenchmarkEncapWithPort: what the TUN→UDP path does per packet: flow hash,
// source port and encap.
func BenchmarkEncapWithPort(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(strconv.Itoa(size), func(b *testing.B) {
			buf := benchPacket(size)
			var sink uint16
			b.ReportAllocs()
			b.SetBytes(int64(size))
			for b.Loop() {
				sink += SourcePort(FlowHash(buf[VXLANOverhead:]), 0, 0)
				EncapVXLAN(buf, VXLANOverhead, 1, macB, macA, EtherTypeIPv4)
			}
			_ = sink
			reportPPS(b)
		})
	}
}

// BenchmarkDecap: validate VXLAN, inner Ethernet (our MAC) and the inner IP
// packet, returning it as a sub-slice.
func BenchmarkDecap(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(strconv.Itoa(size), func(b *testing.B) {
			buf := benchPacket(size)
			EncapVXLAN(buf, VXLANOverhead, 1, macB, macA, EtherTypeIPv4)
			b.ReportAllocs()
			b.SetBytes(int64(size))
			for b.Loop() {
				_, _, inner, err := DecapVXLAN(buf, macB)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := TrimIP(inner); err != nil {
					b.Fatal(err)
				}
			}
			reportPPS(b)
		})
	}
}

// BenchmarkDecapUDPLegacy: the legacy UDP receive check (TrimIP on the
// whole datagram).
func BenchmarkDecapUDPLegacy(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(strconv.Itoa(size), func(b *testing.B) {
			pkt := udp4(size, ip4a, ip4b)
			b.ReportAllocs()
			b.SetBytes(int64(size))
			for b.Loop() {
				if _, err := TrimIP(pkt); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkChecksum(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(strconv.Itoa(size), func(b *testing.B) {
			buf := benchPacket(size)[VXLANOverhead:]
			var sink uint16
			b.ReportAllocs()
			b.SetBytes(int64(size))
			for b.Loop() {
				sink += Checksum(buf, 0)
			}
			_ = sink
		})
	}
}

// BenchmarkChecksumAdd covers the sizes tun sums: a small segment, an
// MTU-sized packet and a 64 KiB TSO super-packet (the AVX2 path on amd64).
func BenchmarkChecksumAdd(b *testing.B) {
	for _, size := range []int{64, 1500, 65535} {
		buf := make([]byte, size)
		for i := range buf {
			buf[i] = byte(i*7) ^ 1 ^ byte(i>>8)
		}
		b.Run(strconv.Itoa(size), func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			var s uint64
			for b.Loop() {
				s += ChecksumAdd(buf, 0)
			}
			_ = s
		})
	}
}

func BenchmarkFlowHash(b *testing.B) {
	for _, tc := range []struct {
		name string
		pkt  []byte
	}{{"ipv4-udp", udp4(64, ip4a, ip4b)}, {"ipv6-udp", udp6(64, ip6a, ip6b)}} {
		b.Run(tc.name, func(b *testing.B) {
			var sink uint32
			b.ReportAllocs()
			for b.Loop() {
				sink += FlowHash(tc.pkt)
			}
			_ = sink
		})
	}
}

func BenchmarkICMPv4FragNeeded(b *testing.B) {
	orig := udp4(1500, ip4a, ip4b)
	out := make([]byte, 1500)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ICMPv4FragNeeded(out, router4, orig, 1450); err != nil {
			b.Fatal(err)
		}
	}
}

// TestZeroAllocs asserts that nothing on the hot path allocates, error paths
// included (drop reasons are preallocated sentinels).
func TestZeroAllocs(t *testing.T) {
	buf := benchPacket(1400)
	orig := udp4(1500, ip4a, ip4b)
	orig6 := udp6(1500, ip6a, ip6b)
	out := make([]byte, 1500)
	arp := arpRequest(router4)
	bad := []byte{0x0c, 0, 0, 0, 0, 0, 1, 0}
	for _, tc := range []struct {
		name string
		fn   func()
	}{
		{"EncapVXLAN", func() { EncapVXLAN(buf, VXLANOverhead, 1, macB, macA, EtherTypeIPv4) }},
		{"DecapVXLAN", func() { _, _, _, _ = DecapVXLAN(buf, macB) }},
		{"DecapVXLAN error", func() { _, _, _, _ = DecapVXLAN(bad, macB) }},
		{"CheckVXLAN", func() { _ = CheckVXLAN(buf) }},
		{"TrimIP", func() { _, _ = TrimIP(buf[VXLANOverhead:]) }},
		{"ValidateIP error", func() { _ = ValidateIP(bad) }},
		{"Checksum", func() { _ = Checksum(buf, 0) }},
		{"FlowHash", func() { _ = SourcePort(FlowHash(orig), 0, 0) + SourcePort(FlowHash(orig6), 0, 0) }},
		{"ICMPv4FragNeeded", func() { _, _ = ICMPv4FragNeeded(out, router4, orig, 1400) }},
		{"ICMPv6PacketTooBig", func() { _, _ = ICMPv6PacketTooBig(out, router6, orig6, 1280) }},
		{"AnswerARP", func() { _ = AnswerARP(arp, macB, router4) }},
	} {
		if n := testing.AllocsPerRun(100, tc.fn); n != 0 {
			t.Errorf("%s: got %v allocs/op, want 0", tc.name, n)
		}
	}
}
