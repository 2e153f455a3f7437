package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// Metric keys.
const (
	MetricTCP1 = "tcp1"
	MetricTCP4 = "tcp4"
	MetricTCP2 = "tcp2"
	MetricTCP8 = "tcp8"
	// MetricProj16 and MetricProj16UDP project TCP (Gbit/s) and 64-byte
	// UDP (Mpps) on a 16-core node from the whole machine's CPU per GB and
	// per Mpps with the Proj16 model (projection.go). Projections, not
	// measurements.
	MetricProj16    = "tcp_16core_projection"
	MetricProj16UDP = "udp64_16core_projection"
	MetricPingP50   = "ping_p50"
	MetricPingP99   = "ping_p99"
	// MetricPingWakeups and MetricPingCrossWakeups are the task wake-ups
	// (ping's and the overlay daemons' threads') per ping round trip, all
	// and those whose target CPU was not the waker's (an inter-processor
	// interrupt: on a VM with halting idle vCPUs, an exit and entry);
	// MetricPingCrossWakeLat is the p50 time from such a wake-up to the
	// task running (waketrace*.go).
	MetricPingWakeups      = "ping_wakeups"
	MetricPingCrossWakeups = "ping_cross_cpu_wakeups"
	MetricPingCrossWakeLat = "ping_cross_cpu_wake_us"
	// MetricSplitTCP1, MetricSplitPingP50 and MetricSplitPingP99 are TCP
	// (1 stream) and ping measured with one CPU per node (split_linux.go):
	// the testbed as two one-CPU machines, on Config.SplitModes.
	MetricSplitTCP1    = "split_tcp1"
	MetricSplitPingP50 = "split_ping_p50"
	MetricSplitPingP99 = "split_ping_p99"
	MetricUDP64        = "udp64"
	MetricUDP1400      = "udp1400"
	MetricCPUPerGB     = "cpu_per_gb"
	// MetricMachineCPUPerGB is the whole machine's busy CPU time
	// (/proc/stat: user+nice+system+irq+softirq of all CPUs) per GB moved
	// by TCP: kernel work, iperf3 and vxtun together, for every mode.
	MetricMachineCPUPerGB = "machine_cpu_per_gb"
	// MetricMachineCPUPerMpps and MetricCPUPerMpps are the machine's and
	// the overlay daemons' CPU-seconds per million 64-byte datagrams
	// carried, at the rate MetricUDP64 found.
	MetricMachineCPUPerMpps = "machine_cpu_per_mpps"
	MetricCPUPerMpps        = "cpu_per_mpps"
	// MetricIdleMachine and MetricIdleCPU are CPU-seconds per minute with
	// no traffic: the machine's (less every other mode's processes) and
	// the overlay daemons' own.
	MetricIdleMachine = "idle_machine_cpu_per_min"
	MetricIdleCPU     = "idle_cpu_per_min"
	MetricRSS         = "rss"
)

// Sections of the report.
const (
	SectionMain = "" // every mode
	// SectionScaling: the UDP rows by generator thread count, run on the
	// sweep modes only; its table repeats the TCP stream rows beside them.
	SectionScaling = "scaling"
)

// Metric describes one figure the harness reports.
type Metric struct {
	Key         string `json:"key"`
	Label       string `json:"label"`
	Unit        string `json:"unit"`
	LowerBetter bool   `json:"lower_better,omitempty"`
	Section     string `json:"section,omitempty"`
}

