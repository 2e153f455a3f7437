//go:build !linux

package fastpath

import "errors"

// pinThread: CPU affinity is Linux-only here.
func pinThread(int) error { return errors.New("cpu pinning needs linux") }
