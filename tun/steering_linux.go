package tun

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/vxtun/vxtun/internal/ebpf"
)

// Queue steering: which queue of a multi-queue TUN the kernel hands an
// outgoing packet to (tun_select_queue).
//
// Without a steering program the kernel uses its flow table: a flow goes to
// the queue on which a packet of the same flow (symmetric hash, so the reply
// direction counts) was last written. A dataplane that writes a flow's
// replies on whichever queue received them from the underlay (the worker
// the SO_REUSEPORT group picked by the peer's outer source port) therefore
// moves the flow's outgoing packets to another worker whenever the two
// choices disagree, and with two nodes doing the same the flow can flip
// between workers for as long as it lasts. Every flip sends the flow's
// packets down two workers at once: reordering, which TCP answers with
// duplicate ACKs and retransmissions (measured: in about a third of the
// daemon starts, 10⁴–10⁵ retransmitted segments in a 5-second transfer
// and half the throughput).
//
// A steering program (TUNSETSTEERINGEBPF) replaces the flow table: the queue
// is the program's return value modulo the number of queues, and the kernel
// stops recording written flows. steeringProgram hashes the addresses and,
// for TCP and UDP that is not a fragment, the ports: a flow stays on one
// queue for its lifetime, whatever queue its replies are written on.

// steeringProgram is the flow-hash steering program: the queue is the
// flow hash (ebpf.FlowHash); anything that is not IP goes to queue 0.
func steeringProgram() []ebpf.Asm {
	p := []ebpf.Asm{ebpf.I(ebpf.MovX, ebpf.R6, ebpf.R1, 0, 0)}
	p = append(p, ebpf.FlowHash(ebpf.R8, "zero")...)
	return append(p,
		ebpf.I(ebpf.MovX, ebpf.R0, ebpf.R8, 0, 0),
		ebpf.I(ebpf.Exit, 0, 0, 0, 0),
		ebpf.Label("zero"),
		ebpf.I(ebpf.MovK, ebpf.R0, 0, 0, 0),
		ebpf.I(ebpf.Exit, 0, 0, 0, 0),
	)
}

// setSteering attaches the steering program to the device through queue
// fd (the program belongs to the device, not the queue): the CPU-local one
// when cpus is set (one CPU per queue), else the flow-hash one.
func setSteering(fd int, cpus []int) error {
	var prog int
	var err error
	if len(cpus) > 0 {
		prog, err = loadLocalSteering(cpus)
	} else {
		prog, err = ebpf.LoadSocketFilter("vxtun_steer", steeringProgram())
	}
	if err != nil {
		return err
	}
	defer unix.Close(prog) // the device keeps its own reference
	if err := unix.IoctlSetPointerInt(fd, unix.TUNSETSTEERINGEBPF, prog); err != nil {
		return fmt.Errorf("TUNSETSTEERINGEBPF: %w", err)
	}
	return nil
}
