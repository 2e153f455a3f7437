// Package ebpf is the small eBPF toolkit of vxtun's steering programs: an
// assembler with jump labels (asm.go), the bpf(2) calls that load a
// socket-filter program and create an array map (load_linux.go), and the
// programs' shared building blocks: a flow hash of an IP packet and a
// CPU-to-index table (programs.go).
//
// Programs are built in Go, not compiled from C: they are a few dozen
// instructions, and vxtun ships no object files. Users: tun (the queue
// steering of a multi-queue TUN, TUNSETSTEERINGEBPF) and fastpath/udp (the
// socket selection of a SO_REUSEPORT group, SO_ATTACH_REUSEPORT_EBPF).
//
// Concurrency: everything here is a pure function or a one-shot syscall;
// a loaded program or map is a file descriptor the caller owns.
package ebpf
