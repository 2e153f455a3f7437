package bench

// Mode names.
const (
	ModeVeth        = "veth"
	ModeKernelVXLAN = "kernel-vxlan"
	ModeVxtunVXLAN  = "vxtun-vxlan"
	ModeVxtunUDP    = "vxtun-udp"
	// ModeVxtunBusyPoll is vxtun VXLAN with --busy-poll (unavailable when
	// the daemon does not document the flag; its daemons are stopped while
	// other modes measure, so its polling never takes their CPU).
	ModeVxtunBusyPoll = "vxtun-busy-poll"
	// ModeVxtunBusyPollIdle is busy polling that stops 5 ms after the last
	// packet (--busy-poll --busy-poll-idle 5ms): its idle row shows the
	// difference. Unavailable like ModeVxtunBusyPoll.
	ModeVxtunBusyPollIdle = "vxtun-busy-poll-idle"
	// ModeVxtunBusyPollAhead is polling that stops 200 µs after the last
	// packet into one wait for all descriptors, ended early ahead of
	// steady-rate packets (--busy-poll --busy-poll-idle 200us
	// --busy-poll-ahead). Unavailable like ModeVxtunBusyPoll.
	ModeVxtunBusyPollAhead = "vxtun-busy-poll-ahead"
	// ModeVxtunCPULocal is vxtun VXLAN with --cpu-local: workers pinned
	// one per CPU, TUN queue and socket chosen by CPU (unavailable when
	// the daemon does not document the flag).
	ModeVxtunCPULocal = "vxtun-cpu-local"
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
var AllModes = []string{ModeVeth, ModeKernelVXLAN, ModeVxtunVXLAN, ModeVxtunBusyPoll, ModeVxtunBusyPollIdle, ModeVxtunBusyPollAhead, ModeVxtunCPULocal, ModeVxtunUDP, ModeVxtunKernel, ModeVxtunHostGW, ModeVxtunDirectRouting, ModeWireGuardGo, ModeNebula}

// SweepModes is the default set of modes the scaling rows (UDP with 1…4
// generator threads) run on: vxtun beside kernel vxlan.
var SweepModes = []string{ModeKernelVXLAN, ModeVxtunVXLAN}

// SplitModes is the default set of modes the one-CPU-per-node rows
// (split_linux.go) run on: vxtun beside kernel vxlan.
var SplitModes = []string{ModeKernelVXLAN, ModeVxtunVXLAN}

// SweepThreads is the default list of generator thread counts of the
// scaling rows.
var SweepThreads = []int{1, 2, 3, 4}