// Metrics lists every figure of the main table in report order.
var Metrics = []Metric{
	{MetricTCP1, "TCP 1 stream", "Gbit/s", false, SectionMain},
	{MetricTCP2, "TCP 2 streams", "Gbit/s", false, SectionMain},
	{MetricTCP4, "TCP 4 streams", "Gbit/s", false, SectionMain},
	{MetricTCP8, "TCP 8 streams", "Gbit/s", false, SectionMain},
	{MetricPingP50, "ping RTT p50", "µs", true, SectionMain},
	{MetricPingP99, "ping RTT p99", "µs", true, SectionMain},
	{MetricPingWakeups, "ping: task wake-ups per round trip", "per RTT", true, SectionMain},
	{MetricPingCrossWakeups, "ping: cross-CPU wake-ups per round trip", "per RTT", true, SectionMain},
	{MetricPingCrossWakeLat, "ping: cross-CPU wake-up to running, p50", "µs", true, SectionMain},
	{MetricSplitTCP1, "one CPU per node: TCP 1 stream", "Gbit/s", false, SectionMain},
	{MetricSplitPingP50, "one CPU per node: ping RTT p50", "µs", true, SectionMain},
	{MetricSplitPingP99, "one CPU per node: ping RTT p99", "µs", true, SectionMain},
	{MetricUDP64, "UDP 64 B, <0.1% loss", "kpps", false, SectionMain},
	{MetricUDP1400, "UDP 1400 B, <0.1% loss", "Gbit/s", false, SectionMain},
	{MetricMachineCPUPerGB, "machine CPU per GB (TCP)", "CPU s/GB", true, SectionMain},
	{MetricMachineCPUPerMpps, "machine CPU per Mpps (UDP 64 B)", "CPU s/Mpps", true, SectionMain},
	{MetricCPUPerGB, "overlay daemons' CPU per GB (TCP)", "CPU s/GB", true, SectionMain},
	{MetricCPUPerMpps, "overlay daemons' CPU per Mpps (UDP 64 B)", "CPU s/Mpps", true, SectionMain},
	{MetricIdleMachine, "idle: machine CPU per minute", "CPU s/min", true, SectionMain},
	{MetricIdleCPU, "idle: overlay daemons' CPU per minute", "CPU s/min", true, SectionMain},
	{MetricProj16, "PROJECTION: TCP on 16 cores", "Gbit/s", false, SectionMain},
	{MetricProj16UDP, "PROJECTION: UDP 64 B on 16 cores", "Mpps", false, SectionMain},
	{MetricRSS, "overlay daemon peak RSS", "MiB", true, SectionMain},
}

// SweepKey is the metric key of the scaling row for size-byte UDP with
// the given number of generator threads.
func SweepKey(size, threads int) string { return fmt.Sprintf("udp%d_t%d", size, threads) }

// sweepSizes are the payload sizes of the scaling rows.
var sweepSizes = []int{64, 1400}

// SweepMetrics returns the scaling rows for the thread counts: every size,
// every count.
func SweepMetrics(threads []int) []Metric {
	var out []Metric
	for _, size := range sweepSizes {
		unit := "Gbit/s"
		if size == 64 {
			unit = "kpps"
		}
		for _, t := range threads {
			th := "threads"
			if t == 1 {
				th = "thread"
			}
			out = append(out, Metric{Key: SweepKey(size, t), Label: fmt.Sprintf("UDP %d B, %d generator %s, <0.1%% loss", size, t, th), Unit: unit, Section: SectionScaling})
		}
	}
	return out
}

// scalingTCP are the main table's rows the scaling table repeats.
var scalingTCP = []string{MetricTCP1, MetricTCP2, MetricTCP4, MetricTCP8}

// Machine describes where a run happened.
type Machine struct {
	NumCPU    int    `json:"nproc"`
	CPUModel  string `json:"cpu_model"`
	Kernel    string `json:"kernel"`
	GoVersion string `json:"go_version"`
	Iperf3    string `json:"iperf3"`
	Commit    string `json:"commit"`
	Vxtun     string `json:"vxtun,omitempty"`
	// LoadAvg is /proc/loadavg's 1-minute figure at the start: a busy
	// machine makes every number noisy.
	LoadAvg float64 `json:"load_avg_1m"`
}

// RunConfig is the part of the harness configuration a result records.
type RunConfig struct {
	Rounds      int      `json:"rounds"`
	TCPSeconds  int      `json:"tcp_seconds"`
	UDPStepSecs int      `json:"udp_step_seconds"`
	SearchSteps int      `json:"search_steps"`
	PingCount   int      `json:"ping_count"`
	Quick       bool     `json:"quick"`
	Modes       []string `json:"modes"`
	Command     string   `json:"command"`
	// The scaling rows: modes, generator thread counts and search steps.
	SweepModes   []string `json:"sweep_modes,omitempty"`
	SweepThreads []int    `json:"sweep_threads,omitempty"`
	SweepSteps   int      `json:"sweep_steps"`
	// SplitModes ran the one-CPU-per-node rows.
	SplitModes []string `json:"split_modes,omitempty"`
	// IdleSeconds is the no-traffic window per round.
	IdleSeconds int `json:"idle_seconds"`
	// Projection is the model of the PROJECTION rows.
	Projection Projection `json:"projection"`
}

