package hostnet

import (
	"fmt"
	"slices"

	"github.com/google/nftables"
)

// vxtun's table inet TableName is shared: forward accept (chain forward),
// masquerade (chain postrouting) and the peer filter (chain peer-filter,
// sets peers4 and peers6) each make and remove only their own objects, and
// removeOwn takes the table away with the last of them.

func ownTable() *nftables.Table {
	return &nftables.Table{Family: nftables.TableFamilyINet, Name: TableName}
}

// removeOwn adds to c's batch the deletion of the chains and sets of
// TableName that are named in chains and sets and exist, or, when the table
// holds nothing else (no other chain, no other set: nothing another
// feature, or an operator, put there), of the whole table. Chains go before
// sets (their rules refer to the sets). It reports whether it batched a
// deletion; the caller flushes.
func removeOwn(c *nftables.Conn, chains, sets []string) (bool, error) {
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		return false, fmt.Errorf("list tables: %w", err)
	}
	if !slices.ContainsFunc(tables, func(t *nftables.Table) bool { return t.Name == TableName }) {
		return false, nil
	}
	t := ownTable()
	all, err := c.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		return false, fmt.Errorf("list chains: %w", err)
	}
	others := false
	var delChains []string
	for _, ch := range all {
		switch {
		case ch.Table.Name != TableName:
		case slices.Contains(chains, ch.Name):
			delChains = append(delChains, ch.Name)
		default:
			others = true
		}
	}
	ss, err := c.GetSets(t)
	if err != nil {
		return false, fmt.Errorf("list sets: %w", err)
	}
	var delSets []*nftables.Set
	for _, s := range ss {
		if slices.Contains(sets, s.Name) {
			delSets = append(delSets, s)
		} else {
			others = true
		}
	}
	if !others {
		c.DelTable(t)
		return true, nil
	}
	for _, name := range delChains {
		c.DelChain(&nftables.Chain{Name: name, Table: t})
	}
	for _, s := range delSets {
		c.DelSet(s)
	}
	return len(delChains)+len(delSets) > 0, nil
}
