package main

import (
	"errors"
	"io"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// fakeIfaces is an ifaceSystem from a fixed table.
type fakeIfaces struct {
	ifs   []netIface
	route map[netip.Addr][2]string // dst → iface, src
	dflt  string
}

func (f fakeIfaces) Interfaces() ([]netIface, error) { return f.ifs, nil }
func (f fakeIfaces) RouteTo(dst netip.Addr) (string, netip.Addr, error) {
	r, ok := f.route[dst]
	if !ok {
		return "", netip.Addr{}, errors.New("network is unreachable")
	}
	return r[0], netip.MustParseAddr(r[1]), nil
}
func (f fakeIfaces) DefaultRoute() (string, error) {
	if f.dflt == "" {
		return "", errors.New("none in the main table")
	}
	return f.dflt, nil
}

func addrs(s ...string) []netip.Addr {
	var out []netip.Addr
	for _, a := range s {
		out = append(out, netip.MustParseAddr(a))
	}
	return out
}

func TestPickUnderlay(t *testing.T) {
	sys := fakeIfaces{
		ifs: []netIface{
			{Name: "lo", Addrs: addrs("127.0.0.1", "::1")},
			{Name: "eth0", Addrs: addrs("198.18.0.1", "2001:2::1")},
			{Name: "ens10", Addrs: addrs("198.18.0.130")},
			{Name: "team2", Addrs: addrs("2001:2::2")},
		},
		route: map[netip.Addr][2]string{netip.MustParseAddr("198.18.0.200"): {"ens10", "198.18.0.130"}},
		dflt:  "eth0",
	}
	etcd := []string{"--etcd-endpoints", "http://x:2379"}
	tests := []struct {
		name      string
		args      []string
		noDefault bool   // the fake has no default route
		iface, ip string // want o.Iface, o.PublicIP
		wantErr   string
	}{
		{name: "no interface flags: the default route's", args: etcd, iface: "eth0"},
		{name: "no default route", args: etcd, noDefault: true, wantErr: "no default route"},
		{name: "a name stays for the node", args: append(etcd, "--iface", "ens10"), iface: "ens10"},
		{name: "an IP names its interface and is the public IP", args: append(etcd, "--iface", "198.18.0.130"), iface: "ens10", ip: "198.18.0.130"},
		{name: "an IPv6 names its interface only", args: append(etcd, "--iface", "2001:2::2"), iface: "team2"},
		{name: "several: the first that exists", args: append(etcd, "--iface", "wlan0", "--iface", "198.18.0.99", "--iface", "198.18.0.130", "--iface", "eth0"), iface: "ens10", ip: "198.18.0.130"},
		{name: "several, none exists", args: append(etcd, "--iface", "wlan0", "--iface", "198.18.0.99"), wantErr: "none of wlan0, 198.18.0.99"},
		{name: "several beat --iface-regex", args: append(etcd, "--iface", "wlan0", "--iface", "eth0", "--iface-regex", "^ens"), iface: "eth0"},
		{name: "an IP nobody has", args: append(etcd, "--iface", "198.18.0.99"), wantErr: "none of 198.18.0.99 is an interface or an interface's address here"},
		{name: "--public-ip wins over the interface's", args: append(etcd, "--iface", "198.18.0.130", "--public-ip", "198.18.0.7"), iface: "ens10", ip: "198.18.0.7"},
		{name: "--public-ip alone: the node finds the interface", args: append(etcd, "--public-ip", "198.18.0.1"), ip: "198.18.0.1"},
		{name: "regex on an address", args: append(etcd, "--iface-regex", `198\.18\.0\.13.`), iface: "ens10", ip: "198.18.0.130"},
		{name: "regex on a name", args: append(etcd, "--iface-regex", "^team"), iface: "team2"},
		{name: "addresses before names", args: append(etcd, "--iface-regex", "1"), iface: "lo", ip: "127.0.0.1"},
		{name: "regexes in order", args: append(etcd, "--iface-regex", "^wlan", "--iface-regex", "^ens"), iface: "ens10"},
		{name: "IPv6 addresses are not matched", args: append(etcd, "--iface-regex", "^2001:"), wantErr: "no interface name or IPv4 address matches ^2001:"},
		{name: "--iface beats --iface-regex", args: append(etcd, "--iface", "eth0", "--iface-regex", "^ens"), iface: "eth0"},
		{name: "can-reach", args: append(etcd, "--iface-can-reach", "198.18.0.200"), iface: "ens10", ip: "198.18.0.130"},
		{name: "can-reach unreachable", args: append(etcd, "--iface-can-reach", "198.18.0.250"), wantErr: "--iface-can-reach 198.18.0.250: network is unreachable"},
		{name: "regex beats can-reach", args: append(etcd, "--iface-regex", "^eth", "--iface-can-reach", "198.18.0.200"), iface: "eth0"},
		{name: "a node file: left to it", args: []string{"--node", "n.json", "--peers", "p.json"}},
		{name: "from flanneld's environment", args: etcd, iface: "ens10"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := envMap()
			if strings.HasPrefix(tt.name, "from flanneld's") {
				env = envMap("FLANNELD_IFACE_CAN_REACH", "198.18.0.200", "FLANNELD_IFACE_REGEX", "^ens")
			}
			o, err := parseRunFlags(tt.args, env, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			s := sys
			if tt.noDefault {
				s.dflt = ""
			}
			err = o.pickUnderlay(s)
			switch {
			case tt.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got error %v, want one containing %q", err, tt.wantErr)
				}
				return
			case err != nil:
				t.Fatal(err)
			}
			if o.Iface != tt.iface || o.PublicIP != tt.ip {
				t.Errorf("got --iface %q --public-ip %q, want %q %q", o.Iface, o.PublicIP, tt.iface, tt.ip)
			}
		})
	}
}

// TestIfaceRegexFlag: --iface-regex repeats; the environment gives one.
func TestIfaceRegexFlag(t *testing.T) {
	o, err := parseRunFlags([]string{"--etcd-endpoints", "http://x:2379", "--iface-regex", "a", "--iface-regex", "b"},
		envMap("VXTUN_IFACE_REGEX", "c"), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a", "b"}; !slices.Equal(o.IfaceRegex, want) {
		t.Errorf("command line: got %q, want %q (the command line wins)", o.IfaceRegex, want)
	}
	o, err = parseRunFlags([]string{"--etcd-endpoints", "http://x:2379"}, envMap("FLANNELD_IFACE_REGEX", "c"), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"c"}; !slices.Equal(o.IfaceRegex, want) {
		t.Errorf("environment: got %q, want %q", o.IfaceRegex, want)
	}
}
