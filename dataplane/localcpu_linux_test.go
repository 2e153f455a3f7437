package dataplane

import (
	"log/slog"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

// TestLocalCPUs: workers get the CPUs of the process's affinity in order,
// repeated when there are more workers; one worker gets none.
func TestLocalCPUs(t *testing.T) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		t.Fatal(err)
	}
	var allowed []int
	for c := 0; len(allowed) < set.Count(); c++ {
		if set.IsSet(c) {
			allowed = append(allowed, c)
		}
	}
	if got := localCPUs(1, slog.Default()); got != nil {
		t.Errorf("1 worker: got %v, want nil", got)
	}
	n := 2*len(allowed) + 1
	got := localCPUs(n, slog.Default())
	if len(got) != n {
		t.Fatalf("%d workers: got %v, want %d CPUs", n, got, n)
	}
	for i, c := range got {
		if want := allowed[i%len(allowed)]; c != want {
			t.Errorf("worker %d: got cpu %d, want %d (allowed %v)", i, c, want, allowed)
		}
	}
	if !slices.Equal(got[:len(allowed)], allowed) {
		t.Errorf("got %v, want the allowed CPUs %v first", got, allowed)
	}
}
