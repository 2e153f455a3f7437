package bench

// Spread says how far one peer's traffic spreads over a receiving node's
// cores: the number of distinct outer flows (4-tuples) it uses, since the
// receiver's RSS queues and SO_REUSEPORT sockets pick a core per outer
// flow.
type Spread int

// Spreads.
const (
	// SpreadUnknown: the path is not modelled; no projection.
	SpreadUnknown Spread = iota
	// SpreadFlows: one outer flow per inner flow (kernel vxlan hashes the
	// inner flow into the outer source port; routed paths carry the inner
	// flows themselves).
	SpreadFlows
	// SpreadWorkers: one outer flow per forwarding worker (userspace
	// vxtun sends from a source port per worker, so one peer's inner
	// flows leave from at most Workers ports).
	SpreadWorkers
	// SpreadOne: a single outer flow and receiving thread per peer (nebula
	// with its default of one routine).
	SpreadOne
)

// modeSpread is how each mode spreads one peer's traffic.
func modeSpread(mode string) Spread {
	switch mode {
	case ModeVeth, ModeKernelVXLAN, ModeVxtunKernel, ModeVxtunHostGW, ModeVxtunDirectRouting:
		return SpreadFlows
	case ModeVxtunVXLAN, ModeVxtunUDP, ModeVxtunBusyPoll, ModeVxtunBusyPollIdle, ModeVxtunBusyPollAhead, ModeVxtunCPULocal:
		return SpreadWorkers
	case ModeNebula:
		return SpreadOne
	}
	// wireguard-go: one outer flow per peer, but decryption runs on a
	// worker per CPU behind the socket; not modelled.
	return SpreadUnknown
}

// Projection is the model that turns a measured CPU cost per unit moved
// into a throughput on a bigger node: throughput ≈ usable cores / (CPU-s
// per unit), usable cores = min(Cores, how many outer flows one peer's
// traffic uses). The CPU cost is the whole testbed's (both nodes, both
// ends of the application), so it reads as "each node sending and
// receiving this much at once". It assumes the path scales linearly with
// cores and the flows hash evenly; neither is shown by a 2-core run. A
// projection, not a measurement.
type Projection struct {
	Cores   int `json:"cores"`   // cores of the projected node
	Flows   int `json:"flows"`   // inner flows between the node and one peer
	Workers int `json:"workers"` // vxtun forwarding workers on that node (its default: one per CPU)
}

// Proj16 is the projection the harness reports: a 16-core node, one peer
// with 16 flows, vxtun's default of one worker per CPU.
var Proj16 = Projection{Cores: 16, Flows: 16, Workers: 16}

// UsableCores returns how many of p.Cores one peer's traffic can keep
// busy with spread s (0 when s is not modelled).
func (p Projection) UsableCores(s Spread) int {
	var n int
	switch s {
	case SpreadFlows:
		n = p.Flows
	case SpreadWorkers:
		n = min(p.Flows, p.Workers)
	case SpreadOne:
		n = 1
	default:
		return 0
	}
	return max(0, min(p.Cores, n))
}

// Project returns the units per second the model gives for a path that
// costs cpuPerUnit CPU-seconds per unit (a GB, a million packets), or
// false when it gives none (no cost measured, spread not modelled).
func (p Projection) Project(cpuPerUnit float64, s Spread) (float64, bool) {
	n := p.UsableCores(s)
	if !(cpuPerUnit > 0) || n == 0 {
		return 0, false
	}
	return float64(n) / cpuPerUnit, true
}
