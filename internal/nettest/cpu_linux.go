package nettest

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// OnCPU runs fn on a thread of its own restricted to cpu and returns its
// error: for tests of what the kernel does by sending CPU (queue and
// socket steering). The thread ends with fn.
func OnCPU(cpu int, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		var set unix.CPUSet
		set.Set(cpu)
		if err := unix.SchedSetaffinity(0, &set); err != nil {
			errc <- fmt.Errorf("pin to cpu %d: %w", cpu, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}
