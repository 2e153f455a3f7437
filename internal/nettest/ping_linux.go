package nettest

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Ping runs "ping -n -I src extra... dst" in ns and parses its output.
// The result is filled in whenever the output parses, also when ping
// exits non-zero (lost probes); err is non-nil if ping failed or its
// output did not parse, and quotes the output.
func Ping(ctx context.Context, ns *NS, src, dst netip.Addr, extra ...string) (PingResult, error) {
	argv := append([]string{"ping", "-n", "-I", src.String()}, extra...)
	argv = append(argv, dst.String())
	var out strings.Builder
	cmd := ns.Command(ctx, argv...)
	cmd.Stdout = &out
	var stderr strings.Builder
	cmd.Stderr = &stderr
	runErr := cmd.Run()
	res, perr := ParsePing([]byte(out.String()))
	if perr != nil {
		return PingResult{}, fmt.Errorf("in %s: %s: %w (exit: %v): %s", ns.Name, strings.Join(argv, " "), perr, runErr, strings.TrimSpace(stderr.String()))
	}
	if runErr != nil {
		return res, fmt.Errorf("in %s: %s: %w: %d of %d replies: %s", ns.Name, strings.Join(argv, " "), runErr, res.Received, res.Transmitted, strings.TrimSpace(stderr.String()))
	}
	return res, nil
}

// WaitPing pings dst from src in ns (one probe, 1 s wait, every 200 ms)
// until a reply comes, timeout passes, ctx ends or alive (if not nil)
// returns an error, which WaitPing returns.
func WaitPing(ctx context.Context, ns *NS, src, dst netip.Addr, timeout time.Duration, alive func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		if alive != nil {
			if err := alive(); err != nil {
				return err
			}
		}
		pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		_, err := Ping(pctx, ns, src, dst, "-c", "1", "-W", "1")
		cancel()
		if err == nil {
			return nil
		}
		if cerr := ctx.Err(); cerr != nil {
			return fmt.Errorf("wait ping %s → %s: %w", src, dst, cerr)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s cannot reach %s after %v: %w", src, dst, timeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
