package flannelvxlan

import (
	"net"
	"net/netip"
	"strings"
	"testing"
)

func TestCommands(t *testing.T) {
	mac, _ := net.ParseMAC("0e:00:00:00:00:01")
	rmac, _ := net.ParseMAC("0e:00:00:00:00:02")
	d := Device{Local: netip.MustParseAddr("198.18.0.1"), MAC: mac, Subnet: netip.MustParsePrefix("198.19.1.0/24"), Extra: []string{"gbp"}}
	got := d.Commands(Remote{Subnet: netip.MustParsePrefix("198.19.2.0/24"), PublicIP: netip.MustParseAddr("198.18.0.2"), VtepMAC: rmac})
	want := []string{
		"ip link add flannel.1 address 0e:00:00:00:00:01 type vxlan id 1 local 198.18.0.1 dev ul0 dstport 8472 nolearning gbp",
		"ip link set flannel.1 mtu 1450",
		"ip addr add 198.19.1.0/32 dev flannel.1",
		"ip link set flannel.1 up",
		"ip neigh replace 198.19.2.0 lladdr 0e:00:00:00:00:02 dev flannel.1 nud permanent",
		"bridge fdb replace 0e:00:00:00:00:02 dev flannel.1 dst 198.18.0.2 self permanent",
		"ip route replace 198.19.2.0/24 via 198.19.2.0 dev flannel.1 onlink",
	}
	if len(got) != len(want) {
		t.Fatalf("got %d commands, want %d", len(got), len(want))
	}
	for i := range want {
		if g := strings.Join(got[i], " "); g != want[i] {
			t.Errorf("command %d: got %q, want %q", i, g, want[i])
		}
	}
	d2 := Device{Name: "vx4789", Port: 4789, VNI: 7, MTU: 1400, Dev: "eth0", Local: netip.MustParseAddr("198.18.0.3"), Subnet: netip.MustParsePrefix("198.19.3.0/24")}
	if g := strings.Join(d2.Commands()[0], " "); g != "ip link add vx4789 type vxlan id 7 local 198.18.0.3 dev eth0 dstport 4789 nolearning" {
		t.Errorf("got %q", g)
	}
}

func TestCommandsIPv6(t *testing.T) {
	mac, _ := net.ParseMAC("0e:00:00:00:00:01")
	rmac, _ := net.ParseMAC("0e:00:00:00:00:02")
	d := Device{Local: netip.MustParseAddr("2001:2::1"), MAC: mac, Subnet: netip.MustParsePrefix("198.19.1.0/24"),
		Subnet6: netip.MustParsePrefix("2001:2:0:1001::/64")}
	got := d.Commands(Remote{Subnet: netip.MustParsePrefix("198.19.2.0/24"), Subnet6: netip.MustParsePrefix("2001:2:0:1002::/64"),
		PublicIP: netip.MustParseAddr("2001:2::2"), VtepMAC: rmac})
	want := []string{
		"ip link add flannel.1 address 0e:00:00:00:00:01 type vxlan id 1 local 2001:2::1 dev ul0 dstport 8472 nolearning",
		"ip link set flannel.1 mtu 1450",
		"ip addr add 198.19.1.0/32 dev flannel.1",
		"ip -6 addr add 2001:2:0:1001::/128 dev flannel.1 nodad",
		"ip link set flannel.1 up",
		"ip neigh replace 198.19.2.0 lladdr 0e:00:00:00:00:02 dev flannel.1 nud permanent",
		"bridge fdb replace 0e:00:00:00:00:02 dev flannel.1 dst 2001:2::2 self permanent",
		"ip route replace 198.19.2.0/24 via 198.19.2.0 dev flannel.1 onlink",
		"ip neigh replace 2001:2:0:1002:: lladdr 0e:00:00:00:00:02 dev flannel.1 nud permanent",
		"ip route replace 2001:2:0:1002::/64 via 2001:2:0:1002:: dev flannel.1 onlink",
	}
	if len(got) != len(want) {
		t.Fatalf("got %d commands %q, want %d", len(got), got, len(want))
	}
	for i := range want {
		if g := strings.Join(got[i], " "); g != want[i] {
			t.Errorf("command %d: got %q, want %q", i, g, want[i])
		}
	}
}

