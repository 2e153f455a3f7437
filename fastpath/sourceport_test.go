package fastpath

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/vxtun/vxtun/config"
	"github.com/vxtun/vxtun/tun"
)

// TestSourcePortPerWorker: two workers sending to one peer use two outer
// source ports (one each, not the listen port) by default, and the listen
// port with SharedSourcePort; the peer receives everything either way.
func TestSourcePortPerWorker(t *testing.T) {
	for _, tc := range []struct {
		name   string
		shared bool
	}{{"per worker", false}, {"shared", true}} {
		t.Run(tc.name, func(t *testing.T) {
			lo := netip.MustParseAddr("127.0.0.1")
			devs := []*fakeDev{newFakeDev("fake0", func([][]byte, int) {}), newFakeDev("fake1", func([][]byte, int) {})}
			listen := netip.AddrPortFrom(lo, freeUDPPort(t, lo))
			f, err := New(Config{Backend: config.BackendVXLAN, VNI: 1, ListenAddr: listen, VtepMAC: mac1,
				VtepIP: netip.MustParseAddr("198.19.1.0"), SharedSourcePort: tc.shared, Logger: quietLog},
				[]tun.Device{devs[0], devs[1]})
			if err != nil {
				t.Fatal(err)
			}
			peerIP := netip.MustParseAddr("127.0.0.2")
			sock, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(peerIP, 0)))
			if err != nil {
				t.Fatal(err)
			}
			defer sock.Close()
			if err := f.SetPeers([]config.Peer{{Name: "p", PublicIP: peerIP, Port: uint16(sock.LocalAddr().(*net.UDPAddr).Port),
				Backend: config.BackendVXLAN, VNI: 1, VtepMAC: mac2, Subnets: []netip.Prefix{netip.MustParsePrefix("198.19.2.0/24")}}}); err != nil {
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
				for _, d := range devs {
					d.Close()
				}
			}()

			const perWorker = 5
			for i, d := range devs {
				var batch [][]byte
				for k := range perWorker {
					batch = append(batch, udp4Packet(pod1, netip.MustParseAddr("198.19.2.1"), 200, uint32(i*100+k), false))
				}
				d.reads <- batch
			}
			got := map[uint16]int{}
			buf := make([]byte, 2000)
			for range 2 * perWorker {
				_ = sock.SetReadDeadline(time.Now().Add(3 * time.Second))
				_, from, err := sock.ReadFromUDPAddrPort(buf)
				if err != nil {
					t.Fatalf("after %v: %v", got, err)
				}
				if from.Addr() != lo {
					t.Errorf("got a datagram from %v, want source address %v", from, lo)
				}
				got[from.Port()]++
			}
			ports := f.SourcePorts()
			if p6 := f.SourcePorts6(); p6 != nil {
				t.Errorf("SourcePorts6 without an IPv6 underlay: got %v, want nil", p6)
			}
			var want map[uint16]int
			if tc.shared {
				want = map[uint16]int{listen.Port(): 2 * perWorker}
				if !slices.Equal(ports, []uint16{listen.Port(), listen.Port()}) {
					t.Errorf("SourcePorts: got %v, want the listen port twice", ports)
				}
			} else {
				want = map[uint16]int{ports[0]: perWorker, ports[1]: perWorker}
				if ports[0] == ports[1] || slices.Contains(ports, listen.Port()) {
					t.Errorf("SourcePorts: got %v, want two distinct ports other than the listen port %d", ports, listen.Port())
				}
			}
			if len(got) != len(want) {
				t.Fatalf("got datagrams by source port %v, want %v", got, want)
			}
			for p, n := range want {
				if got[p] != n {
					t.Errorf("source port %d: got %d datagrams, want %d (all: %v)", p, got[p], n, got)
				}
			}
		})
	}
}
