package tun

import (
	"bufio"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vxtun/vxtun/encap"
	"github.com/vxtun/vxtun/internal/nettest"
)

// snmpCounter reads one counter ("Ip" "FragFails", or "" "Ip6InTooBigErrors"
// from snmp6) of ns.
func snmpCounter(t *testing.T, ns *nettest.NS, file, group, name string) uint64 {
	t.Helper()
	out := ns.Run("cat", "/proc/net/"+file)
	sc := bufio.NewScanner(strings.NewReader(out))
	var header []string
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if file == "snmp6" {
			if len(f) == 2 && f[0] == name {
				v, _ := strconv.ParseUint(f[1], 10, 64)
				return v
			}
			continue
		}
		if len(f) < 2 || f[0] != group+":" {
			continue
		}
		if header == nil {
			header = f
			continue
		}
		for i := range header {
			if header[i] == name {
				v, _ := strconv.ParseUint(f[i], 10, 64)
				return v
			}
		}
	}
	t.Fatalf("no %s %s in /proc/net/%s", group, name, file)
	return 0
}

// TestWriteOversizeForwarded: what Write hands the kernel is forwarded
// onward through a veth with the TUN's MTU (forwarding obeys the MTU where
// local delivery does not): the receive shapes an inbound path writes —
// a plain packet, a batch of MSS segments (UDP GRO), one tunnelled-GSO
// super-packet with a 7000-byte inner TCP packet — all arrive, and the
// router neither fails to fragment nor sends "too big".
func TestWriteOversizeForwarded(t *testing.T) {
	nettest.RequirePrivileged(t)
	const mtu = 1450
	a, b := nettest.NewNS(t, "ova"), nettest.NewNS(t, "ovb")
	for _, ns := range []*nettest.NS{a, b} {
		ns.Run("sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")
	}
	a.Run("sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1")
	nettest.Veth(t, a, "fw0", "198.19.2.1/24", b, "eth0", "198.19.2.2/24")
	a.Run("ip", "-6", "addr", "add", "2001:2:0:1002::1/64", "dev", "fw0")
	b.Run("ip", "-6", "addr", "add", "2001:2:0:1002::2/64", "dev", "eth0")
	a.Run("ip", "link", "set", "fw0", "mtu", strconv.Itoa(mtu))
	b.Run("ip", "link", "set", "eth0", "mtu", strconv.Itoa(mtu))
	m := openIn(t, a, "vxt0", 1, Options{})
	configureIn(t, a, "vxt0", mtu, []netip.Prefix{netip.MustParsePrefix("198.19.1.0/32")},
		[]netip.Prefix{netip.MustParsePrefix("198.19.5.0/24"), netip.MustParsePrefix("2001:2:0:1005::/64")})
	q := m.Queues()[0]

	shapes := []struct {
		name string
		pkts func(s pktSpec) [][]byte
	}{
		{"plain", func(s pktSpec) [][]byte { s.payload = pattern(1000, 1); return [][]byte{s.build(t)} }},
		{"udp gro segments", func(s pktSpec) [][]byte {
			mss := mtu - 40
			if s.v6 {
				mss = mtu - 60
			}
			return tcpFlow(t, s, 6, mss, 0)
		}},
		{"tunnelled gso", func(s pktSpec) [][]byte { s.payload = pattern(7000, 2); return [][]byte{s.build(t)} }},
	}
	families := []struct {
		name     string
		src, dst string
	}{
		{"ipv4", "198.19.5.2", "198.19.2.2"},
		{"ipv6", "2001:2:0:1005::2", "2001:2:0:1002::2"},
	}
	rxBytes := func() uint64 {
		l, err := b.Handle().LinkByName("eth0")
		if err != nil {
			t.Fatal(err)
		}
		return l.Attrs().Statistics.RxBytes
	}
	seq := uint32(1)
	for _, fam := range families {
		for _, sh := range shapes {
			t.Run(fam.name+"/"+sh.name, func(t *testing.T) {
				s := pktSpec{v6: fam.name == "ipv6", src: fam.src, dst: fam.dst, sport: 40000, dport: 5001, seq: seq}
				pkts := sh.pkts(s)
				want := 0
				for _, p := range pkts {
					if !s.v6 {
						p[6] |= encap.IPv4FlagDF >> 8 // too big must not fragment
						fixIPv4(p)
					}
					want += len(p)
					seq += uint32(len(p))
				}
				// A GSO packet crosses the veth whole (counted once with
				// one set of headers), segments one by one: at least all
				// payload and one set of headers arrive.
				hdr := 40
				if s.v6 {
					hdr = 60
				}
				want -= (len(pkts) - 1) * hdr
				fragFails := snmpCounter(t, a, "snmp", "Ip", "FragFails")
				tooBig := snmpCounter(t, a, "snmp6", "", "Ip6InTooBigErrors")
				before := rxBytes()
				before6 := q.Stats()
				if _, err := q.Write(pkts, 0); err != nil {
					t.Fatalf("write: %v", err)
				}
				var got uint64
				for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
					if got = rxBytes() - before; got >= uint64(want) {
						break
					}
				}
				if got < uint64(want) {
					st := q.Stats()
					t.Fatalf("bytes arrived behind the router: got %d, want at least %d (stats %+v, before %+v)", got, want, st, before6)
				}
				if n := snmpCounter(t, a, "snmp", "Ip", "FragFails"); n != fragFails {
					t.Errorf("IpFragFails: got %d, want %d (unchanged)", n, fragFails)
				}
				if n := snmpCounter(t, a, "snmp6", "", "Ip6InTooBigErrors"); n != tooBig {
					t.Errorf("Ip6InTooBigErrors: got %d, want %d (unchanged)", n, tooBig)
				}
				if st := q.Stats(); sh.name == "tunnelled gso" && st.OversizeGSO != before6.OversizeGSO+1 {
					t.Errorf("OversizeGSO: got %d, want %d", st.OversizeGSO, before6.OversizeGSO+1)
				}
			})
		}
	}
	if st := q.Stats(); st.OversizeDropped != 0 || st.WriteErrors != 0 {
		t.Fatalf("stats: got %+v, want no oversize drops and no write errors", st)
	}
}
