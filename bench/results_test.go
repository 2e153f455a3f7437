package bench

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func testResults() *Results {
	r := &Results{Baseline: ModeKernelVXLAN, Metrics: Metrics, Machine: Machine{NumCPU: 2, LoadAvg: 9.5}, Config: RunConfig{Rounds: 3, Modes: []string{"veth", "kernel-vxlan", "vxtun-vxlan", "vxtun-udp"}}}
	veth := newModeResult("veth")
	veth.Samples[MetricTCP1] = []float64{40, 50, 45}
	veth.Samples[MetricPingP50] = []float64{3, 4, 5}
	kern := newModeResult("kernel-vxlan")
	kern.Samples[MetricTCP1] = []float64{30, 20, 25}
	kern.Samples[MetricPingP50] = []float64{8, 10, 12}
	kern.Samples[MetricUDP64] = []float64{200, 230, 210}
	kern.GeneratorBound[MetricUDP64] = true
	vx := newModeResult("vxtun-vxlan")
	vx.Samples[MetricTCP1] = []float64{5, 10, 7.5}
	vx.Samples[MetricCPUPerGB] = []float64{1.5, 2, 2.5}
	udp := newModeResult("vxtun-udp")
	udp.Unavailable = "unavailable: no binary"
	r.Modes = []*ModeResult{veth, kern, vx, udp}
	return r
}

func TestSummarize(t *testing.T) {
	r := testResults()
	r.Summarize()
	tests := []struct {
		mode, key       string
		median, ratio   float64
		hasMed, hasRati bool
	}{
		{"veth", MetricTCP1, 45, 1.8, true, true},
		{"veth", MetricPingP50, 4, 0.4, true, true},
		{"kernel-vxlan", MetricTCP1, 25, 1, true, true},
		{"kernel-vxlan", MetricUDP64, 210, 1, true, true},
		{"vxtun-vxlan", MetricTCP1, 7.5, 0.3, true, true},
		{"vxtun-vxlan", MetricCPUPerGB, 2, 0, true, false}, // baseline has no CPU figure
		{"vxtun-udp", MetricTCP1, 0, 0, false, false},
	}
	for _, tt := range tests {
		m := r.mode(tt.mode)
		med, ok := m.Median[tt.key]
		if ok != tt.hasMed || (ok && med != tt.median) {
			t.Errorf("%s %s: got median %v (%v), want %v (%v)", tt.mode, tt.key, med, ok, tt.median, tt.hasMed)
		}
		q, ok := m.Ratio[tt.key]
		if ok != tt.hasRati || (ok && (q < tt.ratio-1e-9 || q > tt.ratio+1e-9)) {
			t.Errorf("%s %s: got ratio %v (%v), want %v (%v)", tt.mode, tt.key, q, ok, tt.ratio, tt.hasRati)
		}
	}
}

func TestWriteTableAndMarkdown(t *testing.T) {
	r := testResults()
	r.Summarize()
	var buf bytes.Buffer
	if err := r.WriteTable(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"TCP 1 stream", "45.0 (1.80×)", "7.50 (0.30×)", "210* (1.00×)", "vxtun-udp: unavailable: no binary", "generator (bench.RunGen, paced sendmmsg threads) was the bottleneck"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	md := r.Markdown("RESULTS.svg")
	for _, want := range []string{"| TCP 1 stream | Gbit/s | 45.0 (1.80×) |", "![ratios to kernel-vxlan](RESULTS.svg)", "**Noisy**: the machine was busy (load average 9.5 on 2 CPUs)", "vxtun-vxlan   tcp1        5.00 10.0 7.50"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	back, _ := jsonRoundTrip(t, r)
	if got := back.Modes[2].Ratio[MetricTCP1]; got != 0.3 {
		t.Errorf("JSON round trip: got vxtun-vxlan tcp1 ratio %v, want 0.3", got)
	}
	c := r.Chart()
	if len(c.Series) != 3 {
		t.Errorf("chart: got series %v, want the 3 available modes", c.Series)
	}
	if len(c.Groups) != 3 { // tcp1, ping p50, udp64 have ratios
		t.Errorf("chart: got %d groups, want 3", len(c.Groups))
	}
}

// jsonRoundTrip writes r as JSON and reads it back, also as a plain map.
func jsonRoundTrip(t *testing.T, r *Results) (Results, map[string]any) {
	t.Helper()
	var js bytes.Buffer
	if err := r.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back Results
	var raw map[string]any
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatalf("JSON does not round-trip: %v", err)
	}
	if err := json.Unmarshal(js.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	return back, raw
}

func TestReplaceGenerated(t *testing.T) {
	sec := "new table\n"
	block := GeneratedBegin + "\n" + sec + GeneratedEnd + "\n"
	tests := []struct{ in, want string }{
		{"", block},
		{"# R\nintro", "# R\nintro\n\n" + block},
		{"# R\n\n" + GeneratedBegin + "\nold\nstuff\n" + GeneratedEnd + "\nafter\n", "# R\n\n" + block + "after\n"},
	}
	for _, tt := range tests {
		got, err := ReplaceGenerated(tt.in, sec)
		if err != nil || got != tt.want {
			t.Errorf("ReplaceGenerated(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	if _, err := ReplaceGenerated(GeneratedEnd+"\n"+GeneratedBegin, sec); err == nil {
		t.Errorf("got nil error for markers out of order, want one")
	}
	// Idempotent through a file.
	path := filepath.Join(t.TempDir(), "RESULTS.md")
	for i := 0; i < 2; i++ {
		if err := UpdateResultsFile(path, sec); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), GeneratedBegin); n != 1 || !strings.Contains(string(b), sec) {
		t.Errorf("after two updates got %d sections:\n%s", n, b)
	}
}
