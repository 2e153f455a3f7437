package ebpf

import (
	"encoding/binary"
	"fmt"
)

// Insn is one eBPF instruction (struct bpf_insn).
type Insn struct {
	Code uint8
	Regs uint8 // dst in the low nibble, src in the high one
	Off  int16
	Imm  int32
}

// Opcodes used by vxtun's programs (linux/bpf_common.h, linux/bpf.h).
const (
	LdAbsB   = 0x30 // BPF_LD|BPF_ABS|BPF_B: r0 = packet byte at imm
	LdAbsH   = 0x28
	LdAbsW   = 0x20
	LdIndW   = 0x40 // BPF_LD|BPF_IND|BPF_W: r0 = packet word at src+imm
	LdImm64  = 0x18 // BPF_LD|BPF_DW|BPF_IMM: two instructions
	LdxMemW  = 0x61 // dst = *(u32 *)(src + off)
	LdxMemDW = 0x79
	StxMemW  = 0x63 // *(u32 *)(dst + off) = src
	StxMemDW = 0x7b
	MovX     = 0xbf
	MovK     = 0xb7
	AddK     = 0x07
	SubX     = 0x1f
	AndK     = 0x57
	LshK     = 0x67
	RshK     = 0x77
	XorX     = 0xaf
	Mul32K   = 0x24 // 32-bit ALU
	Rsh32K   = 0x74
	JeqK     = 0x15
	JneK     = 0x55
	JsgtK    = 0x65 // signed
	JeqX     = 0x1d
	JsetK    = 0x45
	Ja       = 0x05
	Call     = 0x85
	Exit     = 0x95
)

// Registers. LD_ABS and LD_IND read the packet of the context in R6 and
// clobber R1–R5, as a helper call does; R6–R9 survive both.
const (
	R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, R10 = 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10
	RFP                                         = R10 // read-only frame pointer
)

// Helper function numbers (enum bpf_func_id).
const (
	FnMapLookupElem     = 1
	FnKtimeGetNS        = 5
	FnGetSmpProcessorID = 8
)

// pseudoMapFD marks the source register of a LdImm64 whose immediate is a
// map file descriptor (BPF_PSEUDO_MAP_FD).
const pseudoMapFD = 1

// Asm is an instruction with an optional jump target label, or a label.
type Asm struct {
	insn   Insn
	target string // jump to this label
	label  string // this entry only marks a position
	hi     bool   // the second half of a LdImm64
}

// I is an instruction.
func I(code uint8, dst, src uint8, off int16, imm int32) Asm {
	return Asm{insn: Insn{Code: code, Regs: dst | src<<4, Off: off, Imm: imm}}
}

// J is a conditional or unconditional jump to label target.
func J(code uint8, dst, src uint8, imm int32, target string) Asm {
	a := I(code, dst, src, 0, imm)
	a.target = target
	return a
}

// Label marks the position of the next instruction.
func Label(name string) Asm { return Asm{label: name} }

// LoadMap sets dst to the map with file descriptor fd (two instructions).
func LoadMap(dst uint8, fd int) []Asm {
	return []Asm{I(LdImm64, dst, pseudoMapFD, 0, int32(fd)), {hi: true}}
}

// Assemble resolves labels into relative jump offsets.
func Assemble(prog []Asm) ([]Insn, error) {
	pos := map[string]int{}
	n := 0
	for _, a := range prog {
		if a.label != "" {
			if _, dup := pos[a.label]; dup {
				return nil, fmt.Errorf("bpf: label %q twice", a.label)
			}
			pos[a.label] = n
			continue
		}
		n++
	}
	out := make([]Insn, 0, n)
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
			if to <= len(out) {
				return nil, fmt.Errorf("bpf: jump back to %q", a.target)
			}
			i.Off = int16(to - len(out) - 1)
		}
		out = append(out, i)
	}
	return out, nil
}

// Encode lays insns out as the kernel reads them.
func Encode(insns []Insn) []byte {
	b := make([]byte, 8*len(insns))
	for i, in := range insns {
		o := b[8*i:]
		o[0], o[1] = in.Code, in.Regs
		binary.LittleEndian.PutUint16(o[2:], uint16(in.Off))
		binary.LittleEndian.PutUint32(o[4:], uint32(in.Imm))
	}
	return b
}
