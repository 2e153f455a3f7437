package nettest

import (
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/vxtun/vxtun/config"
)

func TestFlannelDelegate(t *testing.T) {
	v4 := config.SubnetEnv{
		Network: netip.MustParsePrefix("198.19.0.0/16"), Subnet: netip.MustParsePrefix("198.19.1.0/24"),
		MTU: 1450, IPMasq: true,
	}
	dual := v4
	dual.IPv6Network = netip.MustParsePrefix("2001:2:0:1000::/52")
	dual.IPv6Subnet = netip.MustParsePrefix("2001:2:0:1001::/64")
	noMasq := v4
	noMasq.IPMasq = false
	tests := []struct {
		name    string
		env     config.SubnetEnv
		dataDir string
		want    string
	}{
		{"ipv4, flanneld masquerades", v4, "",
			`{"cniVersion":"0.3.1","name":"cbr0","type":"bridge","hairpinMode":true,"isDefaultGateway":true,"isGateway":true,"ipMasq":false,"mtu":1450,` +
				`"ipam":{"type":"host-local","ranges":[[{"subnet":"198.19.1.0/24"}]],"routes":[{"dst":"198.19.0.0/16"}]}}`},
		{"flanneld does not masquerade: the bridge does", noMasq, "/tmp/x",
			`{"cniVersion":"0.3.1","name":"cbr0","type":"bridge","hairpinMode":true,"isDefaultGateway":true,"isGateway":true,"ipMasq":true,"mtu":1450,` +
				`"ipam":{"type":"host-local","ranges":[[{"subnet":"198.19.1.0/24"}]],"routes":[{"dst":"198.19.0.0/16"}],"dataDir":"/tmp/x"}}`},
		{"dual stack", dual, "",
			`{"cniVersion":"0.3.1","name":"cbr0","type":"bridge","hairpinMode":true,"isDefaultGateway":true,"isGateway":true,"ipMasq":false,"mtu":1450,` +
				`"ipam":{"type":"host-local","ranges":[[{"subnet":"198.19.1.0/24"}],[{"subnet":"2001:2:0:1001::/64"}]],` +
				`"routes":[{"dst":"198.19.0.0/16"},{"dst":"2001:2:0:1000::/52"}]}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := FlannelDelegate(tt.env, tt.dataDir)
			if err != nil {
				t.Fatal(err)
			}
			var g, w any
			if err := json.Unmarshal(got, &g); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal([]byte(tt.want), &w); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(g, w) {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestFlannelDelegateErrors(t *testing.T) {
	tests := []struct {
		name string
		env  config.SubnetEnv
		want string
	}{
		{"no subnet", config.SubnetEnv{MTU: 1450}, "neither FLANNEL_SUBNET"},
		{"no mtu", config.SubnetEnv{Network: netip.MustParsePrefix("198.19.0.0/16"), Subnet: netip.MustParsePrefix("198.19.1.0/24")}, "FLANNEL_MTU"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := FlannelDelegate(tt.env, "")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got error %v, want one mentioning %q", err, tt.want)
			}
		})
	}
}

// TestPodsBehindCNI0: two pods on one node through the real plugins get
// addresses of the node's subnet behind cni0 (its gateway), the MTU of
// subnet.env, reach each other, and give their addresses back on DEL.
func TestPodsBehindCNI0(t *testing.T) {
	RequirePrivileged(t)
	RequireCommand(t, "ping")
	RequireCNI(t)
	node := NewNS(t, "node")
	envFile := filepath.Join(t.TempDir(), "subnet.env")
	if err := config.WriteSubnetEnv(envFile, config.SubnetEnv{
		Network: netip.MustParsePrefix("198.19.0.0/16"), Subnet: netip.MustParsePrefix("198.19.1.0/24"),
		MTU: 1400, IPMasq: true,
	}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	pn, err := NewPodNetwork(node.Name, envFile, dir)
	if err != nil {
		t.Fatal(err)
	}
	a, b := pn.NewPod(t, "poda"), pn.NewPod(t, "podb")

	subnet := netip.MustParsePrefix("198.19.1.0/24")
	for _, p := range []*Pod{a, b} {
		if !subnet.Contains(p.Addr.Addr()) || p.Addr.Bits() != 24 {
			t.Errorf("pod %s: got address %v, want one in %v with /24", p.Name, p.Addr, subnet)
		}
		if want := netip.MustParseAddr("198.19.1.1"); p.Gateway != want {
			t.Errorf("pod %s: got gateway %v, want %v", p.Name, p.Gateway, want)
		}
		l, err := p.Handle().LinkByName(PodIfName)
		if err != nil {
			t.Fatalf("pod %s: %v", p.Name, err)
		}
		if got := l.Attrs().MTU; got != 1400 {
			t.Errorf("pod %s: eth0 MTU: got %d, want 1400 (FLANNEL_MTU)", p.Name, got)
		}
		routes, err := p.Handle().RouteList(l, netlink.FAMILY_V4)
		if err != nil {
			t.Fatal(err)
		}
		var dsts []string
		for _, r := range routes {
			if r.Dst != nil && r.Gw != nil {
				dsts = append(dsts, r.Dst.String()+" via "+r.Gw.String())
			}
		}
		if !strings.Contains(strings.Join(dsts, ","), "198.19.0.0/16 via 198.19.1.1") {
			t.Errorf("pod %s: got routes %v, want 198.19.0.0/16 via 198.19.1.1 (FLANNEL_NETWORK)", p.Name, dsts)
		}
	}
	if a.Addr == b.Addr {
		t.Errorf("both pods got %v", a.Addr)
	}
	br, err := node.Handle().LinkByName("cni0")
	if err != nil {
		t.Fatalf("no cni0 in the node namespace: %v", err)
	}
	if _, ok := br.(*netlink.Bridge); !ok {
		t.Errorf("cni0 is a %s, want a bridge", br.Type())
	}
	if got := node.Run("cat", "/proc/sys/net/ipv4/ip_forward"); strings.TrimSpace(got) != "1" {
		t.Errorf("ip_forward in the node: got %q, want 1", got)
	}
	a.Run("ping", "-n", "-c", "1", "-W", "2", b.IP())
	b.Run("ping", "-n", "-c", "1", "-W", "2", a.IP())

	// DEL releases the address in host-local's state directory.
	lease := filepath.Join(dir, "host-local", CNIName, a.IP())
	if _, err := os.Stat(lease); err != nil {
		t.Fatalf("host-local lease of pod a: %v", err)
	}
	if err := pn.Del(t.Context(), a.Name, a.ContainerID); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(lease); !os.IsNotExist(err) {
		t.Errorf("after DEL: host-local lease %s: got %v, want it gone", lease, err)
	}
	// A second DEL (the cleanup's) must succeed too, as the spec wants.
}
