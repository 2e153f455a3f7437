package main

import (
	"bufio"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/vxtun/vxtun/fastpath"
)

// dropReasons are every drop reason the forwarder counts, so /metrics shows
// zeros too (a counter that appears only once non-zero confuses rate()).
var dropReasons = []string{
	fastpath.DropNoRoute, fastpath.DropTooBig, fastpath.DropBadHeader, fastpath.DropNoIBit,
	fastpath.DropUnknownVNI, fastpath.DropWrongMAC, fastpath.DropUnknownSource, fastpath.DropShort,
	fastpath.DropBadInner, fastpath.DropARP, fastpath.DropSendError,
}

// metricsSnapshot is what /metrics reports.
type metricsSnapshot struct {
	Version string
	Backend string
	Tun     string
	Stats   fastpath.Stats
	Peers   int

	PeerUpdates      uint64 // peer sets applied
	PeerUpdateErrors uint64 // peer sets the forwarder rejected
	TunBadFrames     uint64
	TunWriteErrors   uint64
	Restarts         uint64 // dataplane restarts (etcd lease moved)
}

// writeMetrics writes s in the Prometheus text exposition format (0.0.4).
func writeMetrics(w io.Writer, s metricsSnapshot) error {
	bw := bufio.NewWriter(w)
	metric := func(typ, name, help string, v uint64) {
		fmt.Fprintf(bw, "# HELP %s %s\n# TYPE %s %s\n%s %d\n", name, help, name, typ, name, v)
	}
	counter := func(name, help string, v uint64) { metric("counter", name, help, v) }
	fmt.Fprintf(bw, "# HELP vxtun_info Build and configuration of this daemon.\n# TYPE vxtun_info gauge\n")
	fmt.Fprintf(bw, "vxtun_info{version=%s,backend=%s,tun=%s} 1\n", quote(s.Version), quote(s.Backend), quote(s.Tun))
	counter("vxtun_tx_packets_total", "Packets encapsulated and sent to the underlay.", s.Stats.TxPackets)
	counter("vxtun_tx_bytes_total", "Inner bytes encapsulated and sent to the underlay.", s.Stats.TxBytes)
	counter("vxtun_rx_packets_total", "Packets decapsulated and written to the TUN.", s.Stats.RxPackets)
	counter("vxtun_rx_bytes_total", "Inner bytes decapsulated and written to the TUN.", s.Stats.RxBytes)

	fmt.Fprintf(bw, "# HELP vxtun_drops_total Dropped packets by reason.\n# TYPE vxtun_drops_total counter\n")
	reasons := map[string]uint64{}
	for _, r := range dropReasons {
		reasons[r] = 0
	}
	maps.Copy(reasons, s.Stats.Drops)
	for _, r := range sortedKeys(reasons) {
		fmt.Fprintf(bw, "vxtun_drops_total{reason=%s} %d\n", quote(r), reasons[r])
	}
	fmt.Fprintf(bw, "# HELP vxtun_peer_drops_total Dropped packets by peer and reason.\n# TYPE vxtun_peer_drops_total counter\n")
	for _, p := range sortedKeys(s.Stats.PeerDrops) {
		m := s.Stats.PeerDrops[p]
		for _, r := range sortedKeys(m) {
			fmt.Fprintf(bw, "vxtun_peer_drops_total{peer=%s,reason=%s} %d\n", quote(p), quote(r), m[r])
		}
	}
	metric("gauge", "vxtun_peers", "Peers in the routing table.", uint64(s.Peers))
	counter("vxtun_peer_updates_total", "Peer sets applied to the routing table.", s.PeerUpdates)
	counter("vxtun_peer_update_errors_total", "Peer sets rejected (the previous table stayed).", s.PeerUpdateErrors)
	counter("vxtun_tun_bad_frames_total", "Frames from the TUN that could not be parsed or split.", s.TunBadFrames)
	counter("vxtun_tun_write_errors_total", "Packets the kernel refused on TUN write.", s.TunWriteErrors)
	counter("vxtun_dataplane_restarts_total", "Dataplane restarts (the etcd lease moved to another subnet).", s.Restarts)
	return bw.Flush()
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

// quote quotes a label value (backslash, double quote and newline escaped).
func quote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}

// sample is one line of the text format.
type sample struct {
	Name   string
	Labels map[string]string
	Value  float64
}

// parseMetrics reads the text exposition format (the subset writeMetrics
// writes and Prometheus clients commonly emit: no timestamps needed,
// comments skipped).
func parseMetrics(r io.Reader) ([]sample, error) {
	var out []sample
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || text[0] == '#' {
			continue
		}
		s, err := parseSample(text)
		if err != nil {
			return nil, fmt.Errorf("metrics line %d: %w", line, err)
		}
		out = append(out, s)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read metrics: %w", err)
	}
	return out, nil
}

func parseSample(text string) (sample, error) {
	s := sample{Labels: map[string]string{}}
	i := strings.IndexAny(text, "{ ")
	if i <= 0 {
		return s, fmt.Errorf("no value in %q", text)
	}
	s.Name = text[:i]
	rest := text[i:]
	if rest[0] == '{' {
		rest = rest[1:]
		for {
			rest = strings.TrimLeft(rest, " ,")
			if strings.HasPrefix(rest, "}") {
				rest = rest[1:]
				break
			}
			eq := strings.IndexByte(rest, '=')
			if eq <= 0 || len(rest) < eq+2 || rest[eq+1] != '"' {
				return s, fmt.Errorf("bad label in %q", text)
			}
			key := strings.TrimSpace(rest[:eq])
			rest = rest[eq+2:]
			var val strings.Builder
			closed := false
			for j := 0; j < len(rest); j++ {
				c := rest[j]
				if c == '\\' && j+1 < len(rest) {
					j++
					switch rest[j] {
					case 'n':
						val.WriteByte('\n')
					default:
						val.WriteByte(rest[j])
					}
					continue
				}
				if c == '"' {
					rest = rest[j+1:]
					closed = true
					break
				}
				val.WriteByte(c)
			}
			if !closed {
				return s, fmt.Errorf("unterminated label value in %q", text)
			}
			s.Labels[key] = val.String()
		}
	}
	fields := strings.Fields(rest)
	if len(fields) < 1 || len(fields) > 2 {
		return s, fmt.Errorf("bad value in %q", text)
	}
	v, err := strconv.ParseFloat(fields[0], 64)
	if err != nil {
		return s, fmt.Errorf("bad value %q", fields[0])
	}
	s.Value = v
	return s, nil
}
