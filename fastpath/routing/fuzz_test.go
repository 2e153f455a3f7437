package routing

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/vxtun/vxtun/config"
)

// FuzzLookup builds a table from prefixes decoded from the input and checks
// every lookup against the naive reference. Input: records of one length
// byte (bit 7: IPv6, low bits mod (family bits + 1): prefix length) and 4 or
// 16 address bytes; the final 4 and 16 bytes left over are extra queries.
func FuzzLookup(f *testing.F) {
	f.Add([]byte{24, 10, 1, 2, 0, 8, 10, 0, 0, 0, 32, 10, 1, 2, 3})
	f.Add([]byte{0x80 | 64, 0xfd, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{0, 0, 0, 0, 0, 33, 255, 255, 255, 255})
	f.Fuzz(func(t *testing.T, in []byte) {
		ref := &naive{}
		var peers []config.Peer
		used := map[netip.Prefix]bool{}
		for len(in) > 0 && len(peers) < 64 {
			v6 := in[0]&0x80 != 0
			n, max := 4, 32
			if v6 {
				n, max = 16, 128
			}
			if len(in) < 1+n {
				break
			}
			bits := int(in[0]&0x7f) % (max + 1)
			a, _ := netip.AddrFromSlice(in[1 : 1+n])
			in = in[1+n:]
			p, _ := a.Prefix(bits)
			if used[p] {
				continue
			}
			used[p] = true
			name := fmt.Sprintf("p%d", len(peers))
			peers = append(peers, peer(name, "198.18.0.1", p.String()))
			ref.pfx = append(ref.pfx, p)
			ref.name = append(ref.name, name)
		}
		tb, err := NewTable(peers)
		if err != nil {
			t.Fatalf("NewTable: %v", err)
		}
		queries := []netip.Addr{}
		for _, p := range ref.pfx {
			queries = append(queries, p.Addr())
			// Last address in the prefix and the one after it.
			b := p.Addr().AsSlice()
			for i := p.Bits(); i < len(b)*8; i++ {
				b[i/8] |= 0x80 >> (i % 8)
			}
			last, _ := netip.AddrFromSlice(b)
			queries = append(queries, last, last.Next())
		}
		for _, q := range queries {
			if !q.IsValid() {
				continue
			}
			want := ref.lookup(q)
			got := ""
			if r := lookupAddr(tb, q); r != nil {
				got = r.Name
			}
			if got != want {
				t.Fatalf("LookupAddr(%s): got %q, want %q (prefixes %v)", q, got, want, ref.pfx)
			}
		}
	})
}
