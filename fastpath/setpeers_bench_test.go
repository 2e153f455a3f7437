package fastpath

import (
	"fmt"
	"net"
	"net/netip"
	"testing"

	"github.com/vxtun/vxtun/config"
	"github.com/vxtun/vxtun/tun"
)

// BenchmarkParseSetPeers is what a node does with a static peers file of
// n peers: parse it and hand the set to the forwarder (issue 11: at 5 000
// peers both together within 50 ms). Every iteration replaces the whole
// set with a fresh parse, as a reload does.
func BenchmarkParseSetPeers(b *testing.B) {
	nc, err := config.ParseNetConf("net-conf.json", []byte(`{"Network": "198.19.0.0/16", "SubnetLen": 30, "Backend": {"Type": "vxlan"}}`))
	if err != nil {
		b.Fatal(err)
	}
	own := []netip.Prefix{netip.MustParsePrefix("198.19.0.0/30")}
	for _, n := range []int{1000, 5000, 10000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
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
			data = append(data, "]}"...)
			lo := netip.MustParseAddr("127.0.0.1")
			f, err := New(Config{Backend: config.BackendVXLAN, VNI: 1, VtepMAC: mac1,
				ListenAddr: netip.AddrPortFrom(lo, freeUDPPort(b, lo)), Logger: quietLog},
				[]tun.Device{newFakeDev("fake", func([][]byte, int) {})})
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			b.ReportAllocs()
			for b.Loop() {
				peers, err := config.ParsePeers("peers.json", data, nc, own)
				if err != nil {
					b.Fatal(err)
				}
				if err := f.SetPeers(peers); err != nil {
					b.Fatal(err)
				}
			}
			if got := f.table.Load().Len(); got != n {
				b.Fatalf("got %d routes, want %d", got, n)
			}
		})
	}
}
