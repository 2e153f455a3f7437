package bench

import (
	"os/exec"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/vxtun/vxtun/internal/nettest"
)

// TestOnCPU: a process started inside onCPU runs on that CPU only, and the
// calling thread gets its mask back.
func TestOnCPU(t *testing.T) {
	nettest.RequireCPUs(t, 2)
	var out []byte
	err := onCPU(1, func() error {
		var err error
		out, err = exec.Command("grep", "Cpus_allowed_list", "/proc/self/status").Output()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(strings.TrimPrefix(string(out), "Cpus_allowed_list:")); got != "1" {
		t.Errorf("child of onCPU(1): got Cpus_allowed_list %q, want 1", got)
	}
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		t.Fatal(err)
	}
	if set.Count() < 2 {
		t.Errorf("after onCPU: got %d CPUs in this thread's mask, want all again", set.Count())
	}
}

// TestPinProcess: every thread of a process goes to one CPU, and back
// restores each thread's mask.
func TestPinProcess(t *testing.T) {
	nettest.RequireCPUs(t, 2)
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	pid := cmd.Process.Pid
	mask := func() (set unix.CPUSet) {
		t.Helper()
		if err := unix.SchedGetaffinity(pid, &set); err != nil {
			t.Fatal(err)
		}
		return set
	}
	before := mask()
	back, err := pinProcess(pid, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got := mask(); got.Count() != 1 || !got.IsSet(1) {
		t.Errorf("pinned: got %d CPUs (CPU 1 set: %v), want only CPU 1", got.Count(), got.IsSet(1))
	}
	if err := back(); err != nil {
		t.Fatal(err)
	}
	if got := mask(); got != before {
		t.Errorf("restored: got %d CPUs, want the %d before", got.Count(), before.Count())
	}
	if got := threads(pid); len(got) != 1 || got[0] != pid {
		t.Errorf("threads of sleep: got %v, want [%d]", got, pid)
	}
}
