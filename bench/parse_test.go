package bench

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseIperf3Files(t *testing.T) {
	tcp, err := os.ReadFile("testdata/iperf3-tcp.json")
	if err != nil {
		t.Fatal(err)
	}
	r, err := ParseIperf3(tcp)
	if err != nil {
		t.Fatalf("tcp: %v", err)
	}
	if r.Protocol != "TCP" || r.RecvBytes != 2069606576 || r.SentBytes != 2070151168 || r.Retransmits != 6179 {
		t.Errorf("tcp: got %+v, want TCP recv 2069606576 sent 2070151168 retrans 6179", r)
	}
	if r.RecvBps < 16.55e9 || r.RecvBps > 16.56e9 {
		t.Errorf("tcp: got %.0f bit/s received, want 16552681332", r.RecvBps)
	}

	udp, err := os.ReadFile("testdata/iperf3-udp.json")
	if err != nil {
		t.Fatal(err)
	}
	u, err := ParseIperf3(udp)
	if err != nil {
		t.Fatalf("udp: %v", err)
	}
	if u.Protocol != "UDP" || u.Packets != 195277 || u.LostPackets != 79 {
		t.Errorf("udp: got %+v, want UDP 195277 packets 79 lost", u)
	}
	if u.LostPercent < 0.0404 || u.LostPercent > 0.0405 {
		t.Errorf("udp: got loss %v %%, want 0.04045", u.LostPercent)
	}
	if pps := u.RecvPPS(); pps < 195100 || pps > 195200 {
		t.Errorf("udp: got %.0f pps, want ≈195168", pps)
	}
}

func TestParseIperf3Errors(t *testing.T) {
	tests := []struct {
		name, in string
		iperf    bool
	}{
		{"iperf error", `{"start":{},"intervals":[],"end":{},"error":"unable to connect to server: Connection refused"}`, true},
		{"not json", `iperf3: error - unable to connect`, false},
		{"no sums", `{"start":{"test_start":{"protocol":"TCP"}},"end":{}}`, false},
		{"sum without bytes", `{"end":{"sum_sent":{"seconds":1},"sum_received":{"seconds":1}}}`, false},
		{"zero seconds", `{"end":{"sum_sent":{"seconds":0,"bytes":1,"bits_per_second":1},"sum_received":{"seconds":0,"bytes":1,"bits_per_second":1}}}`, false},
		{"negative", `{"end":{"sum_sent":{"seconds":1,"bytes":-1,"bits_per_second":1},"sum_received":{"seconds":1,"bytes":1,"bits_per_second":1}}}`, false},
		{"empty", ``, false},
	}
	for _, tt := range tests {
		_, err := ParseIperf3([]byte(tt.in))
		if err == nil {
			t.Errorf("%s: got nil error, want one", tt.name)
			continue
		}
		if got := errors.Is(err, ErrIperf); got != tt.iperf {
			t.Errorf("%s: errors.Is(err, ErrIperf) = %v, want %v (err %v)", tt.name, got, tt.iperf, err)
		}
	}
}

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

func FuzzParseIperf3(f *testing.F) {
	for _, name := range []string{"testdata/iperf3-tcp.json", "testdata/iperf3-udp.json"} {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"error":"x"}`))
	f.Add([]byte(`{"start":{"test_start":{"protocol":"UDP"}},"end":{"sum":{"packets":5,"lost_packets":1,"lost_percent":20},"sum_sent":{"seconds":1,"bytes":1,"bits_per_second":1},"sum_received":{"seconds":1,"bytes":1,"bits_per_second":1}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseIperf3(data)
		if err != nil {
			return
		}
		if r.Seconds <= 0 || r.RecvBps < 0 || r.SentBps < 0 || r.LostPercent < 0 {
			t.Errorf("accepted result with bad values: %+v", r)
		}
		_ = r.RecvPPS()
	})
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
