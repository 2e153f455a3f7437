package dataplane

import (
	"log/slog"

	"golang.org/x/sys/unix"
)

// localCPUs is the CPU of each of n workers for Config.CPULocal: the CPUs
// the process may run on (its affinity, e.g. a container's cpuset), in
// order, repeated when there are more workers than CPUs. nil when the
// affinity cannot be read or n < 2 (one queue needs no steering).
func localCPUs(n int, log *slog.Logger) []int {
	if n < 2 {
		return nil
	}
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		log.Warn("cpu-local workers: read the cpu affinity (workers run unpinned)", "err", err)
		return nil
	}
	var allowed []int
	for c := 0; len(allowed) < set.Count(); c++ {
		if set.IsSet(c) {
			allowed = append(allowed, c)
		}
	}
	if len(allowed) == 0 {
		return nil
	}
	cpus := make([]int, n)
	for i := range cpus {
		cpus[i] = allowed[i%len(allowed)]
	}
	return cpus
}
