package nettest

import (
	"fmt"
	"os"
)

// ProcCPU returns the user+system CPU seconds process pid (all its
// threads) has used so far.
func ProcCPU(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read cpu of %d: %w", pid, err)
	}
	s, err := parseProcStat(b)
	if err != nil {
		return 0, fmt.Errorf("cpu of %d: %w", pid, err)
	}
	return s, nil
}

// ProcPeakRSS returns the peak resident set (VmHWM) of pid in bytes.
func ProcPeakRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read status of %d: %w", pid, err)
	}
	n, err := parseVmHWM(b)
	if err != nil {
		return 0, fmt.Errorf("peak rss of %d: %w", pid, err)
	}
	return n, nil
}
