package routing

import (
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
	"net/netip"
	"slices"
	"sync/atomic"

	"github.com/vxtun/vxtun/config"
	"github.com/vxtun/vxtun/fastpath/udp"
)

// Route is where packets for one peer go. It is owned by its Table and is
// read-only.
type Route struct {
	// Name is the peer's name (config.Peer.Name).
	Name string
	// Index is dense per Table (0 ≤ Index < Table.IndexLimit()) and, with
	// NewBuilder(prev), stable for a Name across snapshots.
	Index int
	// Backend is the peer's encapsulation.
	Backend config.Backend
	// Underlay is the peer's underlay address and UDP port (the backend
	// default port when config.Peer.Port is 0).
	Underlay netip.AddrPort
	// Sockaddr is Underlay resolved for udp.Conn.WriteBatch (Message.Addr =
	// &route.Sockaddr).
	Sockaddr udp.Addr
	// VNI is the VXLAN network identifier (vxlan only).
	VNI uint32
	// VtepMAC is the peer's VTEP MAC (vxlan only): the inner destination MAC.
	VtepMAC [6]byte
	// Prefixes are the overlay prefixes routed to the peer (masked).
	Prefixes []netip.Prefix
}

// Table is an immutable routing snapshot. The zero Table and a nil *Table
// route nothing. Safe for concurrent use.
//
// Routes and the peers they were built from are kept in chunks of
// chunkLen, and the underlay index in shards, so that Update can share
// every chunk and shard a change does not touch with the previous Table.
type Table struct {
	routes     [][]Route       // chunks of chunkLen (the last may be shorter)
	src        [][]config.Peer // the peers as given, chunked as routes, for Update's comparison
	n          int             // routes in all
	v4, v6     trie
	byUnderlay underlayIndex
	limit      int
	// layout is shared by tables whose routes have the same names and
	// Indexes in the same order (Update's incremental path).
	layout *layout
}

// chunkBits sets the chunk size: an update copies one chunk of routes
// (and of peers) per changed peer, and the chunk list.
const (
	chunkBits = 6
	chunkLen  = 1 << chunkBits
)

// layout identifies a sequence of (name, Index) pairs; see Table.layout.
type layout struct{ _ byte }

// route returns route i (0 ≤ i < t.n).
func (t *Table) route(i int) *Route { return &t.routes[i>>chunkBits][i&(chunkLen-1)] }

// chunked cuts s into chunks of chunkLen sharing its array; each chunk's
// capacity is its length, so appending to one never writes into the next.
func chunked[T any](s []T) [][]T {
	c := make([][]T, 0, (len(s)+chunkLen-1)/chunkLen)
	for len(s) > 0 {
		n := min(len(s), chunkLen)
		c = append(c, s[:n:n])
		s = s[n:]
	}
	return c
}

// underlayShards is the number of maps the underlay index is split into;
// a moved peer costs a copy of one.
const (
	underlayShardBits = 6
	underlayShards    = 1 << underlayShardBits
)

// underlayIndex maps an underlay address to the position of its first
// route, split into shards by a hash of the address. The zero value is
// empty. Shards are shared between Tables and never written once
// published.
type underlayIndex [underlayShards]map[netip.Addr]int32

func shardOf(a netip.Addr) int {
	b := a.As16()
	x := binary.BigEndian.Uint64(b[:8]) ^ binary.BigEndian.Uint64(b[8:])
	return int((x * 0x9e3779b97f4a7c15) >> (64 - underlayShardBits)) // Fibonacci hashing
}

func (u *underlayIndex) get(a netip.Addr) (int32, bool) {
	i, ok := u[shardOf(a)][a]
	return i, ok
}

// sized makes every shard with room for its part of n addresses.
func (u *underlayIndex) sized(n int) {
	for s := range u {
		u[s] = make(map[netip.Addr]int32, n/underlayShards+1)
	}
}

// setFirst records i for a unless a has an entry (the first route wins).
// The caller owns the shard (it is not shared).
func (u *underlayIndex) setFirst(a netip.Addr, i int32) {
	s := shardOf(a)
	if u[s] == nil {
		u[s] = map[netip.Addr]int32{}
	}
	if _, ok := u[s][a]; !ok {
		u[s][a] = i
	}
}

// Lookup returns the route for a raw destination address: 4 bytes (IPv4) or
// 16 bytes (IPv6) in network order, as they sit in the packet header. It
// returns nil when nothing matches or len(dst) is neither 4 nor 16. It does
// not allocate.
func (t *Table) Lookup(dst []byte) *Route {
	if t == nil {
		return nil
	}
	var e uint32
	switch len(dst) {
	case 4:
		e = t.v4.lookup4(dst[0], dst[1], dst[2], dst[3])
	case 16:
		e = t.v6.lookup(dst)
	default:
		return nil
	}
	if e == 0 {
		return nil
	}
	return t.route(int(e - 1))
}

