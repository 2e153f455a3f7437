package nettest

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestParsePing(t *testing.T) {
	file, err := os.ReadFile("testdata/ping.txt")
	if err != nil {
		t.Fatal(err)
	}
	r, err := ParsePing(file)
	if err != nil {
		t.Fatal(err)
	}
	want := []time.Duration{453 * time.Microsecond, 7 * time.Microsecond, 4 * time.Microsecond, 3 * time.Microsecond, 3 * time.Microsecond}
	if r.Transmitted != 5 || r.Received != 5 || len(r.RTTs) != len(want) {
		t.Fatalf("got tx %d rx %d rtts %v, want 5 5 %v", r.Transmitted, r.Received, r.RTTs, want)
	}
	for i := range want {
		if r.RTTs[i] != want[i] {
			t.Errorf("rtt[%d]: got %v, want %v", i, r.RTTs[i], want[i])
		}
	}

	lossy := strings.Join([]string{
		"PING 198.19.2.1 (198.19.2.1) from 198.19.1.1 : 56(84) bytes of data.",
		"64 bytes from 198.19.2.1: icmp_seq=1 ttl=64 time=0.031 ms",
		"64 bytes from 198.19.2.1: icmp_seq=3 ttl=64 time=12.5 ms",
		"64 bytes from 198.19.2.1: icmp_seq=4 ttl=64 time=<0.001 ms",
		"",
		"--- 198.19.2.1 ping statistics ---",
		"4 packets transmitted, 3 received, 25% packet loss, time 3ms",
		"rtt min/avg/max/mdev = 0.000/4.177/12.500/5.886 ms",
	}, "\n")
	r, err = ParsePing([]byte(lossy))
	if err != nil {
		t.Fatal(err)
	}
	if r.Transmitted != 4 || r.Received != 3 || len(r.RTTs) != 3 || r.RTTs[1] != 12500*time.Microsecond || r.RTTs[2] != time.Microsecond {
		t.Errorf("got %+v, want tx 4 rx 3 rtts [31µs 12.5ms 1µs]", r)
	}

	allLost := "PING 198.19.2.1 (198.19.2.1) 56(84) bytes of data.\n\n--- 198.19.2.1 ping statistics ---\n10 packets transmitted, 0 received, 100% packet loss, time 9ms\n"
	r, err = ParsePing([]byte(allLost))
	if err != nil || r.Transmitted != 10 || r.Received != 0 || len(r.RTTs) != 0 {
		t.Errorf("all lost: got %+v, %v; want tx 10 rx 0 no rtts", r, err)
	}

	for _, bad := range []string{
		"",
		"ping: connect: Network is unreachable\n",
		"64 bytes from 198.19.2.1: icmp_seq=1 ttl=64 time=abc ms\n1 packets transmitted, 1 received\n",
		"64 bytes from 198.19.2.1: icmp_seq=1 ttl=64 time=1 parsecs\n1 packets transmitted, 1 received\n",
		"64 bytes from 198.19.2.1: icmp_seq=1 ttl=64 time=-1 ms\n1 packets transmitted, 1 received\n",
	} {
		if _, err := ParsePing([]byte(bad)); err == nil {
			t.Errorf("ParsePing(%q): got nil error, want one", bad)
		}
	}
}

func FuzzParsePing(f *testing.F) {
	b, err := os.ReadFile("testdata/ping.txt")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte("64 bytes from x: time=<0.001 ms\n1 packets transmitted, 1 received\n"))
	f.Add([]byte("2 packets transmitted, 0 received, +2 errors\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParsePing(data)
		if err != nil {
			return
		}
		if r.Transmitted < 0 || r.Received < 0 {
			t.Errorf("negative counts: %+v", r)
		}
		for _, d := range r.RTTs {
			if d < 0 {
				t.Errorf("negative rtt %v", d)
			}
		}
	})
}

func TestParsePingSummary(t *testing.T) {
	const head = "PING 198.19.2.1 (198.19.2.1) from 198.19.1.1 : 56(84) bytes of data.\n\n--- 198.19.2.1 ping statistics ---\n"
	tests := []struct {
		name                string
		in                  string
		tx, rx              int
		min, avg, max, mdev time.Duration
		ok                  bool
	}{
		{"quiet (-q)", head + "3 packets transmitted, 3 received, 0% packet loss, time 2003ms\nrtt min/avg/max/mdev = 0.031/0.045/0.062/0.012 ms\n",
			3, 3, 31 * time.Microsecond, 45 * time.Microsecond, 62 * time.Microsecond, 12 * time.Microsecond, true},
		{"pipe", head + "20 packets transmitted, 20 received, 0% packet loss, time 1003ms\nrtt min/avg/max/mdev = 0.126/10.024/68.275/20.264 ms, pipe 2\n",
			20, 20, 126 * time.Microsecond, 10024 * time.Microsecond, 68275 * time.Microsecond, 20264 * time.Microsecond, true},
		{"seconds", head + "1 packets transmitted, 1 received\nrtt min/avg/max/mdev = 1.5/1.5/1.5/0 s\n",
			1, 1, 1500 * time.Millisecond, 1500 * time.Millisecond, 1500 * time.Millisecond, 0, true},
		{"pipe suffix (-i below the RTT)", head + "2 packets transmitted, 2 received\nrtt min/avg/max/mdev = 0.035/0.235/10.377/0.845 ms, pipe 2\n",
			2, 2, 35 * time.Microsecond, 235 * time.Microsecond, 10377 * time.Microsecond, 845 * time.Microsecond, true},
		{"no summary when all lost", head + "2 packets transmitted, 0 received, 100% packet loss, time 1001ms\n",
			2, 0, 0, 0, 0, 0, true},
		{"three values", head + "1 packets transmitted, 1 received\nrtt min/avg/max/mdev = 1/2/3 ms\n", 0, 0, 0, 0, 0, 0, false},
		{"no unit", head + "1 packets transmitted, 1 received\nrtt min/avg/max/mdev = 1/2/3/4\n", 0, 0, 0, 0, 0, 0, false},
		{"bad number", head + "1 packets transmitted, 1 received\nrtt min/avg/max/mdev = 1/x/3/4 ms\n", 0, 0, 0, 0, 0, 0, false},
	}
	for _, tt := range tests {
		r, err := ParsePing([]byte(tt.in))
		if (err == nil) != tt.ok {
			t.Errorf("%s: got error %v, want ok=%v", tt.name, err, tt.ok)
			continue
		}
		if !tt.ok {
			continue
		}
		if r.Transmitted != tt.tx || r.Received != tt.rx || r.Min != tt.min || r.Avg != tt.avg || r.Max != tt.max || r.Mdev != tt.mdev {
			t.Errorf("%s: got tx %d rx %d rtt %v/%v/%v/%v, want tx %d rx %d rtt %v/%v/%v/%v", tt.name,
				r.Transmitted, r.Received, r.Min, r.Avg, r.Max, r.Mdev, tt.tx, tt.rx, tt.min, tt.avg, tt.max, tt.mdev)
		}
	}
}
