package registry

import (
	"errors"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vxtun/vxtun/config"
)

func TestSettingsTraits(t *testing.T) {
	tests := []struct {
		name    string
		s       Settings
		want    Traits
		wantErr error
	}{
		{"static", Settings{PeersFile: "p.json"}, Traits{Kind: "static"}, nil},
		{"etcd", Settings{Etcd: &EtcdOptions{}}, Traits{Kind: "etcd", LeasesSubnets: true, KeepsNetConf: true, IPv4Only: true}, nil},
		{"none", Settings{}, Traits{}, ErrNoSource},
		{"both", Settings{PeersFile: "p.json", Etcd: &EtcdOptions{}}, Traits{}, ErrNoSource},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.s.Traits()
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("Traits: got error %v, want %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("Traits: got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestNewPicksSource(t *testing.T) {
	nc, err := config.ParseNetConf("net-conf.json", []byte(`{"Network": "198.19.0.0/16", "Backend": {"Type": "vxlan"}}`))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	good := filepath.Join(dir, "peers.json")
	bad := filepath.Join(dir, "bad.json")
	for path, body := range map[string]string{
		good: `{"Peers": [{"Name": "node2", "PublicIP": "198.18.0.2", "Subnets": ["198.19.2.0/24"], "VtepMAC": "0e:00:00:00:00:02"}]}`,
		bad:  `{"Peers": [{"Name": "node2", "PublicIP": "198.18.0.2", "Subnets": ["10.0.0.0/24"], "VtepMAC": "0e:00:00:00:00:02"}]}`,
	} {
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	self := netip.MustParseAddr("198.18.0.1")
	own := []netip.Prefix{netip.MustParsePrefix("198.19.1.0/24")}
	tests := []struct {
		name     string
		s        Settings
		n        Node
		wantType string // %T of the source
		wantErr  string
	}{
		{"static", Settings{PeersFile: good}, Node{NetConf: nc, PublicIP: self, Subnets: own}, "*registry.StaticSource", ""},
		{"static bad file", Settings{PeersFile: bad}, Node{NetConf: nc, PublicIP: self, Subnets: own}, "", "outside the network"},
		{"static without net-conf", Settings{PeersFile: good}, Node{PublicIP: self}, "", "no network config"},
		{"etcd probe without net-conf", Settings{Etcd: &EtcdOptions{Endpoints: []string{"http://198.18.0.9:2379"}}}, Node{PublicIP: self}, "*registry.EtcdSource", ""},
		{"etcd with an IPv6 public IP", Settings{Etcd: &EtcdOptions{}}, Node{PublicIP: netip.MustParseAddr("2001:2::1")}, "", "IPv4"},
		{"no source", Settings{}, Node{NetConf: nc}, "", "exactly one"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, err := New(tt.s, tt.n)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("New: got error %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("New: got error %v, want nil", err)
			}
			if c, ok := src.(io.Closer); ok {
				defer c.Close()
			}
			if got := typeName(src); got != tt.wantType {
				t.Errorf("New: got a %s, want a %s", got, tt.wantType)
			}
		})
	}
}

func typeName(v any) string {
	switch v.(type) {
	case *StaticSource:
		return "*registry.StaticSource"
	case *EtcdSource:
		return "*registry.EtcdSource"
	}
	return "other"
}
