package tun

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
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

// bpfInsn is one eBPF instruction (struct bpf_insn).
type bpfInsn struct {
	code uint8
	regs uint8 // dst in the low nibble, src in the high one
	off  int16
	imm  int32
}

// eBPF opcodes used by steeringProgram.
const (
	bpfLdAbsB    = unix.BPF_LD | unix.BPF_ABS | unix.BPF_B
	bpfLdAbsH    = unix.BPF_LD | unix.BPF_ABS | unix.BPF_H
	bpfLdAbsW    = unix.BPF_LD | unix.BPF_ABS | unix.BPF_W
	bpfLdIndW    = unix.BPF_LD | unix.BPF_IND | unix.BPF_W
	bpfMovX      = unix.BPF_ALU64 | unix.BPF_MOV | unix.BPF_X
	bpfMovK      = unix.BPF_ALU64 | unix.BPF_MOV | unix.BPF_K
	bpfAndK      = unix.BPF_ALU64 | unix.BPF_AND | unix.BPF_K
	bpfLshK      = unix.BPF_ALU64 | unix.BPF_LSH | unix.BPF_K
	bpfRshK      = unix.BPF_ALU64 | unix.BPF_RSH | unix.BPF_K
	bpfXorX      = unix.BPF_ALU64 | unix.BPF_XOR | unix.BPF_X
	bpfMul32K    = unix.BPF_ALU | unix.BPF_MUL | unix.BPF_K
	bpfRsh32K    = unix.BPF_ALU | unix.BPF_RSH | unix.BPF_K
	bpfJeqK      = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
	bpfJneK      = unix.BPF_JMP | unix.BPF_JNE | unix.BPF_K
	bpfJsetK     = unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K
	bpfJa        = unix.BPF_JMP | unix.BPF_JA
	bpfExit      = unix.BPF_JMP | unix.BPF_EXIT
	regR0, regR1 = 0, 1
	regCtx       = 6 // LD_ABS/LD_IND read the packet of the context in r6
	regIHL       = 7
	regHash      = 8
)

// asmInsn is an instruction with an optional jump target label, or a label.
type asmInsn struct {
	insn   bpfInsn
	target string // jump to this label
	label  string // this entry only marks a position
}

func ins(code uint8, dst, src uint8, imm int32) asmInsn {
	return asmInsn{insn: bpfInsn{code: code, regs: dst | src<<4, imm: imm}}
}

func jmp(code uint8, dst uint8, imm int32, target string) asmInsn {
	a := ins(code, dst, 0, imm)
	a.target = target
	return a
}

func label(name string) asmInsn { return asmInsn{label: name} }

// assemble resolves labels into relative jump offsets.
func assemble(prog []asmInsn) ([]bpfInsn, error) {
	pos := map[string]int{}
	n := 0
	for _, a := range prog {
		if a.label != "" {
			pos[a.label] = n
			continue
		}
		n++
	}
	out := make([]bpfInsn, 0, n)
	for _, a := range prog {
		if a.label != "" {
			continue
		}
		i := a.insn
		if a.target != "" {
			to, ok := pos[a.target]
			if !ok {
				return nil, fmt.Errorf("bpf: no label %q", a.target)
			}
			i.off = int16(to - len(out) - 1)
		}
		out = append(out, i)
	}
	return out, nil
}

