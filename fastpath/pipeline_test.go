package fastpath

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vxtun/vxtun/config"
	"github.com/vxtun/vxtun/encap"
	"github.com/vxtun/vxtun/tun"
	"github.com/vxtun/vxtun/tun/tuntest"
)

// In-process pipeline: two forwarders back to back over fake TUN devices and
// a loopback UDP pair. Node 1 owns 198.19.1.0/24 and 2001:2:0:1::/64, node 2
// 198.19.2.0/24 and 2001:2:0:2::/64.

var (
	pod1   = netip.MustParseAddr("198.19.1.1")
	pod2   = netip.MustParseAddr("198.19.2.1")
	pod1v6 = netip.MustParseAddr("2001:2:0:1::1")
	pod2v6 = netip.MustParseAddr("2001:2:0:2::1")
	mac1   = net.HardwareAddr{0x0e, 0, 0, 0, 0, 1}
	mac2   = net.HardwareAddr{0x0e, 0, 0, 0, 0, 2}
)

var quietLog = slog.New(slog.DiscardHandler)

type pipe struct {
	a, b   *Forwarder
	da, db tun.Device
	cancel context.CancelFunc
	errs   chan error
}

// newPipe starts two forwarders, node 1 on da and node 2 on db.
func newPipe(t testing.TB, backend config.Backend, mtu int, da, db tun.Device) *pipe {
	return newPipeOn(t, netip.MustParseAddr("127.0.0.1"), backend, mtu, da, db)
}

// newPipeOn is newPipe with the underlay on loopback address lo.
func newPipeOn(t testing.TB, lo netip.Addr, backend config.Backend, mtu int, da, db tun.Device) *pipe {
	t.Helper()
	return newPipeWith(t, lo, backend, mtu, da, db, nil)
}

// newPipeWith is newPipeOn with both forwarders' Config changed by tweak
// (if not nil).
func newPipeWith(t testing.TB, lo netip.Addr, backend config.Backend, mtu int, da, db tun.Device, tweak func(*Config)) *pipe {
	t.Helper()
	pa, pb := freeUDPPort(t, lo), freeUDPPort(t, lo)
	mk := func(port uint16, mac net.HardwareAddr, vtep string, d tun.Device) *Forwarder {
		v := netip.MustParseAddr(vtep)
		cfg := Config{
			Backend: backend, VNI: 1, ListenAddr: netip.AddrPortFrom(lo, port),
			VtepMAC: mac, VtepIP: v, UnderlayMTU: mtu, Logger: quietLog,
			Subnets: []netip.Prefix{netip.PrefixFrom(v, 24),
				netip.MustParsePrefix(fmt.Sprintf("2001:2:0:%d::/64", v.As4()[2]))},
		}
		if tweak != nil {
			tweak(&cfg)
		}
		f, err := New(cfg, []tun.Device{d})
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		return f
	}
	p := &pipe{errs: make(chan error, 2), da: da, db: db}
	p.a = mk(pa, mac1, "198.19.1.0", da)
	p.b = mk(pb, mac2, "198.19.2.0", db)
	peer := func(name string, port uint16, mac net.HardwareAddr, n int) config.Peer {
		return config.Peer{
			Name: name, PublicIP: lo, Port: port, Backend: backend, VNI: 1, VtepMAC: mac,
			Subnets: []netip.Prefix{
				netip.MustParsePrefix(fmt.Sprintf("198.19.%d.0/24", n)),
				netip.MustParsePrefix(fmt.Sprintf("2001:2:0:%d::/64", n)),
			},
		}
	}
	if err := p.a.SetPeers([]config.Peer{peer("node2", pb, mac2, 2)}); err != nil {
		t.Fatal(err)
	}
	if err := p.b.SetPeers([]config.Peer{peer("node1", pa, mac1, 1)}); err != nil {
		t.Fatal(err)
	}
	return p.run()
}

// run starts both forwarders until p.stop.
func (p *pipe) run() *pipe {
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	for _, f := range []*Forwarder{p.a, p.b} {
		go func() { p.errs <- f.Run(ctx) }()
	}
	return p
}

