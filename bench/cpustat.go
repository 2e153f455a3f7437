package bench

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, the unit of /proc/stat (100 on every Linux ABI Go
// supports).
const clockTicks = 100

// MachineCPU is the aggregate "cpu" line of /proc/stat: CPU time of all
// CPUs, in seconds, since boot.
type MachineCPU struct {
	Busy float64 // user + nice + system + irq + softirq
	Idle float64 // idle + iowait
}

// Sub returns the busy seconds between an earlier snapshot and c.
func (c MachineCPU) Sub(earlier MachineCPU) float64 { return c.Busy - earlier.Busy }

// parseProcStatCPU reads the aggregate "cpu " line of /proc/stat. Steal
// time (another guest's) and guest time (already in user) are not counted.
func parseProcStatCPU(b []byte) (MachineCPU, error) {
	for _, line := range strings.Split(string(b), "\n") {
		rest, ok := strings.CutPrefix(line, "cpu ")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 7 {
			return MachineCPU{}, fmt.Errorf("parse /proc/stat: cpu line has %d fields, want ≥ 7", len(f))
		}
		var v [7]uint64
		for i := range v {
			n, err := strconv.ParseUint(f[i], 10, 64)
			if err != nil {
				return MachineCPU{}, fmt.Errorf("parse /proc/stat: %w", err)
			}
			v[i] = n
		}
		// user nice system idle iowait irq softirq
		busy := v[0] + v[1] + v[2] + v[5] + v[6]
		return MachineCPU{Busy: float64(busy) / clockTicks, Idle: float64(v[3]+v[4]) / clockTicks}, nil
	}
	return MachineCPU{}, errors.New("parse /proc/stat: no aggregate cpu line")
}
