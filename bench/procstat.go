package bench

import (
	"fmt"
	"strconv"
	"strings"
)

// parseSchedstat returns the CPU time in seconds of a task's
// /proc/<pid>/task/<tid>/schedstat line ("<run ns> <wait ns> <slices>"):
// nanosecond resolution, where /proc/<pid>/stat counts 10 ms ticks, which
// an idle daemon does not fill in a short window.
func parseSchedstat(b []byte) (float64, error) {
	f := strings.Fields(string(b))
	if len(f) < 1 {
		return 0, fmt.Errorf("parse schedstat: empty")
	}
	ns, err := strconv.ParseUint(f[0], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse schedstat: %w", err)
	}
	return float64(ns) / 1e9, nil
}

// procSnap is one process's CPU time at a point, both ways.
type procSnap struct{ precise, ticks float64 }

// procCPUDelta is the CPU seconds a process used between two snapshots:
// the schedstat difference unless a thread's exit made it fall (or it was
// not readable), else the tick counters' (which keep exited threads' time).
func procCPUDelta(a, b procSnap) float64 {
	if a.precise >= 0 && b.precise >= a.precise {
		return b.precise - a.precise
	}
	return max(0, b.ticks-a.ticks)
}

// cpuFig is a CPU figure of one mode: its own processes' and the machine's.
type cpuFig struct{ own, machine float64 }

// idleFigures computes a mode's idle figures from one window: machineBusy
// CPU-seconds of the whole machine, used the CPU-seconds of every process
// the harness started, own those of the mode. The machine figure leaves
// out every other process of the harness (never below 0).
func idleFigures(machineBusy float64, used map[int]float64, own []int, minutes float64) cpuFig {
	if !(minutes > 0) {
		return cpuFig{}
	}
	var all, mine float64
	for _, u := range used {
		all += u
	}
	for _, p := range own {
		mine += used[p]
	}
	return cpuFig{own: mine / minutes, machine: max(0, machineBusy-(all-mine)) / minutes}
}

// perMpps returns the CPU-seconds per million datagrams of a trial with
// size-byte payloads on a machine of ncpu CPUs: the machine's (Busy share
// of all CPUs) and the mode's processes' (ProcBusy).
func perMpps(t Trial, size, ncpu int) cpuFig {
	mpps := t.Received / (8 * float64(size)) / 1e6
	if !(mpps > 0) {
		return cpuFig{}
	}
	return cpuFig{machine: t.Busy * float64(ncpu) / mpps, own: t.ProcBusy / mpps}
}
