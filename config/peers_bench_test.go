package config

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
)

// PeersFileForBench returns a static peers file of n vxlan peers in
// 198.19.0.0/16 with one /30 each (n ≤ 16 383) and the net-conf.json it is
// valid for. Peer i is at an address of 198.18.0.0/16, its VtepMAC ends in i.
func peersFileForBench(n int) (*NetConf, []byte) {
	nc, err := ParseNetConf("net-conf.json", []byte(`{"Network": "198.19.0.0/16", "SubnetLen": 30, "Backend": {"Type": "vxlan"}}`))
	if err != nil {
		panic(err)
	}
	data := []byte(`{"Peers": [`)
	for i := range n {
		if i > 0 {
			data = append(data, ",\n"...)
		}
		k := i + 1
		ip := netip.AddrFrom4([4]byte{198, 18, byte(k >> 8), byte(k)})
		sn := netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 19, byte(k >> 6), byte(k << 2)}), 30)
		mac := net.HardwareAddr{0x0e, 0, 0, 0, byte(k >> 8), byte(k)}
		data = fmt.Appendf(data, `{"Name":"n%d","PublicIP":"%s","Subnets":["%s"],"VtepMAC":"%s"}`, k, ip, sn, mac)
	}
	return nc, append(data, "]}"...)
}

// BenchmarkLoadPeers reads and parses static peers files of 1 000 to
// 10 000 peers (the issue-11 figures: parse time must grow linearly).
func BenchmarkLoadPeers(b *testing.B) {
	for _, n := range []int{1000, 5000, 10000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			nc, data := peersFileForBench(n)
			path := filepath.Join(b.TempDir(), "peers.json")
			if err := os.WriteFile(path, data, 0o644); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				peers, err := LoadPeers(path, nc, []netip.Prefix{netip.MustParsePrefix("198.19.0.0/30")})
				if err != nil {
					b.Fatal(err)
				}
				if len(peers) != n {
					b.Fatalf("got %d peers, want %d", len(peers), n)
				}
			}
		})
	}
}

// TestSubnetSetMatchesPairwise: on random prefix sets, subnetSet reports
// the overlap a pairwise scan in file order reports first (the later
// subnet earliest in the file, then the earliest subnet it overlaps), or
// none when the scan finds none.
func TestSubnetSetMatchesPairwise(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 2000 {
		var all []subnetPos
		s := newSubnetSet(0)
		for peer := range 1 + rng.IntN(12) {
			for sub := range 1 + rng.IntN(3) {
				var p netip.Prefix
				if rng.IntN(4) == 0 {
					a := netip.AddrFrom16([16]byte{0x20, 0x01, 0, 2, 0, byte(rng.IntN(4))})
					p, _ = a.Prefix(44 + rng.IntN(8))
				} else {
					a := netip.AddrFrom4([4]byte{198, 19, byte(rng.IntN(8)), byte(rng.IntN(256))})
					p, _ = a.Prefix(20 + rng.IntN(9))
				}
				all = append(all, subnetPos{p, peer, sub})
				s.add(p, peer, sub)
			}
		}
		var want *subnetOverlap
	scan:
		for i, x := range all {
			for _, e := range all[:i] {
				if e.p.Overlaps(x.p) {
					want = &subnetOverlap{e, x}
					break scan
				}
			}
		}
		got, ok := s.firstOverlap()
		switch {
		case want == nil && ok:
			t.Fatalf("round %d: got overlap %v, want none (%v)", round, got, all)
		case want != nil && (!ok || got != *want):
			t.Fatalf("round %d: got %v (found %v), want %v (%v)", round, got, ok, *want, all)
		}
	}
}
