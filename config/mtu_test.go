package config

import "testing"

func TestTunMTUFor(t *testing.T) {
	tests := []struct {
		wire WireMTU
		b    Backend
		v6   bool
		want TunMTU
	}{
		{1500, BackendVXLAN, false, 1450},
		{1500, BackendVXLAN, true, 1430},
		{1500, BackendUDP, false, 1472},
		{1500, BackendUDP, true, 1452},
		{9000, BackendVXLAN, false, 8950},
		{65535, BackendVXLAN, false, 65485},
		{40, BackendVXLAN, false, 0},
		{1500, BackendHostGW, false, 1500},
		{9000, BackendHostGW, true, 9000},
	}
	for _, tt := range tests {
		got := TunMTUFor(tt.wire, tt.b, tt.v6)
		if got != tt.want {
			t.Errorf("TunMTUFor(%d, %s, ipv6=%t): got %d, want %d", tt.wire, tt.b, tt.v6, got, tt.want)
		}
		if tt.want > 0 {
			if back := WireMTUFor(got, tt.b, tt.v6); back != tt.wire {
				t.Errorf("WireMTUFor(%d, %s, ipv6=%t): got %d, want %d", got, tt.b, tt.v6, back, tt.wire)
			}
		}
	}
}

func TestNetConfTunMTU(t *testing.T) {
	nc := mustNetConf(t, `{"Network": "10.0.0.0/16", "Backend": {"Type": "vxlan"}}`)
	if got := nc.TunMTU(1500, false); got != 1450 {
		t.Errorf("derived: got %d, want 1450", got)
	}
	nc = mustNetConf(t, `{"Network": "10.0.0.0/16", "Backend": {"Type": "vxlan", "MTU": 1400}}`)
	if got := nc.TunMTU(1500, false); got != 1400 {
		t.Errorf("Backend.MTU: got %d, want 1400", got)
	}
}
