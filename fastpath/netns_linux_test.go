package fastpath

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vxtun/vxtun/config"
	"github.com/vxtun/vxtun/encap"
	"github.com/vxtun/vxtun/hostnet"
	"github.com/vxtun/vxtun/internal/flannelvxlan"
	"github.com/vxtun/vxtun/internal/nettest"
	"github.com/vxtun/vxtun/tun"
)

// Tests on real parts: namespaces joined by a veth underlay (198.18.0.1 and
// .2), a real TUN per vxtun node with the forwarder running in-process, each
// node's "pod" address 198.19.N.1/32 on lo, TUN address 198.19.N.0/32 and the
// route 198.19.0.0/16 via the TUN.

// transferSize is the TCP transfer per direction: 64 MiB, or less under the
// race detector (see race_test.go).
var transferSize = int64(64 << 20)

func init() {
	if raceEnabled {
		transferSize = raceTransferSize
	}
}

type vnode struct {
	ns    *nettest.NS
	n     int
	under netip.Addr
	mac   net.HardwareAddr
	f     *Forwarder
	done  chan error
}

func peerFor(n int, under netip.Addr, backend config.Backend, port uint16) config.Peer {
	return config.Peer{
		Name: fmt.Sprintf("node%d", n), PublicIP: under, Port: port, Backend: backend,
		VNI: 1, Subnets: []netip.Prefix{netip.PrefixFrom(nettest.VtepAddr(n), 24)}, VtepMAC: nettest.NodeMAC(n),
	}
}

// prepNS disables IPv6 (no stray router solicitations into the TUN) and puts
// the pod address on lo.
func prepNS(t *testing.T, ns *nettest.NS, n int) {
	t.Helper()
	if err := ns.Do(func() error {
		return nettest.SetSysctl("net/ipv6/conf/all/disable_ipv6", "1")
	}); err != nil {
		t.Fatal(err)
	}
	ns.Run("ip", "addr", "add", nettest.PodAddr(n).String()+"/32", "dev", "lo")
}

// startVXTUN opens a TUN with two queues in ns, configures it and runs a
// forwarder there until the test ends.
// tweak, if given, changes the forwarder's Config before New.
func startVXTUN(t *testing.T, ns *nettest.NS, n int, under netip.Addr, backend config.Backend, port uint16, underMTU int, peers []config.Peer, tweak ...func(*Config)) *vnode {
	t.Helper()
	prepNS(t, ns, n)
	v := &vnode{ns: ns, n: n, under: under, mac: nettest.NodeMAC(n), done: make(chan error, 1)}
	var m *tun.Multi
	cfg := Config{
		Backend: backend, VNI: 1, ListenAddr: netip.AddrPortFrom(under, port),
		VtepMAC: v.mac, VtepIP: nettest.VtepAddr(n), UnderlayMTU: underMTU, Subnets: []netip.Prefix{nettest.NodeSubnet(n)},
	}
	for _, fn := range tweak {
		fn(&cfg)
	}
	err := ns.Do(func() error {
		var err error
		// As the dataplane opens it: a busy-polled or pinned TUN stays
		// out of the runtime poller.
		m, err = tun.Open("vxtun0", 2, tun.Options{Unpolled: cfg.Unpolled(), LocalCPUs: cfg.LocalCPUs})
		if err != nil {
			return err
		}
		tunMTU := int(config.TunMTUFor(config.WireMTU(1500), backend, false))
		if err := hostnet.New().ConfigureLink(hostnet.Link{Name: "vxtun0", MTU: tunMTU, TxQueueLen: tun.TxQueueLen,
			Addrs:  []netip.Prefix{netip.PrefixFrom(nettest.VtepAddr(n), 32)},
			Routes: []netip.Prefix{netip.MustParsePrefix("198.19.0.0/16")}}); err != nil {
			m.Close()
			return err
		}
		// As the dataplane does: ICMP errors come from the TUN's own address.
		if err := nettest.SetSysctl("net/ipv4/conf/vxtun0/accept_local", "1"); err != nil {
			m.Close()
			return err
		}
		v.f, err = New(cfg, m.Devices())
		if err != nil {
			m.Close()
		}
		return err
	})
	if err != nil {
		t.Fatalf("start vxtun node %d: %v", n, err)
	}
	if err := v.f.SetPeers(peers); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { v.done <- v.f.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-v.done; err != nil {
			t.Errorf("node %d: Run: %v", n, err)
		}
		m.Close()
		t.Logf("node %d stats: %+v", n, v.f.Stats())
	})
	return v
}

