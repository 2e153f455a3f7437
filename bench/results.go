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
	// MetricProj16 projects TCP on a 16-core node from the whole
	// machine's CPU per GB: 16 CPU-seconds per second / (CPU-s per GB),
	// in Gbit/s. A projection (it assumes the path scales with cores, which
	// this 2-core run cannot show), not a measurement.
	MetricProj16   = "tcp_16core_projection"
	MetricPingP50  = "ping_p50"
	MetricPingP99  = "ping_p99"
	MetricUDP64    = "udp64"
	MetricUDP1400  = "udp1400"
	MetricCPUPerGB = "cpu_per_gb"
	// MetricMachineCPUPerGB is the whole machine's busy CPU time
	// (/proc/stat: user+nice+system+irq+softirq of all CPUs) per GB moved
	// by TCP: kernel work, iperf3 and vxtun together, for every mode.
	MetricMachineCPUPerGB = "machine_cpu_per_gb"
	MetricRSS             = "rss"
)

// Metric describes one figure the harness reports.
type Metric struct {
	Key         string `json:"key"`
	Label       string `json:"label"`
	Unit        string `json:"unit"`
	LowerBetter bool   `json:"lower_better,omitempty"`
}

// Metrics lists every figure in report order.
var Metrics = []Metric{
	{MetricTCP1, "TCP 1 stream", "Gbit/s", false},
	{MetricTCP2, "TCP 2 streams", "Gbit/s", false},
	{MetricTCP4, "TCP 4 streams", "Gbit/s", false},
	{MetricTCP8, "TCP 8 streams", "Gbit/s", false},
	{MetricPingP50, "ping RTT p50", "µs", true},
	{MetricPingP99, "ping RTT p99", "µs", true},
	{MetricUDP64, "UDP 64 B, <0.1% loss", "kpps", false},
	{MetricUDP1400, "UDP 1400 B, <0.1% loss", "Gbit/s", false},
	{MetricMachineCPUPerGB, "machine CPU per GB (TCP)", "CPU s/GB", true},
	{MetricProj16, "projection: TCP on 16 cores (from machine CPU/GB)", "Gbit/s", false},
	{MetricCPUPerGB, "overlay daemons' CPU per GB (TCP)", "CPU s/GB", true},
	{MetricRSS, "overlay daemon peak RSS", "MiB", true},
}

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
}

// ModeResult holds every sample of one mode and its summary.
type ModeResult struct {
	Mode        string               `json:"mode"`
	Unavailable string               `json:"unavailable,omitempty"`
	Failed      bool                 `json:"failed,omitempty"` // set up or ran but broke (not just absent)
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

// notes returns the footnotes of the table.
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
		out = append(out, "* the generator (bench.RunGen, one sendmmsg thread per CPU) was the bottleneck: it could not offer more on the sending side, so the figure is a lower bound for the path.")
	}
	if anyCPU {
		out = append(out, "† every CPU was busy while the generator fell short of the offered rate: the machine's capacity for this path (the kernel path encapsulates inside the sender's sendmmsg), a measured rate, not a generator limit.")
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

// WriteTable writes the terminal table: median of the rounds and ratio to
// the baseline for every metric and mode.
func (r *Results) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "metric\tunit")
	for _, m := range r.Modes {
		fmt.Fprintf(tw, "\t%s", m.Mode)
	}
	fmt.Fprintln(tw)
	for _, met := range r.Metrics {
		fmt.Fprintf(tw, "%s\t%s", met.Label, met.Unit)
		for _, m := range r.Modes {
			fmt.Fprintf(tw, "\t%s", r.cell(m, met.Key))
		}
		fmt.Fprintln(tw)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "median of %d round(s); (x×) = ratio to %s", r.Config.Rounds, r.Baseline)
	fmt.Fprintln(w, "; lower is better for ping, CPU and RSS.")
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

// Chart returns the ratio chart: a group per metric that has any ratio.
func (r *Results) Chart() Chart {
	c := Chart{Title: "vxtun end-to-end: ratio to " + r.Baseline + " (median of rounds)", Min: 0.01, Max: 10}
	var modes []*ModeResult
	for _, m := range r.Modes {
		if m.Unavailable == "" {
			modes = append(modes, m)
			c.Series = append(c.Series, m.Mode)
		}
	}
	for _, met := range r.Metrics {
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
// table, notes, and a link to the chart file (chart may be "").
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
	fmt.Fprintf(&b, "- %d rounds alternating %s; TCP %d s per test; ping %d probes at 1 ms; UDP rate search ≤ %d steps of %d s (bench.RunGen: %d paced sendmmsg threads, sequence-counting receiver), loss limit 0.1 %%.\n\n",
		c.Rounds, strings.Join(c.Modes, " → "), c.TCPSeconds, c.PingCount, c.SearchSteps+1, c.UDPStepSecs, mc.NumCPU)
	fmt.Fprintf(&b, "| metric | unit |")
	for _, m := range r.Modes {
		fmt.Fprintf(&b, " %s |", m.Mode)
	}
	b.WriteString("\n|---|---|")
	for range r.Modes {
		b.WriteString("---:|")
	}
	b.WriteString("\n")
	for _, met := range r.Metrics {
		fmt.Fprintf(&b, "| %s | %s |", met.Label, met.Unit)
		for _, m := range r.Modes {
			fmt.Fprintf(&b, " %s |", r.cell(m, met.Key))
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "\nMedian of the rounds; (x×) is the ratio to %s; lower is better for ping, CPU and RSS.\n", r.Baseline)
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