// ModeResult holds every sample of one mode and its summary.
type ModeResult struct {
	Mode        string `json:"mode"`
	Unavailable string `json:"unavailable,omitempty"`
	Failed      bool   `json:"failed,omitempty"` // set up or ran but broke (not just absent)
	// NotInDaemon: unavailable because the daemon measured lacks an
	// optional feature (ErrNotInDaemon).
	NotInDaemon bool                 `json:"not_in_daemon,omitempty"`
	Samples     map[string][]float64 `json:"samples"`
	// GeneratorBound marks metrics where, in some round, the UDP generator
	// itself could not offer more: the figure is the generator's limit.
	GeneratorBound map[string]bool `json:"generator_bound,omitempty"`
	// CPUBound marks metrics where the generator fell short of the offered
	// rate while the machine's CPUs were all busy (≥ 90 %): for a kernel
	// path, whose encapsulation runs inside the sender's sendmmsg, that is
	// the machine's capacity with this generator, not a generator limit.
	CPUBound map[string]bool    `json:"cpu_bound,omitempty"`
	Median   map[string]float64 `json:"median"`
	Ratio    map[string]float64 `json:"ratio_to_baseline"`
	Notes    []string           `json:"notes,omitempty"`
}

func newModeResult(mode string) *ModeResult {
	return &ModeResult{Mode: mode, Samples: map[string][]float64{}, GeneratorBound: map[string]bool{},
		CPUBound: map[string]bool{}, Median: map[string]float64{}, Ratio: map[string]float64{}}
}

// Results is a whole run.
type Results struct {
	Machine  Machine       `json:"machine"`
	Config   RunConfig     `json:"config"`
	Started  time.Time     `json:"started"`
	Elapsed  float64       `json:"elapsed_seconds"`
	Baseline string        `json:"baseline"`
	Metrics  []Metric      `json:"metrics"`
	Modes    []*ModeResult `json:"modes"`
	// ControlPlane is the control-plane section (nil when not run).
	ControlPlane *ControlPlaneSection `json:"control_plane,omitempty"`
}

// ControlPlaneSection is the control-plane section of a run
// (RunControlPlane's figures; durations in ms, sizes in MiB).
type ControlPlaneSection struct {
	Unavailable string `json:"unavailable,omitempty"`
	Failed      bool   `json:"failed,omitempty"` // it ran but broke (not just absent)
	Peers       int    `json:"peers,omitempty"`
	Updates     int    `json:"updates,omitempty"` // one-peer updates timed in process
	Reloads     int    `json:"reloads,omitempty"` // daemon reloads timed
	// FullApplyMs is the whole set applied to a fresh dataplane,
	// FullFilterMs its peer filter created.
	FullApplyMs  float64 `json:"full_apply_ms,omitempty"`
	FullFilterMs float64 `json:"full_filter_ms,omitempty"`
	// One peer moved: the dataplane's apply and the filter's transaction.
	UpdateP50Ms float64 `json:"update_p50_ms,omitempty"`
	UpdateP99Ms float64 `json:"update_p99_ms,omitempty"`
	FilterP50Ms float64 `json:"filter_p50_ms,omitempty"`
	FilterP99Ms float64 `json:"filter_p99_ms,omitempty"`
	// The daemon: peers file rewritten, SIGHUP, until its metrics count it.
	ReloadP50Ms float64 `json:"reload_p50_ms,omitempty"`
	ReloadP99Ms float64 `json:"reload_p99_ms,omitempty"`
	// The daemon's VmRSS, VmHWM and RssAnon with Peers peers after its
	// reloads, its VmHWM once it ran with them, and VmRSS and RssAnon with
	// one peer.
	RSSMiB          float64 `json:"rss_mib,omitempty"`
	HWMMiB          float64 `json:"hwm_mib,omitempty"`
	AnonMiB         float64 `json:"anon_mib,omitempty"`
	StartHWMMiB     float64 `json:"start_hwm_mib,omitempty"`
	BaselineRSSMiB  float64 `json:"baseline_rss_mib,omitempty"`
	BaselineAnonMiB float64 `json:"baseline_anon_mib,omitempty"`
}

