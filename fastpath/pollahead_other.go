//go:build !linux

package fastpath

import "time"

// Elsewhere no descriptor is outside the runtime poller: PollAhead falls
// back to IdleSpin.
type (
	waitSet    struct{}
	dirFD      = *struct{}
	aheadWaker = *nopWaker
)

type nopWaker struct{}

func newAheadWaker() (aheadWaker, error) { return nil, nil }

func (*nopWaker) Close() error { return nil }

func (f *Forwarder) rescan() {}

func rawFD(any) dirFD { return nil }

func (f *Forwarder) collectWaitSet(*dir) bool { return false }

func (sp *spinState) waitSet(time.Duration) error { return nil }
