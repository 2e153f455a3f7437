package config_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/vxtun/vxtun/config"
)

// The static-mode start-up sequence cmd/vxtun follows.
func Example() {
	nc, err := config.LoadNetConf("testdata/net-conf.json")
	if err != nil {
		fmt.Println(err)
		return
	}
	node, err := config.LoadNode("testdata/node.json")
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := node.Validate(nc); err != nil {
		fmt.Println(err)
		return
	}
	peers, err := config.LoadPeers("testdata/peers.json", nc, node.OwnSubnets())
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, p := range peers {
		fmt.Println(p.Name, p.PublicIP, p.Subnets, p.VtepMAC, p.Port, p.VNI)
	}
	mtu := nc.TunMTU(1500, false) // wire MTU from Node.ResolveUnderlay
	env := config.SubnetEnvFor(nc, node, node.Subnet, node.IPv6Subnet, mtu)
	os.Stdout.Write(env.Marshal())
	// Output:
	// node2 198.18.0.2 [198.19.2.0/24] 0e:00:00:00:00:02 8472 1
	// node3 198.18.0.3 [198.19.3.0/24] 0e:00:00:00:00:03 8472 1
	// FLANNEL_NETWORK=198.19.0.0/16
	// FLANNEL_SUBNET=198.19.1.1/24
	// FLANNEL_MTU=1450
	// FLANNEL_IPMASQ=false
}

func ExampleLoadOrCreateVtepMAC() {
	dir, _ := os.MkdirTemp("", "vtep")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "vtep-mac")
	first, _ := config.LoadOrCreateVtepMAC(path)
	again, _ := config.LoadOrCreateVtepMAC(path)
	fmt.Println(first.String() == again.String(), first[0]&0x03) // same MAC; unicast, locally administered
	// Output: true 2
}