// NewControlPlaneSection converts a RunControlPlane result for Results.
func NewControlPlaneSection(r ControlPlaneResult, updates, reloads int) *ControlPlaneSection {
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	mib := func(b int64) float64 { return float64(b) / (1 << 20) }
	return &ControlPlaneSection{Peers: r.Peers, Updates: updates, Reloads: reloads,
		FullApplyMs: ms(r.FullSet), FullFilterMs: ms(r.FullSetFilter),
		UpdateP50Ms: ms(r.UpdateP50), UpdateP99Ms: ms(r.UpdateP99), FilterP50Ms: ms(r.FilterP50), FilterP99Ms: ms(r.FilterP99),
		ReloadP50Ms: ms(r.ReloadP50), ReloadP99Ms: ms(r.ReloadP99),
		RSSMiB: mib(r.RSS), HWMMiB: mib(r.HWM), AnonMiB: mib(r.Anon), StartHWMMiB: mib(r.StartHWM),
		BaselineRSSMiB: mib(r.BaselineRSS), BaselineAnonMiB: mib(r.BaselineAnon)}
}

// Summarize fills every mode's Median and its Ratio to the baseline mode's
// median (metrics the baseline lacks get no ratio).
func (r *Results) Summarize() {
	for _, m := range r.Modes {
		m.Median, m.Ratio = map[string]float64{}, map[string]float64{}
		for k, xs := range m.Samples {
			if v, ok := Median(xs); ok {
				m.Median[k] = v
			}
		}
	}
	base := r.mode(r.Baseline)
	if base == nil {
		return
	}
	for _, m := range r.Modes {
		for k, v := range m.Median {
			b, ok := base.Median[k]
			if !ok {
				continue
			}
			if q, ok := Ratio(v, b); ok {
				m.Ratio[k] = q
			}
		}
	}
}

func (r *Results) mode(name string) *ModeResult {
	for _, m := range r.Modes {
		if m.Mode == name {
			return m
		}
	}
	return nil
}

// formatValue prints a figure with 3 significant digits.
func formatValue(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	case v >= 1:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3g", v)
	}
}

// cell renders one metric of one mode: "median (ratio×)" plus "*" when
// the generator bounded it.
func (r *Results) cell(m *ModeResult, k string) string {
	if m.Unavailable != "" {
		return "—"
	}
	v, ok := m.Median[k]
	if !ok {
		return "n/a"
	}
	s := formatValue(v)
	if m.GeneratorBound[k] {
		s += "*"
	} else if m.CPUBound[k] {
		s += "†"
	}
	if q, ok := m.Ratio[k]; ok {
		s += fmt.Sprintf(" (%.2f×)", q)
	}
	return s
}

// grid is a table ready to print: a header row and body rows.
type grid struct {
	header []string
	rows   [][]string
}

// metricGrid renders metrics (rows) for modes (columns): label, unit, a
// cell per mode.
func (r *Results) metricGrid(metrics []Metric, modes []*ModeResult) grid {
	g := grid{header: []string{"metric", "unit"}}
	for _, m := range modes {
		g.header = append(g.header, m.Mode)
	}
	for _, met := range metrics {
		row := []string{met.Label, met.Unit}
		for _, m := range modes {
			row = append(row, r.cell(m, met.Key))
		}
		g.rows = append(g.rows, row)
	}
	return g
}

// section returns the metrics of section sec in report order.
func (r *Results) section(sec string) []Metric {
	var out []Metric
	for _, met := range r.Metrics {
		if met.Section == sec {
			out = append(out, met)
		}
	}
	return out
}

// mainGrid is the table of every mode.
func (r *Results) mainGrid() grid { return r.metricGrid(r.section(SectionMain), r.Modes) }

