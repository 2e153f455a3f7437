#include "textflag.h"

// func csumAVX2(p *byte, n int) uint64
//
// Sums n bytes at p (n a multiple of 64) as little-endian 32-bit words into
// 64-bit lanes and returns the total: a one's complement partial sum in
// little-endian byte order, not folded. Lanes cannot overflow for n < 2^35.
TEXT ·csumAVX2(SB), NOSPLIT, $0-24
	MOVQ p+0(FP), SI
	MOVQ n+8(FP), CX
	VPCMPEQD Y15, Y15, Y15
	VPSRLQ $32, Y15, Y15    // 0x00000000ffffffff in each lane
	VPXOR Y0, Y0, Y0
	VPXOR Y1, Y1, Y1
	VPXOR Y6, Y6, Y6
	VPXOR Y7, Y7, Y7
	CMPQ CX, $64
	JLT done

loop:
	VMOVDQU 0(SI), Y2
	VMOVDQU 32(SI), Y3
	VPAND Y15, Y2, Y4
	VPSRLQ $32, Y2, Y2
	VPAND Y15, Y3, Y5
	VPSRLQ $32, Y3, Y3
	VPADDQ Y4, Y0, Y0
	VPADDQ Y2, Y1, Y1
	VPADDQ Y5, Y6, Y6
	VPADDQ Y3, Y7, Y7
	ADDQ $64, SI
	SUBQ $64, CX
	CMPQ CX, $64
	JGE loop

done:
	VPADDQ Y1, Y0, Y0
	VPADDQ Y7, Y6, Y6
	VPADDQ Y6, Y0, Y0
	VEXTRACTI128 $1, Y0, X1
	VPADDQ X1, X0, X0
	VPEXTRQ $1, X0, BX
	MOVQ X0, AX
	ADDQ BX, AX
	VZEROUPPER
	MOVQ AX, ret+16(FP)
	RET

// func cpuid(eaxArg, ecxArg uint32) (eax, ebx, ecx, edx uint32)
TEXT ·cpuid(SB), NOSPLIT, $0-24
	MOVL eaxArg+0(FP), AX
	MOVL ecxArg+4(FP), CX
	CPUID
	MOVL AX, eax+8(FP)
	MOVL BX, ebx+12(FP)
	MOVL CX, ecx+16(FP)
	MOVL DX, edx+20(FP)
	RET

// func xgetbv() (eax, edx uint32)
//
// Reads XCR0; call only when CPUID reports OSXSAVE.
TEXT ·xgetbv(SB), NOSPLIT, $0-8
	MOVL $0, CX
	XGETBV
	MOVL AX, eax+0(FP)
	MOVL DX, edx+4(FP)
	RET
