package bench

import (
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/vxtun/vxtun/internal/nettest"
)

// TestWakeTraceCountsOwnThreads traces this process's threads while one
// of them sleeps and wakes 50 times: every wake-up must be counted, and
// the tracefs instance must be gone afterwards.
func TestWakeTraceCountsOwnThreads(t *testing.T) {
	nettest.RequirePrivileged(t)
	wt, err := StartWakeTrace([]int{os.Getpid()})
	if err != nil {
		t.Fatal(err)
	}
	dir := wt.dir
	done := make(chan struct{})
	go func() {
		runtime.LockOSThread() // the sleeps block this thread in the kernel
		defer runtime.UnlockOSThread()
		for range 50 {
			time.Sleep(200 * time.Microsecond)
		}
		close(done)
	}()
	<-done
	s, err := wt.Stop()
	if err != nil {
		t.Fatal(err)
	}
	if s.Wakeups < 50 {
		t.Errorf("got %d wake-ups of this process's threads, want ≥ 50 (%d trace lines)", s.Wakeups, s.Lines)
	}
	if n := len(s.CrossLatency) + len(s.LocalLatency); n == 0 {
		t.Errorf("got no wake-up-to-running latencies of %d wake-ups", s.Wakeups)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("tracefs instance %s still there after Stop (stat: %v)", dir, err)
	}
}
