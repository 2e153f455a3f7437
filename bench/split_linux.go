package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vxtun/vxtun/internal/nettest"
)

// One CPU per node (Config.SplitModes): the testbed's two nodes share the
// machine's CPUs, and a kernel path runs a whole round trip inside the
// sender's system call, on one CPU — which two real machines cannot do.
// These rows emulate two one-CPU machines: node i's processes (its overlay
// daemon, the pod end of ping and iperf3) run on CPU i only, and RPS
// steers its underlay's receive to CPU i, as a NIC's interrupt would. The
// packet then crosses CPUs where it would cross machines, in every mode
// alike. Affinity and RPS are restored afterwards, so the other rows are
// unaffected.

// splitPort is the iperf3 port of the one-CPU-per-node server in node B.
const splitPort = iperfPort + 1

// split measures TCP (one stream) and ping with one CPU per node; a
// failure to restore affinity or RPS is its error too.
func (h *Harness) split(ctx context.Context, mr *modeRun) (err error) {
	if runtime.NumCPU() < 2 {
		note := "one CPU per node: needs 2 CPUs"
		if !slices.Contains(mr.res.Notes, note) {
			mr.res.Notes = append(mr.res.Notes, note)
		}
		return nil
	}
	a, b := mr.tb.Nodes[0], mr.tb.Nodes[1]
	pids := mr.mode.PIDs()
	if len(pids) != 0 && len(pids) != len(mr.tb.Nodes) {
		return fmt.Errorf("%d processes for %d nodes: cannot tell which is whose", len(pids), len(mr.tb.Nodes))
	}
	restore, err := splitNodes(ctx, mr.tb, pids)
	defer func() {
		if rerr := restore(); rerr != nil && err == nil {
			err = rerr
		}
	}()
	if err != nil {
		return err
	}
	srv := nettest.IperfServer(b.NS, b.Pod, splitPort, filepath.Join(mr.tb.Dir, "iperf3-server-split.log"))
	if err := onCPU(1, func() error { return h.startDaemon(srv) }); err != nil {
		return err
	}
	defer func() { _ = srv.Stop(2 * time.Second) }()
	if err := nettest.WaitListen(ctx, srv, splitPort); err != nil {
		return err
	}
	var t1 nettest.IperfResult
	var p50, p99 float64
	var lost int
	err = onCPU(0, func() error {
		var err error
		if t1, err = nettest.RunIperf3(ctx, a.NS, a.Pod, b.Pod, splitPort, secs(h.cfg.Duration)); err != nil {
			return fmt.Errorf("tcp 1 stream: %w", err)
		}
		if err := pingWarmUp(ctx, a, b); err != nil {
			return err
		}
		p50, p99, lost, err = pingProbes(ctx, a, b, h.cfg.PingCount)
		return err
	})
	if err != nil {
		return err
	}
	r := mr.res
	r.Samples[MetricSplitTCP1] = append(r.Samples[MetricSplitTCP1], t1.RecvBps/1e9)
	r.Samples[MetricSplitPingP50] = append(r.Samples[MetricSplitPingP50], p50)
	r.Samples[MetricSplitPingP99] = append(r.Samples[MetricSplitPingP99], p99)
	if lost > 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("one CPU per node: ping lost %d probes", lost))
	}
	h.logf("  one CPU per node: tcp1 %.2f Gbit/s, ping p50 %.1f µs p99 %.1f µs", t1.RecvBps/1e9, p50, p99)
	return nil
}

// splitNodes puts node i's process pids[i] (every thread) on CPU i and
// steers node i's underlay receive to CPU i (RPS); restore undoes both,
// also after a partial failure.
func splitNodes(ctx context.Context, tb *Testbed, pids []int) (restore func() error, err error) {
	var undo []func() error
	restore = func() error {
		var errs []error
		for i := len(undo) - 1; i >= 0; i-- {
			errs = append(errs, undo[i]())
		}
		return errors.Join(errs...)
	}
	for i, n := range tb.Nodes {
		if err := setRPS(ctx, n, 1<<i); err != nil {
			return restore, err
		}
		undo = append(undo, func() error { return setRPS(context.WithoutCancel(ctx), n, 0) })
		if i < len(pids) {
			back, err := pinProcess(pids[i], i)
			undo = append(undo, back)
			if err != nil {
				return restore, err
			}
		}
	}
	return restore, nil
}

// setRPS writes mask to the rps_cpus of every receive queue of node n's
// underlay (0: no RPS, the default). Through "ip netns exec", which mounts
// the namespace's own /sys.
func setRPS(ctx context.Context, n *Node, mask int) error {
	script := "for q in /sys/class/net/ul0/queues/rx-*; do echo " + strconv.FormatInt(int64(mask), 16) + " > $q/rps_cpus || exit 1; done"
	if _, err := n.NS.Exec(ctx, "sh", "-c", script); err != nil {
		return fmt.Errorf("rps on %s: %w", n.NS.Name, err)
	}
	return nil
}

// pinProcess sets the affinity of every thread of pid to cpu (threads it
// starts meanwhile inherit it); back restores each thread's previous mask,
// and gives threads started since the mask the process's first thread had.
func pinProcess(pid, cpu int) (back func() error, err error) {
	old := map[int]unix.CPUSet{}
	var orig unix.CPUSet
	back = func() error {
		var errs []error
		for _, tid := range threads(pid) {
			set, ok := old[tid]
			if !ok {
				set = orig
			}
			if err := unix.SchedSetaffinity(tid, &set); err != nil && !errors.Is(err, unix.ESRCH) {
				errs = append(errs, fmt.Errorf("restore affinity of thread %d: %w", tid, err))
			}
		}
		return errors.Join(errs...)
	}
	if err := unix.SchedGetaffinity(pid, &orig); err != nil {
		return func() error { return nil }, fmt.Errorf("affinity of %d: %w", pid, err)
	}
	var one unix.CPUSet
	one.Set(cpu)
	for _, tid := range threads(pid) {
		var cur unix.CPUSet
		if err := unix.SchedGetaffinity(tid, &cur); err != nil {
			continue // the thread ended
		}
		if err := unix.SchedSetaffinity(tid, &one); err != nil {
			if errors.Is(err, unix.ESRCH) {
				continue
			}
			return back, fmt.Errorf("pin thread %d of %d to CPU %d: %w", tid, pid, cpu, err)
		}
		old[tid] = cur
	}
	return back, nil
}

// threads lists pid's thread IDs (none once it has ended).
func threads(pid int) []int {
	ents, _ := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
	var tids []int
	for _, e := range ents {
		if tid, err := strconv.Atoi(e.Name()); err == nil {
			tids = append(tids, tid)
		}
	}
	return tids
}

// onCPU runs fn on a thread restricted to cpu, so that the processes fn
// starts (os/exec forks on the calling thread) inherit that affinity.
func onCPU(cpu int, fn func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var old, one unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		return fmt.Errorf("affinity: %w", err)
	}
	one.Set(cpu)
	if err := unix.SchedSetaffinity(0, &one); err != nil {
		return fmt.Errorf("pin to CPU %d: %w", cpu, err)
	}
	defer unix.SchedSetaffinity(0, &old)
	return fn()
}
