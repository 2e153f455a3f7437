package routing

import (
	"encoding/binary"
	"net/netip"
)

// trie is a multibit trie of stride 8 with leaf pushing. Node k occupies
// nodes[k*256 : k*256+256]; node 0 is the root. An entry is 0 (no route),
// a route number r+1 (bit 31 clear), or childBit|c for child node c. A child
// starts as 256 copies of the entry it replaced, so the covering route of a
// shorter prefix is already in every slot of the subtree it was pushed into.
//
// Path compression at the top: when every prefix of the family is at least
// skip bytes long and all share those leading bytes (10.0.0.0/8 for a
// flannel Network of 10.0.0.0/8, fd00:0:0::/48 for an IPv6 Network), the
// root stands for byte skip and a lookup first checks the shared bytes with
// two masked 64-bit compares: an address that differs there matches nothing.
type trie struct {
	nodes      []uint32
	skip       int    // leading bytes shared by every prefix, not walked
	hi, lo     uint64 // the shared bytes, big-endian, in an address-sized pair
	mhi, mlo   uint64 // masks selecting the first skip bytes
	addrLength int    // 4 or 16
}

const (
	childBit = 1 << 31
	stride   = 8
	fanout   = 1 << stride
)

// init prepares an empty trie for addresses of n bytes whose prefixes (all
// of this family) are given, choosing the shared leading bytes to skip.
func (t *trie) init(n int, prefixes []netip.Prefix) {
	t.nodes = make([]uint32, fanout)
	t.addrLength = n
	t.skip = 0
	if len(prefixes) == 0 {
		return
	}
	first := prefixes[0].Addr().AsSlice()
	skip := n - 1 // at least one byte is always walked
	for _, p := range prefixes {
		skip = min(skip, p.Bits()/8)
		b := p.Addr().AsSlice()
		for i := 0; i < skip; i++ {
			if b[i] != first[i] {
				skip = i
				break
			}
		}
	}
	t.skip = skip
	var full, mask [16]byte
	copy(full[:], first[:skip])
	for i := 0; i < skip; i++ {
		mask[i] = 0xff
	}
	t.hi, t.lo = binary.BigEndian.Uint64(full[:8]), binary.BigEndian.Uint64(full[8:])
	t.mhi, t.mlo = binary.BigEndian.Uint64(mask[:8]), binary.BigEndian.Uint64(mask[8:])
}

// insert sets val for addr/bits. Prefixes must be inserted in order of
// non-decreasing length: then no slot a prefix covers can have a child yet
// (children are made only by strictly longer prefixes), and the longer
// prefixes inserted later overwrite exactly the slots they cover.
func (t *trie) insert(addr []byte, bits int, val uint32) {
	addr, bits = addr[t.skip:], bits-t.skip*stride
	node := 0
	last := 0 // index of the byte the prefix ends in
	if bits > 0 {
		last = (bits - 1) / stride
	}
	for d := 0; d < last; d++ {
		i := node*fanout + int(addr[d])
		e := t.nodes[i]
		if e&childBit != 0 {
			node = int(e &^ childBit)
			continue
		}
		c := len(t.nodes) / fanout
		for j := 0; j < fanout; j++ {
			t.nodes = append(t.nodes, e)
		}
		t.nodes[i] = childBit | uint32(c)
		node = c
	}
	rem := bits - last*stride // bits of the prefix inside byte `last`: 0..8
	span := 1 << (stride - rem)
	start := int(addr[last]) &^ (span - 1)
	base := node * fanout
	for j := start; j < start+span; j++ {
		t.fill(base+j, val)
	}
}

// fill sets slot i to val; if i holds a child (only possible if the order
// rule of insert is broken), val is pushed into every non-child slot below.
func (t *trie) fill(i int, val uint32) {
	e := t.nodes[i]
	if e&childBit == 0 {
		t.nodes[i] = val
		return
	}
	base := int(e&^childBit) * fanout
	for j := 0; j < fanout; j++ {
		t.fill(base+j, val)
	}
}

// lookup4 looks up an IPv4 address.
func (t *trie) lookup4(a, b, c, d byte) uint32 {
	n := t.nodes
	if len(n) < fanout {
		return 0
	}
	x := uint64(a)<<56 | uint64(b)<<48 | uint64(c)<<40 | uint64(d)<<32
	if x&t.mhi != t.hi {
		return 0
	}
	// Unrolled walk entering at byte skip (0..3).
	base := 0
	var e uint32
	switch t.skip {
	case 0:
		e = n[a]
		if e&childBit == 0 {
			return e
		}
		base = int(e&^childBit) << stride
		fallthrough
	case 1:
		e = n[base|int(b)]
		if e&childBit == 0 {
			return e
		}
		base = int(e&^childBit) << stride
		fallthrough
	case 2:
		e = n[base|int(c)]
		if e&childBit == 0 {
			return e
		}
		base = int(e&^childBit) << stride
	}
	return n[base|int(d)] // the last level never has children
}

// lookup looks up a 16-byte IPv6 address.
func (t *trie) lookup(addr []byte) uint32 {
	n := t.nodes
	if len(n) < fanout || len(addr) != 16 {
		return 0
	}
	hi, lo := binary.BigEndian.Uint64(addr[:8]), binary.BigEndian.Uint64(addr[8:16])
	if hi&t.mhi != t.hi || lo&t.mlo != t.lo {
		return 0
	}
	base := 0
	for _, x := range addr[t.skip:] {
		e := n[base|int(x)]
		if e&childBit == 0 {
			return e
		}
		base = int(e&^childBit) << stride
	}
	return 0 // unreachable: the last level never has children
}

// nodeCount is the number of 1 KiB nodes (for tests and memory reports).
func (t *trie) nodeCount() int { return len(t.nodes) / fanout }