// scalingGrid is the scaling table: TCP by streams and UDP by generator
// threads, for the modes that ran the UDP sweep (the baseline first);
// ok is false when no mode did.
func (r *Results) scalingGrid() (g grid, ok bool) {
	sweep := r.section(SectionScaling)
	var modes []*ModeResult
	for _, m := range r.Modes {
		for _, met := range sweep {
			if _, has := m.Samples[met.Key]; has {
				modes = append(modes, m)
				break
			}
		}
	}
	if len(modes) == 0 {
		return grid{}, false
	}
	var metrics []Metric
	for _, k := range scalingTCP {
		for _, met := range r.Metrics {
			if met.Key == k {
				metrics = append(metrics, met)
			}
		}
	}
	return r.metricGrid(append(metrics, sweep...), modes), true
}

// writeText prints g aligned in columns.
func (g grid) writeText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, row := range append([][]string{g.header}, g.rows...) {
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	return tw.Flush()
}

// writeMarkdown prints g as a Markdown table, figures right-aligned.
func (g grid) writeMarkdown(b *strings.Builder) {
	fmt.Fprintf(b, "| %s |\n|---|---|", strings.Join(g.header, " | "))
	for range g.header[2:] {
		b.WriteString("---:|")
	}
	b.WriteString("\n")
	for _, row := range g.rows {
		fmt.Fprintf(b, "| %s |\n", strings.Join(row, " | "))
	}
}

// notes returns the footnotes of the tables.
func (r *Results) notes() []string {
	var out []string
	anyGen, anyCPU := false, false
	for _, m := range r.Modes {
		for _, b := range m.GeneratorBound {
			anyGen = anyGen || b
		}
		for _, b := range m.CPUBound {
			anyCPU = anyCPU || b
		}
	}
	if anyGen {
		out = append(out, "* the generator (bench.RunGen, paced sendmmsg threads) was the bottleneck: it could not offer more on the sending side, so the figure is a lower bound for the path.")
	}
	if anyCPU {
		out = append(out, "† every CPU was busy while the generator fell short of the offered rate: the machine's capacity for this path (the kernel path encapsulates inside the sender's sendmmsg), a measured rate, not a generator limit.")
	}
	p := r.Config.Projection
	if p.Cores > 0 {
		out = append(out, fmt.Sprintf("PROJECTION rows are a model, not a measurement: throughput ≈ usable cores / (machine CPU-s per GB or per Mpps measured here), ×8 for Gbit/s; usable cores = min(%d cores, the outer flows one peer's traffic uses): %d for paths with an outer flow per inner flow (kernel vxlan, routed), min(%d flows, %d workers) for userspace vxtun (a source port per worker), 1 for nebula (one routine), none for wireguard-go (one socket, parallel decryption: not modelled). The CPU cost covers both nodes and both application ends, so it reads as each node sending and receiving that much at once; linear scaling and even hashing are assumed, which a %d-CPU run cannot show.",
			p.Cores, p.Flows, p.Flows, p.Workers, r.Machine.NumCPU))
	}
	if len(r.Config.SplitModes) > 0 {
		out = append(out, fmt.Sprintf("one CPU per node (%s): node i's processes (overlay daemon, ping, iperf3) on CPU i only and its underlay's receive steered to CPU i by RPS, as a NIC's interrupt would be: two one-CPU machines, as far as one VM can show them. In the other rows the two nodes share every CPU, and kernel paths run a whole round trip inside the sender's system call on one CPU.",
			strings.Join(r.Config.SplitModes, ", ")))
	}
	if r.Config.IdleSeconds > 0 {
		out = append(out, fmt.Sprintf("idle: one %d s window per round with no traffic in any testbed (all stay up); a mode's machine figure is the machine's busy CPU less every other mode's processes, so it still holds the kernel's and anything else running on the machine.", r.Config.IdleSeconds))
	}
	for _, m := range r.Modes {
		if m.Unavailable != "" {
			out = append(out, fmt.Sprintf("%s: %s", m.Mode, m.Unavailable))
		}
		for _, n := range m.Notes {
			out = append(out, fmt.Sprintf("%s: %s", m.Mode, n))
		}
	}
	return out
}

// scalingCaption describes the scaling table.
func (r *Results) scalingCaption() string {
	return fmt.Sprintf("Scaling (%s): TCP by iperf3 streams (the main table's rows) and UDP by generator threads (bench.RunGen, each thread its own flow, pinned to CPU i mod %d), the same < 0.1 %% loss search, ≤ %d search steps after the overload probe.",
		strings.Join(r.Config.SweepModes, ", "), r.Machine.NumCPU, r.Config.SweepSteps)
}

