package hostnet

import (
	"fmt"

	"github.com/google/nftables"
)

// The nftables features share one lasting netlink connection, opened at
// the host's first nftables change, in that thread's namespace, and kept
// until Close. Closing an nf_tables socket waits for the kernel's deferred
// release of whatever the socket's transactions deleted (an RCU grace
// period: 11–25 ms for one set element on the 2-CPU test VMs, against
// 20 µs for the transaction itself), so a connection per change made every
// peer-filter update that removed a peer take that long.

// withNFT runs fn with the host's nftables connection, opening it first if
// need be. After an error the connection is closed and dropped (a failed
// batch may leave replies unread on it), and the next change opens another.
// The caller holds h.mu.
func (h *host) withNFT(fn func(*nftables.Conn) error) error {
	if h.nft == nil {
		c, err := nftables.New(nftables.AsLasting())
		if err != nil {
			return fmt.Errorf("nftables: %w", err)
		}
		h.nft = c
	}
	err := fn(h.nft)
	if err != nil {
		h.closeNFT()
	}
	return err
}

// closeNFT closes the host's nftables connection, if open. The caller
// holds h.mu.
func (h *host) closeNFT() {
	if h.nft != nil {
		_ = h.nft.CloseLasting() // nothing is pending on it: Flush waited for every reply
		h.nft = nil
	}
}