// ping pings dst from ns (source src) and returns a summary of the RTTs.
func ping(t *testing.T, ns *nettest.NS, src, dst netip.Addr, count int) string {
	t.Helper()
	nettest.RequireCommand(t, "ping")
	r, err := nettest.Ping(context.Background(), ns, src, dst, "-c", fmt.Sprint(count), "-i", "0.05", "-W", "2")
	if err != nil {
		t.Fatalf("ping %s → %s: %v", src, dst, err)
	}
	if len(r.RTTs) == 0 {
		t.Fatalf("ping %s → %s: no rtt in %+v", src, dst, r)
	}
	rtts := slices.Sorted(slices.Values(r.RTTs))
	pct := func(p float64) time.Duration { return rtts[min(len(rtts)-1, int(p*float64(len(rtts))))] }
	return fmt.Sprintf("rtt min/avg/max %v/%v/%v, p50 %v p99 %v (%d probes)", r.Min, r.Avg, r.Max, pct(0.5), pct(0.99), len(rtts))
}

// transfer sends size pseudo-random bytes over TCP from ns `from` to dst:port
// in ns `to`, checks length and SHA-256 on both ends and returns Gbit/s.
// during, if set, runs while the transfer is in flight.
func transfer(t *testing.T, from, to *nettest.NS, src, dst netip.Addr, port int, size int64, during func(stop <-chan struct{})) float64 {
	t.Helper()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	if during != nil {
		wg.Add(1)
		go func() { defer wg.Done(); during(stop) }()
	}
	x := nettest.Transfer{Src: src, Dst: dst, Port: port, Size: size, Seed: uint64(port)}
	r, err := x.Send(context.Background(), from, to)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	return r.Gbps()
}

// TestTwoNodesVXLAN is real-parts test 1 (and, with SetPeers churning during
// a transfer, the Go-level half of test 6): ping and TCP both ways.
func TestTwoNodesVXLAN(t *testing.T) {
	testTwoNodes(t, config.BackendVXLAN, 0)
}

// TestTwoNodesUDP is real-parts test 3: legacy UDP mode.
func TestTwoNodesUDP(t *testing.T) {
	testTwoNodes(t, config.BackendUDP, 0)
}

func testTwoNodes(t *testing.T, backend config.Backend, port uint16) {
	h := nettest.NewTwoHosts(t)
	ua, ub := netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("198.18.0.2")
	peersA := []config.Peer{peerFor(2, ub, backend, port)}
	a := startVXTUN(t, h.A, 1, ua, backend, port, 1500, peersA)
	b := startVXTUN(t, h.B, 2, ub, backend, port, 1500, []config.Peer{peerFor(1, ua, backend, port)})

	t.Logf("ping 1→2: %s", ping(t, h.A, nettest.PodAddr(1), nettest.PodAddr(2), 20))
	t.Logf("ping 2→1: %s", ping(t, h.B, nettest.PodAddr(2), nettest.PodAddr(1), 20))

	// While 1→2 runs, node 1's peers are replaced again and again: with the
	// same peer, and with an extra peer coming and going.
	extra := peerFor(7, netip.MustParseAddr("198.18.0.7"), backend, port)
	churn := func(stop <-chan struct{}) {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
			peers := peersA
			if i%2 == 1 {
				peers = append(peers[:len(peers):len(peers)], extra)
			}
			if err := a.f.SetPeers(peers); err != nil {
				t.Errorf("SetPeers: %v", err)
				return
			}
		}
	}
	g := transfer(t, h.A, h.B, nettest.PodAddr(1), nettest.PodAddr(2), 5001, transferSize, churn)
	t.Logf("TCP 1→2: %d MiB verified, %.2f Gbit/s (peers swapped every 2 ms)", transferSize>>20, g)
	g = transfer(t, h.B, h.A, nettest.PodAddr(2), nettest.PodAddr(1), 5002, transferSize, nil)
	t.Logf("TCP 2→1: %d MiB verified, %.2f Gbit/s", transferSize>>20, g)

	for _, v := range []*vnode{a, b} {
		s := v.f.Stats()
		if len(s.Drops) != 0 {
			t.Errorf("node %d dropped %v, want nothing", v.n, s.Drops)
		}
		if s.TxPackets == 0 || s.RxPackets == 0 {
			t.Errorf("node %d: tx %d rx %d packets, want both > 0", v.n, s.TxPackets, s.RxPackets)
		}
	}
}