// LookupUnderlay returns a route whose underlay address is ip (any port),
// for checking the outer source of received packets; nil if none. When
// several peers share an underlay address, it returns the first in the
// order they were added.
func (t *Table) LookupUnderlay(ip netip.Addr) *Route {
	if t == nil {
		return nil
	}
	i, ok := t.byUnderlay.get(ip.Unmap().WithZone(""))
	if !ok {
		return nil
	}
	return t.route(int(i))
}

// Routes iterates over the table's routes (position, route) in the order
// the peers were added. The routes are read-only.
func (t *Table) Routes() iter.Seq2[int, *Route] {
	return func(yield func(int, *Route) bool) {
		if t == nil {
			return
		}
		for c, chunk := range t.routes {
			for j := range chunk {
				if !yield(c<<chunkBits+j, &chunk[j]) {
					return
				}
			}
		}
	}
}

// Route returns the route at position i (0 ≤ i < Len()) in the order the
// peers were added; read-only.
func (t *Table) Route(i int) *Route { return t.route(i) }

// Len is the number of routes (peers).
func (t *Table) Len() int {
	if t == nil {
		return 0
	}
	return t.n
}

// SameLayout reports whether t and u have routes of the same names with
// the same Indexes in the same order, known without comparing them: u
// was made from t by Update's incremental path (or the other way round,
// or through a chain of them). Per-peer state indexed by Route.Index can
// then be kept as it is.
func (t *Table) SameLayout(u *Table) bool {
	return t != nil && u != nil && t.layout != nil && t.layout == u.layout
}

// IndexLimit is one more than the largest Route.Index in t (0 for an empty
// table): the length a per-peer counter array indexed by Route.Index needs.
func (t *Table) IndexLimit() int {
	if t == nil {
		return 0
	}
	return t.limit
}

// Errors returned (wrapped, with the peer's name) by Builder.Add.
var (
	// ErrInvalidPeer: config.Peer.Check rejected the peer, or its name is
	// already in the table.
	ErrInvalidPeer = config.ErrInvalidPeer
	// ErrDuplicatePrefix: a prefix of the peer is already another's.
	ErrDuplicatePrefix = errors.New("prefix routed to two peers")
)

// Builder collects peers for a new Table. Not safe for concurrent use.
type Builder struct {
	prev   *Table
	peers  []Route
	src    []config.Peer
	names  map[string]struct{}
	owners map[netip.Prefix]string
	err    error
}

// NewBuilder starts a table. prev may be nil; when set, a peer with the same
// Name as a route in prev keeps that route's Index.
func NewBuilder(prev *Table) *Builder {
	return newBuilder(prev, 0)
}

// NewSizedBuilder is NewBuilder with room for n peers, so adding a large
// set does not grow its maps and slices step by step.
func NewSizedBuilder(prev *Table, n int) *Builder {
	return newBuilder(prev, n)
}

// newBuilder pre-sizes for n peers.
func newBuilder(prev *Table, n int) *Builder {
	return &Builder{
		prev:   prev,
		peers:  make([]Route, 0, n),
		src:    make([]config.Peer, 0, n),
		names:  make(map[string]struct{}, n),
		owners: make(map[netip.Prefix]string, n),
	}
}

// Add validates p and adds it. The first error is also remembered and
// returned by Build, so a caller may Add everything and check once.
func (b *Builder) Add(p config.Peer) error {
	r, err := b.route(p)
	if err != nil {
		if b.err == nil {
			b.err = err
		}
		return err
	}
	for _, pfx := range r.Prefixes {
		if other, ok := b.owners[pfx]; ok {
			err := fmt.Errorf("peer %q: subnet %s: %w (also %q)", p.Name, pfx, ErrDuplicatePrefix, other)
			if b.err == nil {
				b.err = err
			}
			return err
		}
	}
	for _, pfx := range r.Prefixes {
		b.owners[pfx] = p.Name
	}
	b.names[p.Name] = struct{}{}
	b.peers = append(b.peers, r)
	b.src = append(b.src, clonePeer(p))
	return nil
}

