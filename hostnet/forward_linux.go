package hostnet

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// Forward-accept rules (flanneld's --iptables-forward-rules): accept
// forwarded packets from and to the pod networks.
//
// nftables runs every base chain of a hook; an accept ends only the chain
// it is in, and a drop anywhere is final. An accept in vxtun's own table
// therefore cannot override the drop policy of iptables-nft's
// "table ip filter" chain FORWARD (Docker's default). So the rules go into
// every filter base chain at the forward hook of the ip, ip6 and inet
// families (at the top, tagged with forwardTag in the rule's comment so
// that they are found again, after a crash too), and into vxtun's own table
// (TableName), which the masquerade rules will share.

// TableName is vxtun's own nftables table (family inet).
const TableName = "vxtun"

// forwardChain is the forward-hook base chain in TableName.
const forwardChain = "forward"

// forwardTag is the comment (rule user data) of every rule vxtun puts into
// a chain it does not own.
const forwardTag = "vxtun forward-accept"

var forwardUserData = userdata.AppendString(nil, userdata.TypeComment, forwardTag)

func (h *host) SetForwardAccept(networks []netip.Prefix) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return fmt.Errorf("forward accept: %w", ErrClosed)
	}
	nets := make([]netip.Prefix, 0, len(networks))
	for _, p := range networks {
		if !p.IsValid() {
			return fmt.Errorf("forward accept: invalid network %v", p)
		}
		p = p.Masked()
		if !slices.Contains(nets, p) {
			nets = append(nets, p)
		}
	}
	var chains []string
	err := h.withNFT(func(c *nftables.Conn) (err error) {
		chains, err = applyForward(c, nets)
		return err
	})
	if err != nil {
		return fmt.Errorf("forward accept %v: %w", nets, err)
	}
	i := slices.IndexFunc(h.undo, func(c change) bool { return c.kind == kindForward })
	if len(nets) == 0 {
		if i >= 0 {
			h.undo = slices.Delete(h.undo, i, i+1)
		}
		return nil
	}
	desc := fmt.Sprintf("nftables forward accept %s (chains %s)", joinPrefixes(nets), strings.Join(chains, ", "))
	if i >= 0 {
		h.undo[i].desc = desc
		return nil
	}
	h.undo = append(h.undo, change{kind: kindForward, desc: desc, undo: func() error {
		if err := h.withNFT(func(c *nftables.Conn) error { _, err := applyForward(c, nil); return err }); err != nil {
			return fmt.Errorf("remove forward accept rules: %w", err)
		}
		return nil
	}})
	return nil
}

// applyForward makes the forward-accept rules exactly those for nets, in
// one nftables transaction: tagged rules in foreign forward chains are
// replaced, vxtun's own chain is flushed and refilled. With no nets the
// tagged rules and vxtun's forward chain are removed, and vxtun's table
// when nothing else is left in it (removeOwn). It returns the chains that
// hold rules afterwards ("family table chain").
func applyForward(c *nftables.Conn, nets []netip.Prefix) ([]string, error) {
	all, err := c.ListChains()
	if err != nil {
		return nil, fmt.Errorf("list chains: %w", err)
	}
	var done []string
	ownChain := false
	for _, ch := range all {
		if ch.Table.Name == TableName && ch.Table.Family == nftables.TableFamilyINet {
			ownChain = ownChain || ch.Name == forwardChain
			continue
		}
		if !isForwardFilter(ch) {
			continue
		}
		rules, err := c.GetRules(ch.Table, ch)
		if err != nil {
			return nil, fmt.Errorf("rules of %s: %w", chainName(ch), err)
		}
		for _, r := range rules {
			if isOurs(r) {
				if err := c.DelRule(r); err != nil {
					return nil, fmt.Errorf("delete stale rule in %s: %w", chainName(ch), err)
				}
			}
		}
		// InsertRule puts each rule at the top: insert in reverse so
		// they end up in the order of nets (source before destination).
		n := 0
		for i := len(nets) - 1; i >= 0; i-- {
			for _, dst := range []bool{true, false} {
				if exprs := acceptExprs(ch.Table.Family, nets[i], dst); exprs != nil {
					c.InsertRule(&nftables.Rule{Table: ch.Table, Chain: ch, Exprs: exprs, UserData: forwardUserData})
					n++
				}
			}
		}
		if n > 0 {
			done = append(done, chainName(ch))
		}
	}
	if len(nets) > 0 {
		own := ownTable()
		ch := replaceOwnChain(c, &nftables.Chain{
			Name: forwardChain, Table: own, Type: nftables.ChainTypeFilter,
			Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter,
		}, ownChain)
		for _, p := range nets {
			for _, dst := range []bool{false, true} {
				c.AddRule(&nftables.Rule{Table: own, Chain: ch, Exprs: acceptExprs(own.Family, p, dst), UserData: forwardUserData})
			}
		}
		done = append(done, chainName(ch))
	} else if _, err := removeOwn(c, []string{forwardChain}, nil); err != nil {
		return nil, err
	}
	if err := c.Flush(); err != nil {
		return nil, fmt.Errorf("nftables transaction: %w", err)
	}
	return done, nil
}

