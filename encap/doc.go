// Package encap owns vxtun's wire formats as zero-copy byte-slice views:
// VXLAN (RFC 7348), flannel's legacy UDP format, the inner Ethernet header,
// IPv4/IPv6/UDP/TCP/ICMP/ARP helpers, Internet checksums and the inner flow hash.
//
// A header view is `type X []byte` with accessors in field order; it never
// copies and never allocates. Callers must check the length (XMinimumSize or
// the Parse* functions) before using accessors on untrusted input. Encoders
// write into caller-provided buffers, typically into headroom left in front of
// the inner packet, so encapsulation needs no copy of the payload.
//
// The package has no state and is safe for concurrent use on distinct buffers.
package encap
