package nettest

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// userHZ is the unit of /proc/<pid>/stat times (USER_HZ, 100 on every
// Linux ABI Go supports).
const userHZ = 100

// parseProcStat returns utime+stime in seconds from a /proc/<pid>/stat line.
func parseProcStat(b []byte) (float64, error) {
	// The command name (field 2) is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("parse /proc stat: no ')'")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("parse /proc stat: %d fields after comm, want ≥ 13", len(f))
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("parse /proc stat: %w", err)
	}
	return float64(ut+st) / userHZ, nil
}

// parseVmHWM returns the VmHWM figure of a /proc/<pid>/status file in bytes.
func parseVmHWM(b []byte) (int64, error) {
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(rest)
			if len(f) < 1 {
				break
			}
			kb, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("parse VmHWM: %w", err)
			}
			return kb * 1024, nil
		}
	}
	return 0, errors.New("no VmHWM")
}
