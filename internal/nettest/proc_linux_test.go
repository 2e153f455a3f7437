package nettest

import (
	"os"
	"testing"
)

// Our own process has readable, sane figures.
func TestProcSelf(t *testing.T) {
	if s, err := ProcCPU(os.Getpid()); err != nil || s < 0 {
		t.Errorf("ProcCPU(self) = %v, %v; want ≥ 0, nil", s, err)
	}
	if rss, err := ProcPeakRSS(os.Getpid()); err != nil || rss <= 0 {
		t.Errorf("ProcPeakRSS(self) = %v, %v; want > 0, nil", rss, err)
	}
	if _, err := ProcCPU(-1); err == nil {
		t.Errorf("ProcCPU(-1): got nil error, want one")
	}
}
