package hostnet

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// host is the Linux Host: netlink in the calling thread's namespace.
type host struct {
	mu     sync.Mutex
	undo   []change // in the order applied
	closed bool
	routes map[string]*peerRoutes  // SetPeerRoutes' sets by owner (routes_linux.go)
	pf     *peerFilter             // SetPeerFilter's applied state; nil when off
	vxlan  map[string]*vxlanSynced // SetVXLANPeers' applied entries by device (vxlan_linux.go)
	nft    *nftables.Conn          // lasting; nil until the first nftables change (nft_linux.go)
}

// change is one applied change and how to undo it.
type change struct {
	kind int // kindOther, or a declarative state updated in place
	desc string
	undo func() error
}

// Kinds of change.
const (
	kindOther      = iota
	kindForward    // SetForwardAccept's rules, one entry for all of them
	kindPeerFilter // SetPeerFilter's chain and sets, one entry
)

// New returns the Linux Host for the calling thread's network namespace.
func New() Host { return &host{} }

func (h *host) record(desc string, undo func() error) {
	h.undo = append(h.undo, change{desc: desc, undo: undo})
}

func (h *host) ConfigureLink(cfg Link) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return fmt.Errorf("configure %s: %w", cfg.Name, ErrClosed)
	}
	l, err := netlink.LinkByName(cfg.Name)
	if err != nil {
		return fmt.Errorf("configure %s: %w", cfg.Name, err)
	}
	mark := len(h.undo)
	fail := func(err error) error {
		h.rollback(mark)
		return fmt.Errorf("configure %s: %w", cfg.Name, err)
	}
	name := cfg.Name
	if old := l.Attrs().MTU; cfg.MTU > 0 && cfg.MTU != old {
		if err := netlink.LinkSetMTU(l, cfg.MTU); err != nil {
			return fail(fmt.Errorf("mtu %d: %w", cfg.MTU, err))
		}
		h.record(fmt.Sprintf("mtu %d dev %s (was %d)", cfg.MTU, name, old), func() error {
			return linkGone(name, func(l netlink.Link) error {
				if err := netlink.LinkSetMTU(l, old); err != nil {
					return fmt.Errorf("restore mtu %d dev %s: %w", old, name, err)
				}
				return nil
			})
		})
	}
	if old := l.Attrs().TxQLen; cfg.TxQueueLen > 0 && old < cfg.TxQueueLen {
		if err := netlink.LinkSetTxQLen(l, cfg.TxQueueLen); err != nil {
			return fail(fmt.Errorf("txqueuelen %d: %w", cfg.TxQueueLen, err))
		}
		h.record(fmt.Sprintf("txqueuelen %d dev %s (was %d)", cfg.TxQueueLen, name, old), func() error {
			return linkGone(name, func(l netlink.Link) error {
				if err := netlink.LinkSetTxQLen(l, old); err != nil {
					return fmt.Errorf("restore txqueuelen %d dev %s: %w", old, name, err)
				}
				return nil
			})
		})
	}
	for _, a := range cfg.Addrs {
		addr := &netlink.Addr{IPNet: prefixNet(a)}
		err := netlink.AddrAdd(l, addr)
		if err != nil && !errors.Is(err, unix.EEXIST) {
			return fail(fmt.Errorf("address %s: %w", a, err))
		}
		if err == nil {
			h.record(fmt.Sprintf("address %s dev %s", a, name), func() error {
				return linkGone(name, func(l netlink.Link) error {
					if err := netlink.AddrDel(l, addr); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
						return fmt.Errorf("address %s dev %s: %w", a, name, err)
					}
					return nil
				})
			})
		}
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return fail(fmt.Errorf("link up: %w", err))
	}
	for _, p := range cfg.Routes {
		r := &netlink.Route{LinkIndex: l.Attrs().Index, Dst: prefixNet(p.Masked()), Scope: netlink.SCOPE_LINK}
		err := netlink.RouteAdd(r)
		if err != nil && !errors.Is(err, unix.EEXIST) {
			return fail(fmt.Errorf("route %s: %w", p, err))
		}
		if err == nil {
			h.record(fmt.Sprintf("route %s dev %s", p.Masked(), name), func() error {
				return linkGone(name, func(netlink.Link) error {
					if err := netlink.RouteDel(r); err != nil && !errors.Is(err, unix.ESRCH) {
						return fmt.Errorf("route %s dev %s: %w", p.Masked(), name, err)
					}
					return nil
				})
			})
		}
	}
	return nil
}

// linkGone runs fn on the link called name; a link that no longer exists
// took its addresses and routes with it, which is not an error.
func linkGone(name string, fn func(netlink.Link) error) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		return fmt.Errorf("link %s: %w", name, err)
	}
	return fn(l)
}

func (h *host) SetSysctl(key, value string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return fmt.Errorf("sysctl %s: %w", key, ErrClosed)
	}
	if strings.Contains(key, "..") || filepath.IsAbs(key) {
		return fmt.Errorf("sysctl %q: not a key under /proc/sys", key)
	}
	path := filepath.Join("/proc/sys", key)
	old, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("sysctl %s: %w", key, err)
	}
	if strings.TrimSpace(string(old)) == value {
		return nil
	}
	if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
		return fmt.Errorf("sysctl %s=%s: %w", key, value, err)
	}
	h.record(fmt.Sprintf("sysctl %s=%s", key, value), func() error {
		err := os.WriteFile(path, old, 0o644)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("restore sysctl %s: %w", key, err)
		}
		return nil
	})
	return nil
}

func (h *host) Changes() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]string, len(h.undo))
	for i, c := range h.undo {
		out[i] = c.desc
	}
	return out
}

func (h *host) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil
	}
	h.closed = true
	defer h.closeNFT()
	return h.rollback(0)
}

// rollback undoes the changes from index mark on, newest first.
func (h *host) rollback(mark int) error {
	var errs []error
	for i := len(h.undo) - 1; i >= mark; i-- {
		if err := h.undo[i].undo(); err != nil {
			errs = append(errs, err)
		}
	}
	h.undo = h.undo[:mark]
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("undo host changes: %w", err)
	}
	return nil
}

func prefixNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
