package bench

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Wake-up accounting for the ping rows (waketrace_linux.go records it).
// A round trip through a userspace overlay wakes tasks: ping's send wakes
// node A's reader, A's datagram wakes node B's, B's reply wakes A's, A's
// write wakes ping. Kernel vxlan runs the whole round trip inside ping's
// own sendto. A wake-up whose target CPU is not the waker's needs an
// inter-processor interrupt, and on a VM whose idle vCPUs halt, that is a
// VM exit and entry: tens of µs. These figures say how much of a mode's
// ping time is that, not code.

// WakeStats counts the wake-ups of the tasks on the ping path (ping and the
// overlay daemons' threads) in a scheduler trace.
type WakeStats struct {
	Wakeups int // sched_waking of a traced task
	Cross   int // … whose target CPU was not the waker's
	// CrossLatency and LocalLatency are, per wake-up followed by the
	// task's sched_switch in, the time from sched_waking to running, in µs.
	CrossLatency []float64
	LocalLatency []float64
	Lines        int // trace lines read (events and others)
}

// traceEvent is one parsed line of a tracefs "trace" file.
type traceEvent struct {
	cpu    int
	t      float64 // seconds
	name   string  // sched_waking, sched_switch, …
	fields string  // after "name: "
}

// parseTraceLine parses "<task>-<pid> [<cpu>] <flags> <ts>: <event>: <fields>";
// task names may hold spaces and dashes, so it anchors on " [cpu] ". ok is
// false for comment lines and anything else.
func parseTraceLine(l string) (ev traceEvent, ok bool) {
	if strings.HasPrefix(strings.TrimSpace(l), "#") {
		return ev, false
	}
	open := strings.Index(l, " [")
	for open >= 0 {
		rest := l[open+2:]
		end := strings.IndexByte(rest, ']')
		if end > 0 {
			if cpu, err := strconv.Atoi(rest[:end]); err == nil {
				ev.cpu = cpu
				l = rest[end+1:]
				break
			}
		}
		next := strings.Index(rest, " [")
		if next < 0 {
			return ev, false
		}
		open += 2 + next
	}
	if open < 0 {
		return ev, false
	}
	// " <flags> <ts>: <event>: <fields>"
	colon := strings.Index(l, ": ")
	if colon < 0 {
		return ev, false
	}
	head := strings.Fields(l[:colon])
	if len(head) == 0 {
		return ev, false
	}
	t, err := strconv.ParseFloat(head[len(head)-1], 64)
	if err != nil {
		return ev, false
	}
	ev.t = t
	l = l[colon+2:]
	colon = strings.Index(l, ": ")
	if colon < 0 {
		return ev, false
	}
	ev.name, ev.fields = l[:colon], l[colon+2:]
	return ev, true
}

// traceField returns the value of key= in an event's fields ("" if absent).
func traceField(fields, key string) string {
	for _, f := range strings.Fields(fields) {
		if v, ok := strings.CutPrefix(f, key+"="); ok {
			return v
		}
	}
	return ""
}

// ParseWakeTrace reads a tracefs "trace" file with sched_waking and
// sched_switch events and counts the wake-ups of the tasks traced(pid,
// comm) selects.
func ParseWakeTrace(r io.Reader, traced func(pid int, comm string) bool) (WakeStats, error) {
	var s WakeStats
	type pending struct {
		t     float64
		cross bool
	}
	woken := map[int]pending{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		s.Lines++
		ev, ok := parseTraceLine(sc.Text())
		if !ok {
			continue
		}
		switch ev.name {
		case "sched_waking":
			pid, err := strconv.Atoi(traceField(ev.fields, "pid"))
			if err != nil || !traced(pid, traceField(ev.fields, "comm")) {
				continue
			}
			target, err := strconv.Atoi(traceField(ev.fields, "target_cpu"))
			if err != nil {
				continue
			}
			s.Wakeups++
			cross := target != ev.cpu
			if cross {
				s.Cross++
			}
			woken[pid] = pending{t: ev.t, cross: cross}
		case "sched_switch":
			pid, err := strconv.Atoi(traceField(ev.fields, "next_pid"))
			if err != nil {
				continue
			}
			w, ok := woken[pid]
			if !ok {
				continue
			}
			delete(woken, pid)
			us := (ev.t - w.t) * 1e6
			if us < 0 {
				continue
			}
			if w.cross {
				s.CrossLatency = append(s.CrossLatency, us)
			} else {
				s.LocalLatency = append(s.LocalLatency, us)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return s, fmt.Errorf("read trace: %w", err)
	}
	return s, nil
}
