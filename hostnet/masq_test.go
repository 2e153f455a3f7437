package hostnet

import (
	"net/netip"
	"strings"
	"testing"
)

func TestCheckMasqNets(t *testing.T) {
	p := netip.MustParsePrefix
	tests := []struct {
		name string
		nets []MasqNet
		want string // error substring; "" for success
	}{
		{"dual stack", []MasqNet{{p("198.19.0.0/16"), p("198.19.1.0/24")}, {p("2001:2:0:1000::/52"), p("2001:2:0:1001::/64")}}, ""},
		{"none", nil, ""},
		{"subnet outside", []MasqNet{{p("198.19.0.0/16"), p("198.20.1.0/24")}}, "outside"},
		{"subnet larger", []MasqNet{{p("198.19.0.0/16"), p("198.0.0.0/8")}}, "outside"},
		{"families differ", []MasqNet{{p("198.19.0.0/16"), p("2001:2:0:1001::/64")}}, "different families"},
		{"two IPv4", []MasqNet{{p("198.19.0.0/16"), p("198.19.1.0/24")}, {p("198.19.0.0/16"), p("198.19.2.0/24")}}, "more than one IPv4"},
		{"invalid", []MasqNet{{Network: p("198.19.0.0/16")}}, "must both be valid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := CheckMasqNets(tt.nets)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("got %v, want no error", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("got %v, want an error with %q", err, tt.want)
			}
		})
	}
}
