package node

import (
	"net/netip"
	"testing"

	"github.com/vxtun/vxtun/config"
)

func TestTunMTUDualUnderlay(t *testing.T) {
	nc := &config.NetConf{Backend: config.BackendConf{Type: config.BackendVXLAN}}
	v4 := config.Underlay{IP: netip.MustParseAddr("198.18.0.1"), MTU: 1500}
	v6 := netip.MustParseAddr("2001:2::1")
	tests := []struct {
		name  string
		u6    netip.Addr
		mtu6  config.WireMTU
		fixed config.TunMTU // Backend.MTU
		want  config.TunMTU
	}{
		{"IPv4 underlay only", netip.Addr{}, 0, 0, 1450},
		{"IPv6 MTU unknown: the IPv4 one less the IPv6 overhead", v6, 0, 0, 1430},
		{"IPv6 interface smaller", v6, 1400, 0, 1330},
		{"IPv6 interface larger", v6, 9000, 0, 1430},
		{"Backend.MTU wins", v6, 1400, 1200, 1200},
	}
	for _, tt := range tests {
		c := *nc
		c.Backend.MTU = tt.fixed
		s := &settings{nc: &c, underlay: v4, underlay6: tt.u6, mtu6: tt.mtu6}
		if got := s.tunMTU(); got != tt.want {
			t.Errorf("%s: got TUN MTU %d, want %d", tt.name, got, tt.want)
		}
	}
}
