package bench

import "github.com/vxtun/vxtun/config"

// routedMode returns the vxtun modes that route instead of (or besides)
// encapsulating, on the same two-node testbed:
//
//   - vxtun-host-gw: Backend host-gw, a kernel route to the peer's subnet
//     via its underlay address; the kernel forwards, vxtun only programs
//     routes (expect the veth row's figures).
//   - vxtun-direct-routing: vxlan with DirectRouting; the two nodes share
//     the underlay subnet, so the peer is routed directly as with host-gw,
//     with the userspace VXLAN dataplane running beside it.
func routedMode(name string, c Config) Mode {
	if name == ModeVxtunHostGW {
		return &VxtunMode{Backend: config.BackendHostGW, Binary: c.Vxtun, Extra: c.VxtunArgs}
	}
	return &VxtunMode{Backend: config.BackendVXLAN, DirectRouting: true, Binary: c.Vxtun, Extra: c.VxtunArgs}
}
