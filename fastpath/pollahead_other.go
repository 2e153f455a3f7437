//go:build !linux

package fastpath

import "time"

// Elsewhere no descriptor is outside the runtime poller: PollAhead falls
// back to IdleSpin.
type (
	waitSet struct{}
	dirFD   = *struct{}
)

func rawFD(any) dirFD { return nil }

func (f *Forwarder) collectWaitSet(*dir) bool { return false }

func (sp *spinState) waitSet(time.Duration) error { return nil }
