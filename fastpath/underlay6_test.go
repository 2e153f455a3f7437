package fastpath

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"testing"

	"github.com/vxtun/vxtun/config"
	"github.com/vxtun/vxtun/tun"
	"github.com/vxtun/vxtun/tun/tuntest"
)

// newDualPipe starts two forwarders with an IPv4 underlay on 127.0.0.1 and
// an IPv6 one on ::1 (same port). peers(port, mac, n) are the peers each
// gets for the other node n.
func newDualPipe(t *testing.T, da, db tun.Device, peers func(port uint16, mac net.HardwareAddr, n int) []config.Peer, tweak ...func(*Config)) *pipe {
	t.Helper()
	lo4, lo6 := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")
	mk := func(mac net.HardwareAddr, n int, d tun.Device) *Forwarder {
		port := freeUDPPort(t, lo4)
		cfg := Config{
			Backend: config.BackendVXLAN, VNI: 1, ListenAddr: netip.AddrPortFrom(lo4, port), ListenAddr6: netip.AddrPortFrom(lo6, 0),
			VtepMAC: mac, VtepIP: netip.AddrFrom4([4]byte{198, 19, byte(n), 0}), UnderlayMTU: 1500, Logger: quietLog,
			Subnets: []netip.Prefix{netip.MustParsePrefix(fmt.Sprintf("198.19.%d.0/24", n)), netip.MustParsePrefix(fmt.Sprintf("2001:2:0:%d::/64", n))},
		}
		for _, fn := range tweak {
			fn(&cfg)
		}
		f, err := New(cfg, []tun.Device{d})
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		if got, want := f.LocalAddr6(), netip.AddrPortFrom(lo6, port); got != want {
			t.Fatalf("LocalAddr6: got %v, want %v", got, want)
		}
		if got := f.Overhead(); got != config.VXLANOverheadIPv6 {
			t.Fatalf("Overhead with an IPv6 underlay: got %d, want %d", got, config.VXLANOverheadIPv6)
		}
		return f
	}
	p := &pipe{errs: make(chan error, 2), da: da, db: db}
	p.a = mk(mac1, 1, da)
	p.b = mk(mac2, 2, db)
	if err := p.a.SetPeers(peers(p.b.LocalAddr().Port(), mac2, 2)); err != nil {
		t.Fatal(err)
	}
	if err := p.b.SetPeers(peers(p.a.LocalAddr().Port(), mac1, 1)); err != nil {
		t.Fatal(err)
	}
	return p.run()
}

// splitPeers is the registry's convention for a dual-stack peer with a
// public IPv6: "<name>" over IPv4 with the IPv4 subnet, "<name>/v6" over
// IPv6 with the IPv6 subnet.
func splitPeers(port uint16, mac net.HardwareAddr, n int) []config.Peer {
	name := fmt.Sprintf("node%d", n)
	return []config.Peer{
		{Name: name, PublicIP: netip.MustParseAddr("127.0.0.1"), Port: port, Backend: config.BackendVXLAN, VNI: 1, VtepMAC: mac,
			Subnets: []netip.Prefix{netip.MustParsePrefix(fmt.Sprintf("198.19.%d.0/24", n))}},
		{Name: name + "/v6", PublicIP: netip.MustParseAddr("::1"), Port: port, Backend: config.BackendVXLAN, VNI: 1, VtepMAC: mac,
			Subnets: []netip.Prefix{netip.MustParsePrefix(fmt.Sprintf("2001:2:0:%d::/64", n))}},
	}
}

// TestDualUnderlay: with a second, IPv6 underlay, one outbound batch mixing
// both inner families goes out by the peer's underlay family (IPv4 inner
// over IPv4, IPv6 inner over IPv6), arrives complete and in order per
// family, and each family's packets are received on that family's socket.
func TestDualUnderlay(t *testing.T) { testDualUnderlay(t) }

