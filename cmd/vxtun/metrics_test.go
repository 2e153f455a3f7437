package main

import (
	"bytes"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/vxtun/vxtun/node"
	"github.com/vxtun/vxtun/node/nodetest"
)

// metricsText is what node.DebugHandler serves on /metrics for s.
func metricsText(s node.Metrics) string {
	rec := httptest.NewRecorder()
	node.DebugHandler(func() node.Metrics { return s }, node.DebugOptions{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return rec.Body.String()
}

// TestMetricsRoundTrip: "vxtun stats" parses what the daemon serves.
func TestMetricsRoundTrip(t *testing.T) {
	buf := bytes.NewBufferString(metricsText(nodetest.Sample()))
	samples, err := parseMetrics(buf)
	if err != nil {
		t.Fatalf("parse our own output: %v\n%s", err, buf.String())
	}
	got := map[string]float64{}
	var info map[string]string
	for _, s := range samples {
		key := s.Name
		for _, l := range []string{"peer", "reason"} {
			if v, ok := s.Labels[l]; ok {
				key += "/" + v
			}
		}
		got[key] = s.Value
		if s.Name == "vxtun_info" {
			info = s.Labels
		}
	}
	nodetest.CheckValues(t, got)
	if info["version"] != `v1 "quoted"` || info["backend"] != "vxlan" {
		t.Errorf("vxtun_info labels: got %v", info)
	}
}

func TestParseSample(t *testing.T) {
	tests := []struct {
		in      string
		name    string
		labels  map[string]string
		value   float64
		wantErr bool
	}{
		{in: "a 1", name: "a", value: 1},
		{in: "a_b{x=\"1\",y=\"two\"} 2.5", name: "a_b", labels: map[string]string{"x": "1", "y": "two"}, value: 2.5},
		{in: `m{l="a\"b\\c\nd"} 3 1700000000`, name: "m", labels: map[string]string{"l": "a\"b\\c\nd"}, value: 3},
		{in: `m{l="x",} 4`, name: "m", labels: map[string]string{"l": "x"}, value: 4},
		{in: "m NaN", name: "m", value: 0, wantErr: false},
		{in: "novalue", wantErr: true},
		{in: `m{l="x} 1`, wantErr: true},
		{in: `m{l=x} 1`, wantErr: true},
		{in: "m one", wantErr: true},
		{in: "m 1 2 3", wantErr: true},
	}
	for _, tt := range tests {
		s, err := parseSample(tt.in)
		if tt.wantErr {
			if err == nil {
				t.Errorf("%q: got %+v, want an error", tt.in, s)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: got error %v", tt.in, err)
			continue
		}
		if s.Name != tt.name {
			t.Errorf("%q: name: got %q, want %q", tt.in, s.Name, tt.name)
		}
		if tt.in != "m NaN" && s.Value != tt.value {
			t.Errorf("%q: value: got %v, want %v", tt.in, s.Value, tt.value)
		}
		for k, v := range tt.labels {
			if s.Labels[k] != v {
				t.Errorf("%q: label %s: got %q, want %q", tt.in, k, s.Labels[k], v)
			}
		}
	}
}

func FuzzParseMetrics(f *testing.F) {
	f.Add(metricsText(nodetest.Sample()))
	f.Add("a 1\n# comment\nb{c=\"d\"} 2\n")
	f.Add(`m{l="\` + "\n")
	f.Add("{} 1")
	f.Add(`x{a="1"b="2"} 3`)
	f.Fuzz(func(t *testing.T, in string) {
		samples, err := parseMetrics(strings.NewReader(in))
		if err != nil {
			return
		}
		// What parses prints without panicking.
		printSummary(&bytes.Buffer{}, samples)
	})
}

func TestStatsSummary(t *testing.T) {
	srv := httptest.NewServer(node.DebugHandler(nodetest.Sample, node.DebugOptions{}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	var out, errb bytes.Buffer
	if code := statsMain([]string{"--debug-addr", addr}, envMap(), &out, &errb); code != 0 {
		t.Fatalf("stats: exit %d: %s", code, errb.String())
	}
	for _, want := range []string{
		`v1 "quoted", backend vxlan, tun vxtun0`,
		"tx                 10 packets     14.6 KiB",
		"rx                  7 packets      8.8 KiB",
		"drops               6  (future_reason=1 no_route=3 wrong_mac=2)",
		"peer node2: wrong_mac=2",
		"peers               2 (updates 5, rejected 1)",
		"filtered           14 datagrams from non-peers (dropped in the kernel)",
		"kernel             11 udp rx-queue overflows, 12 tun tx dropped, 13 tun rx dropped",
		"waits              15 (0.88 per packet), 16 timed wake-ups ahead found 17 bursts",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
	// The environment variable works as the flag.
	out.Reset()
	if code := statsMain([]string{"--raw"}, envMap("VXTUN_DEBUG_ADDR", addr), &out, &errb); code != 0 {
		t.Fatalf("stats --raw: exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "# TYPE vxtun_tx_packets_total counter") {
		t.Errorf("raw output lacks TYPE lines:\n%s", out.String())
	}
	// pprof is not served unless asked for (--debug-pprof).
	resp, err := srv.Client().Get(srv.URL + "/debug/pprof/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("/debug/pprof/ without --debug-pprof: got %s, want 404", resp.Status)
	}
}

func TestHumanBytes(t *testing.T) {
	for _, tt := range []struct {
		in   float64
		want string
	}{{0, "0 B"}, {1023, "1023 B"}, {1024, "1.0 KiB"}, {1536, "1.5 KiB"}, {5 << 20, "5.0 MiB"}, {3 << 30, "3.0 GiB"}} {
		if got := humanBytes(tt.in); got != tt.want {
			t.Errorf("humanBytes(%v): got %q, want %q", tt.in, got, tt.want)
		}
	}
}
