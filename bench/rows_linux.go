package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// The rows beyond one measurement per mode: the idle window shared by all
// modes, the UDP sweep by generator threads, and stopping exclusive modes
// while the others measure.

// pauser is a mode whose processes the harness stops while other modes
// measure (VxtunMode with Exclusive).
type pauser interface {
	pause() error
	resume() error
}

// setPaused pauses or resumes mr's mode when it is a pauser.
func setPaused(mr *modeRun, stop bool) error {
	p, ok := mr.mode.(pauser)
	if !ok {
		return nil
	}
	if stop {
		return p.pause()
	}
	return p.resume()
}

// ownPIDs returns every process of mr's mode, also those PIDs leaves out.
func ownPIDs(mr *modeRun) []int {
	if d, ok := mr.mode.(interface{ daemonPIDs() []int }); ok {
		return d.daemonPIDs()
	}
	return mr.mode.PIDs()
}

// idle measures one window with no traffic in any testbed and adds each
// running mode's idle figures: its own processes' CPU-seconds per minute,
// and the machine's busy CPU per minute less every other process the
// harness started (the other modes' daemons, the iperf3 servers).
func (h *Harness) idle(ctx context.Context, runs []*modeRun) error {
	var live []*modeRun
	for _, mr := range runs {
		if mr.res.Unavailable == "" {
			live = append(live, mr)
		}
	}
	for _, mr := range live {
		if err := setPaused(mr, false); err != nil {
			return err
		}
	}
	defer func() {
		for _, mr := range live {
			_ = setPaused(mr, true)
		}
	}()
	h.mu.Lock()
	var all []int
	for _, d := range h.daemons {
		if exited, _ := d.Exited(); !exited {
			all = append(all, d.PID())
		}
	}
	h.mu.Unlock()
	snaps := func() (map[int]procSnap, error) {
		m := map[int]procSnap{}
		for _, p := range all {
			s, err := snapProc(p)
			if err != nil {
				return nil, fmt.Errorf("idle: %w", err)
			}
			m[p] = s
		}
		return m, nil
	}
	p0, err := snaps()
	if err != nil {
		return err
	}
	m0, err := ReadMachineCPU()
	if err != nil {
		return fmt.Errorf("idle: %w", err)
	}
	start := time.Now()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(h.cfg.Idle):
	}
	m1, err := ReadMachineCPU()
	if err != nil {
		return fmt.Errorf("idle: %w", err)
	}
	p1, err := snaps()
	if err != nil {
		return err
	}
	minutes := time.Since(start).Minutes()
	used := map[int]float64{}
	for _, p := range all {
		used[p] = procCPUDelta(p0[p], p1[p])
	}
	for _, mr := range live {
		own := ownPIDs(mr)
		f := idleFigures(m1.Sub(m0), used, own, minutes)
		if len(own) > 0 {
			mr.res.Samples[MetricIdleCPU] = append(mr.res.Samples[MetricIdleCPU], f.own)
		}
		mr.res.Samples[MetricIdleMachine] = append(mr.res.Samples[MetricIdleMachine], f.machine)
	}
	h.logf("idle window %.0f s: machine %.3g CPU-s", minutes*60, m1.Sub(m0))
	return nil
}

// sweepModes returns the modes of the run that run the UDP sweep.
func (c Config) sweepModes() []string { return c.inModes(c.SweepModes) }

// inModes returns the modes of list that run, in run order.
func (c Config) inModes(list []string) []string {
	var out []string
	for _, m := range c.Modes {
		if slices.Contains(list, m) {
			out = append(out, m)
		}
	}
	return out
}

