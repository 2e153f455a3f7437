package bench

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"time"
)

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

func TestProjection(t *testing.T) {
	tests := []struct {
		name   string
		p      Projection
		spread Spread
		cpu    float64
		want   float64
		ok     bool
	}{
		{"kernel, 16 flows on 16 cores", Proj16, SpreadFlows, 2, 8, true},
		{"vxtun, 16 workers", Proj16, SpreadWorkers, 2, 8, true},
		{"vxtun, 4 workers cap the cores", Projection{Cores: 16, Flows: 16, Workers: 4}, SpreadWorkers, 2, 2, true},
		{"vxtun, 2 flows cap the cores", Projection{Cores: 16, Flows: 2, Workers: 16}, SpreadWorkers, 0.5, 4, true},
		{"kernel, more flows than cores", Projection{Cores: 8, Flows: 64, Workers: 8}, SpreadFlows, 1, 8, true},
		{"nebula, one routine", Proj16, SpreadOne, 4, 0.25, true},
		{"wireguard-go: not modelled", Proj16, SpreadUnknown, 2, 0, false},
		{"no cost measured", Proj16, SpreadFlows, 0, 0, false},
		{"negative cost", Proj16, SpreadFlows, -1, 0, false},
	}
	for _, tt := range tests {
		got, ok := tt.p.Project(tt.cpu, tt.spread)
		if ok != tt.ok || !near(got, tt.want) {
			t.Errorf("%s: got %v (%v), want %v (%v)", tt.name, got, ok, tt.want, tt.ok)
		}
	}
}

func TestModeSpread(t *testing.T) {
	tests := []struct {
		mode string
		want Spread
	}{
		{ModeKernelVXLAN, SpreadFlows}, {ModeVeth, SpreadFlows}, {ModeVxtunKernel, SpreadFlows},
		{ModeVxtunVXLAN, SpreadWorkers}, {ModeVxtunUDP, SpreadWorkers}, {ModeVxtunBusyPoll, SpreadWorkers}, {ModeVxtunBusyPollIdle, SpreadWorkers}, {ModeVxtunBusyPollAhead, SpreadWorkers}, {ModeVxtunCPULocal, SpreadWorkers},
		{ModeNebula, SpreadOne}, {ModeWireGuardGo, SpreadUnknown}, {"nonsense", SpreadUnknown},
	}
	for _, tt := range tests {
		if got := modeSpread(tt.mode); got != tt.want {
			t.Errorf("modeSpread(%s): got %v, want %v", tt.mode, got, tt.want)
		}
	}
}

func TestIdleFigures(t *testing.T) {
	used := map[int]float64{10: 0.2, 11: 0.3, 20: 1.0, 30: 0.05}
	tests := []struct {
		name        string
		busy        float64
		own         []int
		minutes     float64
		wantOwn     float64
		wantMachine float64
	}{
		// 3 CPU-s busy in 0.5 min; others (20, 30) used 1.05 s.
		{"two daemons", 3, []int{10, 11}, 0.5, 1.0, 3.9},
		{"kernel mode, no processes", 3, nil, 0.5, 0, (3 - 1.55) / 0.5},
		{"others used more than the machine", 1, []int{30}, 1, 0.05, 0},
		{"no window", 3, []int{10}, 0, 0, 0},
	}
	for _, tt := range tests {
		got := idleFigures(tt.busy, used, tt.own, tt.minutes)
		if !near(got.own, tt.wantOwn) || !near(got.machine, tt.wantMachine) {
			t.Errorf("%s: got own %v machine %v, want %v, %v", tt.name, got.own, got.machine, tt.wantOwn, tt.wantMachine)
		}
	}
}

func TestPerMpps(t *testing.T) {
	tests := []struct {
		name                 string
		tr                   Trial
		size, ncpu           int
		wantMachine, wantOwn float64
	}{
		// 0.5 Mpps of 64 B = 256 Mbit/s; half of 2 CPUs busy = 1 CPU-s/s.
		{"half busy", Trial{Received: 0.5e6 * 64 * 8, Busy: 0.5, ProcBusy: 0.25}, 64, 2, 2, 0.5},
		{"1 Mpps of 1400 B", Trial{Received: 1e6 * 1400 * 8, Busy: 1, ProcBusy: 0}, 1400, 4, 4, 0},
		{"nothing received", Trial{Busy: 1, ProcBusy: 1}, 64, 2, 0, 0},
	}
	for _, tt := range tests {
		got := perMpps(tt.tr, tt.size, tt.ncpu)
		if !near(got.machine, tt.wantMachine) || !near(got.own, tt.wantOwn) {
			t.Errorf("%s: got machine %v own %v, want %v, %v", tt.name, got.machine, got.own, tt.wantMachine, tt.wantOwn)
		}
	}
}

