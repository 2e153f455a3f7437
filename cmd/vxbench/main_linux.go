// Command vxbench runs vxtun's end-to-end benchmark (package bench): plain
// veth, kernel vxlan as flannel sets it up, the vxtun modes and the peer
// overlays on two-namespace testbeds, alternating, then the control-plane
// section, and reports medians and ratios to kernel vxlan as tables (every
// mode; scaling by streams and generator threads), a JSON file and an SVG
// chart.
//
// It needs root, iproute2, iperf3 and ping. Every namespace it makes is
// removed on exit, also on Ctrl-C or SIGTERM.
//
//	go run ./cmd/vxbench            # full run, updates bench/RESULTS.md
//	go run ./cmd/vxbench -quick     # CI smoke: 1 short round, checks the harness works
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/vxtun/vxtun/bench"
	"github.com/vxtun/vxtun/internal/interrupt"
)

func main() {
	os.Exit(run())
}

func run() int {
	var (
		quick    = flag.Bool("quick", false, "short bounded smoke run: 1 round, 1 s measurements, few probes (checks the harness, not the speed)")
		rounds   = flag.Int("rounds", 0, "rounds of alternating measurements (default 3, quick 1)")
		duration = flag.Duration("duration", 0, "duration of each TCP measurement (whole seconds; default 5s, quick 1s)")
		udpStep  = flag.Duration("udp-step", 0, "duration of each UDP rate-search trial (whole seconds; default 1s)")
		steps    = flag.Int("udp-steps", -1, "UDP rate-search steps after the overload probe (-1: 7, quick 3)")
		pings    = flag.Int("pings", 0, "ping probes per measurement at 1 ms (default 1000, quick 200)")
		modes    = flag.String("modes", strings.Join(bench.AllModes, ","), "comma-separated modes, in alternation order")
		sweep    = flag.String("sweep-modes", strings.Join(bench.SweepModes, ","), "comma-separated modes that also run the scaling rows (UDP by generator threads); \"\" = none")
		split    = flag.String("split-modes", strings.Join(bench.SplitModes, ","), "comma-separated modes that also run TCP and ping with one CPU per node (two one-CPU machines: taskset per node, RPS per underlay); \"\" = none")
		threads  = flag.String("sweep-threads", joinInts(bench.SweepThreads), "comma-separated generator thread counts of the scaling rows")
		sweepN   = flag.Int("sweep-steps", -1, "UDP search steps of the scaling rows after the overload probe (-1: 3, quick 1)")
		idle     = flag.Duration("idle", -1, "no-traffic window per round for the idle CPU rows (whole seconds; -1: 10s, quick 2s; 0: none)")
		cpPeers  = flag.Int("control-plane-peers", -1, "peers of the control-plane section (-1: 5000; 0: none)")
		out      = flag.String("out", "bench/out", "output directory: results.json, ratios.svg, configs and daemon logs")
		vxtun    = flag.String("vxtun", "bin/vxtun", "path to the vxtun binary (build it with 'make build')")
		tools    = flag.String("tool-cache", bench.DefaultToolCache(), "where the peer overlays (wireguard-go, nebula) are built with go install, outside the repository")
		vxArgs   = flag.String("vxtun-args", "", "extra `flags` for every 'vxtun run', space-separated (e.g. \"--debug-addr 127.0.0.1:6060\": pprof inside each node's namespace)")
		strict   = flag.Bool("strict", false, "exit 1 when any mode is unavailable (e.g. vxtun not built), not only when one fails; a mode whose daemon lacks an optional flag (vxtun-busy-poll) is reported, not counted")
		results  = flag.String("results", "auto", `Markdown file whose generated section gets the results ("auto": bench/RESULTS.md for full runs, none for -quick; "" = none)`)
	)
	flag.Parse()
	cfg := bench.FullConfig()
	if *quick {
		cfg = bench.QuickConfig()
	}
	if *rounds > 0 {
		cfg.Rounds = *rounds
	}
	if *duration > 0 {
		cfg.Duration = *duration
	}
	if *udpStep > 0 {
		cfg.UDPStep = *udpStep
	}
	if *steps >= 0 {
		cfg.SearchSteps = *steps
	}
	if *pings > 0 {
		cfg.PingCount = *pings
	}
	if *sweepN >= 0 {
		cfg.SweepSteps = *sweepN
	}
	if *idle >= 0 {
		cfg.Idle = *idle
	}
	if *cpPeers >= 0 {
		cfg.ControlPlane.Peers = *cpPeers
	}
	cfg.Modes, cfg.SweepModes, cfg.SplitModes = splitList(*modes), splitList(*sweep), splitList(*split)
	cfg.SweepThreads = nil
	for _, s := range splitList(*threads) {
		n, err := strconv.Atoi(s)
		if err != nil {
			fmt.Fprintf(os.Stderr, "vxbench: -sweep-threads: %v\n", err)
			return 2
		}
		cfg.SweepThreads = append(cfg.SweepThreads, n)
	}
	cfg.OutDir, cfg.Vxtun, cfg.VxtunArgs, cfg.Log = *out, *vxtun, strings.Fields(*vxArgs), os.Stderr
	cfg.ToolCache = *tools
	cfg.Command = strings.TrimSpace("vxbench " + strings.Join(os.Args[1:], " "))
	resultsPath := *results
	if resultsPath == "auto" {
		resultsPath = ""
		if !*quick {
			resultsPath = "bench/RESULTS.md"
		}
	}

	h, err := bench.NewHarness(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "vxbench:", err)
		return 2
	}
	if err := os.MkdirAll(cfg.OutDir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "vxbench:", err)
		return 2
	}

	// First SIGINT/SIGTERM/SIGHUP cancels the run; cleanup then removes every
	// namespace. Further signals are absorbed until cleanup is done.
	ctx, stop := interrupt.Context(os.Stderr, "vxbench", "stopping and removing namespaces")
	defer stop()

	res, runErr := h.Run(ctx)
	if err := h.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "vxbench: cleanup:", err)
	}
	stop()
	if res == nil {
		fmt.Fprintln(os.Stderr, "vxbench:", runErr)
		return 1
	}
	if errors.Is(runErr, context.Canceled) {
		fmt.Fprintln(os.Stderr, "vxbench: interrupted; partial results follow")
	}
	code := 0
	if err := writeOutputs(res, cfg.OutDir, resultsPath, runErr == nil); err != nil {
		fmt.Fprintln(os.Stderr, "vxbench:", err)
		code = 1
	}
	if runErr != nil {
		fmt.Fprintln(os.Stderr, "vxbench:", runErr)
		code = 1
	}
	if *strict {
		for _, m := range res.Modes {
			if m.NotInDaemon {
				fmt.Fprintf(os.Stderr, "vxbench: -strict: %s is %s (a feature of the daemon measured, not counted)\n", m.Mode, m.Unavailable)
				continue
			}
			if m.Unavailable != "" && !m.Failed {
				fmt.Fprintf(os.Stderr, "vxbench: -strict: %s is %s\n", m.Mode, m.Unavailable)
				code = 1
			}
		}
	}
	return code
}

