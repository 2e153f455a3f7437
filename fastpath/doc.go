// Package fastpath is vxtun's forwarder: the routing table (longest-prefix
// match of the inner destination to a peer), the TUN→encap→UDP and
// UDP→decap→TUN pipelines, batched UDP I/O and drop accounting.
//
// Ownership: each worker owns its TUN queue, its UDP socket and its buffers;
// packets move between stages as vectors of buffers, never one at a time.
// The routing table is an immutable snapshot swapped atomically: readers
// never lock, writers build a new snapshot and publish it.
//
// fastpath does not import registry: peers arrive as config.Peer values.
package fastpath
