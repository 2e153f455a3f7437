package routing

// trie is a multibit trie of stride 8 with leaf pushing. Node k occupies
// nodes[k*256 : k*256+256]; node 0 is the root. An entry is 0 (no route),
// a route number r+1 (bit 31 clear), or childBit|c for child node c. A child
// starts as 256 copies of the entry it replaced, so the covering route of a
// shorter prefix is already in every slot of the subtree it was pushed into.
type trie struct {
	nodes []uint32
}

const (
	childBit = 1 << 31
	stride   = 8
	fanout   = 1 << stride
)

func (t *trie) init() {
	t.nodes = make([]uint32, fanout)
}

// insert sets val for addr/bits. Prefixes must be inserted in order of
// non-decreasing length: then no slot a prefix covers can have a child yet
// (children are made only by strictly longer prefixes), and the longer
// prefixes inserted later overwrite exactly the slots they cover.
func (t *trie) insert(addr []byte, bits int, val uint32) {
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

// lookup4 walks at most four levels for an IPv4 address.
func (t *trie) lookup4(a, b, c, d byte) uint32 {
	n := t.nodes
	if len(n) < fanout {
		return 0
	}
	e := n[a]
	if e&childBit == 0 {
		return e
	}
	e = n[int(e&^childBit)<<stride|int(b)]
	if e&childBit == 0 {
		return e
	}
	e = n[int(e&^childBit)<<stride|int(c)]
	if e&childBit == 0 {
		return e
	}
	return n[int(e&^childBit)<<stride|int(d)]
}

// lookup walks the address bytes until a leaf.
func (t *trie) lookup(addr []byte) uint32 {
	n := t.nodes
	if len(n) < fanout {
		return 0
	}
	base := 0
	for _, x := range addr {
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
