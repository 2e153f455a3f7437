package tun

import "golang.org/x/sys/cpu"

// useAVX2 selects the vector loop of csumAdd for long buffers.
var useAVX2 = cpu.X86.HasAVX2

// csumAVX2 is implemented in checksum_amd64.s.
//
//go:noescape
func csumAVX2(p *byte, n int) uint64

// setAVX2 is for tests that compare both paths.
func setAVX2(on bool) { useAVX2 = on && cpu.X86.HasAVX2 }
