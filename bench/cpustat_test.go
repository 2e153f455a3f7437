package bench

import "testing"

func TestParseProcStatCPU(t *testing.T) {
	for _, tc := range []struct {
		name     string
		in       string
		want     MachineCPU
		wantFail bool
	}{
		{name: "kernel 6", in: "cpu  100 20 300 4000 50 6 70 800 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\nintr 1\n",
			want: MachineCPU{Busy: 4.96, Idle: 40.5}},
		{name: "old kernel, 7 fields", in: "cpu 1 0 1 0 0 0 0\n", want: MachineCPU{Busy: 0.02}},
		{name: "only per-cpu lines", in: "cpu0 1 2 3 4 5 6 7\n", wantFail: true},
		{name: "short", in: "cpu 1 2 3\n", wantFail: true},
		{name: "not a number", in: "cpu 1 2 x 4 5 6 7\n", wantFail: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseProcStatCPU([]byte(tc.in))
			if (err != nil) != tc.wantFail {
				t.Fatalf("got error %v, want failure %v", err, tc.wantFail)
			}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}
