//go:build !linux

package fastpath

import "errors"

// pinThread: CPU affinity is Linux-only here.
func pinThread(int) error { return errors.New("cpu pinning needs linux") }

// localLoop: singleOwner is never true here (no descriptor is outside the
// runtime poller).
func (w *worker) localLoop() error { return errors.New("cpu-local worker needs linux") }
