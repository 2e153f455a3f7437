package hostnet

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/nftables"

	"github.com/vxtun/vxtun/internal/nettest"
)

// ownObjects lists what table inet vxtun holds in ns, read through netlink
// (google/nftables): its chains with their rule counts ("forward:4") and
// its sets with their element counts ("peers4:2"), sorted; nil when the
// table does not exist.
func ownObjects(t *testing.T, ns *nettest.NS) []string {
	t.Helper()
	var out []string
	err := ns.Do(func() error {
		c, err := nftables.New()
		if err != nil {
			return err
		}
		tables, err := c.ListTablesOfFamily(nftables.TableFamilyINet)
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(tables, func(tb *nftables.Table) bool { return tb.Name == TableName }) {
			return nil
		}
		out = []string{} // the table exists, perhaps empty
		chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyINet)
		if err != nil {
			return err
		}
		for _, ch := range chains {
			if ch.Table.Name != TableName {
				continue
			}
			rules, err := c.GetRules(ch.Table, ch)
			if err != nil {
				return err
			}
			out = append(out, fmt.Sprintf("%s:%d", ch.Name, len(rules)))
		}
		sets, err := c.GetSets(ownTable())
		if err != nil {
			return err
		}
		for _, s := range sets {
			els, err := c.GetSetElements(s)
			if err != nil {
				return err
			}
			out = append(out, fmt.Sprintf("%s:%d", s.Name, len(els)))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("list table inet %s: %v", TableName, err)
	}
	slices.Sort(out)
	return out
}

// TestOwnTableSharedClose: forward accept, masquerade and the peer filter
// share table inet vxtun; closing the Host of one removes only its chain
// (and sets), in any order, and the last one removes the table.
func TestOwnTableSharedClose(t *testing.T) {
	nettest.RequirePrivileged(t)
	const (
		fwd  = "forward"
		masq = "postrouting"
		pf   = "peer-filter"
	)
	// The objects each feature owns in the table.
	owns := map[string][]string{fwd: {"forward"}, masq: {"postrouting"}, pf: {"peer-filter", "peers4", "peers6"}}
	for _, order := range [][]string{{fwd, masq, pf}, {masq, fwd, pf}, {pf, fwd, masq}, {fwd, pf, masq}} {
		t.Run(strings.Join(order, ","), func(t *testing.T) {
			ns := nettest.NewNS(t, "nt")
			hosts := map[string]Host{fwd: New(), masq: New(), pf: New()}
			err := ns.Do(func() error {
				return errors.Join(
					hosts[fwd].SetForwardAccept([]netip.Prefix{masqN4, masqN6}),
					hosts[masq].SetMasquerade([]MasqNet{{Network: masqN4, Subnet: masqS4}, {Network: masqN6, Subnet: masqS6}}),
					hosts[pf].SetPeerFilter(8472, []netip.Addr{
						netip.MustParseAddr("198.18.0.2"), netip.MustParseAddr("198.18.0.3"), netip.MustParseAddr("2001:2::2")}))
			})
			if err != nil {
				t.Fatalf("set up: %v", err)
			}
			all := ownObjects(t, ns)
			if len(all) != 5 {
				t.Fatalf("after set up: table inet %s holds %v, want 3 chains and 2 sets", TableName, all)
			}
			// want is what all holds of the features in open, with the
			// same rule and element counts.
			want := func(open []string) []string {
				var w []string
				for _, o := range open {
					for _, obj := range owns[o] {
						for _, a := range all {
							if strings.HasPrefix(a, obj+":") {
								w = append(w, a)
							}
						}
					}
				}
				slices.Sort(w)
				return w
			}
			open := slices.Clone(order)
			for _, name := range order {
				if err := ns.Do(hosts[name].Close); err != nil {
					t.Fatalf("close %s: %v", name, err)
				}
				open = slices.DeleteFunc(open, func(s string) bool { return s == name })
				got := ownObjects(t, ns)
				if len(open) == 0 {
					if got != nil {
						t.Fatalf("after closing all: table inet %s holds %v, want it gone", TableName, got)
					}
					continue
				}
				if got == nil {
					t.Fatalf("after closing %s: table inet %s is gone, want %v left in it", name, TableName, want(open))
				}
				if w := want(open); !slices.Equal(got, w) {
					t.Fatalf("after closing %s: table inet %s holds %v, want %v", name, TableName, got, w)
				}
			}
		})
	}
}
