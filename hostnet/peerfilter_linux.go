package hostnet

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// The peer filter drops UDP datagrams to the dataplane's port from
// addresses that are not peers, in the kernel, before they reach (and wake)
// the sockets. In vxtun's own table (inet TableName):
//
//	set peers4 { type ipv4_addr }    set peers6 { type ipv6_addr }
//	chain peer-filter { type filter hook input priority filter; policy accept;
//		meta nfproto ipv4 meta l4proto udp udp dport PORT ip saddr != @peers4 counter drop
//		meta nfproto ipv6 meta l4proto udp udp dport PORT ip6 saddr != @peers6 counter drop }
//
// A peer change is one transaction that adds and deletes set elements (the
// rules stay), so an update costs what changed, not the size of the set.
// The per-packet cost is a few register compares for every packet at the
// input hook and one hash lookup for datagrams to our port. IPv4 fragments
// are reassembled before the input hook; for IPv6 the first fragment
// carries the UDP header and is dropped, so the datagram never completes.

// Names in TableName.
const (
	peerFilterChain = "peer-filter"
	peerSet4        = "peers4"
	peerSet6        = "peers6"
)

// peerSetBatch bounds the elements per netlink message (a 5 000-peer set
// is then a handful of messages in one transaction).
const peerSetBatch = 1024

// peerFilter is the filter's applied state.
type peerFilter struct {
	port  uint16
	addrs addrSet
	spare addrSet // the set before addrs, cleared and reused by the next update
}

// addrSet holds addresses in their 16-byte form (IPv4 as ::ffff:a.b.c.d;
// no IPv6 member is IPv4-mapped, SetPeerFilter unmaps them). A plain array
// key hashes several times faster than netip.Addr (whose zone handle makes
// it a variable-length key), and an update builds and compares two sets of
// every peer.
type addrSet map[[16]byte]struct{}

func (h *host) SetPeerFilter(port uint16, peers []netip.Addr) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return fmt.Errorf("peer filter: %w", ErrClosed)
	}
	if port == 0 {
		return errors.New("peer filter: port 0")
	}
	var want addrSet
	if h.pf != nil && h.pf.spare != nil {
		want, h.pf.spare = h.pf.spare, nil
		clear(want)
	} else {
		want = make(addrSet, len(peers))
	}
	for _, a := range peers {
		if !a.IsValid() {
			return fmt.Errorf("peer filter: invalid address %v", a)
		}
		want[a.Unmap().As16()] = struct{}{}
	}
	if h.pf == nil {
		if err := h.withNFT(func(c *nftables.Conn) error { return createPeerFilter(c, port, want) }); err != nil {
			return fmt.Errorf("peer filter: %w", err)
		}
		h.pf = &peerFilter{port: port, addrs: want}
		h.undo = append(h.undo, change{kind: kindPeerFilter, desc: h.pf.describe(), undo: func() error {
			h.pf = nil
			if err := h.withNFT(removePeerFilter); err != nil {
				return fmt.Errorf("remove peer filter: %w", err)
			}
			return nil
		}})
		return nil
	}
	if err := h.withNFT(func(c *nftables.Conn) error { return updatePeerFilter(c, h.pf, port, want) }); err != nil {
		// The sets or the chain are gone or changed (nft flush ruleset, an
		// operator's edit): make the filter again from scratch.
		if rerr := h.withNFT(func(c *nftables.Conn) error { return createPeerFilter(c, port, want) }); rerr != nil {
			return fmt.Errorf("peer filter: %w; recreating it: %w", err, rerr)
		}
	}
	h.pf.port, h.pf.addrs, h.pf.spare = port, want, h.pf.addrs
	if i := slices.IndexFunc(h.undo, func(c change) bool { return c.kind == kindPeerFilter }); i >= 0 {
		h.undo[i].desc = h.pf.describe()
	}
	return nil
}

func (pf *peerFilter) describe() string {
	return fmt.Sprintf("nftables peer filter udp dport %d: drop sources other than %d peers (inet %s %s)",
		pf.port, len(pf.addrs), TableName, peerFilterChain)
}