// isForwardFilter reports whether ch is a filter base chain at the forward
// hook of a family that sees IP packets.
func isForwardFilter(ch *nftables.Chain) bool {
	if ch.Hooknum == nil || *ch.Hooknum != *nftables.ChainHookForward || ch.Type != nftables.ChainTypeFilter {
		return false
	}
	switch ch.Table.Family {
	case nftables.TableFamilyIPv4, nftables.TableFamilyIPv6, nftables.TableFamilyINet:
		return true
	}
	return false
}

func isOurs(r *nftables.Rule) bool {
	s, ok := userdata.GetString(r.UserData, userdata.TypeComment)
	return ok && s == forwardTag
}

// acceptExprs builds "ip saddr p counter accept" (daddr if dst) for a chain
// of family fam, in the layout iptables-nft itself uses for "-s p -j
// ACCEPT" (so iptables -S shows it); nil if the family does not carry p's
// address family.
func acceptExprs(fam nftables.TableFamily, p netip.Prefix, dst bool) []expr.Any {
	v4 := p.Addr().Is4()
	var exprs []expr.Any
	switch {
	case fam == nftables.TableFamilyINet:
		proto := byte(unix.NFPROTO_IPV6)
		if v4 {
			proto = unix.NFPROTO_IPV4
		}
		exprs = append(exprs,
			&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}})
	case fam == nftables.TableFamilyIPv4 && !v4, fam == nftables.TableFamilyIPv6 && v4:
		return nil
	}
	// Offsets of the source address in the IPv4 and IPv6 headers; the
	// destination follows it.
	off, n := uint32(12), uint32(4)
	if !v4 {
		off, n = 8, 16
	}
	if dst {
		off += n
	}
	exprs = append(exprs, &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: n})
	if p.Bits() < p.Addr().BitLen() {
		exprs = append(exprs, &expr.Bitwise{
			SourceRegister: 1, DestRegister: 1, Len: n,
			Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen()), Xor: make([]byte, n),
		})
	}
	exprs = append(exprs,
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: p.Addr().AsSlice()},
		&expr.Counter{},
		&expr.Verdict{Kind: expr.VerdictAccept})
	return exprs
}

func chainName(ch *nftables.Chain) string {
	fam := map[nftables.TableFamily]string{
		nftables.TableFamilyIPv4: "ip", nftables.TableFamilyIPv6: "ip6", nftables.TableFamilyINet: "inet",
	}[ch.Table.Family]
	return fmt.Sprintf("%s %s %s", fam, ch.Table.Name, ch.Name)
}

func joinPrefixes(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, " ")
}

// replaceOwnChain adds vxtun's table and its base chain ch (policy accept)
// to c's batch, emptied if it existed, so that the rules the caller adds
// next replace the chain's contents in the same transaction.
func replaceOwnChain(c *nftables.Conn, ch *nftables.Chain, existed bool) *nftables.Chain {
	c.AddTable(ch.Table)
	accept := nftables.ChainPolicyAccept
	ch.Policy = &accept
	ch = c.AddChain(ch)
	if existed {
		c.FlushChain(ch)
	}
	return ch
}
