package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// statsMain is "vxtun stats": fetch /metrics from a running daemon and print
// a summary.
func statsMain(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("vxtun stats", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("debug-addr", "", "`host:port` of the daemon's --debug-addr ["+envName("debug-addr")+"]")
	raw := fs.Bool("raw", false, "print the metrics as fetched (Prometheus text format)")
	timeout := fs.Duration("timeout", 5*time.Second, "HTTP timeout")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: vxtun stats --debug-addr HOST:PORT [--raw]\n\nPrints the counters of a daemon started with --debug-addr.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *addr == "" {
		*addr = getenv(envName("debug-addr"))
	}
	if *addr == "" {
		fmt.Fprintln(stderr, "vxtun stats: --debug-addr is required (or "+envName("debug-addr")+")")
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	body, err := fetchMetrics(ctx, *addr)
	if err != nil {
		fmt.Fprintln(stderr, "vxtun stats:", err)
		return 1
	}
	if *raw {
		_, _ = io.WriteString(stdout, body)
		return 0
	}
	samples, err := parseMetrics(strings.NewReader(body))
	if err != nil {
		fmt.Fprintln(stderr, "vxtun stats:", err)
		return 1
	}
	printSummary(stdout, samples)
	return 0
}

func fetchMetrics(ctx context.Context, addr string) (string, error) {
	url := "http://" + addr + "/metrics"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", fmt.Errorf("fetch %s: %w", url, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("fetch metrics: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return "", fmt.Errorf("fetch %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("fetch %s: %s", url, resp.Status)
	}
	return string(b), nil
}

// printSummary prints the samples of a daemon's /metrics readably.
func printSummary(w io.Writer, samples []sample) {
	one := map[string]float64{}
	drops := map[string]float64{}
	peerDrops := map[string]map[string]float64{}
	var info map[string]string
	for _, s := range samples {
		switch s.Name {
		case "vxtun_info":
			info = s.Labels
		case "vxtun_drops_total":
			drops[s.Labels["reason"]] += s.Value
		case "vxtun_peer_drops_total":
			p := s.Labels["peer"]
			if peerDrops[p] == nil {
				peerDrops[p] = map[string]float64{}
			}
			peerDrops[p][s.Labels["reason"]] += s.Value
		default:
			one[s.Name] += s.Value
		}
	}
	if info != nil {
		fmt.Fprintf(w, "%s, backend %s, tun %s\n", info["version"], info["backend"], info["tun"])
	}
	fmt.Fprintf(w, "tx       %12.0f packets %12s\n", one["vxtun_tx_packets_total"], humanBytes(one["vxtun_tx_bytes_total"]))
	fmt.Fprintf(w, "rx       %12.0f packets %12s\n", one["vxtun_rx_packets_total"], humanBytes(one["vxtun_rx_bytes_total"]))
	var total float64
	var parts []string
	for _, r := range sortedKeys(drops) {
		total += drops[r]
		if drops[r] > 0 {
			parts = append(parts, fmt.Sprintf("%s=%.0f", r, drops[r]))
		}
	}
	fmt.Fprintf(w, "drops    %12.0f", total)
	if len(parts) > 0 {
		fmt.Fprintf(w, "  (%s)", strings.Join(parts, " "))
	}
	fmt.Fprintln(w)
	for _, p := range sortedKeys(peerDrops) {
		var parts []string
		for _, r := range sortedKeys(peerDrops[p]) {
			parts = append(parts, fmt.Sprintf("%s=%.0f", r, peerDrops[p][r]))
		}
		fmt.Fprintf(w, "  peer %s: %s\n", p, strings.Join(parts, " "))
	}
	// The kernel's drops on vxtun's behalf, zero or not: loss no drop
	// reason above can see.
	fmt.Fprintf(w, "kernel   %12.0f udp rx-queue overflows, %.0f tun tx dropped, %.0f tun rx dropped\n",
		one["vxtun_udp_rx_queue_overflows_total"], one["vxtun_tun_tx_dropped_total"], one["vxtun_tun_rx_dropped_total"])
	fmt.Fprintf(w, "peers    %12.0f (updates %.0f, rejected %.0f)\n", one["vxtun_peers"],
		one["vxtun_peer_updates_total"], one["vxtun_peer_update_errors_total"])
	if v := one["vxtun_peer_filter_drops_total"]; v > 0 {
		fmt.Fprintf(w, "filtered %12.0f datagrams from non-peers (dropped in the kernel)\n", v)
	}
	// Wake-ups: a userspace dataplane's blocking waits, per packet
	// forwarded (each a thread's wake-up: latency when nothing polls).
	if v := one["vxtun_waits_total"]; v > 0 {
		fmt.Fprintf(w, "waits    %12.0f (%.2f per packet)", v, v/max(one["vxtun_tx_packets_total"]+one["vxtun_rx_packets_total"], 1))
		if a := one["vxtun_busy_poll_ahead_wakes_total"]; a > 0 {
			fmt.Fprintf(w, ", %.0f timed wake-ups ahead found %.0f bursts", a, one["vxtun_busy_poll_ahead_hits_total"])
		}
		fmt.Fprintln(w)
	}
	if v := one["vxtun_tun_bad_frames_total"] + one["vxtun_tun_write_errors_total"]; v > 0 {
		fmt.Fprintf(w, "tun      %12.0f bad frames, %.0f write errors\n",
			one["vxtun_tun_bad_frames_total"], one["vxtun_tun_write_errors_total"])
	}
}

func humanBytes(b float64) string {
	const unit = 1024
	if b < unit {
		return fmt.Sprintf("%.0f B", b)
	}
	div, exp := float64(unit), 0
	for n := b / unit; n >= unit && exp < 4; n /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", b/div, "KMGTP"[exp])
}