// PeerFilterDrops sums the packet counters of the peer filter's drop
// rules.
func (h *host) PeerFilterDrops() (uint64, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.pf == nil {
		return 0, nil
	}
	var rules []*nftables.Rule
	err := h.withNFT(func(c *nftables.Conn) (err error) {
		rules, err = c.GetRules(ownTable(), &nftables.Chain{Name: peerFilterChain, Table: ownTable()})
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("peer filter drops: %w", err)
	}
	var n uint64
	for _, r := range rules {
		for _, e := range r.Exprs {
			if ctr, ok := e.(*expr.Counter); ok {
				n += ctr.Packets
			}
		}
	}
	return n, nil
}

func peerSets() (v4, v6 *nftables.Set) {
	t := ownTable()
	return &nftables.Set{Table: t, Name: peerSet4, KeyType: nftables.TypeIPAddr},
		&nftables.Set{Table: t, Name: peerSet6, KeyType: nftables.TypeIP6Addr}
}

// elements splits the members of addrs that keep accepts (all, for nil)
// into IPv4 and IPv6 set elements.
func elements(addrs addrSet, keep func([16]byte) bool) (v4, v6 []nftables.SetElement) {
	for k := range addrs {
		if keep != nil && !keep(k) {
			continue
		}
		if a := netip.AddrFrom16(k); a.Is4In6() {
			v4 = append(v4, nftables.SetElement{Key: a.Unmap().AsSlice()})
		} else {
			v6 = append(v6, nftables.SetElement{Key: a.AsSlice()})
		}
	}
	return v4, v6
}

// inBatches calls fn with at most peerSetBatch elements at a time.
func inBatches(s *nftables.Set, els []nftables.SetElement, fn func(*nftables.Set, []nftables.SetElement) error) error {
	for len(els) > 0 {
		n := min(len(els), peerSetBatch)
		if err := fn(s, els[:n]); err != nil {
			return fmt.Errorf("set %s: %w", s.Name, err)
		}
		els = els[n:]
	}
	return nil
}

// createPeerFilter makes the sets and the chain in one transaction, after
// removing what a crashed run may have left.
func createPeerFilter(c *nftables.Conn, port uint16, addrs addrSet) error {
	if err := removePeerFilter(c); err != nil {
		return fmt.Errorf("remove stale filter: %w", err)
	}
	t := c.AddTable(ownTable())
	s4, s6 := peerSets()
	for _, s := range []*nftables.Set{s4, s6} {
		if err := c.AddSet(s, nil); err != nil {
			return fmt.Errorf("add set %s: %w", s.Name, err)
		}
	}
	e4, e6 := elements(addrs, nil)
	if err := inBatches(s4, e4, c.SetAddElements); err != nil {
		return err
	}
	if err := inBatches(s6, e6, c.SetAddElements); err != nil {
		return err
	}
	accept := nftables.ChainPolicyAccept
	ch := c.AddChain(&nftables.Chain{
		Name: peerFilterChain, Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookInput, Priority: nftables.ChainPriorityFilter, Policy: &accept,
	})
	for _, s := range []*nftables.Set{s4, s6} {
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: dropExprs(port, s)})
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables transaction: %w", err)
	}
	return nil
}

// updatePeerFilter changes the sets (and, for a new port, the rules) from
// cur to port and want in one transaction.
func updatePeerFilter(c *nftables.Conn, cur *peerFilter, port uint16, want addrSet) error {
	s4, s6 := peerSets()
	add4, add6 := elements(want, func(k [16]byte) bool { _, ok := cur.addrs[k]; return !ok })
	del4, del6 := elements(cur.addrs, func(k [16]byte) bool { _, ok := want[k]; return !ok })
	if err := inBatches(s4, del4, c.SetDeleteElements); err != nil {
		return err
	}
	if err := inBatches(s6, del6, c.SetDeleteElements); err != nil {
		return err
	}
	if err := inBatches(s4, add4, c.SetAddElements); err != nil {
		return err
	}
	if err := inBatches(s6, add6, c.SetAddElements); err != nil {
		return err
	}
	if port != cur.port {
		t := ownTable()
		ch := &nftables.Chain{Name: peerFilterChain, Table: t}
		c.FlushChain(ch)
		for _, s := range []*nftables.Set{s4, s6} {
			c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: dropExprs(port, s)})
		}
	}
	if len(add4)+len(add6)+len(del4)+len(del6) == 0 && port == cur.port {
		return nil
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables transaction: %w", err)
	}
	return nil
}

// removePeerFilter deletes the chain and the sets if they exist, and the
// table if nothing else is left in it, in one transaction.
func removePeerFilter(c *nftables.Conn) error {
	batched, err := removeOwn(c, []string{peerFilterChain}, []string{peerSet4, peerSet6})
	if err != nil || !batched {
		return err
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables transaction: %w", err)
	}
	return nil
}

// ip[6] saddr != @set counter drop" for the family of set.
func dropExprs(port uint16, s *nftables.Set) []expr.Any {
	proto, off, n := byte(unix.NFPROTO_IPV4), uint32(12), uint32(4)
	if s.KeyType == nftables.TypeIP6Addr {
		proto, off, n = unix.NFPROTO_IPV6, 8, 16
	}
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_UDP}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(port)},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: n},
		&expr.Lookup{SourceRegister: 1, SetName: s.Name, Invert: true},
		&expr.Counter{},
		&expr.Verdict{Kind: expr.VerdictDrop},
	}
}