// route checks p (config.Peer.Check, plus a name unique in the set) and
// makes its Route: the backend's default port, subnets masked, unmapped and
// deduplicated. What concerns the table as a whole (prefixes of two peers)
// is Add's.
func (b *Builder) route(p config.Peer) (Route, error) {
	if _, dup := b.names[p.Name]; dup {
		return Route{}, fmt.Errorf("peer %q: duplicate name: %w", p.Name, ErrInvalidPeer)
	}
	if err := p.Check(config.PeerScope{}); err != nil {
		return Route{}, err
	}
	ip := p.PublicIP.Unmap().WithZone("")
	r := Route{Name: p.Name, Backend: p.Backend}
	port := p.Port
	if port == 0 {
		port = config.DefaultPort(p.Backend)
	}
	if p.Backend == config.BackendVXLAN {
		r.VNI = p.VNI
		r.VtepMAC = [6]byte(p.VtepMAC)
	}
	r.Underlay = netip.AddrPortFrom(ip, port)
	r.Sockaddr = udp.NewAddr(r.Underlay)
	r.Prefixes = make([]netip.Prefix, 0, len(p.Subnets))
	seen := make(map[netip.Prefix]bool, len(p.Subnets))
	for _, s := range p.Subnets {
		a, bits := s.Addr(), s.Bits()
		if a.Is4In6() && bits >= 96 {
			a, bits = a.Unmap(), bits-96
		}
		m, err := a.WithZone("").Prefix(bits)
		if err != nil {
			return Route{}, fmt.Errorf("peer %q: invalid subnet %v: %v: %w", p.Name, s, err, ErrInvalidPeer)
		}
		if seen[m] {
			continue
		}
		seen[m] = true
		r.Prefixes = append(r.Prefixes, m)
	}
	return r, nil
}

// Build returns the Table, or the first error any Add returned.
func (b *Builder) Build() (*Table, error) {
	if b.err != nil {
		return nil, b.err
	}
	routes := b.peers
	t := &Table{routes: chunked(routes), src: chunked(b.src), n: len(routes), layout: &layout{}}
	t.byUnderlay.sized(len(routes))
	b.assignIndexes(t, routes)
	type ent struct {
		pfx netip.Prefix
		idx uint32
	}
	var ents []ent
	for i := range routes {
		r := &routes[i]
		t.byUnderlay.setFirst(r.Underlay.Addr(), int32(i))
		for _, p := range r.Prefixes {
			ents = append(ents, ent{p, uint32(i + 1)})
		}
	}
	// Shorter prefixes first: a longer one then overwrites (or pushes into
	// a child beneath) what a shorter one filled in.
	slices.SortStableFunc(ents, func(a, b ent) int { return a.pfx.Bits() - b.pfx.Bits() })
	var p4, p6 []netip.Prefix
	for _, e := range ents {
		if e.pfx.Addr().Is4() {
			p4 = append(p4, e.pfx)
		} else {
			p6 = append(p6, e.pfx)
		}
	}
	t.v4.init(4, p4)
	t.v6.init(16, p6)
	for _, e := range ents {
		if e.pfx.Addr().Is4() {
			a := e.pfx.Addr().As4()
			t.v4.insert(a[:], e.pfx.Bits(), e.idx)
		} else {
			a := e.pfx.Addr().As16()
			t.v6.insert(a[:], e.pfx.Bits(), e.idx)
		}
	}
	b.peers, b.src = nil, nil // the table owns them now
	return t, nil
}

// assignIndexes gives routes (t's, flat) their Indexes and sets t.limit.
func (b *Builder) assignIndexes(t *Table, routes []Route) {
	prevIndex := make(map[string]int, b.prev.Len())
	for _, r := range b.prev.Routes() {
		prevIndex[r.Name] = r.Index
	}
	used := make(map[int]bool, len(routes))
	var pending []int
	for i := range routes {
		if old, ok := prevIndex[routes[i].Name]; ok {
			routes[i].Index = old
			used[old] = true
		} else {
			pending = append(pending, i)
		}
	}
	next := 0
	for _, i := range pending {
		for used[next] {
			next++
		}
		routes[i].Index = next
		used[next] = true
	}
	for i := range routes {
		if routes[i].Index+1 > t.limit {
			t.limit = routes[i].Index + 1
		}
	}
}

// NewTable builds a Table from peers (no previous snapshot).
func NewTable(peers []config.Peer) (*Table, error) {
	b := newBuilder(nil, len(peers))
	for _, p := range peers {
		if err := b.Add(p); err != nil {
			return nil, err
		}
	}
	return b.Build()
}

// Holder publishes the current Table. The zero Holder holds an empty table.
// Load is wait-free; Store may be called from any goroutine (a writer that
// builds from the current table serialises its own builds).
type Holder struct {
	p atomic.Pointer[Table]
}

var emptyTable = &Table{}

// Load returns the current snapshot (never nil).
func (h *Holder) Load() *Table {
	if t := h.p.Load(); t != nil {
		return t
	}
	return emptyTable
}

// Store publishes t (nil publishes an empty table).
func (h *Holder) Store(t *Table) {
	if t == nil {
		t = emptyTable
	}
	h.p.Store(t)
}
