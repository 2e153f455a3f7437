package bench

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/vxtun/vxtun/internal/nettest"
)

// procCPUPrecise returns the CPU seconds of pid's live threads from their
// schedstat (ns). A thread that exited takes its time with it, so across a
// window the sum can fall; procCPUDelta falls back to ticks then.
func procCPUPrecise(pid int) (float64, error) {
	paths, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	if err != nil || len(paths) == 0 {
		return 0, fmt.Errorf("cpu of %d: no schedstat", pid)
	}
	var sum float64
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // the thread exited meanwhile
		}
		s, err := parseSchedstat(b)
		if err != nil {
			return 0, fmt.Errorf("cpu of %d: %w", pid, err)
		}
		sum += s
	}
	return sum, nil
}

func snapProc(pid int) (procSnap, error) {
	t, err := nettest.ProcCPU(pid)
	if err != nil {
		return procSnap{}, err
	}
	p, err := procCPUPrecise(pid)
	if err != nil {
		p = -1
	}
	return procSnap{precise: p, ticks: t}, nil
}