// controlPlaneLines describes the control-plane section.
func (r *Results) controlPlaneLines() []string {
	cp := r.ControlPlane
	if cp == nil {
		return nil
	}
	if cp.Unavailable != "" {
		return []string{"Control plane: unavailable: " + cp.Unavailable}
	}
	f := formatValue
	return []string{
		fmt.Sprintf("Control plane at %d peers (bench.RunControlPlane; wall time, one run): full set applied in %s ms (peer filter %s ms); one peer moved: apply p50 %s / p99 %s ms, filter p50 %s / p99 %s ms (%d updates); daemon reload p50 %s / p99 %s ms (%d reloads); daemon VmRSS %s MiB (anonymous %s), VmHWM %s MiB (%s once up); with one peer VmRSS %s MiB (anonymous %s).",
			cp.Peers, f(cp.FullApplyMs), f(cp.FullFilterMs), f(cp.UpdateP50Ms), f(cp.UpdateP99Ms), f(cp.FilterP50Ms), f(cp.FilterP99Ms), cp.Updates,
			f(cp.ReloadP50Ms), f(cp.ReloadP99Ms), cp.Reloads, f(cp.RSSMiB), f(cp.AnonMiB), f(cp.HWMMiB), f(cp.StartHWMMiB), f(cp.BaselineRSSMiB), f(cp.BaselineAnonMiB)),
	}
}

// WriteTable writes the terminal tables: median of the rounds and ratio to
// the baseline for every metric and mode, then the scaling table and the
// control-plane figures.
func (r *Results) WriteTable(w io.Writer) error {
	if err := r.mainGrid().writeText(w); err != nil {
		return err
	}
	fmt.Fprintf(w, "median of %d round(s); (x×) = ratio to %s", r.Config.Rounds, r.Baseline)
	fmt.Fprintln(w, "; lower is better for ping, CPU and RSS.")
	if g, ok := r.scalingGrid(); ok {
		fmt.Fprintln(w)
		fmt.Fprintln(w, r.scalingCaption())
		if err := g.writeText(w); err != nil {
			return err
		}
	}
	for _, l := range r.controlPlaneLines() {
		fmt.Fprintln(w, l)
	}
	for _, n := range r.notes() {
		fmt.Fprintln(w, n)
	}
	return nil
}

// WriteJSON writes the results as indented JSON.
func (r *Results) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// Chart returns the ratio chart: a group per metric that has any ratio,
// the main table's metrics first, then the scaling rows.
func (r *Results) Chart() Chart {
	c := Chart{Title: "vxtun end-to-end: ratio to " + r.Baseline + " (median of rounds)", Min: 0.01, Max: 10}
	var modes []*ModeResult
	for _, m := range r.Modes {
		if m.Unavailable == "" {
			modes = append(modes, m)
			c.Series = append(c.Series, m.Mode)
		}
	}
	for _, met := range append(r.section(SectionMain), r.section(SectionScaling)...) {
		g := ChartGroup{Label: met.Label}
		if met.LowerBetter {
			g.Label += " (lower is better)"
		}
		any := false
		for _, m := range modes {
			q, ok := m.Ratio[met.Key]
			v := ChartValue{Value: q, OK: ok}
			if m.GeneratorBound[met.Key] {
				v.Mark = "*"
				c.Footer = "* generator-bound: a lower bound for the path"
			}
			g.Values = append(g.Values, v)
			any = any || ok
		}
		if any {
			c.Groups = append(c.Groups, g)
		}
	}
	return c
}

