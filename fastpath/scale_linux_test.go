package fastpath

import (
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/vxtun/vxtun/config"
	"github.com/vxtun/vxtun/internal/nettest"
)

// TestTransferDuringPeerUpdates: node 1 has its real peer (node 2) among
// 5 000 peers and applies 100 peer-set updates a second while a TCP
// transfer runs: nine in ten move one other peer (the incremental path),
// one in ten adds or removes one (a full rebuild). The transfer completes,
// verified, and nothing is dropped: the peers it uses never lose their
// route during a swap.
func TestTransferDuringPeerUpdates(t *testing.T) {
	h := nettest.NewTwoHosts(t)
	ua, ub := netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("198.18.0.2")
	backend := config.BackendVXLAN
	// Fillers: never sent to (no traffic is routed to 10.0.0.0/8); their
	// underlay addresses stay in the testbed's 198.18.0.0/24.
	filler := func(i int, moved bool) config.Peer {
		host := byte(3 + i%250)
		if moved {
			host = byte(3 + (i+1)%250)
		}
		return config.Peer{Name: fmt.Sprintf("filler-%04d", i), PublicIP: netip.AddrFrom4([4]byte{198, 18, 0, host}),
			Backend: backend, VNI: 1, VtepMAC: net.HardwareAddr{0x0e, 0x76, 0x78, 1, byte(i >> 8), byte(i)},
			Subnets: []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}), 24)}}
	}
	base := []config.Peer{peerFor(2, ub, backend, 0)}
	for i := range 4999 {
		base = append(base, filler(i, false))
	}
	a := startVXTUN(t, h.A, 1, ua, backend, 0, 1500, base)
	startVXTUN(t, h.B, 2, ub, backend, 0, 1500, []config.Peer{peerFor(1, ua, backend, 0)})

	updates, full := 0, 0
	churn := func(stop <-chan struct{}) {
		tick := time.NewTicker(10 * time.Millisecond) // 100 updates/s
		defer tick.Stop()
		cur := append([]config.Peer(nil), base...)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			next := cur
			if i%10 == 9 {
				if len(cur) == len(base) { // a node joins
					next = append(cur[:len(cur):len(cur)], filler(4999, false))
				} else { // and leaves again
					next = cur[:len(base)]
				}
				full++
			} else {
				k := 1 + i%4999
				next = append([]config.Peer(nil), cur...)
				next[k] = filler(k-1, next[k].PublicIP == base[k].PublicIP) // it moves (and back)
			}
			if err := a.f.SetPeers(next); err != nil {
				t.Errorf("update %d: SetPeers: %v", i, err)
				return
			}
			cur = next
			updates++
		}
	}
	g := transfer(t, h.A, h.B, nettest.PodAddr(1), nettest.PodAddr(2), 5003, transferSize, churn)
	t.Logf("TCP 1→2: %d MiB verified, %.2f Gbit/s, during %d updates (%d full rebuilds) of a 5000-peer set", transferSize>>20, g, updates, full)
	if updates == 0 {
		t.Fatalf("got 0 updates during the transfer, want some")
	}
	s := a.f.Stats()
	if len(s.Drops) != 0 {
		t.Errorf("node 1 dropped %v, want nothing", s.Drops)
	}
	if s.TxPackets == 0 || s.RxPackets == 0 {
		t.Errorf("node 1: tx %d rx %d packets, want both > 0", s.TxPackets, s.RxPackets)
	}
}
