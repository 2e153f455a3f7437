package ebpf

import (
	"strconv"

	"golang.org/x/sys/unix"
)

// FlowHash computes into dst (one of R7–R9; R6 must hold the context) a
// 32-bit hash of the IP addresses and, for unfragmented TCP and UDP, the
// ports, of the packet, which starts at its IP header (a TUN has no
// link-layer header). The reply direction of a flow hashes alike
// (source ^ destination). It jumps to label zero for anything that is
// neither IPv4 nor IPv6; a load beyond the packet ends the program with 0.
// It uses R7 as scratch when dst is not R7, and labels starting with
// "fh_".
func FlowHash(dst uint8, zero string) []Asm {
	ihl := uint8(R7)
	if dst == R7 {
		ihl = R9
	}
	p := []Asm{
		I(LdAbsB, 0, 0, 0, 0), // version, IHL
		I(MovX, ihl, R0, 0, 0),
		I(RshK, ihl, 0, 0, 4),
		J(JeqK, ihl, 0, 6, "fh_v6"),
		J(JneK, ihl, 0, 4, zero),
		// IPv4: IHL in bytes, then source ^ destination.
		I(MovX, ihl, R0, 0, 0),
		I(AndK, ihl, 0, 0, 0xf),
		I(LshK, ihl, 0, 0, 2),
		I(LdAbsW, 0, 0, 0, 12),
		I(MovX, dst, R0, 0, 0),
		I(LdAbsW, 0, 0, 0, 16),
		I(XorX, dst, R0, 0, 0),
		I(LdAbsH, 0, 0, 0, 6), // flags, fragment offset
		J(JsetK, R0, 0, 0x3fff, "fh_mix"),
		I(LdAbsB, 0, 0, 0, 9), // protocol
		J(JeqK, R0, 0, unix.IPPROTO_TCP, "fh_ports4"),
		J(JneK, R0, 0, unix.IPPROTO_UDP, "fh_mix"),
		Label("fh_ports4"),
		I(LdIndW, 0, ihl, 0, 0),
		I(XorX, dst, R0, 0, 0),
		J(Ja, 0, 0, 0, "fh_mix"),
		// IPv6: the eight address words; ports when the next header is
		// TCP or UDP (extension headers hash by addresses only).
		Label("fh_v6"),
		I(LdAbsW, 0, 0, 0, 8),
		I(MovX, dst, R0, 0, 0),
	}
	for off := int32(12); off < 40; off += 4 {
		p = append(p, I(LdAbsW, 0, 0, 0, off), I(XorX, dst, R0, 0, 0))
	}
	return append(p,
		I(LdAbsB, 0, 0, 0, 6), // next header
		J(JeqK, R0, 0, unix.IPPROTO_TCP, "fh_ports6"),
		J(JneK, R0, 0, unix.IPPROTO_UDP, "fh_mix"),
		Label("fh_ports6"),
		I(LdAbsW, 0, 0, 0, 40),
		I(XorX, dst, R0, 0, 0),
		// Mix (Fibonacci hashing) so that the low bits, which the kernel
		// takes modulo the queue count, depend on all of them.
		Label("fh_mix"),
		I(Mul32K, dst, 0, 0, -0x61c88647), // 0x9e3779b9
		I(Rsh32K, dst, 0, 0, 16),
	)
}

// CPUIndex sets dst (R1–R5) to i where cpus[i] is the CPU the program
// runs on, and jumps to label miss when it is none of them. It clobbers
// R0–R5 (a helper call) and uses labels starting with "ci_". A compare
// per entry: vxtun's tables have one entry per worker.
func CPUIndex(dst uint8, cpus []int, miss string) []Asm {
	p := []Asm{I(Call, 0, 0, 0, FnGetSmpProcessorID)}
	for i, c := range cpus {
		next := "ci_" + strconv.Itoa(i)
		p = append(p,
			J(JneK, R0, 0, int32(c), next),
			I(MovK, dst, 0, 0, int32(i)),
			J(Ja, 0, 0, 0, "ci_done"),
			Label(next),
		)
	}
	return append(p, J(Ja, 0, 0, 0, miss), Label("ci_done"))
}