func TestDualStackCommands(t *testing.T) {
	mac4, _ := net.ParseMAC("0e:00:00:00:00:02")
	mac6, _ := net.ParseMAC("0e:00:00:00:06:02")
	rmac4, _ := net.ParseMAC("0e:00:00:00:00:01")
	rmac6, _ := net.ParseMAC("0e:00:00:00:06:01")
	d := DualStack{
		V4: Device{Local: netip.MustParseAddr("198.18.0.2"), MAC: mac4, Subnet: netip.MustParsePrefix("198.19.2.0/24")},
		V6: Device{Local: netip.MustParseAddr("2001:2::2"), MAC: mac6, Subnet6: netip.MustParsePrefix("2001:2:0:1002::/64")},
	}
	got := d.Commands(
		DualRemote{
			V4: Remote{Subnet: netip.MustParsePrefix("198.19.1.0/24"), PublicIP: netip.MustParseAddr("198.18.0.1"), VtepMAC: rmac4},
			V6: Remote{Subnet6: netip.MustParsePrefix("2001:2:0:1001::/64"), PublicIP: netip.MustParseAddr("2001:2::1"), VtepMAC: rmac6},
		},
		// PublicIPv6 null: IPv4 side only.
		DualRemote{V4: Remote{Subnet: netip.MustParsePrefix("198.19.3.0/24"), PublicIP: netip.MustParseAddr("198.18.0.3"), VtepMAC: rmac6},
			V6: Remote{Subnet6: netip.MustParsePrefix("2001:2:0:1003::/64")}},
	)
	want := []string{
		"ip link add flannel.1 address 0e:00:00:00:00:02 type vxlan id 1 local 198.18.0.2 dev ul0 dstport 8472 nolearning",
		"ip link set flannel.1 mtu 1450",
		"ip addr add 198.19.2.0/32 dev flannel.1",
		"ip link set flannel.1 up",
		"ip neigh replace 198.19.1.0 lladdr 0e:00:00:00:00:01 dev flannel.1 nud permanent",
		"bridge fdb replace 0e:00:00:00:00:01 dev flannel.1 dst 198.18.0.1 self permanent",
		"ip route replace 198.19.1.0/24 via 198.19.1.0 dev flannel.1 onlink",
		"ip neigh replace 198.19.3.0 lladdr 0e:00:00:00:06:01 dev flannel.1 nud permanent",
		"bridge fdb replace 0e:00:00:00:06:01 dev flannel.1 dst 198.18.0.3 self permanent",
		"ip route replace 198.19.3.0/24 via 198.19.3.0 dev flannel.1 onlink",
		"ip link add flannel-v6.1 address 0e:00:00:00:06:02 type vxlan id 1 local 2001:2::2 dev ul0 dstport 8472 nolearning",
		"ip link set flannel-v6.1 mtu 1430",
		"ip -6 addr add 2001:2:0:1002::/128 dev flannel-v6.1 nodad",
		"ip link set flannel-v6.1 up",
		"ip neigh replace 2001:2:0:1001:: lladdr 0e:00:00:00:06:01 dev flannel-v6.1 nud permanent",
		"bridge fdb replace 0e:00:00:00:06:01 dev flannel-v6.1 dst 2001:2::1 self permanent",
		"ip route replace 2001:2:0:1001::/64 via 2001:2:0:1001:: dev flannel-v6.1 onlink",
	}
	if len(got) != len(want) {
		t.Fatalf("got %d commands %q, want %d", len(got), got, len(want))
	}
	for i := range want {
		if g := strings.Join(got[i], " "); g != want[i] {
			t.Errorf("command %d: got %q, want %q", i, g, want[i])
		}
	}
}
