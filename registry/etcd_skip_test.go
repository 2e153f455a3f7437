package registry

import (
	"net/netip"
	"testing"
	"time"

	"github.com/vxtun/vxtun/config"
	"github.com/vxtun/vxtun/internal/etcdtest"
)

// TestSkipReason: every way leasePeers refuses a lease is counted under the
// reason the README names.
func TestSkipReason(t *testing.T) {
	nc, err := config.ParseNetConf("test", []byte(`{"Network":"198.19.0.0/16","Backend":{"Type":"vxlan"}}`))
	if err != nil {
		t.Fatal(err)
	}
	self, selfMAC := netip.MustParseAddr("198.18.0.1"), mustMAC(t, "02:00:00:00:00:01")
	own := netip.MustParsePrefix("198.19.1.0/24")
	tests := []struct {
		name, key, value string
		want             string
	}{
		{"public IP inside the network", "198.19.2.0-24", kernelLease("198.19.9.9", "02:00:00:00:00:02"), SkipLoop},
		{"loopback public IP", "198.19.2.0-24", kernelLease("127.0.0.1", "02:00:00:00:00:02"), SkipLoop},
		{"our public IP", "198.19.2.0-24", kernelLease("198.18.0.1", "02:00:00:00:00:02"), SkipLoop},
		{"our VTEP MAC", "198.19.2.0-24", kernelLease("198.18.0.2", "02:00:00:00:00:01"), SkipLoop},
		{"udp lease in a vxlan network", "198.19.2.0-24", udpLease("198.18.0.2"), SkipOtherBackend},
		{"host-gw lease", "198.19.2.0-24", `{"PublicIP":"198.18.0.2","PublicIPv6":null,"BackendType":"host-gw"}`, SkipOtherBackend},
		{"wireguard lease", "198.19.2.0-24", `{"PublicIP":"198.18.0.2","PublicIPv6":null,"BackendType":"wireguard"}`, SkipOtherBackend},
		{"subnet outside the network", "10.244.5.0-24", kernelLease("198.18.0.2", "02:00:00:00:00:02"), SkipSubnet},
		{"subnet overlapping ours", "198.19.1.0-25", kernelLease("198.18.0.2", "02:00:00:00:00:02"), SkipSubnet},
		{"bad JSON", "198.19.2.0-24", `{"PublicIP":"198.18.0.2",`, SkipMalformed},
		{"null value", "198.19.2.0-24", `null`, SkipMalformed},
		{"bad MAC", "198.19.2.0-24", kernelLease("198.18.0.2", "zz:00:00:00:00:02"), SkipMalformed},
		{"multicast MAC", "198.19.2.0-24", kernelLease("198.18.0.2", "03:00:00:00:00:02"), SkipMalformed},
		{"multicast public IP", "198.19.2.0-24", kernelLease("224.0.0.1", "02:00:00:00:00:02"), SkipMalformed},
		{"key not a subnet", "garbage", kernelLease("198.18.0.2", "02:00:00:00:00:02"), SkipMalformed},
		{"host bits in the key", "198.19.2.1-24", kernelLease("198.18.0.2", "02:00:00:00:00:02"), SkipMalformed},
		{"nested key", "x/y", kernelLease("198.18.0.2", "02:00:00:00:00:02"), SkipMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps, _, err := leasePeers(nc, tt.key, []byte(tt.value), leaseSelf{ip: self, mac: selfMAC, own: []netip.Prefix{own}})
			if err == nil {
				t.Fatalf("leasePeers: got peers %+v, want the lease refused", ps)
			}
			if got := skipReasons[skipReason(err)]; got != tt.want {
				t.Errorf("reason of %v: got %s, want %s", err, got, tt.want)
			}
		})
	}
}

// TestEtcdSkippedLeases: a running source counts the leases it skips by
// reason, at the first list and on watch events.
func TestEtcdSkippedLeases(t *testing.T) {
	t.Parallel()
	srv, cli := setup(t, `{"Network":"198.19.0.0/16","Backend":{"Type":"vxlan"}}`)
	for k, v := range map[string]string{
		"198.19.3.0-24": kernelLease("198.19.9.9", "02:00:00:00:00:03"), // loop
		"198.19.4.0-24": udpLease("198.18.0.4"),                         // other_backend
		"10.244.5.0-24": kernelLease("198.18.0.5", "02:00:00:00:00:05"), // subnet
		"198.19.6.0-24": `{"PublicIP":`,                                 // malformed
	} {
		etcdtest.Put(t, cli, testPrefix+"/subnets/"+k, v)
	}
	a := startNode(t, srv, "a", "198.18.0.1", "02:00:00:00:00:01", 0)
	a.waitSynced(t)
	first := a.src.SkippedLeases()
	if len(first) != len(skipReasons) {
		t.Fatalf("SkippedLeases: got %v, want every one of %v", first, skipReasons)
	}
	for _, r := range skipReasons {
		if first[r] < 1 {
			t.Errorf("after the first list: %s: got %d, want >= 1 (all: %v)", r, first[r], first)
		}
	}
	// A looping lease put now is counted from its watch event.
	etcdtest.Put(t, cli, testPrefix+"/subnets/198.19.7.0-24", kernelLease("198.18.0.1", "02:00:00:00:00:07"))
	deadline := time.Now().Add(waitTimeout)
	for a.src.SkippedLeases()[SkipLoop] <= first[SkipLoop] {
		if time.Now().After(deadline) {
			t.Fatalf("loop count: got %d after a looping lease was put, want more than %d\nlogs:\n%s",
				a.src.SkippedLeases()[SkipLoop], first[SkipLoop], a.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