// writeOutputs prints the table and writes results.json, ratios.svg and,
// for a complete run, the results Markdown with a chart beside it.
func writeOutputs(res *bench.Results, outDir, resultsPath string, complete bool) error {
	if err := res.WriteTable(os.Stdout); err != nil {
		return err
	}
	jf, err := os.Create(filepath.Join(outDir, "results.json"))
	if err != nil {
		return err
	}
	if err := res.WriteJSON(jf); err != nil {
		jf.Close()
		return err
	}
	if err := jf.Close(); err != nil {
		return err
	}
	chart := res.Chart()
	if err := writeChart(chart, filepath.Join(outDir, "ratios.svg")); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "vxbench: wrote %s and %s (%.0f s)\n",
		filepath.Join(outDir, "results.json"), filepath.Join(outDir, "ratios.svg"), res.Elapsed)
	if resultsPath == "" || !complete {
		return nil
	}
	svgName := strings.TrimSuffix(filepath.Base(resultsPath), filepath.Ext(resultsPath)) + ".svg"
	if err := writeChart(chart, filepath.Join(filepath.Dir(resultsPath), svgName)); err != nil {
		return err
	}
	if err := bench.UpdateResultsFile(resultsPath, res.Markdown(svgName)); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "vxbench: updated %s\n", resultsPath)
	return nil
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ",")
}

func writeChart(c bench.Chart, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := c.WriteSVG(f); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}
