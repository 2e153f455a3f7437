package nettest

import "testing"

func TestParseProcStat(t *testing.T) {
	tests := []struct {
		in   string
		want float64
		ok   bool
	}{
		{"1234 (vxtun) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 9 0 100 0 0", 3.25, true},
		{"1234 (a b) c)) R 1 1 1 0 -1 0 0 0 0 0 7 3 0 0 20 0 1 0 1 0 0", 0.10, true},
		{"1234 (x) S 1 2 3", 0, false},
		{"no paren", 0, false},
		{"1 (x) S 1 1 1 0 -1 0 0 0 0 0 abc 3 0", 0, false},
	}
	for _, tt := range tests {
		got, err := parseProcStat([]byte(tt.in))
		if (err == nil) != tt.ok || (tt.ok && (got < tt.want-1e-9 || got > tt.want+1e-9)) {
			t.Errorf("parseProcStat(%q) = %v, %v; want %v, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestParseVmHWM(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"Name:\tvxtun\nVmPeak:\t  900 kB\nVmHWM:\t   23244 kB\nVmRSS:\t 20000 kB\n", 23244 * 1024, true},
		{"VmHWM:\t1 kB", 1024, true},
		{"Name:\tkthreadd\n", 0, false},
		{"VmHWM:\n", 0, false},
		{"VmHWM:\tlots kB\n", 0, false},
	}
	for _, tt := range tests {
		got, err := parseVmHWM([]byte(tt.in))
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseVmHWM(%q) = %v, %v; want %v, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}
