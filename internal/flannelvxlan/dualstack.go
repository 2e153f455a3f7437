package flannelvxlan

import (
	"net/netip"
	"strconv"
)

// DualStack is a dual-stack flanneld node (EnableIPv6, vxlan backend) as
// flanneld programs it: flannel.1 over the IPv4 underlay carries the IPv4
// subnet, flannel-v6.1 over the IPv6 underlay, with a MAC of its own (the
// lease's BackendV6Data), the IPv6 subnet; same VNI and port.
type DualStack struct {
	// V4 is flannel.1: Local an IPv4 address, Subnet set, Subnet6 zero.
	V4 Device
	// V6 is flannel-v6.<VNI> (its default name): Local an IPv6 address,
	// Subnet6 set, Subnet zero; MTU defaults to 1430 (a 1500 underlay − 70).
	V6 Device
}

// DualRemote is another dual-stack node's lease as flanneld programs it:
// V4 (Subnet, PublicIP, BackendData's VtepMAC) on flannel.1, V6 (Subnet6,
// PublicIP = the lease's PublicIPv6, BackendV6Data's VtepMAC) on
// flannel-v6.1. A zero V6.PublicIP (PublicIPv6 null) leaves the IPv6 side
// out, as flanneld's IPv6 network has no underlay address to send it to.
type DualRemote struct {
	V4, V6 Remote
}

// v6Device is d.V6 with flanneld's defaults filled in.
func (d DualStack) v6Device() Device {
	v6 := d.V6
	if v6.Name == "" {
		vni := v6.VNI
		if vni == 0 {
			vni = 1
		}
		v6.Name = "flannel-v6." + strconv.FormatUint(uint64(vni), 10)
	}
	if v6.MTU == 0 {
		v6.MTU = 1430
	}
	return v6
}

// Commands returns the commands that create both devices and program
// every remote on them.
func (d DualStack) Commands(remotes ...DualRemote) [][]string {
	var r4, r6 []Remote
	for _, r := range remotes {
		r4 = append(r4, Remote{Subnet: r.V4.Subnet, PublicIP: r.V4.PublicIP, VtepMAC: r.V4.VtepMAC})
		if r.V6.PublicIP.IsValid() && r.V6.Subnet6.IsValid() {
			r6 = append(r6, Remote{Subnet6: r.V6.Subnet6, PublicIP: r.V6.PublicIP, VtepMAC: r.V6.VtepMAC})
		}
	}
	v4 := d.V4
	v4.Subnet6 = netip.Prefix{}
	v6 := d.v6Device()
	v6.Subnet = netip.Prefix{}
	return append(v4.Commands(r4...), v6.Commands(r6...)...)
}
