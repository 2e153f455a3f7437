package tun

import (
	"golang.org/x/sys/unix"

	"github.com/vxtun/vxtun/internal/ebpf"
)

// CPU-local steering (Options.LocalCPUs): a packet goes to the queue of
// the CPU that writes it (the sending application's, or the softirq's
// that forwards it), so the worker that reads it runs there too and its
// wake-up is not a cross-CPU one — on a VM a halted vCPU's, 30–50 µs — as
// receive flow steering does for a NIC queue. A flow moves to the writer's
// queue only at the start of a flowlet: after a pause of at least
// flowletGap since its last packet, when what it sent before has long
// left the old queue, so moving never reorders it (a TCP flow transmits
// from the application's CPU and from the CPU that takes its ACKs; moved
// per packet it was reordered and lost a third of its throughput). A ping
// at 1 ms, a request, an ACK after a pause: each is a flowlet of its own
// and stays on its CPU. A busy flow keeps its queue.
//
// State: an array map of flowletSlots slots, indexed by the flow hash,
// each the flow's queue and the time of its last packet (two flows that
// share a slot move together). Updates from several CPUs at once may
// interleave; the worst outcome is a flow moved early once.

// flowletGap is the pause after which a flow may move to another queue.
// It must exceed the time a packet spends between the TUN and the peer's
// TUN write when nothing is queued (tens of µs here).
const flowletGap = 200_000 // ns

// flowletSlots is the number of flow slots (a power of two).
const flowletSlots = 4096

// localSteeringProgram returns the CPU-local steering program for queues
// serving cpus (queue i serves CPU cpus[i]) with flow map flows. A packet
// written on another CPU goes by flow hash, as do packets that are not IP.
func localSteeringProgram(cpus []int, flows int) []ebpf.Asm {
	const (
		ctx, slot, hash, now = ebpf.R6, ebpf.R7, ebpf.R8, ebpf.R9
		target               = ebpf.R2
	)
	p := []ebpf.Asm{ebpf.I(ebpf.MovX, ctx, ebpf.R1, 0, 0)}
	p = append(p, ebpf.FlowHash(hash, "zero")...)
	p = append(p,
		// slot = &flows[hash % flowletSlots]
		ebpf.I(ebpf.MovX, ebpf.R2, hash, 0, 0),
		ebpf.I(ebpf.AndK, ebpf.R2, 0, 0, flowletSlots-1),
		ebpf.I(ebpf.StxMemW, ebpf.RFP, ebpf.R2, -4, 0),
	)
	p = append(p, ebpf.LoadMap(ebpf.R1, flows)...)
	p = append(p,
		ebpf.I(ebpf.MovX, ebpf.R2, ebpf.RFP, 0, 0),
		ebpf.I(ebpf.AddK, ebpf.R2, 0, 0, -4),
		ebpf.I(ebpf.Call, 0, 0, 0, ebpf.FnMapLookupElem),
		ebpf.J(ebpf.JeqK, ebpf.R0, 0, 0, "hash"),
		ebpf.I(ebpf.MovX, slot, ebpf.R0, 0, 0),
		ebpf.I(ebpf.Call, 0, 0, 0, ebpf.FnKtimeGetNS),
		ebpf.I(ebpf.MovX, now, ebpf.R0, 0, 0),
	)
	p = append(p, ebpf.CPUIndex(target, cpus, "hash")...)
	p = append(p,
		ebpf.I(ebpf.LdxMemW, ebpf.R3, slot, 0, 0),   // the flow's queue
		ebpf.I(ebpf.LdxMemDW, ebpf.R4, slot, 8, 0),  // its last packet
		ebpf.I(ebpf.StxMemDW, slot, now, 8, 0),      // is this one
		ebpf.J(ebpf.JeqX, ebpf.R3, target, 0, "go"), // already here
		ebpf.I(ebpf.MovX, ebpf.R5, now, 0, 0),
		ebpf.I(ebpf.SubX, ebpf.R5, ebpf.R4, 0, 0),
		// Signed: a slot another CPU stamped a moment later is no pause.
		ebpf.J(ebpf.JsgtK, ebpf.R5, 0, flowletGap, "move"),
		ebpf.I(ebpf.MovX, ebpf.R0, ebpf.R3, 0, 0), // busy: stay
		ebpf.I(ebpf.Exit, 0, 0, 0, 0),
		ebpf.Label("move"),
		ebpf.I(ebpf.StxMemW, slot, target, 0, 0),
		ebpf.Label("go"),
		ebpf.I(ebpf.MovX, ebpf.R0, target, 0, 0),
		ebpf.I(ebpf.Exit, 0, 0, 0, 0),
		ebpf.Label("hash"),
		ebpf.I(ebpf.MovX, ebpf.R0, hash, 0, 0),
		ebpf.I(ebpf.Exit, 0, 0, 0, 0),
		ebpf.Label("zero"),
		ebpf.I(ebpf.MovK, ebpf.R0, 0, 0, 0),
		ebpf.I(ebpf.Exit, 0, 0, 0, 0),
	)
	return p
}

// loadLocalSteering creates the flow map and loads the CPU-local program.
func loadLocalSteering(cpus []int) (int, error) {
	flows, err := ebpf.NewArray("vxtun_flowlets", 16, flowletSlots)
	if err != nil {
		return -1, err
	}
	defer unix.Close(flows) // the program keeps its own reference
	return ebpf.LoadSocketFilter("vxtun_steer_cpu", localSteeringProgram(cpus, flows))
}
