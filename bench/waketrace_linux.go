package bench

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
)

// tracefsRoots are where tracefs is found (the second through debugfs).
var tracefsRoots = []string{"/sys/kernel/tracing", "/sys/kernel/debug/tracing"}

var traceSeq atomic.Int64

// WakeTrace is a tracefs instance of its own recording sched_waking and
// sched_switch on every CPU: the global trace buffer and other tracers are
// not touched. Stop removes the instance.
type WakeTrace struct {
	dir  string
	pids []int        // processes whose threads are traced, besides ping
	tids map[int]bool // their threads seen at start and stop
}

// StartWakeTrace starts recording; the tasks counted are every "ping" and
// the threads of pids. An error (no tracefs, no root) means the wake-up
// rows are not reported.
func StartWakeTrace(pids []int) (*WakeTrace, error) {
	var root string
	for _, r := range tracefsRoots {
		if _, err := os.Stat(filepath.Join(r, "instances")); err == nil {
			root = r
			break
		}
	}
	if root == "" {
		return nil, errors.New("wake trace: no tracefs (mount -t tracefs nodev /sys/kernel/tracing)")
	}
	dir := filepath.Join(root, "instances", fmt.Sprintf("vxbench-%d-%d", os.Getpid(), traceSeq.Add(1)))
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, fmt.Errorf("wake trace: %w", err)
	}
	w := &WakeTrace{dir: dir, pids: pids, tids: map[int]bool{}}
	w.addThreads()
	for _, kv := range [][2]string{
		{"tracing_on", "0"},
		{"buffer_size_kb", "8192"},
		{"events/sched/sched_waking/enable", "1"},
		{"events/sched/sched_switch/enable", "1"},
		{"tracing_on", "1"},
	} {
		if err := os.WriteFile(filepath.Join(dir, kv[0]), []byte(kv[1]), 0); err != nil {
			w.remove()
			return nil, fmt.Errorf("wake trace: %w", err)
		}
	}
	return w, nil
}

// addThreads notes the current threads of the traced processes.
func (w *WakeTrace) addThreads() {
	for _, p := range w.pids {
		ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", p))
		for _, e := range ents {
			if tid, err := strconv.Atoi(e.Name()); err == nil {
				w.tids[tid] = true
			}
		}
	}
}

// Stop ends the recording, counts the wake-ups and removes the instance.
func (w *WakeTrace) Stop() (WakeStats, error) {
	defer w.remove()
	if err := os.WriteFile(filepath.Join(w.dir, "tracing_on"), []byte("0"), 0); err != nil {
		return WakeStats{}, fmt.Errorf("wake trace: %w", err)
	}
	w.addThreads()
	f, err := os.Open(filepath.Join(w.dir, "trace"))
	if err != nil {
		return WakeStats{}, fmt.Errorf("wake trace: %w", err)
	}
	defer f.Close()
	return ParseWakeTrace(f, func(pid int, comm string) bool { return comm == "ping" || w.tids[pid] })
}

// remove disables the events and deletes the instance (the kernel frees
// its buffers); idempotent.
func (w *WakeTrace) remove() {
	if w.dir == "" {
		return
	}
	for _, e := range []string{"events/sched/sched_waking/enable", "events/sched/sched_switch/enable"} {
		_ = os.WriteFile(filepath.Join(w.dir, e), []byte("0"), 0)
	}
	_ = os.Remove(w.dir)
	w.dir = ""
}