// kernelNode sets ns up as flannel sets up a kernel-vxlan node: flannel.1
// (VNI 1, nolearning, dstport port, own <subnet>.0/32) and, for the remote
// node rn, a permanent neighbour, an fdb entry and an onlink route.
func kernelNode(t *testing.T, ns *nettest.NS, n int, local netip.Addr, port uint16, rn int, remote netip.Addr, rmac net.HardwareAddr, extra ...string) {
	t.Helper()
	nettest.RequireCommand(t, "bridge")
	prepNS(t, ns, n)
	d := flannelvxlan.Device{Local: local, Port: port, MAC: nettest.NodeMAC(n),
		Subnet: netip.PrefixFrom(nettest.VtepAddr(n), 24), Extra: extra}
	for _, c := range d.Commands(flannelvxlan.Remote{Subnet: netip.PrefixFrom(nettest.VtepAddr(rn), 24),
		PublicIP: remote, VtepMAC: rmac}) {
		ns.Run(c...)
	}
}

// TestKernelVXLANInterop is real-parts test 2: vxtun ↔ a kernel vxlan node
// programmed like flannel's flannel.1, on 8472 and 4789 (and with GBP on, as
// flannel's GBP=true sets it), and with the kernel node's neighbour entry for
// vxtun removed (vxtun answers the ARP).
func TestKernelVXLANInterop(t *testing.T) {
	size := transferSize / 4
	for _, tc := range []struct {
		port  uint16
		extra []string
	}{{8472, nil}, {4789, nil}, {8472, []string{"gbp"}}} {
		port := tc.port
		t.Run(fmt.Sprint(port, tc.extra), func(t *testing.T) {
			h := nettest.NewTwoHosts(t)
			ua, ub := netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("198.18.0.2")
			a := startVXTUN(t, h.A, 1, ua, config.BackendVXLAN, port, 1500, []config.Peer{peerFor(2, ub, config.BackendVXLAN, port)})
			kernelNode(t, h.B, 2, ub, port, 1, ua, a.mac, tc.extra...)

			t.Logf("ping vxtun→kernel: %s", ping(t, h.A, nettest.PodAddr(1), nettest.PodAddr(2), 20))
			t.Logf("ping kernel→vxtun: %s", ping(t, h.B, nettest.PodAddr(2), nettest.PodAddr(1), 20))
			if len(tc.extra) > 0 {
				// With gbp the kernel puts the packet mark into the GBP policy
				// ID and sets the G flag: vxtun must accept it.
				if out, err := h.B.Try("ping", "-c", "3", "-i", "0.05", "-W", "2", "-m", "42", "-I", nettest.PodAddr(2).String(), nettest.PodAddr(1).String()); err != nil {
					t.Fatalf("ping with GBP policy 42: %v\n%s", err, out)
				}
			}
			g := transfer(t, h.A, h.B, nettest.PodAddr(1), nettest.PodAddr(2), 5001, size, nil)
			t.Logf("TCP vxtun→kernel: %d MiB verified, %.2f Gbit/s", size>>20, g)
			g = transfer(t, h.B, h.A, nettest.PodAddr(2), nettest.PodAddr(1), 5002, size, nil)
			t.Logf("TCP kernel→vxtun: %d MiB verified, %.2f Gbit/s", size>>20, g)

			// ARP path: no static neighbour for vxtun's VTEP address; the
			// kernel broadcasts its ARP request to the default fdb entry.
			h.B.Run("ip", "neigh", "del", nettest.VtepAddr(1).String(), "dev", "flannel.1")
			h.B.Run("bridge", "fdb", "append", "00:00:00:00:00:00", "dev", "flannel.1", "dst", ua.String(), "self", "permanent")
			t.Logf("ping kernel→vxtun via ARP: %s", ping(t, h.B, nettest.PodAddr(2), nettest.PodAddr(1), 5))
			neigh := h.B.Run("ip", "neigh", "show", nettest.VtepAddr(1).String(), "dev", "flannel.1")
			if !strings.Contains(neigh, a.mac.String()) {
				t.Errorf("kernel neighbour for %s: %q, want lladdr %s learnt by ARP", nettest.VtepAddr(1), neigh, a.mac)
			}
			g = transfer(t, h.B, h.A, nettest.PodAddr(2), nettest.PodAddr(1), 5003, size/4, nil)
			t.Logf("TCP kernel→vxtun after ARP: %.2f Gbit/s", g)
			if s := a.f.Stats(); len(s.Drops) != 0 {
				t.Errorf("vxtun dropped %v, want nothing", s.Drops)
			}
		})
	}
}

