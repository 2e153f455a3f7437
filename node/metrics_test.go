package node_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/vxtun/vxtun/dataplane"
	"github.com/vxtun/vxtun/node"
	"github.com/vxtun/vxtun/node/nodetest"
)

// scrape serves DebugHandler over HTTP and parses /metrics with expfmt.
func scrape(t *testing.T, m node.Metrics) map[string]*dto.MetricFamily {
	t.Helper()
	srv := httptest.NewServer(node.DebugHandler(func() node.Metrics { return m }, node.DebugOptions{}))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain; version=0.0.4") {
		t.Fatalf("/metrics: got %s, %q; want 200, text/plain; version=0.0.4", resp.Status, resp.Header.Get("Content-Type"))
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("parse /metrics: %v\n%s", err, body)
	}
	return fams
}

// key is a sample's name and its label values in the order given.
func key(name string, m *dto.Metric, labels ...string) string {
	k := name
	for _, l := range labels {
		for _, lp := range m.GetLabel() {
			if lp.GetName() == l {
				k += "/" + lp.GetValue()
			}
		}
	}
	return k
}

func TestMetricsScrape(t *testing.T) {
	fams := scrape(t, nodetest.Sample())
	type fam struct {
		typ    dto.MetricType
		help   string
		labels []string
	}
	counter := func(help string, labels ...string) fam { return fam{dto.MetricType_COUNTER, help, labels} }
	wantFams := map[string]fam{
		"vxtun_info":                         {dto.MetricType_GAUGE, "Build and configuration of this daemon.", []string{"backend", "tun", "version"}},
		"vxtun_tx_packets_total":             counter("Packets encapsulated and sent to the underlay."),
		"vxtun_tx_bytes_total":               counter("Inner bytes encapsulated and sent to the underlay."),
		"vxtun_rx_packets_total":             counter("Packets decapsulated and written to the TUN."),
		"vxtun_rx_bytes_total":               counter("Inner bytes decapsulated and written to the TUN."),
		"vxtun_drops_total":                  counter("Dropped packets by reason.", "reason"),
		"vxtun_peer_drops_total":             counter("Dropped packets by peer and reason.", "peer", "reason"),
		"vxtun_peers":                        {dto.MetricType_GAUGE, "Peers in the routing table.", nil},
		"vxtun_peer_updates_total":           counter("Peer sets applied to the routing table."),
		"vxtun_peer_update_errors_total":     counter("Peer sets rejected (the previous table stayed)."),
		"vxtun_peer_filter_drops_total":      counter("Datagrams to the underlay port from non-peers, dropped in the kernel by the peer filter."),
		"vxtun_tun_bad_frames_total":         counter("Frames from the TUN that could not be parsed or split."),
		"vxtun_tun_write_errors_total":       counter("Packets the kernel refused on TUN write."),
		"vxtun_dataplane_restarts_total":     counter("Dataplane restarts (the etcd lease moved to another subnet)."),
		"vxtun_tun_oversize_gso_total":       counter("Inner packets above the TUN MTU written to the TUN as GSO super-packets."),
		"vxtun_tun_gro_bad_checksum_total":   counter("Inner packets with a wrong IPv4 or TCP/UDP checksum written to the TUN unmerged (the kernel drops them)."),
		"vxtun_udp_rx_queue_overflows_total": counter("Datagrams the kernel dropped because a vxtun socket's receive buffer was full (SO_RXQ_OVFL)."),
		"vxtun_tun_tx_dropped_total":         counter("Packets the kernel routed into the TUN but dropped: its queue to vxtun was full (the link's tx_dropped)."),
		"vxtun_tun_rx_dropped_total":         counter("Packets vxtun wrote to the TUN that the kernel dropped on input (the link's rx_dropped)."),
		"vxtun_waits_total":                  counter("Times a forwarding thread of the userspace dataplane blocked until a TUN queue or socket had a packet; each ends in a wake-up, the latency a packet pays when nothing polls."),
		"vxtun_busy_poll_ahead_wakes_total":  counter("Timed wake-ups of the --busy-poll-ahead spinner ahead of a predicted burst."),
		"vxtun_busy_poll_ahead_hits_total":   counter("Predicted bursts that found the --busy-poll-ahead spinner polling after a timed wake-up."),
		"vxtun_etcd_skipped_leases_total": counter("etcd leases logged and skipped as unusable, by reason: loop (a public IP inside the network, loopback or this node's, or this node's VTEP MAC), other_backend, subnet (outside the network or overlapping this node's), malformed; counted each time a lease is read.",
			"reason"),
	}
	for name, w := range wantFams {
		f, ok := fams[name]
		if !ok {
			t.Errorf("%s: missing", name)
			continue
		}
		if f.GetType() != w.typ {
			t.Errorf("%s: type: got %v, want %v", name, f.GetType(), w.typ)
		}
		if f.GetHelp() != w.help {
			t.Errorf("%s: help: got %q, want %q", name, f.GetHelp(), w.help)
		}
		for _, m := range f.GetMetric() {
			var got []string
			for _, lp := range m.GetLabel() {
				got = append(got, lp.GetName())
			}
			if strings.Join(got, ",") != strings.Join(w.labels, ",") {
				t.Errorf("%s: labels: got %v, want %v", name, got, w.labels)
			}
		}
	}
	for name := range fams {
		if _, ok := wantFams[name]; !ok {
			t.Errorf("%s: exported, but not one of vxtun's metrics (no Go or process collectors)", name)
		}
	}

	got := map[string]float64{}
	var info map[string]string
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			v := m.GetCounter().GetValue()
			if f.GetType() == dto.MetricType_GAUGE {
				v = m.GetGauge().GetValue()
			}
			got[key(name, m, "peer", "reason")] = v
			if name == "vxtun_info" {
				info = map[string]string{}
				for _, lp := range m.GetLabel() {
					info[lp.GetName()] = lp.GetValue()
				}
			}
		}
	}
	nodetest.CheckValues(t, got)
	if info["version"] != `v1 "quoted"` || info["backend"] != "vxlan" || info["tun"] != "vxtun0" {
		t.Errorf("vxtun_info labels: got %v, want version v1 \"quoted\", backend vxlan, tun vxtun0", info)
	}
}

