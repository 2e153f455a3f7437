package hostnet

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// Masquerade rules (flanneld's --ip-masq) live in vxtun's own table
// (TableName, family inet, shared with the forward-accept chain) in one
// NAT chain at the postrouting hook. Every change replaces the whole chain
// in one nftables transaction (created if missing, else flushed and
// refilled), so a restart after a crash leaves no duplicates and a reader
// never sees half a policy.

// masqChain is the postrouting NAT chain in TableName.
const masqChain = "postrouting"

// masqTag is the comment (rule user data) of every masquerade rule.
const masqTag = "vxtun masquerade"

// kindMasq marks SetMasquerade's entry in the undo list (distinct from the
// kinds in host_linux.go).
const kindMasq = 1 << 8

// kubeProxyMark is the mark kube-proxy puts on packets it masquerades
// itself (KUBE-MARK-MASQ): flanneld lets them pass.
const kubeProxyMark = 0x4000

var masqUserData = userdata.AppendString(nil, userdata.TypeComment, masqTag)

func (h *host) SetMasquerade(nets []MasqNet) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return fmt.Errorf("masquerade: %w", ErrClosed)
	}
	nets, err := CheckMasqNets(nets)
	if err != nil {
		return err
	}
	if err := h.withNFT(func(c *nftables.Conn) error { return applyMasq(c, nets) }); err != nil {
		return fmt.Errorf("masquerade: %w", err)
	}
	i := slices.IndexFunc(h.undo, func(c change) bool { return c.kind == kindMasq })
	if len(nets) == 0 {
		if i >= 0 {
			h.undo = slices.Delete(h.undo, i, i+1)
		}
		return nil
	}
	s := make([]string, len(nets))
	for j, m := range nets {
		s[j] = m.String()
	}
	desc := "nftables masquerade " + strings.Join(s, " ")
	if i >= 0 {
		h.undo[i].desc = desc
		return nil
	}
	h.undo = append(h.undo, change{kind: kindMasq, desc: desc, undo: func() error {
		if err := h.withNFT(func(c *nftables.Conn) error { return applyMasq(c, nil) }); err != nil {
			return fmt.Errorf("remove masquerade rules: %w", err)
		}
		return nil
	}})
	return nil
}

// applyMasq makes vxtun's masquerade chain hold exactly the rules for nets,
// in one transaction. With no nets the chain is removed, and the table too
// when nothing else is left in it.
func applyMasq(c *nftables.Conn, nets []MasqNet) error {
	if len(nets) == 0 {
		batched, err := removeOwn(c, []string{masqChain}, nil)
		if err != nil || !batched {
			return err
		}
	} else {
		own := ownTable()
		chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyINet)
		if err != nil {
			return fmt.Errorf("list chains: %w", err)
		}
		existed := slices.ContainsFunc(chains, func(ch *nftables.Chain) bool {
			return ch.Table.Name == TableName && ch.Name == masqChain
		})
		ch := replaceOwnChain(c, &nftables.Chain{
			Name: masqChain, Table: own, Type: nftables.ChainTypeNAT,
			Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource,
		}, existed)
		for _, exprs := range masqRules(nets) {
			c.AddRule(&nftables.Rule{Table: own, Chain: ch, Exprs: exprs, UserData: masqUserData})
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables transaction: %w", err)
	}
	return nil
}

// masqRules returns the expressions of every rule of the chain, in order:
// the kube-proxy mark exception, then each family's five rules (MasqNet).
func masqRules(nets []MasqNet) [][]expr.Any {
	mark := binaryutil.NativeEndian.PutUint32(kubeProxyMark)
	rules := [][]expr.Any{{
		&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: mark, Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: mark},
		&expr.Counter{},
		&expr.Verdict{Kind: expr.VerdictReturn},
	}}
	ret := []expr.Any{&expr.Counter{}, &expr.Verdict{Kind: expr.VerdictReturn}}
	masq := []expr.Any{&expr.Counter{}, &expr.Masq{FullyRandom: true}}
	for _, m := range nets {
		n, s := m.Network, m.Subnet
		mc := netip.MustParsePrefix("224.0.0.0/4")
		if n.Addr().Is6() {
			mc = netip.MustParsePrefix("ff00::/8")
		}
		for _, r := range []struct {
			src, dst       netip.Prefix
			notSrc, notDst bool
			verdict        []expr.Any
		}{
			{src: s, dst: n, verdict: ret},
			{src: n, dst: s, verdict: ret},
			{src: n, notSrc: true, dst: s, verdict: ret},
			{src: n, dst: mc, notDst: true, verdict: masq},
			{src: n, notSrc: true, dst: n, verdict: masq},
		} {
			e := nfprotoExprs(n.Addr().Is4())
			e = append(e, addrMatch(r.src, false, r.notSrc)...)
			e = append(e, addrMatch(r.dst, true, r.notDst)...)
			rules = append(rules, append(e, r.verdict...))
		}
	}
	return rules
}

// nfprotoExprs matches the packet's family in an inet chain.
func nfprotoExprs(v4 bool) []expr.Any {
	proto := byte(unix.NFPROTO_IPV6)
	if v4 {
		proto = unix.NFPROTO_IPV4
	}
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
	}
}

// addrMatch matches the source (daddr: destination) address against p,
// or its complement with not ("ip saddr != 198.19.0.0/16").
func addrMatch(p netip.Prefix, daddr, not bool) []expr.Any {
	off, n := uint32(12), uint32(4)
	if p.Addr().Is6() {
		off, n = 8, 16
	}
	if daddr {
		off += n
	}
	e := []expr.Any{&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: n}}
	if p.Bits() < p.Addr().BitLen() {
		e = append(e, &expr.Bitwise{
			SourceRegister: 1, DestRegister: 1, Len: n,
			Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen()), Xor: make([]byte, n),
		})
	}
	op := expr.CmpOpEq
	if not {
		op = expr.CmpOpNeq
	}
	return append(e, &expr.Cmp{Op: op, Register: 1, Data: p.Addr().AsSlice()})
}
