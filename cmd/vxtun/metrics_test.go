package main

import (
	"bytes"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/vxtun/vxtun/dataplane"
	"github.com/vxtun/vxtun/node"
)

// dropReasons are the userspace dataplane's drop reasons (README).
var dropReasons = []string{"no_route", "too_big", "bad_header", "no_i_bit", "unknown_vni", "wrong_mac",
	"unknown_source", "short", "bad_inner", "arp", "send_error"}

func testSnapshot() node.Metrics {
	drops := map[string]uint64{"no_route": 3, "wrong_mac": 2, "future_reason": 1}
	for _, r := range dropReasons {
		drops[r] += 0 // the userspace dataplane reports every reason
	}
	return node.Metrics{
		Version: `v1 "quoted"`,
		Backend: "vxlan",
		Tun:     "vxtun0",
		Stats: dataplane.Stats{
			TxPackets: 10, TxBytes: 15000, RxPackets: 7, RxBytes: 9000,
			Drops: drops,
			PeerDrops: map[string]map[string]uint64{
				"node2": {"wrong_mac": 2},
			},
			UDPRxQueueOverflows: 4, TunTxDropped: 5,
		},
		Peers:            2,
		PeerUpdates:      5,
		PeerUpdateErrors: 1,
		PeerFilterDrops:  12,
	}
}

// metricsText is what node.DebugHandler serves on /metrics for s.
func metricsText(s node.Metrics) string {
	rec := httptest.NewRecorder()
	node.DebugHandler(func() node.Metrics { return s }, node.DebugOptions{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return rec.Body.String()
}

// TestMetricsRoundTrip: "vxtun stats" parses what the daemon serves.
func TestMetricsRoundTrip(t *testing.T) {
	buf := bytes.NewBufferString(metricsText(testSnapshot()))
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
	want := map[string]float64{
		"vxtun_tx_packets_total":                 10,
		"vxtun_tx_bytes_total":                   15000,
		"vxtun_rx_packets_total":                 7,
		"vxtun_rx_bytes_total":                   9000,
		"vxtun_drops_total/no_route":             3,
		"vxtun_drops_total/wrong_mac":            2,
		"vxtun_drops_total/future_reason":        1,
		"vxtun_drops_total/unknown_vni":          0, // listed although zero
		"vxtun_peer_drops_total/node2/wrong_mac": 2,
		"vxtun_peers":                            2,
		"vxtun_peer_updates_total":               5,
		"vxtun_peer_update_errors_total":         1,
		"vxtun_info":                             1,
	}
	for k, v := range want {
		g, ok := got[k]
		if !ok {
			t.Errorf("%s: missing", k)
		} else if g != v {
			t.Errorf("%s: got %v, want %v", k, g, v)
		}
	}
	if info["version"] != `v1 "quoted"` || info["backend"] != "vxlan" {
		t.Errorf("vxtun_info labels: got %v", info)
	}
	for _, r := range dropReasons {
		if _, ok := got["vxtun_drops_total/"+r]; !ok {
			t.Errorf("drop reason %s not exported", r)
		}
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
	f.Add(metricsText(testSnapshot()))
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
	srv := httptest.NewServer(node.DebugHandler(testSnapshot, node.DebugOptions{}))
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
		"filtered           12 datagrams from non-peers (dropped in the kernel)",
		"kernel              4 udp rx-queue overflows, 5 tun tx dropped, 0 tun rx dropped",
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
