package config_test

import (
	"net/netip"
	"testing"

	"github.com/vxtun/vxtun/config"
	"github.com/vxtun/vxtun/internal/nettest"
)

// TestResolveUnderlay6MTU: the IPv6 underlay's MTU is its own interface's,
// which need not be the IPv4 one's.
func TestResolveUnderlay6MTU(t *testing.T) {
	nettest.RequirePrivileged(t)
	ns := nettest.NewNS(t, "vxu6")
	for _, c := range [][]string{
		{"ip", "link", "add", "ul4", "mtu", "1500", "type", "veth", "peer", "name", "ul4p"},
		{"ip", "link", "add", "ul6", "mtu", "1400", "type", "veth", "peer", "name", "ul6p"},
		{"ip", "addr", "add", "198.18.0.1/24", "dev", "ul4"},
		{"ip", "-6", "addr", "add", "2001:2::1/64", "dev", "ul6", "nodad"},
		{"ip", "-6", "addr", "add", "2001:2:0:1::1/64", "dev", "ul4", "nodad"},
		{"ip", "link", "set", "ul4", "up"},
		{"ip", "link", "set", "ul6", "up"},
	} {
		ns.Run(c...)
	}
	tests := []struct {
		name, node string
		want       config.Underlay
	}{
		{"PublicIPv6 on its own interface", `{"PublicIP": "198.18.0.1", "PublicIPv6": "2001:2::1"}`,
			config.Underlay{IP: netip.MustParseAddr("2001:2::1"), Iface: "ul6", MTU: 1400, Local: true}},
		{"Iface: its first global IPv6", `{"Iface": "ul4"}`,
			config.Underlay{IP: netip.MustParseAddr("2001:2:0:1::1"), Iface: "ul4", MTU: 1500, Local: true}},
		{"UnderlayMTU overrides", `{"PublicIP": "198.18.0.1", "PublicIPv6": "2001:2::1", "UnderlayMTU": 1300}`,
			config.Underlay{IP: netip.MustParseAddr("2001:2::1"), Iface: "ul6", MTU: 1300, Local: true}},
		{"PublicIPv6 not here (NAT): MTU unknown", `{"PublicIP": "198.18.0.1", "PublicIPv6": "2001:2:ff::1"}`,
			config.Underlay{IP: netip.MustParseAddr("2001:2:ff::1")}},
		{"none", `{"PublicIP": "198.18.0.1"}`, config.Underlay{}},
	}
	for _, tt := range tests {
		n, err := config.ParseNode("node.json", []byte(tt.node))
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		var got config.Underlay
		if err := ns.Do(func() (err error) { got, err = n.ResolveUnderlay6(); return err }); err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if got != tt.want {
			t.Errorf("%s: got %+v, want %+v", tt.name, got, tt.want)
		}
	}
}
