package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/vxtun/vxtun/internal/interrupt"
)

// Config is one demo run.
type Config struct {
	Quick   bool          // short run
	Vxtun   string        // vxtun binary; "" builds one
	Tool    string        // "auto", "iperf3" or "go"
	Size    int64         // bytes per transfer (tool go)
	Seconds int           // seconds per transfer (tool iperf3)
	Pings   int           // pings per pair
	Keep    bool          // keep the work directory (configs, logs)
	Ready   time.Duration // how long vxtun may take to come up
	Verbose bool          // print every command
	// Backend is "vxlan" (node3: kernel vxlan as flannel programs it) or
	// "host-gw" (node3: host-gw routes as flanneld sets them); see routed.go.
	Backend string
	// DirectRouting turns on vxlan DirectRouting on the vxtun nodes.
	DirectRouting bool
}

func main() {
	if len(os.Args) > 1 && strings.HasPrefix(os.Args[1], "__") {
		os.Exit(helperMain(os.Args[1:]))
	}
	var cfg Config
	flag.BoolVar(&cfg.Quick, "quick", false, "short run: 3 pings and 4 MiB / 1 s per pair")
	flag.StringVar(&cfg.Vxtun, "vxtun", "", "vxtun binary to use (default: go build ./cmd/vxtun into a temporary directory)")
	flag.StringVar(&cfg.Tool, "tool", "auto", "TCP transfer tool: auto (iperf3 if installed, else go), iperf3 or go (the demo sends and verifies a SHA-256)")
	flag.Int64Var(&cfg.Size, "size", 0, "bytes per transfer with -tool go (default 64 MiB, quick 4 MiB)")
	flag.IntVar(&cfg.Seconds, "seconds", 0, "seconds per transfer with -tool iperf3 (default 3, quick 1)")
	flag.IntVar(&cfg.Pings, "pings", 0, "pings per pair (default 10, quick 3)")
	flag.BoolVar(&cfg.Keep, "keep", false, "keep the work directory with configs and vxtun logs")
	flag.BoolVar(&cfg.Verbose, "v", false, "print every command")
	flag.StringVar(&cfg.Backend, "backend", "vxlan", "vxlan (node3: kernel vxlan as flannel programs it) or host-gw (every node routes, node3 as flanneld's host-gw backend does)")
	flag.BoolVar(&cfg.DirectRouting, "direct-routing", false, "vxlan with DirectRouting on the vxtun nodes: peers on the underlay subnet get a direct route instead of VXLAN")
	flag.Parse()
	if err := cfg.checkBackend(); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(2)
	}
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "demo: unexpected argument %q\n", flag.Arg(0))
		os.Exit(2)
	}

	// The first SIGINT/SIGTERM/SIGHUP cancels the run; cleanup then runs
	// and further signals are absorbed until it is done.
	ctx, stop := interrupt.Context(os.Stderr, "demo", "stopping and cleaning up")
	defer stop()
	err := Run(ctx, cfg, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}