// Markdown returns the generated section of RESULTS.md: machine, command,
// tables, notes, and a link to the chart file (chart may be "").
func (r *Results) Markdown(chart string) string {
	var b strings.Builder
	mc := r.Machine
	fmt.Fprintf(&b, "Run %s, %.0f s, commit `%s`.\n\n", r.Started.UTC().Format(time.RFC3339), r.Elapsed, mc.Commit)
	fmt.Fprintf(&b, "- Machine: %d CPUs, %s; kernel %s; %s; %s; load average %.2f at the start\n", mc.NumCPU, mc.CPUModel, mc.Kernel, mc.GoVersion, mc.Iperf3, mc.LoadAvg)
	if mc.Vxtun != "" {
		fmt.Fprintf(&b, "- vxtun: %s\n", mc.Vxtun)
	}
	if mc.NumCPU > 0 && mc.LoadAvg > float64(mc.NumCPU)/2 {
		fmt.Fprintf(&b, "- **Noisy**: the machine was busy (load average %.1f on %d CPUs) when the run started.\n", mc.LoadAvg, mc.NumCPU)
	}
	c := r.Config
	if c.Quick {
		b.WriteString("- **Quick smoke run**: it checks the harness works, not the speed.\n")
	}
	fmt.Fprintf(&b, "- Command: `%s`\n", c.Command)
	fmt.Fprintf(&b, "- %d rounds alternating %s; idle window %d s per round; TCP %d s per test; ping %d probes at 1 ms; UDP rate search ≤ %d steps of %d s (bench.RunGen: %d paced sendmmsg threads, sequence-counting receiver), loss limit 0.1 %%.\n\n",
		c.Rounds, strings.Join(c.Modes, " → "), c.IdleSeconds, c.TCPSeconds, c.PingCount, c.SearchSteps+1, c.UDPStepSecs, mc.NumCPU)
	r.mainGrid().writeMarkdown(&b)
	fmt.Fprintf(&b, "\nMedian of the rounds; (x×) is the ratio to %s; lower is better for ping, CPU and RSS.\n", r.Baseline)
	if g, ok := r.scalingGrid(); ok {
		fmt.Fprintf(&b, "\n%s\n\n", r.scalingCaption())
		g.writeMarkdown(&b)
	}
	for _, l := range r.controlPlaneLines() {
		fmt.Fprintf(&b, "\n%s\n", l)
	}
	for _, n := range r.notes() {
		fmt.Fprintf(&b, "\n- %s", n)
	}
	b.WriteString("\n")
	b.WriteString("\nPer-round samples:\n\n```\n")
	for _, m := range r.Modes {
		keys := make([]string, 0, len(m.Samples))
		for k := range m.Samples {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, "%-13s %-11s", m.Mode, k)
			for _, v := range m.Samples[k] {
				fmt.Fprintf(&b, " %s", formatValue(v))
			}
			b.WriteString("\n")
		}
	}
	b.WriteString("```\n")
	if chart != "" {
		fmt.Fprintf(&b, "\n![ratios to %s](%s)\n", r.Baseline, chart)
	}
	return b.String()
}

// Markers delimit the generated section of RESULTS.md.
const (
	GeneratedBegin = "<!-- BEGIN GENERATED by cmd/vxbench: do not edit by hand -->"
	GeneratedEnd   = "<!-- END GENERATED -->"
)

// ReplaceGenerated returns doc with the text between the markers replaced
// by section; a doc without markers gets them appended.
func ReplaceGenerated(doc, section string) (string, error) {
	block := GeneratedBegin + "\n" + section + GeneratedEnd + "\n"
	i := strings.Index(doc, GeneratedBegin)
	j := strings.Index(doc, GeneratedEnd)
	switch {
	case i < 0 && j < 0:
		if doc != "" && !strings.HasSuffix(doc, "\n") {
			doc += "\n"
		}
		if doc != "" {
			doc += "\n"
		}
		return doc + block, nil
	case i < 0 || j < i:
		return "", fmt.Errorf("generated markers out of order or unpaired")
	}
	rest := doc[j+len(GeneratedEnd):]
	rest = strings.TrimPrefix(rest, "\n")
	return doc[:i] + block + rest, nil
}

// UpdateResultsFile rewrites the generated section of the Markdown file at
// path (creating the file with a heading when it does not exist).
func UpdateResultsFile(path, section string) error {
	doc, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		doc = []byte("# vxtun end-to-end benchmark results\n\nProduced by `make bench-e2e` (`go run ./cmd/vxbench`); the section below is rewritten by every full run.\n")
	} else if err != nil {
		return fmt.Errorf("update %s: %w", path, err)
	}
	out, err := ReplaceGenerated(string(doc), section)
	if err != nil {
		return fmt.Errorf("update %s: %w", path, err)
	}
	return os.WriteFile(path, []byte(out), 0o644)
}