// TestVXLANDropReasons is real-parts test 4: datagrams crafted from a plain
// UDP socket in the peer's namespace. GBP bits are accepted; an unknown
// source, a wrong VNI, no I bit, a wrong inner MAC, a short datagram and an
// unknown flag are dropped and counted under their reason.
func TestVXLANDropReasons(t *testing.T) {
	h := nettest.NewTwoHosts(t)
	ua, ub := netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("198.18.0.2")
	a := startVXTUN(t, h.A, 1, ua, config.BackendVXLAN, 8472, 1500, []config.Peer{peerFor(2, ub, config.BackendVXLAN, 8472)})
	h.B.Run("ip", "addr", "add", "198.18.0.3/24", "dev", "ul0")

	var ln *net.UDPConn
	if err := h.A.Do(func() error {
		var err error
		ln, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(nettest.PodAddr(1), 7777)))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	frame := func(flags0, flags1 byte, policy uint16, vni uint32, dst net.HardwareAddr, tag string) []byte {
		inner := make([]byte, 28+len(tag))
		encap.IPv4(inner).Encode(&encap.IPv4Fields{TotalLength: uint16(len(inner)), TTL: 64, Protocol: encap.ProtocolUDP, Src: nettest.PodAddr(2), Dst: nettest.PodAddr(1)})
		encap.UDP(inner[20:]).Encode(&encap.UDPFields{SrcPort: 9, DstPort: 7777, Length: uint16(8 + len(tag))})
		copy(inner[28:], tag)
		b := make([]byte, encap.VXLANOverhead+len(inner))
		copy(b[encap.VXLANOverhead:], inner)
		encap.EncapVXLAN(b, encap.VXLANOverhead, vni, dst, nettest.NodeMAC(2), encap.EtherTypeIPv4)
		b[0], b[1] = flags0, flags1
		b[2], b[3] = byte(policy>>8), byte(policy)
		return b
	}
	send := func(from netip.Addr, b []byte) {
		t.Helper()
		if err := h.B.Do(func() error {
			c, err := net.DialUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(from, 0)), net.UDPAddrFromAddrPort(netip.AddrPortFrom(ua, 8472)))
			if err != nil {
				return err
			}
			defer c.Close()
			_, err = c.Write(b)
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	expect := func(tag string) {
		t.Helper()
		buf := make([]byte, 100)
		_ = ln.SetReadDeadline(time.Now().Add(3 * time.Second))
		n, err := ln.Read(buf)
		if err != nil || string(buf[:n]) != tag {
			t.Fatalf("pod received %q (%v), want %q", buf[:n], err, tag)
		}
	}
	wrongMAC := net.HardwareAddr{0x0e, 0x76, 0x78, 0, 0, 0x99}
	send(ub, frame(0x08, 0, 0, 1, a.mac, "plain"))
	expect("plain")
	send(ub, frame(0x88, 0x48, 0x1234, 1, a.mac, "gbp"))
	expect("gbp")
	send(netip.MustParseAddr("198.18.0.3"), frame(0x08, 0, 0, 1, a.mac, "unknown source"))
	send(ub, frame(0x08, 0, 0, 2, a.mac, "wrong vni"))
	send(ub, frame(0x00, 0, 0, 1, a.mac, "no i bit"))
	send(ub, frame(0x08, 0, 0, 1, wrongMAC, "wrong mac"))
	send(ub, frame(0x08, 0, 0, 1, a.mac, "short")[:12])
	send(ub, frame(0x0c, 0, 0, 1, a.mac, "bad flag"))
	send(ub, frame(0x08, 0, 0, 1, a.mac, "last"))
	expect("last")

	want := map[string]uint64{DropUnknownSource: 1, DropUnknownVNI: 1, DropNoIBit: 1, DropWrongMAC: 1, DropShort: 1, DropBadHeader: 1}
	// Each datagram comes from a socket of its own, so the SO_REUSEPORT
	// group spreads them over the workers: "last" may be counted before
	// another worker has handled the drops sent ahead of it.
	waitStats(t, func() bool {
		s := a.f.Stats()
		var dropped uint64
		for _, n := range s.Drops {
			dropped += n
		}
		return s.RxPackets == 3 && dropped >= uint64(len(want))
	})
	s := a.f.Stats()
	for r, n := range want {
		if s.Drops[r] != n {
			t.Errorf("drops[%s] = %d, want %d", r, s.Drops[r], n)
		}
		if r != DropUnknownSource && s.PeerDrops["node2"][r] != n {
			t.Errorf("peer node2 drops[%s] = %d, want %d", r, s.PeerDrops["node2"][r], n)
		}
	}
	if len(s.Drops) != len(want) {
		t.Errorf("drops %v, want exactly %v", s.Drops, want)
	}
	if s.RxPackets != 3 {
		t.Errorf("rx packets %d, want 3 (plain, gbp, last)", s.RxPackets)
	}
}

// TestTooBigDF is real-parts test 5: the underlay MTU (1400) is lower than
// the TUN MTU (1450) allows; a DF ping gets ICMP frag-needed with the MTU
// that fits (1350) and a TCP transfer still completes (PMTU discovery).
func TestTooBigDF(t *testing.T) {
	h := nettest.NewTwoHosts(t)
	ua, ub := netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("198.18.0.2")
	for _, ns := range []*nettest.NS{h.A, h.B} {
		ns.Run("ip", "link", "set", "ul0", "mtu", "1400")
	}
	a := startVXTUN(t, h.A, 1, ua, config.BackendVXLAN, 0, 1400, []config.Peer{peerFor(2, ub, config.BackendVXLAN, 0)})
	startVXTUN(t, h.B, 2, ub, config.BackendVXLAN, 0, 1400, []config.Peer{peerFor(1, ua, config.BackendVXLAN, 0)})

	// TCP first, so that it is TCP that meets the frag-needed errors.
	size := transferSize / 4
	g := transfer(t, h.A, h.B, nettest.PodAddr(1), nettest.PodAddr(2), 5001, size, nil)
	t.Logf("TCP 1→2 through PMTU: %d MiB verified, %.2f Gbit/s", size>>20, g)
	tcpTooBig := a.f.Stats().Drops[DropTooBig]
	if tcpTooBig == 0 {
		t.Errorf("TCP transfer: no too_big drops, want some (frag-needed sent back)")
	}

	nettest.RequireCommand(t, "ping")
	out, _ := h.A.Try("ping", "-c", "2", "-i", "0.2", "-W", "1", "-M", "do", "-s", "1400", "-I", nettest.PodAddr(1).String(), nettest.PodAddr(2).String())
	if !strings.Contains(out, "mtu = 1350") && !strings.Contains(out, "mtu=1350") {
		t.Fatalf("DF ping of 1428 bytes: want frag-needed with mtu 1350, got\n%s", out)
	}
	t.Logf("DF ping: %s", strings.TrimSpace(strings.SplitN(out, "\n", 3)[1]))
	t.Logf("ping 1350: %s", ping(t, h.A, nettest.PodAddr(1), nettest.PodAddr(2), 3))
	// A fresh destination has no cached PMTU: its DF ping gets the ICMP,
	// from node 1's own overlay address (the kernel took it: accept_local).
	out, _ = h.A.Try("ping", "-c", "1", "-W", "1", "-M", "do", "-s", "1400", "-I", nettest.PodAddr(1).String(), nettest.VtepAddr(2).String())
	if want := "From " + nettest.VtepAddr(1).String() + " icmp_seq=1 Frag needed and DF set (mtu = 1350)"; !strings.Contains(out, want) {
		t.Errorf("DF ping to %s: want %q, got\n%s", nettest.VtepAddr(2), want, out)
	}
	// An unroutable destination: net unreachable, from the same address.
	out, _ = h.A.Try("ping", "-c", "1", "-W", "1", "-I", nettest.PodAddr(1).String(), "198.19.200.1")
	if want := "From " + nettest.VtepAddr(1).String() + " icmp_seq=1 Destination Net Unreachable"; !strings.Contains(out, want) {
		t.Errorf("ping to unroutable 198.19.200.1: want %q, got\n%s", want, out)
	}
	if s := a.f.Stats(); s.Drops[DropTooBig] == 0 {
		t.Errorf("drops %v, want some too_big", s.Drops)
	}
}

// TestRunReturnsWithTunOpen: on real TUN queues (which have
// SetReadDeadline), Run returns when its context ends with no goroutine
// left behind, although the queues stay open, and the queues still read.
func TestRunReturnsWithTunOpen(t *testing.T) {
	nettest.RequirePrivileged(t)
	ns := nettest.NewNS(t, "fprun")
	m, f := openTunForwarder(t, ns, Config{})
	defer m.Close()
	ignore := goleak.IgnoreCurrent()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	time.Sleep(50 * time.Millisecond)
	cancel()
	waitRunReturned(t, done)
	goleak.VerifyNone(t, ignore)
	// The deadline Run used is cleared: a read waits again instead of failing.
	q := m.Queues()[0]
	bufs := make([][]byte, q.BatchSize())
	for i := range bufs {
		bufs[i] = make([]byte, 2048)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := q.Read(bufs, make([]int, len(bufs)), 0)
		errc <- err
	}()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("read after Run: got %v, want a packet or a wait", err)
		}
	case <-time.After(50 * time.Millisecond):
	}
	m.Close()
	<-errc
}

