package bench

import (
	"strings"
	"testing"
)

// A trace excerpt as tracefs prints it (task names with dashes and
// spaces included): ping (pid 700) wakes node A's thread 693 on its own
// CPU, A wakes node B's 705 on the other CPU, B wakes A back, A wakes ping.
const sampleTrace = `# tracer: nop
#
#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION
#              | |         |   |||||     |         |
            ping-700     [000] d..2.   521.500983: sched_waking: comm=vxtun pid=693 prio=120 target_cpu=000
            ping-700     [000] d..2.   521.500986: sched_switch: prev_comm=ping prev_pid=700 prev_prio=120 prev_state=S ==> next_comm=vxtun next_pid=693 next_prio=120
           vxtun-693     [000] d..2.   521.500997: sched_waking: comm=vxtun pid=705 prio=120 target_cpu=001
 kworker/u8:3-ev-88      [001] d..2.   521.501000: sched_waking: comm=kworker/u8:3 pid=77 prio=120 target_cpu=001
          <idle>-0       [001] d..2.   521.501032: sched_switch: prev_comm=swapper/1 prev_pid=0 prev_prio=120 prev_state=R ==> next_comm=vxtun next_pid=705 next_prio=120
           vxtun-705     [001] d..2.   521.501041: sched_waking: comm=vxtun pid=693 prio=120 target_cpu=000
 my odd-task name-91     [001] d..2.   521.501050: sched_waking: comm=other pid=91 prio=120 target_cpu=000
          <idle>-0       [000] d..2.   521.501093: sched_switch: prev_comm=swapper/0 prev_pid=0 prev_prio=120 prev_state=R ==> next_comm=vxtun next_pid=693 next_prio=120
           vxtun-693     [000] d..2.   521.501102: sched_waking: comm=ping pid=700 prio=120 target_cpu=000
this line is not an event
           vxtun-693     [000] d..2.   521.501103: sched_waking: comm=ping pid=700 prio=120 target_cpu=bad
`

func TestParseWakeTrace(t *testing.T) {
	traced := func(pid int, comm string) bool { return comm == "ping" || pid == 693 || pid == 705 }
	s, err := ParseWakeTrace(strings.NewReader(sampleTrace), traced)
	if err != nil {
		t.Fatal(err)
	}
	if s.Wakeups != 4 || s.Cross != 2 {
		t.Errorf("got %d wake-ups, %d cross-CPU; want 4, 2", s.Wakeups, s.Cross)
	}
	wantCross := []float64{35, 52} // 705 at .501032, 693 at .501093
	if len(s.CrossLatency) != len(wantCross) {
		t.Fatalf("got cross latencies %v, want %v", s.CrossLatency, wantCross)
	}
	for i, w := range wantCross {
		if d := s.CrossLatency[i] - w; d > 0.01 || d < -0.01 {
			t.Errorf("cross latency %d: got %.3f µs, want %.0f", i, s.CrossLatency[i], w)
		}
	}
	// ping's last wake-up has no switch in the excerpt: counted, no latency.
	if len(s.LocalLatency) != 1 || s.LocalLatency[0] < 2.99 || s.LocalLatency[0] > 3.01 {
		t.Errorf("got local latencies %v, want [3]", s.LocalLatency)
	}
}

func TestParseTraceLine(t *testing.T) {
	tests := []struct {
		line    string
		ok      bool
		cpu     int
		name    string
		fieldOK string // a field the fields must hold
	}{
		{"            ping-700     [000] d..2.   521.500983: sched_waking: comm=vxtun pid=693 prio=120 target_cpu=000", true, 0, "sched_waking", "pid=693"},
		{" kworker/u8:3-ev-88      [013] d..2.   1.5: sched_switch: prev_pid=88 ==> next_pid=7", true, 13, "sched_switch", "next_pid=7"},
		{" a [b] c-9 [001] .... 2.0: sched_waking: pid=1 target_cpu=001", true, 1, "sched_waking", "pid=1"},
		{"# comment [000] 1.0: sched_waking: pid=1", false, 0, "", ""},
		{"no cpu here: sched_waking: pid=1", false, 0, "", ""},
		{"x-1 [000] d..2. notatime: sched_waking: pid=1", false, 0, "", ""},
		{"x-1 [000] d..2. 1.0: truncated", false, 0, "", ""},
	}
	for _, tt := range tests {
		ev, ok := parseTraceLine(tt.line)
		if ok != tt.ok {
			t.Errorf("%q: got ok %v, want %v", tt.line, ok, tt.ok)
			continue
		}
		if !ok {
			continue
		}
		if ev.cpu != tt.cpu || ev.name != tt.name || !strings.Contains(ev.fields, tt.fieldOK) {
			t.Errorf("%q: got cpu %d name %q fields %q; want cpu %d name %q with %q", tt.line, ev.cpu, ev.name, ev.fields, tt.cpu, tt.name, tt.fieldOK)
		}
	}
}
