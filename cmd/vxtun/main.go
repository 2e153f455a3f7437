// Command vxtun is the vxtun node daemon: a userspace VXLAN / flannel-UDP
// dataplane on a TUN device, with peers from a static file or from flannel's
// etcd layout. See README.md.
//
//	vxtun run --net-conf net-conf.json --node node.json --peers peers.json
//	vxtun run --etcd-endpoints http://10.0.0.1:2379 --iface eth0
//	vxtun stats --debug-addr 127.0.0.1:9090
//	vxtun version
//
// Invoked as "flanneld" (the container image ships /opt/bin/flanneld as a
// link to /vxtun), the binary is "vxtun run", so a flannel DaemonSet's
// command "/opt/bin/flanneld --ip-masq --kube-subnet-mgr" runs the daemon
// with flanneld's flags; "flanneld --version" is "vxtun version".
//
// This package is wiring only. It owns the flags and their environment
// variables, the subcommands, signal handling and exit codes: "run" turns
// the flags into a node.Config and calls node.Run (package node is the
// daemon: settings, run loop, peer sets, lease moves, subnet.env, the debug
// server); "stats" fetches and summarises a daemon's /metrics.
//
// Imports: node, registry (for its settings and defaults), config (flag
// checks). Nothing imports cmd.
//
// Concurrency: a signal goroutine cancels the node's context on SIGTERM or
// SIGINT and sends on the node's Reload channel on SIGHUP; everything else
// runs in the node (see its doc). Exit status: 0 after a clean shutdown, 1
// on a startup or runtime error (one "vxtun: ..." line on stderr), 2 on
// command-line misuse.
package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
)

// version is set with -ldflags "-X main.version=v1.2.3"; otherwise it comes
// from the module's build info.
var version = ""

// flanneldName is the program name under which vxtun runs as "vxtun run".
const flanneldName = "flanneld"

func main() {
	os.Exit(vxtunMain(commandArgs(os.Args), os.Getenv, os.Stdout, os.Stderr))
}

// commandArgs turns the process's argv into vxtunMain's arguments: argv
// without the program name, or, for a program named flanneld, "run" and
// flanneld's flags ("version" for its -version).
func commandArgs(argv []string) []string {
	if len(argv) == 0 {
		return nil
	}
	args := argv[1:]
	if filepath.Base(argv[0]) != flanneldName {
		return args
	}
	if len(args) == 1 && (args[0] == "-version" || args[0] == "--version") {
		return []string{"version"}
	}
	return append([]string{"run"}, args...)
}

func vxtunMain(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "run":
		return runMain(args[1:], getenv, stderr)
	case "stats":
		return statsMain(args[1:], getenv, stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, versionString())
		return 0
	case "help", "-h", "--help", "-help":
		usage(stdout)
		return 0
	}
	fmt.Fprintf(stderr, "vxtun: unknown command %q\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprint(w, `Usage: vxtun <command> [flags]

Commands:
  run      run the node daemon (vxtun run -h lists flags and environment variables)
  stats    print the counters of a running daemon (needs its --debug-addr)
  version  print the version
`)
}

// versionString is "vxtun <version> (<go version>, <vcs info>)".
func versionString() string {
	v := version
	extra := runtime.Version()
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v == "" {
			v = bi.Main.Version
		}
		var rev, modified string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					modified = "+dirty"
				}
			}
		}
		if rev != "" {
			if len(rev) > 12 {
				rev = rev[:12]
			}
			extra += ", " + rev + modified
		}
	}
	if v == "" || v == "(devel)" {
		v = "devel"
	}
	return fmt.Sprintf("vxtun %s (%s, %s/%s)", v, extra, runtime.GOOS, runtime.GOARCH)
}
