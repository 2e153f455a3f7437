package bench

// Mode names.
const (
	ModeVeth        = "veth"
	ModeKernelVXLAN = "kernel-vxlan"
	ModeVxtunVXLAN  = "vxtun-vxlan"
	ModeVxtunUDP    = "vxtun-udp"
)

// AllModes is the default alternation order.
var AllModes = []string{ModeVeth, ModeKernelVXLAN, ModeVxtunVXLAN, ModeVxtunUDP}
