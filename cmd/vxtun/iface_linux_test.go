package main

import (
	"fmt"
	"io"
	"net/netip"
	"slices"
	"testing"

	"github.com/vxtun/vxtun/internal/nettest"
)

// TestHostIfaces reads a namespace with two links: ul0 (198.18.0.1/25,
// the default route's) and ul1 (198.18.0.129/25).
func TestHostIfaces(t *testing.T) {
	ns := nettest.NewNS(t, "ifc")
	nettest.Veth(t, ns, "ul0", "198.18.0.1/25", ns, "ul1", "198.18.0.129/25")
	if err := ns.Do(func() error {
		var sys hostIfaces
		if _, err := sys.DefaultRoute(); err == nil {
			return fmt.Errorf("DefaultRoute without one: got no error")
		}
		ns.Run("ip", "route", "add", "default", "via", "198.18.0.126", "dev", "ul0")
		if got, err := sys.DefaultRoute(); err != nil || got != "ul0" {
			return fmt.Errorf("DefaultRoute: got %q %v, want ul0", got, err)
		}
		if name, src, err := sys.RouteTo(netip.MustParseAddr("198.18.0.200")); err != nil || name != "ul1" || src != netip.MustParseAddr("198.18.0.129") {
			return fmt.Errorf("RouteTo 198.18.0.200: got %q %v %v, want ul1 198.18.0.129", name, src, err)
		}
		ifs, err := sys.Interfaces()
		if err != nil {
			return err
		}
		i := slices.IndexFunc(ifs, func(n netIface) bool { return n.Name == "ul1" })
		if i < 0 || !slices.Contains(ifs[i].Addrs, netip.MustParseAddr("198.18.0.129")) {
			return fmt.Errorf("Interfaces: got %+v, want ul1 with 198.18.0.129", ifs)
		}
		for _, c := range []struct {
			args      []string
			iface, ip string
		}{
			{nil, "ul0", ""},
			{[]string{"--iface-regex", `\.129$`}, "ul1", "198.18.0.129"},
			{[]string{"--iface-can-reach", "198.18.0.200"}, "ul1", "198.18.0.129"},
			{[]string{"--iface", "198.18.0.1"}, "ul0", "198.18.0.1"},
		} {
			o, err := parseRunFlags(append([]string{"--etcd-endpoints", "http://198.18.0.1:2379"}, c.args...), envMap(), io.Discard)
			if err != nil {
				return err
			}
			if err := o.pickUnderlay(sys); err != nil {
				return fmt.Errorf("%q: %w", c.args, err)
			}
			if o.Iface != c.iface || o.PublicIP != c.ip {
				return fmt.Errorf("%q: got --iface %q --public-ip %q, want %q %q", c.args, o.Iface, o.PublicIP, c.iface, c.ip)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestEtcdFlanneldFlags: two etcd-mode daemons started as flanneld would
// be: node A with no interface flag (its namespace's default route names
// ul0), node B with --iface-regex matching its underlay address and a
// liveness endpoint (--healthz-ip, --healthz-port). Each publishes the
// right PublicIP, traffic crosses, and B's /healthz answers node A (and
// serves nothing else).
func TestEtcdFlanneldFlags(t *testing.T) {
	e := newE2EEtcd(t, `{"Network":"198.19.0.0/16","SubnetMin":"198.19.1.0","SubnetMax":"198.19.2.0","Backend":{"Type":"vxlan"}}`)
	e.h.A.Run("ip", "route", "add", "default", "via", "198.18.0.254", "dev", "ul0")
	na, nb := e.newNode(t, e.h.A), e.newNode(t, e.h.B)
	for _, n := range []*e2eEtcdNode{na, nb} {
		i := slices.Index(n.args, "--iface")
		n.args = slices.Delete(n.args, i, i+2)
	}
	nb.args = append(nb.args, "--iface-regex", `^198\.18\.0\.2$`, "--healthz-ip", "198.18.0.2", "--healthz-port", "10299")
	sa, sb := e.startPair(t, na, nb)
	for _, c := range []struct {
		path string
		code int
	}{{"/healthz", 200}, {"/metrics", 404}} {
		if code, body := httpGet(t, e.h.A, "198.18.0.2:10299", c.path); code != c.code {
			t.Errorf("B's healthz endpoint from A, %s: got %d %q, want %d", c.path, code, body, c.code)
		}
	}
	for _, c := range []struct {
		sub  int
		want string
	}{{sa, "198.18.0.1"}, {sb, "198.18.0.2"}} {
		if v, raw := e.leaseOf(t, c.sub); v["PublicIP"] != c.want {
			t.Errorf("lease of 198.19.%d.0/24: got %s, want PublicIP %s", c.sub, raw, c.want)
		}
	}
	ip := func(i int) string { return fmt.Sprintf("198.19.%d.1", i) }
	waitPing(t, e.h.A, ip(sa), ip(sb), na.p, nb.p)
	waitPing(t, e.h.B, ip(sb), ip(sa), na.p, nb.p)
}
