package nettest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// PingResult is what ParsePing extracts from iputils ping output.
type PingResult struct {
	Transmitted int
	Received    int
	RTTs        []time.Duration // one per reply line, in order (none with -q)
	// The "rtt min/avg/max/mdev" summary; zero when ping printed none (no
	// reply came back).
	Min, Avg, Max, Mdev time.Duration
}

// ParsePing parses iputils ping output: one "time=X ms" per reply (none
// with -q), the "N packets transmitted, M received" summary and, if there,
// the "rtt min/avg/max/mdev = a/b/c/d ms" line.
func ParsePing(out []byte) (PingResult, error) {
	var res PingResult
	summary := false
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if i := strings.Index(line, " time="); i >= 0 && strings.Contains(line, "bytes from") {
			d, err := parsePingTime(line[i+len(" time="):])
			if err != nil {
				return PingResult{}, fmt.Errorf("parse ping line %q: %w", line, err)
			}
			res.RTTs = append(res.RTTs, d)
			continue
		}
		if strings.Contains(line, " packets transmitted, ") {
			var tx, rx int
			if _, err := fmt.Sscanf(line, "%d packets transmitted, %d", &tx, &rx); err != nil {
				return PingResult{}, fmt.Errorf("parse ping summary %q: %w", line, err)
			}
			if tx < 0 || rx < 0 {
				return PingResult{}, fmt.Errorf("parse ping summary %q: negative count", line)
			}
			res.Transmitted, res.Received = tx, rx
			summary = true
			continue
		}
		if rest, ok := strings.CutPrefix(line, "rtt min/avg/max/mdev = "); ok {
			// Under load ping appends ", pipe N" (probes in flight at
			// once) and with -f ", ipg/ewma a/b ms": not part of the rtts.
			rest, _, _ = strings.Cut(rest, ",")
			if err := parsePingSummary(rest, &res); err != nil {
				return PingResult{}, fmt.Errorf("parse ping summary %q: %w", line, err)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return PingResult{}, fmt.Errorf("parse ping: %w", err)
	}
	if !summary {
		return PingResult{}, errors.New("parse ping: no summary line")
	}
	return res, nil
}

// parsePingTime parses "0.045 ms" (also "12 ms", "<0.001 ms" and "usec").
func parsePingTime(s string) (time.Duration, error) {
	f := strings.Fields(s)
	if len(f) < 1 {
		return 0, errors.New("no time")
	}
	num := strings.TrimPrefix(f[0], "<")
	unit := "ms"
	if len(f) > 1 {
		unit = f[1]
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || v < 0 || v > 1e7 {
		return 0, fmt.Errorf("bad time %q", f[0])
	}
	switch unit {
	case "ms":
		return time.Duration(v * float64(time.Millisecond)), nil
	case "us", "usec":
		return time.Duration(v * float64(time.Microsecond)), nil
	case "s", "sec":
		return time.Duration(v * float64(time.Second)), nil
	}
	return 0, fmt.Errorf("unknown unit %q", unit)
}

// parsePingSummary parses "0.031/4.177/12.500/5.886 ms" into r (ping may
// append ", pipe N" or ", ipg/ewma ..." after the unit).
func parsePingSummary(s string, r *PingResult) error {
	s, _, _ = strings.Cut(s, ",")
	vals, unit, ok := strings.Cut(strings.TrimSpace(s), " ")
	f := strings.Split(vals, "/")
	if !ok || len(f) != 4 {
		return errors.New("want min/avg/max/mdev and a unit")
	}
	var d [4]time.Duration
	for i, v := range f {
		var err error
		if d[i], err = parsePingTime(v + " " + unit); err != nil {
			return err
		}
	}
	r.Min, r.Avg, r.Max, r.Mdev = d[0], d[1], d[2], d[3]
	return nil
}
