// Package routing is the fastpath's routing table: a longest-prefix match of
// an inner (overlay) destination address, IPv4 or IPv6, to the Route of the
// peer that owns the prefix.
//
// # Snapshots
//
// A Table is immutable once built. Build one from []config.Peer with a
// Builder (or NewTable); each peer is validated by config.Peer.Check (the
// one peer validation of the project) and the Builder adds only what is
// about the table: names unique, no prefix routed to two peers. The whole
// set is rejected with an error naming the peer and the field when one is
// invalid, so a bad update never replaces a good table. A Holder publishes
// the current Table through an atomic.Pointer: workers call Holder.Load once
// per batch and look up without any lock; a writer builds a new Table (with
// NewBuilder(current)) and calls Store.
//
// routing imports config (peer data) and fastpath/udp (socket addresses).
// A Builder is not safe for concurrent use; Tables and Holders are.
// A reader that loaded the old Table keeps using it until its next Load; the
// old Table stays valid (and is collected when no reader holds it), so an
// address routed in both the old and the new Table is never without a route.
//
// # Updates
//
// Update(current, peers, check) is what a writer calls with every new peer
// set. When the set has the current peers in the same order, names and
// subnets, and only some peers' address, port, VNI or MAC changed, it
// validates just those and shares everything else with the current Table:
// the tries, and the routes and peers, which a Table keeps in chunks of 64
// (a changed peer costs a copy of its chunk and of the chunk list), and the
// underlay index, kept in 64 shards by a hash of the address (a moved peer
// costs a copy of the shards of its old and new address). One changed peer
// of 5 000 allocates ~26 KB instead of a 1.8 MB copy of the table
// (TestUpdateBytesAt5000; BenchmarkSetPeers in fastpath); what remains O(n)
// is the comparison pass over the peers. Any other change builds anew.
// Tables keep a copy of the peers they were built from for this comparison.
// Tables made this way have the same layout (Table.SameLayout: the same
// names at the same Indexes), so per-peer state can be kept without a pass
// over the routes.
//
// # Lookup
//
// Each address family has a multibit trie of stride 8 with leaf pushing
// (controlled prefix expansion): a node is 256 uint32 entries, each either
// empty, a route index, or a child node. A lookup is at most 4 (IPv4) or 16
// (IPv6) dependent array reads, no hashing, no allocation; Lookup takes the
// raw 4- or 16-byte destination straight from the packet header. Leading
// bytes that every prefix of a family shares (10. of a 10.0.0.0/8 cluster,
// the /48 of an IPv6 network) are checked with a masked compare instead of
// walked, so a flannel-style table of /24s or /64s takes 2 reads, plus one
// for the route's chunk.
// Memory is 1 KiB per node; a prefix of length L creates at most ceil(L/8)-1
// nodes, and prefixes that share leading bytes share nodes: 10 000 peers
// with a /24 in 10.0.0.0/8 and a /64 in fd00::/48 take 82 nodes (82 KiB) in
// all. The worst case, unrelated /64s, is 7 KiB per prefix.
//
// # Routes
//
// Route values are owned by their Table and must be treated as read-only.
// Route.Index is dense (0 ≤ Index < Table.IndexLimit()) for per-peer counter
// arrays; a Builder made with NewBuilder(prev) keeps each peer's Index from
// prev (matched by Name) and gives new peers the lowest free ones, so
// counters indexed by it survive a swap. The fastpath's per-peer drop
// counters are laid out this way.
package routing
