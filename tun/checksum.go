package tun

import "github.com/vxtun/vxtun/encap"

// Checksums come from encap (ChecksumAdd, ChecksumFold); these are the
// offload-specific helpers around them, on unfolded 64-bit partial sums.

// csumFinish returns the checksum field value for a full sum: the one's
// complement of the folded sum.
func csumFinish(s uint64) uint16 { return ^encap.ChecksumFold(s) }
