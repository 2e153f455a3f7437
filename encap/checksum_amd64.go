package encap

// useAVX2 selects the vector loop of ChecksumAdd for long buffers.
var useAVX2 = hasAVX2()

// hasAVX2 reports whether the CPU has AVX2 and the OS saves the YMM state
// (CPUID.1:ECX OSXSAVE and AVX, XCR0 SSE and AVX bits, CPUID.7:EBX AVX2).
// encap imports only the standard library, so it asks CPUID itself.
func hasAVX2() bool {
	if maxID, _, _, _ := cpuid(0, 0); maxID < 7 {
		return false
	}
	const osxsave, avx = 1 << 27, 1 << 28
	if _, _, ecx, _ := cpuid(1, 0); ecx&osxsave == 0 || ecx&avx == 0 {
		return false
	}
	if xcr0, _ := xgetbv(); xcr0&6 != 6 {
		return false
	}
	_, ebx, _, _ := cpuid(7, 0)
	return ebx&(1<<5) != 0
}

// csumAVX2, cpuid and xgetbv are implemented in checksum_amd64.s.

//go:noescape
func csumAVX2(p *byte, n int) uint64

func cpuid(eaxArg, ecxArg uint32) (eax, ebx, ecx, edx uint32)

func xgetbv() (eax, edx uint32)

// setAVX2 is for tests that compare both paths.
func setAVX2(on bool) { useAVX2 = on && hasAVX2() }
