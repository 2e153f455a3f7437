package bench

import "github.com/vxtun/vxtun/config"

// VxtunKernelMode runs vxtun with the kernel dataplane (--dataplane
// kernel): vxtun programs flannel.1 as flanneld does and the kernel
// forwards, so it should measure like KernelVXLANMode. Its configuration
// is VxtunMode's (VXLAN).
type VxtunKernelMode struct {
	VxtunMode
}

// newVxtunKernelMode is the mode ModeVxtunKernel.
func newVxtunKernelMode(c Config) *VxtunKernelMode {
	extra := append([]string{"--dataplane", "kernel"}, c.VxtunArgs...)
	return &VxtunKernelMode{VxtunMode{Backend: config.BackendVXLAN, Binary: c.Vxtun, Extra: extra}}
}

// Name implements Mode.
func (m *VxtunKernelMode) Name() string { return ModeVxtunKernel }

// PIDs implements Mode: none, the kernel forwards (vxtun only sleeps and
// reads the device's counters once a second).
func (m *VxtunKernelMode) PIDs() []int { return nil }

// attach gives a vxtun mode the harness that starts its daemons.
func (m *VxtunMode) attach(h *Harness) { m.h = h }
