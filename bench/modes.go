package bench

// Mode names.
const (
	ModeVeth        = "veth"
	ModeKernelVXLAN = "kernel-vxlan"
	ModeVxtunVXLAN  = "vxtun-vxlan"
	ModeVxtunUDP    = "vxtun-udp"
	// ModeVxtunKernel is vxtun programming the kernel vxlan device
	// (--dataplane kernel, vxtunkernel_linux.go).
	ModeVxtunKernel = "vxtun-kernel"
	// ModeVxtunHostGW and ModeVxtunDirectRouting: mode_hostgw_linux.go.
	ModeVxtunHostGW        = "vxtun-host-gw"
	ModeVxtunDirectRouting = "vxtun-direct-routing"
	// The overlays users would pick instead (peers_linux.go): built from
	// the module proxy by the harness, unavailable when they cannot be.
	ModeWireGuardGo = "wireguard-go"
	ModeNebula      = "nebula"
)

// AllModes is the default alternation order.
var AllModes = []string{ModeVeth, ModeKernelVXLAN, ModeVxtunVXLAN, ModeVxtunUDP, ModeVxtunKernel, ModeVxtunHostGW, ModeVxtunDirectRouting, ModeWireGuardGo, ModeNebula}