// udpRate records one UDP search's figure under key: kpps for 64-byte
// payloads, else Gbit/s, with its generator- or CPU-bound mark. A search
// where nothing passed records 0 with a note.
func (h *Harness) udpRate(mr *modeRun, key string, size int, sr SearchResult, err error) {
	r := mr.res
	switch {
	case errors.Is(err, errNoPass):
		r.Notes = append(r.Notes, fmt.Sprintf("%s: no offered rate kept loss under 0.1 %% (lowest tried %.3g bit/s)", key, sr.Trials[len(sr.Trials)-1].Offered))
		r.Samples[key] = append(r.Samples[key], 0)
	case size == 64:
		r.Samples[key] = append(r.Samples[key], sr.Best.Received/(8*float64(size))/1e3)
	default:
		r.Samples[key] = append(r.Samples[key], sr.Best.Received/1e9)
	}
	switch {
	case sr.GeneratorBound && sr.Best.Busy >= 0.9:
		r.CPUBound[key] = true
	case sr.GeneratorBound:
		r.GeneratorBound[key] = true
	}
	h.logf("  %s: %.4g bit/s received at loss %.3f %% (%d trials, generator-bound %v, machine busy %.0f %%)",
		key, sr.Best.Received, sr.Best.LossPercent, len(sr.Trials), sr.GeneratorBound, 100*sr.Best.Busy)
}

// sweep runs the scaling rows on mr: the UDP search for each size and
// thread count. The count the main rows used (one thread per CPU) is not
// run again: its figure is copied from main.
func (h *Harness) sweep(ctx context.Context, mr *modeRun, main map[int]searchOutcome, mainThreads int) error {
	start := time.Now()
	defer func() { h.logf("  scaling rows: %.0f s", time.Since(start).Seconds()) }()
	for _, size := range sweepSizes {
		for _, t := range h.cfg.SweepThreads {
			key := SweepKey(size, t)
			if o, ok := main[size]; ok && t == mainThreads {
				h.udpRate(mr, key, size, o.sr, o.err)
				continue
			}
			sr, err := h.udpSearch(ctx, mr, size, udpProbeRate(size), t, h.cfg.SweepSteps)
			if err != nil && !errors.Is(err, errNoPass) {
				return fmt.Errorf("%s: %w", key, err)
			}
			h.udpRate(mr, key, size, sr, err)
			if err := mr.mode.Check(); err != nil {
				return err
			}
			if err := ctx.Err(); err != nil {
				return err
			}
		}
	}
	return nil
}

// searchOutcome is one UDP search's result and error.
type searchOutcome struct {
	sr  SearchResult
	err error
}

// udpProbeRate is the overload probe of a UDP search: offered payload
// bit/s far above what any path here carries.
func udpProbeRate(size int) float64 {
	if size <= 64 {
		return 2e9
	}
	return 40e9
}

// controlPlane runs the control-plane benchmark (RunControlPlane) after
// the traffic modes, with the run's vxtun binary; nil when the
// configuration has no peers for it.
func (h *Harness) controlPlane(ctx context.Context) *ControlPlaneSection {
	c := h.cfg.ControlPlane
	if c.Peers == 0 {
		return nil
	}
	c.Binary = h.cfg.Vxtun
	dir, err := filepath.Abs(filepath.Join(h.cfg.OutDir, "control-plane"))
	if err == nil && c.Dir == "" {
		c.Dir = dir
	}
	if err == nil {
		err = os.MkdirAll(c.Dir, 0o755)
	}
	if err != nil {
		return &ControlPlaneSection{Unavailable: fmt.Sprintf("failed: out dir: %v", err), Failed: true}
	}
	h.logf("control plane: %d peers", c.Peers)
	start := time.Now()
	r, err := RunControlPlane(ctx, c)
	h.logf("control plane: %.0f s", time.Since(start).Seconds())
	if errors.Is(err, ErrUnavailable) {
		return &ControlPlaneSection{Unavailable: err.Error()}
	}
	if err != nil {
		return &ControlPlaneSection{Unavailable: "failed: " + err.Error(), Failed: true}
	}
	return NewControlPlaneSection(r, c.Updates, c.Reloads)
}
