package bench

import "os"

// ReadMachineCPU returns the machine's CPU time so far from /proc/stat.
func ReadMachineCPU() (MachineCPU, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return MachineCPU{}, err
	}
	return parseProcStatCPU(b)
}