// openTunForwarder opens a two-queue TUN in ns (configured as node 1's)
// and a forwarder on it, with an underlay socket on loopback; cfg gives
// the settings beyond those (BusyPoll, IdleSpin). The caller closes the
// TUN.
func openTunForwarder(t *testing.T, ns *nettest.NS, cfg Config) (*tun.Multi, *Forwarder) {
	t.Helper()
	prepNS(t, ns, 1)
	var m *tun.Multi
	var f *Forwarder
	if err := ns.Do(func() error {
		var err error
		if m, err = tun.Open("vxtun0", 2, tun.Options{Unpolled: cfg.Unpolled()}); err != nil {
			return err
		}
		if err = hostnet.New().ConfigureLink(hostnet.Link{Name: "vxtun0", MTU: 1450, TxQueueLen: tun.TxQueueLen,
			Addrs:  []netip.Prefix{netip.PrefixFrom(nettest.VtepAddr(1), 32)},
			Routes: []netip.Prefix{netip.MustParsePrefix("198.19.0.0/16")}}); err != nil {
			return err
		}
		cfg.Backend, cfg.VNI, cfg.ListenAddr = config.BackendVXLAN, 1, netip.MustParseAddrPort("127.0.0.1:0")
		cfg.VtepMAC, cfg.VtepIP, cfg.Subnets = nettest.NodeMAC(1), nettest.VtepAddr(1), []netip.Prefix{nettest.NodeSubnet(1)}
		cfg.UnderlayMTU, cfg.Logger = 1500, quietLog
		f, err = New(cfg, m.Devices())
		return err
	}); err != nil {
		if m != nil {
			m.Close()
		}
		t.Fatal(err)
	}
	return m, f
}

