package nettest

import (
	"fmt"
	"net"
	"net/netip"
)

// Address plan of DESIGN.md ("Test hosts"): node N (1 ≤ N ≤ 254) has
// underlay 198.18.0.N/24 on "ul0", overlay subnet 198.19.N.0/24, VTEP
// address 198.19.N.0 and pod address 198.19.N.1.
const (
	// OverlayNetwork is the flannel Network of every testbed.
	OverlayNetwork = "198.19.0.0/16"
	// UnderlayIface is the underlay interface of every node.
	UnderlayIface = "ul0"
	// UnderlayMTU is the default underlay MTU (the veth default).
	UnderlayMTU = 1500
)

// Node is the address plan of node N.
type Node struct {
	Index    int              // N
	Underlay netip.Addr       // 198.18.0.N on ul0
	Subnet   netip.Prefix     // 198.19.N.0/24
	Pod      netip.Addr       // 198.19.N.1, the traffic endpoint
	VtepMAC  net.HardwareAddr // 0e:76:78:00:00:NN, locally administered unicast
}

// PlanNode returns the address plan of node n.
func PlanNode(n int) Node {
	return Node{Index: n, Underlay: UnderlayAddr(n), Subnet: NodeSubnet(n), Pod: PodAddr(n), VtepMAC: NodeMAC(n)}
}

// Name is "nodeN", the peer name in configs.
func (n Node) Name() string { return fmt.Sprintf("node%d", n.Index) }

// VtepAddr is the subnet's network address 198.19.N.0, the address
// flannel and vxtun put on their VTEP device.
func (n Node) VtepAddr() netip.Addr { return n.Subnet.Addr() }

// UnderlayAddr is 198.18.0.n.
func UnderlayAddr(n int) netip.Addr { return netip.AddrFrom4([4]byte{198, 18, 0, byte(n)}) }

// NodeSubnet is 198.19.n.0/24.
func NodeSubnet(n int) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 19, byte(n), 0}), 24)
}

// PodAddr is 198.19.n.1.
func PodAddr(n int) netip.Addr { return netip.AddrFrom4([4]byte{198, 19, byte(n), 1}) }

// VtepAddr is 198.19.n.0.
func VtepAddr(n int) netip.Addr { return netip.AddrFrom4([4]byte{198, 19, byte(n), 0}) }

// NodeMAC is 0e:76:78:00:00:n, stable per node.
func NodeMAC(n int) net.HardwareAddr { return net.HardwareAddr{0x0e, 0x76, 0x78, 0, 0, byte(n)} }
