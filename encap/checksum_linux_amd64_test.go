package encap

import (
	"os"
	"regexp"
	"testing"
)

// TestHasAVX2 checks the CPUID probe against the flags the kernel reports
// (it lists avx2 only when the CPU has it and the OS enabled the YMM state).
func TestHasAVX2(t *testing.T) {
	info, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		t.Skipf("read /proc/cpuinfo: %v", err)
	}
	want := regexp.MustCompile(`(?m)^flags\s*:.*\bavx2\b`).Match(info)
	if got := hasAVX2(); got != want {
		t.Fatalf("hasAVX2: got %v, want %v (from /proc/cpuinfo)", got, want)
	}
}
