package fastpath_test

import (
	"context"
	"log"
	"net"
	"net/netip"

	"github.com/vxtun/vxtun/config"
	"github.com/vxtun/vxtun/fastpath"
	"github.com/vxtun/vxtun/tun"
)

// A node with one TUN queue per CPU: open the TUN and the forwarder in the
// node's network namespace, give it its peers, run until the context ends,
// then close the TUN (which also ends the workers' TUN readers).
func Example() {
	mq, err := tun.Open("vxtun0", 2, tun.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer mq.Close()
	f, err := fastpath.New(fastpath.Config{
		Backend:     config.BackendVXLAN,
		VNI:         1,
		ListenAddr:  netip.MustParseAddrPort("198.18.0.1:8472"),
		VtepMAC:     net.HardwareAddr{0x0e, 0x76, 0x78, 0, 0, 1},
		VtepIP:      netip.MustParseAddr("198.19.1.0"),
		Subnets:     []netip.Prefix{netip.MustParsePrefix("198.19.1.0/24")},
		UnderlayMTU: 1500,
	}, mq.Devices())
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	err = f.SetPeers([]config.Peer{{
		Name:     "node2",
		PublicIP: netip.MustParseAddr("198.18.0.2"),
		Backend:  config.BackendVXLAN,
		VNI:      1,
		VtepMAC:  net.HardwareAddr{0x0e, 0x76, 0x78, 0, 0, 2},
		Subnets:  []netip.Prefix{netip.MustParsePrefix("198.19.2.0/24")},
	}})
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := f.Run(ctx); err != nil {
		log.Fatal(err)
	}
	log.Printf("%+v", f.Stats())
}