func TestMetricsBeforeDataplane(t *testing.T) {
	// A node that has no dataplane yet reports zeros, and an invalid
	// UTF-8 peer name does not break the scrape. A source that counts no
	// skipped leases (static, kube) has no such series.
	m := node.Metrics{Version: "v", Stats: dataplane.Stats{PeerDrops: map[string]map[string]uint64{"bad\xff": {"short": 1}}}}
	fams := scrape(t, m)
	if f, ok := fams["vxtun_etcd_skipped_leases_total"]; ok {
		t.Errorf("vxtun_etcd_skipped_leases_total without a counting source: got %v, want no series", f.GetMetric())
	}
	if got := fams["vxtun_tx_packets_total"].GetMetric()[0].GetCounter().GetValue(); got != 0 {
		t.Errorf("vxtun_tx_packets_total: got %v, want 0", got)
	}
	pd := fams["vxtun_peer_drops_total"].GetMetric()
	if len(pd) != 1 || key("", pd[0], "peer") != "/bad\uFFFD" {
		t.Errorf("vxtun_peer_drops_total: got %v, want one series with peer bad\\uFFFD", pd)
	}
}

func TestDebugHandlerPaths(t *testing.T) {
	for _, tt := range []struct {
		name       string
		pprof      bool
		forwarding bool
		codes      map[string]int
	}{
		{"default", false, true, map[string]int{
			"/metrics": 200, "/healthz": 200, "/": 200, "/nope": 404,
			"/debug/pprof/": 404, "/debug/pprof/cmdline": 404, "/debug/pprof/heap": 404}},
		{"pprof asked for", true, true, map[string]int{
			"/metrics": 200, "/healthz": 200, "/debug/pprof/": 200, "/debug/pprof/cmdline": 200, "/debug/pprof/heap": 200}},
		{"not forwarding yet", false, false, map[string]int{"/metrics": 200, "/healthz": 503}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := nodetest.Sample()
			m.Forwarding = tt.forwarding
			srv := httptest.NewServer(node.DebugHandler(func() node.Metrics { return m }, node.DebugOptions{Pprof: tt.pprof}))
			defer srv.Close()
			for path, want := range tt.codes {
				resp, err := http.Get(srv.URL + path)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != want {
					t.Errorf("%s: got %s, want %d", path, resp.Status, want)
				}
			}
		})
	}
}

func TestIsLoopbackAddr(t *testing.T) {
	for _, tt := range []struct {
		addr string
		want bool
	}{
		{"127.0.0.1:9090", true},
		{"127.1.2.3:9090", true},
		{"[::1]:9090", true},
		{"[::ffff:127.0.0.1]:9090", true},
		{"localhost:9090", true},
		{"0.0.0.0:9090", false},
		{":9090", false},
		{"[::]:9090", false},
		{"198.18.0.1:9090", false},
		{"example.com:9090", false},
		{"nonsense", false},
	} {
		if got := node.IsLoopbackAddr(tt.addr); got != tt.want {
			t.Errorf("IsLoopbackAddr(%q): got %v, want %v", tt.addr, got, tt.want)
		}
	}
}