func TestParseSchedstatAndDelta(t *testing.T) {
	tests := []struct {
		in      string
		want    float64
		wantErr bool
	}{
		{"65712027 67965675 144\n", 0.065712027, false},
		{"1500000000 0 1", 1.5, false},
		{"", 0, true},
		{"x 1 2", 0, true},
	}
	for _, tt := range tests {
		got, err := parseSchedstat([]byte(tt.in))
		if (err != nil) != tt.wantErr || !near(got, tt.want) {
			t.Errorf("parseSchedstat(%q): got %v, %v; want %v (error %v)", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
	deltas := []struct {
		name string
		a, b procSnap
		want float64
	}{
		{"schedstat", procSnap{precise: 1.0, ticks: 1.0}, procSnap{precise: 1.004, ticks: 1.0}, 0.004},
		{"a thread exited: ticks", procSnap{precise: 2, ticks: 2}, procSnap{precise: 1, ticks: 2.01}, 0.01},
		{"no schedstat: ticks", procSnap{precise: -1, ticks: 3}, procSnap{precise: -1, ticks: 3.5}, 0.5},
	}
	for _, tt := range deltas {
		if got := procCPUDelta(tt.a, tt.b); !near(got, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestSweepMetrics(t *testing.T) {
	ms := SweepMetrics([]int{1, 3})
	want := []struct{ key, label, unit string }{
		{"udp64_t1", "UDP 64 B, 1 generator thread, <0.1% loss", "kpps"},
		{"udp64_t3", "UDP 64 B, 3 generator threads, <0.1% loss", "kpps"},
		{"udp1400_t1", "UDP 1400 B, 1 generator thread, <0.1% loss", "Gbit/s"},
		{"udp1400_t3", "UDP 1400 B, 3 generator threads, <0.1% loss", "Gbit/s"},
	}
	if len(ms) != len(want) {
		t.Fatalf("got %d metrics, want %d", len(ms), len(want))
	}
	for i, w := range want {
		if ms[i].Key != w.key || ms[i].Label != w.label || ms[i].Unit != w.unit || ms[i].Section != SectionScaling {
			t.Errorf("metric %d: got %+v, want %s %q %s in the scaling section", i, ms[i], w.key, w.label, w.unit)
		}
	}
}

// scalingResults is a run with the scaling rows on kernel vxlan and
// vxtun, a mode without them, a projection and a control-plane section.
func scalingResults() *Results {
	r := &Results{Baseline: ModeKernelVXLAN, Metrics: append(append([]Metric{}, Metrics...), SweepMetrics([]int{1, 2})...),
		Machine: Machine{NumCPU: 2},
		Config: RunConfig{Rounds: 1, Modes: []string{ModeVeth, ModeKernelVXLAN, ModeVxtunVXLAN}, SweepModes: []string{ModeKernelVXLAN, ModeVxtunVXLAN},
			SweepThreads: []int{1, 2}, SweepSteps: 4, IdleSeconds: 10, Projection: Proj16}}
	veth := newModeResult(ModeVeth)
	veth.Samples[MetricTCP1] = []float64{10}
	kern := newModeResult(ModeKernelVXLAN)
	kern.Samples[MetricTCP1] = []float64{8}
	kern.Samples[MetricTCP8] = []float64{12}
	kern.Samples[SweepKey(64, 1)] = []float64{200}
	kern.Samples[SweepKey(1400, 2)] = []float64{4}
	kern.CPUBound[SweepKey(64, 1)] = true
	kern.Samples[MetricIdleMachine] = []float64{0.5}
	kern.Samples[MetricProj16] = []float64{64}
	vx := newModeResult(ModeVxtunVXLAN)
	vx.Samples[MetricTCP1] = []float64{4}
	vx.Samples[MetricTCP8] = []float64{3}
	vx.Samples[SweepKey(64, 1)] = []float64{100}
	vx.Samples[SweepKey(1400, 2)] = []float64{2}
	vx.GeneratorBound[SweepKey(1400, 2)] = true
	vx.Samples[MetricIdleCPU] = []float64{0.03}
	vx.Samples[MetricIdleMachine] = []float64{0.6}
	vx.Samples[MetricProj16] = []float64{16}
	r.Modes = []*ModeResult{veth, kern, vx}
	r.ControlPlane = NewControlPlaneSection(ControlPlaneResult{Peers: 5000, FullSet: 12500 * time.Microsecond, FullSetFilter: 30 * time.Millisecond,
		UpdateP50: 750 * time.Microsecond, UpdateP99: 6700 * time.Microsecond, FilterP50: 2 * time.Millisecond, FilterP99: 4 * time.Millisecond,
		ReloadP50: 40 * time.Millisecond, ReloadP99: 90 * time.Millisecond, RSS: 60 << 20, HWM: 64 << 20, BaselineRSS: 40 << 20,
		StartHWM: 62 << 20, Anon: 20 << 20, BaselineAnon: 5 << 20}, 200, 20)
	r.Summarize()
	return r
}

func TestScalingTable(t *testing.T) {
	r := scalingResults()
	g, ok := r.scalingGrid()
	if !ok {
		t.Fatal("got no scaling table, want one")
	}
	if got, want := strings.Join(g.header, ","), "metric,unit,kernel-vxlan,vxtun-vxlan"; got != want {
		t.Errorf("scaling header: got %s, want %s (veth ran no sweep)", got, want)
	}
	wantRows := []string{
		"TCP 1 stream|Gbit/s|8.00 (1.00×)|4.00 (0.50×)",
		"TCP 2 streams|Gbit/s|n/a|n/a",
		"TCP 4 streams|Gbit/s|n/a|n/a",
		"TCP 8 streams|Gbit/s|12.0 (1.00×)|3.00 (0.25×)",
		"UDP 64 B, 1 generator thread, <0.1% loss|kpps|200† (1.00×)|100 (0.50×)",
		"UDP 64 B, 2 generator threads, <0.1% loss|kpps|n/a|n/a",
		"UDP 1400 B, 1 generator thread, <0.1% loss|Gbit/s|n/a|n/a",
		"UDP 1400 B, 2 generator threads, <0.1% loss|Gbit/s|4.00 (1.00×)|2.00* (0.50×)",
	}
	if len(g.rows) != len(wantRows) {
		t.Fatalf("got %d scaling rows, want %d", len(g.rows), len(wantRows))
	}
	for i, w := range wantRows {
		if got := strings.Join(g.rows[i], "|"); got != w {
			t.Errorf("scaling row %d: got %q, want %q", i, got, w)
		}
	}
	// The main table has no scaling rows.
	for _, row := range r.mainGrid().rows {
		if strings.Contains(row[0], "generator thread") {
			t.Errorf("main table: got scaling row %q, want none", row[0])
		}
	}
	// Without sweep samples there is no scaling table.
	r2 := testResults()
	r2.Summarize()
	if _, ok := r2.scalingGrid(); ok {
		t.Errorf("got a scaling table for a run without sweep samples, want none")
	}
}

func TestRowsInOutputs(t *testing.T) {
	r := scalingResults()
	var buf bytes.Buffer
	if err := r.WriteTable(&buf); err != nil {
		t.Fatal(err)
	}
	md := r.Markdown("")
	for _, want := range []string{
		"Scaling (kernel-vxlan, vxtun-vxlan)",
		"PROJECTION: TCP on 16 cores",
		"PROJECTION rows are a model, not a measurement",
		"min(16 flows, 16 workers) for userspace vxtun",
		"idle: one 10 s window per round",
		"Control plane at 5000 peers",
		"full set applied in 12.5 ms (peer filter 30.0 ms)",
		"apply p50 0.75 / p99 6.70 ms",
		"daemon reload p50 40.0 / p99 90.0 ms (20 reloads)",
		"daemon VmRSS 60.0 MiB (anonymous 20.0), VmHWM 64.0 MiB (62.0 once up); with one peer VmRSS 40.0 MiB (anonymous 5.00)",
	} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, buf.String())
		}
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	for _, want := range []string{
		"| UDP 64 B, 1 generator thread, <0.1% loss | kpps | 200† (1.00×) | 100 (0.50×) |",
		"| idle: overlay daemons' CPU per minute | CPU s/min | n/a | n/a | 0.03 |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}

	back, raw := jsonRoundTrip(t, r)
	if back.ControlPlane == nil || back.ControlPlane.UpdateP99Ms != 6.7 || back.ControlPlane.Peers != 5000 {
		t.Errorf("JSON control plane: got %+v, want 5000 peers, update p99 6.7 ms", back.ControlPlane)
	}
	if back.Config.Projection != Proj16 || back.Config.SweepSteps != 4 || len(back.Config.SweepThreads) != 2 {
		t.Errorf("JSON config: got %+v, want the projection model and the sweep", back.Config)
	}
	if got := back.Modes[2].Ratio[SweepKey(64, 1)]; got != 0.5 {
		t.Errorf("JSON: got vxtun udp64_t1 ratio %v, want 0.5", got)
	}
	cp, _ := raw["control_plane"].(map[string]any)
	if got := cp["full_apply_ms"]; got != 12.5 {
		t.Errorf("JSON control_plane.full_apply_ms: got %v, want 12.5", got)
	}
	proj, _ := raw["config"].(map[string]any)["projection"].(map[string]any)
	if got := proj["workers"]; got != 16.0 {
		t.Errorf("JSON config.projection.workers: got %v, want 16", got)
	}

	c := r.Chart()
	var labels []string
	for _, g := range c.Groups {
		labels = append(labels, g.Label)
	}
	if got := strings.Join(labels, "; "); !strings.Contains(got, "UDP 64 B, 1 generator thread") || !strings.Contains(got, "PROJECTION: TCP on 16 cores") {
		t.Errorf("chart groups: got %s, want the scaling and projection rows", got)
	}
}

func TestControlPlaneUnavailable(t *testing.T) {
	r := testResults()
	r.ControlPlane = &ControlPlaneSection{Unavailable: "vxtun binary missing"}
	r.Summarize()
	var buf bytes.Buffer
	if err := r.WriteTable(&buf); err != nil {
		t.Fatal(err)
	}
	if want := "Control plane: unavailable: vxtun binary missing"; !strings.Contains(buf.String(), want) {
		t.Errorf("table lacks %q:\n%s", want, buf.String())
	}
}
