//go:build !linux

package fastpath

import "runtime"

// yieldCPU lets other goroutines run (sched_yield on Linux).
func yieldCPU() { runtime.Gosched() }
