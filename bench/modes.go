package bench

// Mode names.
const (
	ModeVeth        = "veth"
	ModeKernelVXLAN = "kernel-vxlan"
	ModeVxtunVXLAN  = "vxtun-vxlan"
	ModeVxtunUDP    = "vxtun-udp"
	// The overlays users would pick instead (peers_linux.go): built from
	// the module proxy by the harness, unavailable when they cannot be.
	ModeWireGuardGo = "wireguard-go"
	ModeNebula      = "nebula"
)

// AllModes is the default alternation order.
var AllModes = []string{ModeVeth, ModeKernelVXLAN, ModeVxtunVXLAN, ModeVxtunUDP, ModeWireGuardGo, ModeNebula}
