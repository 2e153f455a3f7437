package nettest

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// IperfServer returns the (unstarted) daemon "iperf3 -s -B bind -p port"
// in ns, with its output in log ("" keeps it in memory). Start it, then
// WaitListen before running clients.
func IperfServer(ns *NS, bind netip.Addr, port int, log string) *Daemon {
	return &Daemon{Name: "iperf3 server", NS: ns, Log: log,
		Argv: []string{"iperf3", "-s", "-B", bind.String(), "-p", strconv.Itoa(port)}}
}

// WaitListen waits up to 5 s until a TCP socket listens on port in d's
// namespace (as ss reports it); it fails early if d exits.
func WaitListen(ctx context.Context, d *Daemon, port int) error {
	p := strconv.Itoa(port)
	for range 100 {
		out, err := d.NS.Exec(ctx, "ss", "-Hltn", "sport", "= :"+p)
		if err == nil && strings.Contains(out, ":"+p) {
			return nil
		}
		if exited, werr := d.Exited(); exited {
			return fmt.Errorf("%s exited: %v: %s", d.Name, werr, d.LogTail(300))
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("wait for %s: %w", d.Name, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New(d.Name + " does not listen after 5 s")
}

// RunIperf3 runs one iperf3 client test of the given seconds in ns, from
// src to an iperf3 server at dst:port, with extra flags (e.g. "-u",
// "-P", "4"), and parses its JSON report. iperf3 -J reports its own
// errors in that JSON: they wrap ErrIperf.
func RunIperf3(ctx context.Context, ns *NS, src, dst netip.Addr, port, seconds int, extra ...string) (IperfResult, error) {
	argv := append([]string{"iperf3", "-c", dst.String(), "-B", src.String(), "-p", strconv.Itoa(port),
		"-J", "--connect-timeout", "3000", "-t", strconv.Itoa(seconds)}, extra...)
	cctx, cancel := context.WithTimeout(ctx, time.Duration(seconds+30)*time.Second)
	defer cancel()
	out, _ := ns.Command(cctx, argv...).Output() // the JSON says what went wrong
	if err := ctx.Err(); err != nil {
		return IperfResult{}, fmt.Errorf("iperf3: %w", err)
	}
	r, err := ParseIperf3(out)
	if err != nil {
		return IperfResult{}, fmt.Errorf("in %s: %s: %w", ns.Name, strings.Join(argv, " "), err)
	}
	return r, nil
}
