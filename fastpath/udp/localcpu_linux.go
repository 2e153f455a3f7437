package udp

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/vxtun/vxtun/internal/ebpf"
)

// CPU-local socket selection (Options.LocalCPUs): a SO_REUSEPORT group
// hands a datagram to the socket of the CPU the kernel receives it on, so
// the worker that reads it runs where the softirq ran (on a NIC with RSS,
// the CPU of the datagram's receive queue; over a veth, the sender's) and
// its wake-up is not a cross-CPU one. Datagrams received on a CPU with no
// socket go by the group's usual 4-tuple hash (the program returns −1,
// an index beyond the group).

// localCPUProgram returns the program: the index i of cpus that is the
// current CPU.
func localCPUProgram(cpus []int) []ebpf.Asm {
	p := ebpf.CPUIndex(ebpf.R1, cpus, "hash")
	return append(p,
		ebpf.I(ebpf.MovX, ebpf.R0, ebpf.R1, 0, 0),
		ebpf.I(ebpf.Exit, 0, 0, 0, 0),
		ebpf.Label("hash"),
		ebpf.I(ebpf.MovK, ebpf.R0, 0, 0, -1),
		ebpf.I(ebpf.Exit, 0, 0, 0, 0),
	)
}

// attachLocalCPU attaches the program to the group of bound socket fd
// (the group's program, replacing any before).
func attachLocalCPU(fd int, cpus []int) error {
	prog, err := ebpf.LoadSocketFilter("vxtun_reuse_cpu", localCPUProgram(cpus))
	if err != nil {
		return err
	}
	defer unix.Close(prog) // the group keeps its own reference
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ATTACH_REUSEPORT_EBPF, prog); err != nil {
		return fmt.Errorf("SO_ATTACH_REUSEPORT_EBPF: %w", err)
	}
	return nil
}
