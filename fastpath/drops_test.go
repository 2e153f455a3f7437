package fastpath

import (
	"maps"
	"net/netip"
	"testing"

	"github.com/vxtun/vxtun/config"
	"github.com/vxtun/vxtun/encap"
)

// TestPeerDropsFollowPeerSet: per-peer drop counters are keyed by the
// peer's routing index, survive SetPeers for a peer that stays, vanish from
// Stats for a peer that goes, and start at zero for a new peer that reuses a
// freed index.
func TestPeerDropsFollowPeerSet(t *testing.T) {
	w, _ := newTestWorker(t, config.BackendVXLAN)
	f := w.f
	f.laddr = netip.MustParseAddrPort("198.18.0.1:8472")
	peer := func(name string, n byte) config.Peer {
		return config.Peer{Name: name, PublicIP: netip.AddrFrom4([4]byte{198, 18, 0, n}), Backend: config.BackendVXLAN,
			VNI: 1, VtepMAC: mac2, Subnets: []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 19, n, 0}), 24)}}
	}
	noIBit := vxlanFrame(0x00, 1, mac1, encap.EtherTypeIPv4, udp4Packet(pod2, pod1, 100, 1, false))
	// dropFrom runs one bad datagram from the named peer through decap, as
	// inbound does: load the table, follow it, look the peer up.
	dropFrom := func(name string) {
		t.Helper()
		tbl := f.table.Load()
		w.in.follow(tbl)
		for _, r := range tbl.Routes() {
			if r.Name == name {
				w.decap(append([]byte(nil), noIBit...), r, tbl)
				return
			}
		}
		t.Fatalf("no route %q", name)
	}
	index := func(name string) int {
		for _, r := range f.table.Load().Routes() {
			if r.Name == name {
				return r.Index
			}
		}
		return -1
	}
	check := func(step string, want map[string]map[string]uint64) {
		t.Helper()
		if got := f.Stats().PeerDrops; !maps.EqualFunc(got, want, maps.Equal) {
			t.Errorf("%s: PeerDrops got %v, want %v", step, got, want)
		}
	}

	if err := f.SetPeers([]config.Peer{peer("node2", 2), peer("node3", 3)}); err != nil {
		t.Fatal(err)
	}
	dropFrom("node2")
	dropFrom("node3")
	dropFrom("node3")
	check("two peers", map[string]map[string]uint64{"node2": {DropNoIBit: 1}, "node3": {DropNoIBit: 2}})
	i2, i3 := index("node2"), index("node3")

	// node3 goes, node4 comes: node3's series is gone at once, before the
	// worker has seen the new table.
	if err := f.SetPeers([]config.Peer{peer("node4", 4), peer("node2", 2)}); err != nil {
		t.Fatal(err)
	}
	check("node3 removed", map[string]map[string]uint64{"node2": {DropNoIBit: 1}})
	if got := index("node2"); got != i2 {
		t.Errorf("node2 index: got %d, want %d (kept across SetPeers)", got, i2)
	}
	if got := index("node4"); got != i3 {
		t.Errorf("node4 index: got %d, want %d (node3's freed index)", got, i3)
	}
	dropFrom("node4")
	dropFrom("node2")
	check("node4 on node3's index", map[string]map[string]uint64{"node2": {DropNoIBit: 2}, "node4": {DropNoIBit: 1}})
}