// TestPathMTUShrunk: the underlay link and Config.UnderlayMTU say 1500, but
// the route to the peer has MTU 1400 (as after an ICMP from a router on the
// path). A DF ping that no longer fits is answered with ICMP frag-needed
// carrying the inner size that fits (1350) instead of vanishing, and pings
// of that size get through.
func TestPathMTUShrunk(t *testing.T) {
	nettest.RequireCommand(t, "ping")
	h := nettest.NewTwoHosts(t)
	ua, ub := netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("198.18.0.2")
	a := startVXTUN(t, h.A, 1, ua, config.BackendVXLAN, 0, 1500, []config.Peer{peerFor(2, ub, config.BackendVXLAN, 0)})
	startVXTUN(t, h.B, 2, ub, config.BackendVXLAN, 0, 1500, []config.Peer{peerFor(1, ua, config.BackendVXLAN, 0)})
	t.Logf("ping: %s", ping(t, h.A, nettest.PodAddr(1), nettest.PodAddr(2), 3))
	h.A.Run("ip", "route", "add", ub.String()+"/32", "dev", "ul0", "mtu", "1400")

	out, _ := h.A.Try("ping", "-c", "1", "-W", "1", "-M", "do", "-s", "1400", "-I", nettest.PodAddr(1).String(), nettest.PodAddr(2).String())
	if !strings.Contains(out, "mtu = 1350") && !strings.Contains(out, "mtu=1350") {
		t.Fatalf("DF ping of 1428 bytes over a 1400-byte path: want frag-needed with mtu 1350, got\n%s", out)
	}
	if s := a.f.Stats(); s.Drops[DropTooBig] == 0 {
		t.Errorf("drops %v, want too_big counted", s.Drops)
	}
	out, err := h.A.Try("ping", "-c", "2", "-i", "0.2", "-W", "1", "-M", "do", "-s", "1322", "-I", nettest.PodAddr(1).String(), nettest.PodAddr(2).String())
	if err != nil {
		t.Fatalf("DF ping of 1350 bytes: %v\n%s", err, out)
	}
}

// waitRunReturned fails t unless Run, whose result comes on done, returned
// nil within 5 s of its context ending.
func waitRunReturned(t *testing.T, done <-chan error) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: got %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return within 5 s of its context ending")
	}
}
