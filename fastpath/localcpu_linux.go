package fastpath

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"

	"github.com/vxtun/vxtun/internal/rawfd"
)

// pinThread locks the calling goroutine to its thread, for good (the
// thread ends with the goroutine), and restricts the thread to cpu.
func pinThread(cpu int) error {
	runtime.LockOSThread()
	var set unix.CPUSet
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		return fmt.Errorf("sched_setaffinity cpu %d: %w", cpu, err)
	}
	return nil
}

// localLoop is the one owner goroutine of a CPU-local worker (singleOwner):
// pinned to the worker's CPU, it reads every direction without waiting,
// in turn, and when none had anything waits for all of them in one ppoll.
// It returns a direction's fatal error, nil once the forwarder stops.
func (w *worker) localLoop() error {
	w.pinOwner()
	var set rawfd.Set
	ds := w.dirs()
	for _, d := range ds {
		if d != nil {
			set.Add(d.fd)
		}
	}
	waitFails := 0
	for {
		got := false
		for _, d := range ds {
			if d == nil {
				continue
			}
			d.mu.Lock()
			g, err := d.try()
			d.mu.Unlock()
			if w.f.stopping.Load() {
				return nil
			}
			if err != nil {
				return err
			}
			got = got || g
		}
		if got {
			continue
		}
		w.waits.Add(1)
		if err := set.WaitRead(-1); err != nil {
			if w.f.stopping.Load() {
				return nil
			}
			if waitFails >= errorBudget {
				return fmt.Errorf("worker %d: %w", w.id, err)
			}
			waitFails++
			continue
		}
		waitFails = 0
	}
}
