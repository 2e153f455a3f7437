package nettest

import (
	"errors"
	"os"
	"testing"
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
