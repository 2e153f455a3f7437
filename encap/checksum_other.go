//go:build !amd64

package encap

const useAVX2 = false

func csumAVX2(p *byte, n int) uint64 { panic("unreachable") }

func setAVX2(bool) {}