// steeringProgram returns the queue-steering program: a 32-bit hash of the
// IP addresses and, for unfragmented TCP and UDP, the ports, of the packet
// (which starts at its IP header: a TUN has no link-layer header). Anything
// else hashes to 0 (a load beyond the packet ends the program with 0).
func steeringProgram() ([]bpfInsn, error) {
	p := []asmInsn{
		ins(bpfMovX, regCtx, regR1, 0),
		ins(bpfLdAbsB, 0, 0, 0), // version, IHL
		ins(bpfMovX, regIHL, regR0, 0),
		ins(bpfRshK, regIHL, 0, 4),
		jmp(bpfJeqK, regIHL, 6, "v6"),
		jmp(bpfJneK, regIHL, 4, "zero"),
		// IPv4: IHL in bytes, then source ^ destination.
		ins(bpfMovX, regIHL, regR0, 0),
		ins(bpfAndK, regIHL, 0, 0xf),
		ins(bpfLshK, regIHL, 0, 2),
		ins(bpfLdAbsW, 0, 0, 12),
		ins(bpfMovX, regHash, regR0, 0),
		ins(bpfLdAbsW, 0, 0, 16),
		ins(bpfXorX, regHash, regR0, 0),
		ins(bpfLdAbsH, 0, 0, 6), // flags, fragment offset
		jmp(bpfJsetK, regR0, 0x3fff, "mix"),
		ins(bpfLdAbsB, 0, 0, 9), // protocol
		jmp(bpfJeqK, regR0, unix.IPPROTO_TCP, "ports4"),
		jmp(bpfJneK, regR0, unix.IPPROTO_UDP, "mix"),
		label("ports4"),
		ins(bpfLdIndW, 0, regIHL, 0),
		ins(bpfXorX, regHash, regR0, 0),
		jmp(bpfJa, 0, 0, "mix"),
		// IPv6: the eight address words; ports when the next header is
		// TCP or UDP (extension headers hash by addresses only).
		label("v6"),
		ins(bpfLdAbsW, 0, 0, 8),
		ins(bpfMovX, regHash, regR0, 0),
	}
	for off := int32(12); off < 40; off += 4 {
		p = append(p, ins(bpfLdAbsW, 0, 0, off), ins(bpfXorX, regHash, regR0, 0))
	}
	p = append(p,
		ins(bpfLdAbsB, 0, 0, 6), // next header
		jmp(bpfJeqK, regR0, unix.IPPROTO_TCP, "ports6"),
		jmp(bpfJneK, regR0, unix.IPPROTO_UDP, "mix"),
		label("ports6"),
		ins(bpfLdAbsW, 0, 0, 40),
		ins(bpfXorX, regHash, regR0, 0),
		// Mix (Fibonacci hashing) so that the low bits, which the kernel
		// takes modulo the queue count, depend on all of them.
		label("mix"),
		ins(bpfMul32K, regHash, 0, -0x61c88647), // 0x9e3779b9
		ins(bpfMovX, regR0, regHash, 0),
		ins(bpfRsh32K, regR0, 0, 16),
		ins(bpfExit, 0, 0, 0),
		label("zero"),
		ins(bpfMovK, regR0, 0, 0),
		ins(bpfExit, 0, 0, 0),
	)
	return assemble(p)
}

// encodeBPF lays insns out as the kernel reads them.
func encodeBPF(insns []bpfInsn) []byte {
	b := make([]byte, 8*len(insns))
	for i, in := range insns {
		o := b[8*i:]
		o[0], o[1] = in.code, in.regs
		binary.LittleEndian.PutUint16(o[2:], uint16(in.off))
		binary.LittleEndian.PutUint32(o[4:], uint32(in.imm))
	}
	return b
}

// bpfProgLoadAttr is the BPF_PROG_LOAD part of union bpf_attr.
type bpfProgLoadAttr struct {
	progType    uint32
	insnCnt     uint32
	insns       uint64
	license     uint64
	logLevel    uint32
	logSize     uint32
	logBuf      uint64
	kernVersion uint32
	progFlags   uint32
	progName    [unix.BPF_OBJ_NAME_LEN]byte
}

// loadSteeringProgram loads steeringProgram as a socket-filter program
// (the type TUNSETSTEERINGEBPF takes) and returns its file descriptor.
func loadSteeringProgram() (int, error) {
	insns, err := steeringProgram()
	if err != nil {
		return -1, err
	}
	code := encodeBPF(insns)
	license := []byte("GPL\x00")
	logBuf := make([]byte, 4096)
	attr := bpfProgLoadAttr{
		progType: unix.BPF_PROG_TYPE_SOCKET_FILTER,
		insnCnt:  uint32(len(insns)),
		insns:    uint64(uintptr(unsafe.Pointer(&code[0]))),
		license:  uint64(uintptr(unsafe.Pointer(&license[0]))),
		logLevel: 1,
		logSize:  uint32(len(logBuf)),
		logBuf:   uint64(uintptr(unsafe.Pointer(&logBuf[0]))),
	}
	copy(attr.progName[:], "vxtun_steer")
	fd, _, errno := unix.Syscall(unix.SYS_BPF, unix.BPF_PROG_LOAD, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
	runtime.KeepAlive(code)
	runtime.KeepAlive(license)
	runtime.KeepAlive(logBuf)
	if errno != 0 {
		if n := clen(logBuf); n > 0 {
			return -1, fmt.Errorf("bpf prog load: %w: %s", errno, logBuf[:n])
		}
		return -1, fmt.Errorf("bpf prog load: %w", errno)
	}
	return int(fd), nil
}

func clen(b []byte) int {
	for i, c := range b {
		if c == 0 {
			return i
		}
	}
	return len(b)
}

// setSteering attaches the steering program to the device through queue
// fd (the program belongs to the device, not the queue).
func setSteering(fd int) error {
	prog, err := loadSteeringProgram()
	if err != nil {
		return err
	}
	defer unix.Close(prog) // the device keeps its own reference
	if err := unix.IoctlSetPointerInt(fd, unix.TUNSETSTEERINGEBPF, prog); err != nil {
		return fmt.Errorf("TUNSETSTEERINGEBPF: %w", err)
	}
	return nil
}