// testDualUnderlay is TestDualUnderlay with the forwarders' configuration
// tweaked (e.g. BusyPoll).
func testDualUnderlay(t *testing.T, tweak ...func(*Config)) {
	da, db := tuntest.New(tuntest.Config{Name: "tt1"}), tuntest.New(tuntest.Config{Name: "tt2"})
	p := newDualPipe(t, da, db, splitPeers, tweak...)
	defer p.stop(t)
	var sent4, sent6 [][]byte
	for i := range 40 {
		var pkt []byte
		if i%3 == 0 {
			pkt = udp6Packet(pod1v6, pod2v6, 100+i, uint32(i))
			sent6 = append(sent6, pkt)
		} else {
			pkt = udp4Packet(pod1, pod2, 100+i, uint32(i), true)
			sent4 = append(sent4, pkt)
		}
		if err := da.Inject(pkt); err != nil {
			t.Fatal(err)
		}
	}
	got := recvN(t, db.Outbound, len(sent4)+len(sent6))
	var got4, got6 [][]byte
	for _, g := range got {
		if g[0]>>4 == 6 {
			got6 = append(got6, g)
		} else {
			got4 = append(got4, g)
		}
	}
	for _, c := range []struct {
		fam       string
		got, want [][]byte
	}{{"ipv4", got4, sent4}, {"ipv6", got6, sent6}} {
		if len(c.got) != len(c.want) {
			t.Fatalf("%s: got %d packets, want %d", c.fam, len(c.got), len(c.want))
		}
		for i := range c.want {
			if !bytes.Equal(c.got[i], c.want[i]) {
				t.Fatalf("%s packet %d: got % x..., want % x...", c.fam, i, c.got[i][:32], c.want[i][:32])
			}
		}
	}
	// A's worker publishes its batch counters after the send returns, so
	// B can hold every packet before A's tx count shows them.
	waitStats(t, func() bool {
		return p.b.Stats().RxPackets == uint64(len(got)) && p.a.Stats().TxPackets == uint64(len(got))
	})
	w := p.b.workers[0]
	if n4, n6 := w.in.packets.Load(), w.v6.in.packets.Load(); n4 != uint64(len(sent4)) || n6 != uint64(len(sent6)) {
		t.Errorf("B received %d on the IPv4 socket and %d on the IPv6 one, want %d and %d", n4, n6, len(sent4), len(sent6))
	}
	if s := p.a.Stats(); s.TxPackets != uint64(len(got)) || len(s.Drops) != 0 {
		t.Errorf("A: tx %d drops %v, want %d and none", s.TxPackets, s.Drops, len(got))
	}
	ports6 := p.a.SourcePorts6()
	if len(ports6) != len(p.a.workers) || slices.Contains(ports6, 0) {
		t.Errorf("SourcePorts6: got %v, want a bound port for each of %d workers", ports6, len(p.a.workers))
	}
}

// TestDualUnderlayFilter: the inner source filter holds per family: an
// IPv6 packet from a peer's IPv6 subnet that arrives over its IPv4
// underlay (while its IPv6 subnet belongs to its "/v6" peer) is spoofed.
func TestDualUnderlayFilter(t *testing.T) {
	da, db := tuntest.New(tuntest.Config{Name: "tt1"}), tuntest.New(tuntest.Config{Name: "tt2"})
	p := newDualPipe(t, da, db, func(port uint16, mac net.HardwareAddr, n int) []config.Peer {
		ps := splitPeers(port, mac, n)
		if n == 2 {
			// A sends both families over IPv4 to B.
			ps[0].Subnets = append(ps[0].Subnets, ps[1].Subnets...)
			ps = ps[:1]
		}
		return ps
	})
	defer p.stop(t)
	if err := da.Inject(udp6Packet(pod1v6, pod2v6, 100, 1)); err != nil {
		t.Fatal(err)
	}
	waitStats(t, func() bool { return p.b.Stats().Drops[DropSpoofedSource] == 1 })
	if s := p.b.Stats(); s.Drops[DropSpoofedSource] != 1 || s.PeerDrops["node1"][DropSpoofedSource] != 1 || s.RxPackets != 0 {
		t.Fatalf("B: drops %v peer drops %v rx %d, want one spoofed_source from node1, nothing received", s.Drops, s.PeerDrops, s.RxPackets)
	}
	expectNone(t, db.Outbound, "IPv6 over the IPv4 underlay")
}

func TestUnderlay6Config(t *testing.T) {
	for _, tt := range []struct {
		laddr, laddr6 string
		want          string // "" for an error
	}{
		{"198.18.0.1:8472", "", "invalid AddrPort"},
		{"198.18.0.1:8472", "[2001:2:0:ff::1]:0", "[2001:2:0:ff::1]:8472"},
		{"198.18.0.1:8472", "[2001:2:0:ff::1]:4789", "[2001:2:0:ff::1]:4789"},
		{"198.18.0.1:8472", "198.18.0.2:8472", ""},
		{"198.18.0.1:8472", "[::ffff:198.18.0.2]:8472", ""},
		{"[2001:2:0:ff::1]:8472", "[2001:2:0:ff::2]:8472", ""},
	} {
		var cfg Config
		if tt.laddr6 != "" {
			cfg.ListenAddr6 = netip.MustParseAddrPort(tt.laddr6)
		}
		laddr := netip.MustParseAddrPort(tt.laddr)
		got, err := underlay6(cfg, laddr)
		switch {
		case tt.want == "" && err == nil:
			t.Errorf("underlay6(%s, %s): got %v, want an error", tt.laddr, tt.laddr6, got)
		case tt.want != "" && (err != nil || got.String() != tt.want):
			t.Errorf("underlay6(%s, %s): got %v %v, want %s", tt.laddr, tt.laddr6, got, err, tt.want)
		}
	}
}

// TestDualUnderlayZeroAllocs: a batch mixing both families, sent over both
// underlays, allocates nothing either.
func TestDualUnderlayZeroAllocs(t *testing.T) {
	sink := newCountSink()
	da := newFakeDev("fake1", func([][]byte, int) {})
	p := newDualPipe(t, da, newFakeDev("fake2", sink.write), splitPeers)
	defer p.stop(t)
	var batch [][]byte
	for i := range 64 {
		if i%2 == 0 {
			batch = append(batch, udp6Packet(pod1v6, pod2v6, 1000, uint32(i)))
		} else {
			batch = append(batch, udp4Packet(pod1, pod2, 1000, uint32(i), true))
		}
	}
	if allocs := batchAllocs(t, da, sink, batch); allocs != 0 {
		t.Errorf("got %.1f allocations per mixed batch of %d packets, want 0", allocs, len(batch))
	}
}