// stop ends both forwarders and closes the fake devices.
func (p *pipe) stop(t testing.TB) {
	t.Helper()
	p.cancel()
	for range 2 {
		if err := <-p.errs; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
	p.da.Close()
	p.db.Close()
}

func recvN(t *testing.T, c chan []byte, n int) [][]byte {
	t.Helper()
	var got [][]byte
	timeout := time.After(10 * time.Second)
	for len(got) < n {
		select {
		case p := <-c:
			got = append(got, p)
		case <-timeout:
			t.Fatalf("received %d packets, want %d", len(got), n)
		}
	}
	return got
}

func expectNone(t *testing.T, c chan []byte, what string) {
	t.Helper()
	select {
	case p := <-c:
		t.Fatalf("%s: got unexpected packet % x", what, p[:min(len(p), 40)])
	case <-time.After(100 * time.Millisecond):
	}
}

func TestPipelineBackToBack(t *testing.T) {
	defer goleak.VerifyNone(t)
	for _, backend := range []config.Backend{config.BackendVXLAN, config.BackendUDP} {
		for _, lo := range []string{"127.0.0.1", "::1"} {
			t.Run(string(backend)+"/"+lo, func(t *testing.T) { testPipeline(t, netip.MustParseAddr(lo), backend) })
		}
	}
}

func testPipeline(t *testing.T, lo netip.Addr, backend config.Backend) {
	da, db := tuntest.New(tuntest.Config{Name: "tt1"}), tuntest.New(tuntest.Config{Name: "tt2"})
	ca, cb := da.Outbound, db.Outbound
	inject := func(d *tuntest.Device, pkts [][]byte) {
		for _, pkt := range pkts {
			if err := d.Inject(pkt); err != nil {
				t.Fatal(err)
			}
		}
	}
	p := newPipeOn(t, lo, backend, 1500, da, db)
	defer p.stop(t)
	maxInner := 1500 - config.Overhead(backend, lo.Is6())

	// A → B: a batch of equal-size segments (one GSO run), then mixed sizes;
	// B → A: IPv6. Every packet arrives unchanged and in order.
	var sent [][]byte
	var batch [][]byte
	for i := range 64 {
		batch = append(batch, udp4Packet(pod1, pod2, maxInner, uint32(i), true))
	}
	inject(da, batch)
	sent = append(sent, batch...)
	batch = nil
	for i, size := range []int{28, 100, 1000, maxInner, 1000, 1000, 999, 60} {
		batch = append(batch, udp4Packet(pod1, pod2.Next(), size, uint32(100+i), false))
	}
	inject(da, batch)
	sent = append(sent, batch...)
	got := recvN(t, cb, len(sent))
	for i := range sent {
		if !bytes.Equal(got[i], sent[i]) {
			t.Fatalf("packet %d: got % x..., want % x...", i, got[i][:min(len(got[i]), 32)], sent[i][:32])
		}
	}
	var sent6 [][]byte
	for i := range 10 {
		sent6 = append(sent6, udp6Packet(pod2v6, pod1v6, 48+i*100, uint32(i)))
	}
	inject(db, sent6)
	got = recvN(t, ca, len(sent6))
	for i := range sent6 {
		if !bytes.Equal(got[i], sent6[i]) {
			t.Fatalf("v6 packet %d differs", i)
		}
	}

	// No route → ICMP net unreachable back into A's TUN, from A's own
	// overlay address (<subnet>.0) to the sender.
	vtepA := netip.MustParseAddr("198.19.1.0")
	nowhere := netip.MustParseAddr("198.19.9.9")
	orig := udp4Packet(pod1, nowhere, 100, 7, false)
	inject(da, [][]byte{orig})
	icmp := recvN(t, ca, 1)[0]
	checkICMPv4(t, icmp, vtepA, pod1, encap.ICMPv4CodeNetUnreachable, 0, orig)

	// Too big with DF → frag-needed carrying the MTU that fits; without DF
	// → dropped silently; IPv6 → packet too big.
	big := udp4Packet(pod1, pod2, maxInner+1, 8, true)
	inject(da, [][]byte{big})
	icmp = recvN(t, ca, 1)[0]
	checkICMPv4(t, icmp, vtepA, pod1, encap.ICMPv4CodeFragNeeded, maxInner, big)
	noDF := udp4Packet(pod1, pod2, 2*maxInner, 9, false)
	inject(da, [][]byte{noDF})
	frags := recvN(t, cb, 3)
	checkFragments(t, frags, noDF, maxInner)
	sent = append(sent, frags...)
	big6 := udp6Packet(pod1v6, pod2v6, maxInner+1, 10)
	inject(da, [][]byte{big6})
	icmp = recvN(t, ca, 1)[0]
	if icmp[0]>>4 != 6 || icmp[6] != encap.ProtocolICMPv6 || icmp[40] != encap.ICMPv6TypePacketTooBig ||
		int(binary.BigEndian.Uint32(icmp[44:48])) != maxInner || encap.IPv6(icmp).DstAddr() != pod1v6 ||
		encap.IPv6(icmp).SrcAddr() != netip.MustParseAddr("2001:2:0:1::") {
		t.Fatalf("ipv6 too big: got % x, want packet too big mtu %d from 2001:2:0:1:: to %s", icmp[:48], maxInner, pod1v6)
	}
	expectNone(t, cb, "too-big DF packets")

	waitStats(t, func() bool { // A counts a batch after sending it
		return p.b.Stats().RxPackets == uint64(len(sent)) && p.a.Stats().TxPackets == uint64(len(sent))
	})
	sa, sb := p.a.Stats(), p.b.Stats()
	if sa.TxPackets != uint64(len(sent)) || sb.RxPackets != uint64(len(sent)) {
		t.Errorf("A tx %d, B rx %d, want %d each", sa.TxPackets, sb.RxPackets, len(sent))
	}
	var innerBytes uint64
	for _, s := range sent {
		innerBytes += uint64(len(s))
	}
	if sa.TxBytes != innerBytes || sb.RxBytes != innerBytes {
		t.Errorf("A tx bytes %d, B rx bytes %d, want %d each", sa.TxBytes, sb.RxBytes, innerBytes)
	}
	if sa.Drops[DropNoRoute] != 1 || sa.Drops[DropTooBig] != 2 || sa.PeerDrops["node2"][DropTooBig] != 2 {
		t.Errorf("A drops %v, peer drops %v; want no_route 1, too_big 2 (both for node2)", sa.Drops, sa.PeerDrops)
	}
	if len(sb.Drops) != 0 {
		t.Errorf("B drops %v, want none", sb.Drops)
	}
}

// checkFragments checks that frags are orig cut into IPv4 fragments of at
// most maxInner bytes, with valid headers, in order.
func checkFragments(t *testing.T, frags [][]byte, orig []byte, maxInner int) {
	t.Helper()
	var payload []byte
	for i, fr := range frags {
		ip := encap.IPv4(fr)
		last := i == len(frags)-1
		if len(fr) > maxInner || int(ip.TotalLength()) != len(fr) || !ip.IsChecksumValid() ||
			ip.MF() == last || ip.FragmentOffset() != len(payload) || ip.ID() != encap.IPv4(orig).ID() {
			t.Fatalf("fragment %d: len %d total %d csum ok %v MF %v offset %d, want ≤ %d bytes, MF %v, offset %d",
				i, len(fr), ip.TotalLength(), ip.IsChecksumValid(), ip.MF(), ip.FragmentOffset(), maxInner, !last, len(payload))
		}
		payload = append(payload, fr[20:]...)
	}
	if !bytes.Equal(payload, orig[20:]) {
		t.Fatalf("reassembled payload differs from the original")
	}
}

func waitStats(t *testing.T, ok func() bool) {
	t.Helper()
	for i := 0; i < 200 && !ok(); i++ {
		time.Sleep(10 * time.Millisecond)
	}
}

func checkICMPv4(t *testing.T, pkt []byte, src, dst netip.Addr, code uint8, mtu int, orig []byte) {
	t.Helper()
	ip := encap.IPv4(pkt)
	if len(pkt) < 28+28 || ip.Version() != 4 || ip.Protocol() != encap.ProtocolICMPv4 {
		t.Fatalf("got % x, want an ICMPv4 packet", pkt[:min(len(pkt), 40)])
	}
	m := encap.ICMPv4(pkt[20:])
	if ip.SrcAddr() != src || ip.DstAddr() != dst || m.Type() != encap.ICMPv4TypeDestUnreachable || m.Code() != code || int(m.MTU()) != mtu {
		t.Fatalf("got ICMP %s→%s type %d code %d mtu %d, want %s→%s type 3 code %d mtu %d",
			ip.SrcAddr(), ip.DstAddr(), m.Type(), m.Code(), m.MTU(), src, dst, code, mtu)
	}
	if encap.Checksum(pkt[20:], 0) != 0xffff && encap.Checksum(pkt[20:], 0) != 0 {
		t.Errorf("ICMP checksum does not verify")
	}
	if !bytes.Equal(m.Payload()[:28], orig[:28]) {
		t.Errorf("ICMP quotes % x, want % x", m.Payload()[:28], orig[:28])
	}
}

// countSink counts packets and bytes and wakes a waiter.
type countSink struct {
	pkts, bytes atomic.Uint64
	kick        chan struct{}
}

func newCountSink() *countSink { return &countSink{kick: make(chan struct{}, 1)} }

func (c *countSink) write(bufs [][]byte, off int) {
	var n uint64
	for _, b := range bufs {
		n += uint64(len(b) - off)
	}
	c.bytes.Add(n)
	c.pkts.Add(uint64(len(bufs)))
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// TestPipelineZeroAllocs asserts that forwarding a batch end to end (TUN read,
// route, encap, GSO send, GRO receive, decap, TUN write) allocates nothing.
// With BusyPoll the inbound side is read by the spinner, which must not
// allocate either.
func TestPipelineZeroAllocs(t *testing.T) {
	for _, tc := range []struct {
		backend  config.Backend
		busyPoll bool
	}{{config.BackendVXLAN, false}, {config.BackendUDP, false}, {config.BackendVXLAN, true}} {
		name := string(tc.backend)
		if tc.busyPoll {
			name += "/busy-poll"
		}
		t.Run(name, func(t *testing.T) {
			sink := newCountSink()
			da := newFakeDev("fake1", func([][]byte, int) {})
			p := newPipeWith(t, netip.MustParseAddr("127.0.0.1"), tc.backend, 1500, da, newFakeDev("fake2", sink.write),
				func(c *Config) { c.BusyPoll = tc.busyPoll })
			defer p.stop(t)
			var batch [][]byte
			for i := range 64 {
				batch = append(batch, udp4Packet(pod1, pod2, 1000, uint32(i), true))
			}
			if allocs := batchAllocs(t, da, sink, batch); allocs != 0 {
				t.Errorf("got %.1f allocations per batch of %d packets, want 0", allocs, len(batch))
			}
		})
	}
}

// batchAllocs feeds batch to da over and over, each time until sink has
// seen every packet, and returns the allocations per batch.
func batchAllocs(t *testing.T, da *fakeDev, sink *countSink, batch [][]byte) float64 {
	t.Helper()
	timer := time.NewTimer(time.Hour)
	var want uint64
	run := func() {
		want += uint64(len(batch))
		da.reads <- batch
		timer.Reset(5 * time.Second)
		for sink.pkts.Load() < want {
			select {
			case <-sink.kick:
			case <-timer.C:
				t.Fatalf("received %d packets, want %d", sink.pkts.Load(), want)
			}
		}
	}
	run() // warm up
	return testing.AllocsPerRun(50, run)
}

// BenchmarkPipeline measures the whole in-process pipeline: a generator
// feeds node 1's fake TUN as fast as node 2's fake TUN drains it (at most
// a few batches in flight), over loopback UDP with GSO/GRO. One op is one
// inner packet of the given size.
func BenchmarkPipeline(b *testing.B) {
	for _, bc := range []struct {
		backend config.Backend
		size    int
	}{
		{config.BackendVXLAN, 64},
		{config.BackendVXLAN, 1400},
		{config.BackendUDP, 1400},
	} {
		b.Run(fmt.Sprintf("%s/%dB", bc.backend, bc.size), func(b *testing.B) {
			sink := newCountSink()
			da := newFakeDev("fake1", func([][]byte, int) {})
			p := newPipe(b, bc.backend, 1500, da, newFakeDev("fake2", sink.write))
			defer p.stop(b)
			const batchLen = 64
			var batch [][]byte
			for i := range batchLen {
				if bc.size < 32 {
					batch = append(batch, udp4Packet(pod1, pod2, 28, uint32(i), true))
				} else {
					batch = append(batch, udp4Packet(pod1, pod2, bc.size, uint32(i), true))
				}
			}
			const window = 4 * batchLen
			timer := time.NewTimer(time.Hour)
			b.SetBytes(int64(bc.size))
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cpuTime()
			start := time.Now()
			var sent uint64
			for sent < uint64(b.N) {
				for sent-sink.pkts.Load() > window {
					timer.Reset(50 * time.Millisecond)
					select {
					case <-sink.kick:
					case <-timer.C: // a lost datagram: move on
						sent = sink.pkts.Load() + window
					}
				}
				da.reads <- batch
				sent += batchLen
			}
			timer.Reset(time.Second)
			for sink.pkts.Load() < sent {
				select {
				case <-sink.kick:
					continue
				case <-timer.C:
				}
				break
			}
			el := time.Since(start).Seconds()
			cpu := (cpuTime() - cpu0).Seconds()
			b.StopTimer()
			got := sink.pkts.Load()
			b.ReportMetric(float64(got)/el, "pkts/s")
			b.ReportMetric(float64(sink.bytes.Load())*8/el/1e9, "Gbit/s")
			// Per core: both nodes' user+system CPU time (the kernel's UDP
			// work included), so this is the cost of one packet crossing
			// sender and receiver.
			b.ReportMetric(float64(got)/cpu, "pkts/cpu-s")
			b.ReportMetric(float64(sink.bytes.Load())*8/cpu/1e9, "Gbit/cpu-s")
			b.ReportMetric(100*float64(sent-min(got, sent))/float64(sent), "loss%")
		})
	}
}

// TestOutboundGroupsByPeer interleaves packets to three peers in one TUN
// batch: each peer receives exactly its packets, in order, with its own VTEP
// MAC (the batch is regrouped by peer and sent as GSO runs).
func TestOutboundGroupsByPeer(t *testing.T) {
	for _, backend := range []config.Backend{config.BackendVXLAN, config.BackendUDP} {
		t.Run(string(backend), func(t *testing.T) {
			lo := netip.MustParseAddr("127.0.0.1")
			dev := newFakeDev("fake", func([][]byte, int) {})
			f, err := New(Config{Backend: backend, VNI: 1, ListenAddr: netip.AddrPortFrom(lo, freeUDPPort(t, lo)),
				VtepMAC: mac1, VtepIP: netip.MustParseAddr("198.19.1.0"), Subnets: []netip.Prefix{netip.MustParsePrefix("198.19.1.0/24")}},
				[]tun.Device{dev})
			if err != nil {
				t.Fatal(err)
			}
			var peers []config.Peer
			var socks []*net.UDPConn
			for i := range 3 {
				ip := netip.AddrFrom4([4]byte{127, 0, 0, byte(2 + i)})
				c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 0)))
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				socks = append(socks, c)
				peers = append(peers, config.Peer{
					Name: fmt.Sprintf("p%d", i), PublicIP: ip, Port: uint16(c.LocalAddr().(*net.UDPAddr).Port),
					Backend: backend, VNI: 1, VtepMAC: net.HardwareAddr{0x0e, 0, 0, 0, 1, byte(i)},
					Subnets: []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 19, byte(10 + i), 0}), 24)},
				})
			}
			if err := f.SetPeers(peers); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- f.Run(ctx) }()
			defer func() {
				cancel()
				if err := <-done; err != nil {
					t.Error(err)
				}
				dev.Close()
			}()

			var batch [][]byte
			want := make([][]uint32, 3)
			for i := range 40 {
				p := i % 3
				if i%7 == 0 {
					p = 1 // uneven runs
				}
				size := 1000
				if i == 39 {
					size = 500
				}
				batch = append(batch, udp4Packet(pod1, netip.AddrFrom4([4]byte{198, 19, byte(10 + p), 1}), size, uint32(i), false))
				want[p] = append(want[p], uint32(i))
			}
			dev.reads <- batch
			off := 0
			if backend == config.BackendVXLAN {
				off = encap.VXLANOverhead
			}
			buf := make([]byte, 2000)
			for p, c := range socks {
				for k, seq := range want[p] {
					_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
					n, err := c.Read(buf)
					if err != nil {
						t.Fatalf("peer %d packet %d: %v", p, k, err)
					}
					d := buf[:n]
					if off > 0 && [6]byte(d[8:14]) != [6]byte(peers[p].VtepMAC) {
						t.Errorf("peer %d: inner dst MAC % x, want %s", p, d[8:14], peers[p].VtepMAC)
					}
					if got := binary.BigEndian.Uint32(d[off+28:]); got != seq {
						t.Fatalf("peer %d packet %d: seq %d, want %d (per-peer order)", p, k, got, seq)
					}
				}
			}
			waitStats(t, func() bool { return f.Stats().TxPackets == 40 })
			if s := f.Stats(); s.TxPackets != 40 || len(s.Drops) != 0 {
				t.Errorf("tx %d drops %v, want 40 and none", s.TxPackets, s.Drops)
			}
		})
	}
}

// cpuTime is the process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
