package nettest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// ConnectVeth creates a veth pair with one end in a (named nameA, address
// addrA in CIDR form) and the other in b, both up. Empty addresses are
// left out; mtu 0 keeps the default (1500).
func ConnectVeth(a *NS, nameA, addrA string, b *NS, nameB, addrB string, mtu int) error {
	// Create the pair inside a with the peer end placed directly into b, so
	// both ends may carry the same name.
	hb, err := netns.GetFromName(b.Name)
	if err != nil {
		return fmt.Errorf("veth: open netns %s: %w", b.Name, err)
	}
	defer hb.Close()
	err = a.Do(func() error {
		la := &netlink.Veth{
			LinkAttrs:     netlink.LinkAttrs{Name: nameA, MTU: mtu},
			PeerName:      nameB,
			PeerNamespace: netlink.NsFd(hb),
		}
		if err := netlink.LinkAdd(la); err != nil {
			return fmt.Errorf("add veth %s/%s: %w", nameA, nameB, err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("veth: %w", err)
	}
	for _, s := range []struct {
		ns   *NS
		name string
		addr string
	}{{a, nameA, addrA}, {b, nameB, addrB}} {
		if err := s.ns.Do(func() error {
			if mtu > 0 {
				if err := SetMTU(s.name, mtu); err != nil {
					return err
				}
			}
			return LinkUp(s.name, s.addr)
		}); err != nil {
			return fmt.Errorf("veth %s in %s: %w", s.name, s.ns.Name, err)
		}
	}
	return nil
}

// Veth is ConnectVeth with the default MTU for tests: it fails t on error.
func Veth(t testing.TB, a *NS, nameA, addrA string, b *NS, nameB, addrB string) {
	t.Helper()
	if err := ConnectVeth(a, nameA, addrA, b, nameB, addrB, 0); err != nil {
		t.Fatal(err)
	}
}

// LinkUp adds addr (CIDR, may be empty) to the link in the current namespace
// and sets it up. Call it inside NS.Do.
func LinkUp(name, addr string) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("link %s: %w", name, err)
	}
	if addr != "" {
		a, err := netlink.ParseAddr(addr)
		if err != nil {
			return fmt.Errorf("parse %s: %w", addr, err)
		}
		if err := netlink.AddrAdd(l, a); err != nil {
			return fmt.Errorf("addr %s on %s: %w", addr, name, err)
		}
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return fmt.Errorf("link %s up: %w", name, err)
	}
	return nil
}

// SetMTU sets the MTU of a link in the current namespace (inside NS.Do).
func SetMTU(name string, mtu int) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("link %s: %w", name, err)
	}
	if err := netlink.LinkSetMTU(l, mtu); err != nil {
		return fmt.Errorf("mtu %d on %s: %w", mtu, name, err)
	}
	return nil
}

// SetSysctl writes a sysctl inside the current namespace (call inside Do), e.g.
// SetSysctl("net/ipv4/ip_forward", "1").
func SetSysctl(key, val string) error {
	if err := os.WriteFile("/proc/sys/"+key, []byte(val), 0o644); err != nil {
		return fmt.Errorf("sysctl %s: %w", key, err)
	}
	return nil
}

// Host is one node of an Underlay: its namespace and its address plan.
type Host struct {
	Node
	NS *NS
}

// AddPod puts the pod address 198.19.N.1/32 on lo. A lo address tests
// local delivery only (see DESIGN.md); forwarding tests put pods behind a
// bridge instead.
func (h *Host) AddPod() error {
	return h.NS.Do(func() error { return LinkUp("lo", h.Pod.String()+"/32") })
}

// UnderlayConfig describes an underlay: node namespaces with "ul0" at
// 198.18.0.N/24 (N = 1, 2, ... in the order of Names).
type UnderlayConfig struct {
	Names  []string // node namespaces, in node order; ≥ 2
	Switch string   // if set, a namespace holding bridge br0 that every ul0 plugs into; else exactly 2 nodes on one veth
	MTU    int      // underlay MTU; 0 = UnderlayMTU
	Pods   bool     // put each node's pod address on its lo (AddPod)
}

// Underlay is a set of hosts on one underlay network. Close removes every
// namespace it made.
type Underlay struct {
	Hosts  []*Host
	Switch *NS // nil for a direct veth
	nss    []*NS
}

// NewUnderlay builds the underlay of cfg. On error it removes what it made.
func NewUnderlay(ctx context.Context, cfg UnderlayConfig) (_ *Underlay, err error) {
	if len(cfg.Names) < 2 || (cfg.Switch == "" && len(cfg.Names) != 2) || len(cfg.Names) > 254 {
		return nil, fmt.Errorf("underlay: %d nodes, want 2 without a switch, 2-254 with one", len(cfg.Names))
	}
	mtu := cfg.MTU
	if mtu == 0 {
		mtu = UnderlayMTU
	}
	u := &Underlay{}
	defer func() {
		if err != nil {
			err = errors.Join(err, u.Close())
		}
	}()
	mk := func(name string) (*NS, error) {
		ns, err := CreateNS(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("underlay: %w", err)
		}
		u.nss = append(u.nss, ns)
		return ns, nil
	}
	for i, name := range cfg.Names {
		ns, err := mk(name)
		if err != nil {
			return nil, err
		}
		u.Hosts = append(u.Hosts, &Host{Node: PlanNode(i + 1), NS: ns})
	}
	addr := func(h *Host) string { return h.Underlay.String() + "/24" }
	if cfg.Switch == "" {
		a, b := u.Hosts[0], u.Hosts[1]
		if err := ConnectVeth(a.NS, UnderlayIface, addr(a), b.NS, UnderlayIface, addr(b), mtu); err != nil {
			return nil, fmt.Errorf("underlay: %w", err)
		}
	} else {
		if u.Switch, err = mk(cfg.Switch); err != nil {
			return nil, err
		}
		if err := u.Switch.Do(func() error {
			br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "br0", MTU: mtu}}
			if err := netlink.LinkAdd(br); err != nil {
				return fmt.Errorf("add bridge br0: %w", err)
			}
			return LinkUp("br0", "")
		}); err != nil {
			return nil, fmt.Errorf("underlay: %w", err)
		}
		for _, h := range u.Hosts {
			port := h.Name()
			if err := ConnectVeth(u.Switch, port, "", h.NS, UnderlayIface, addr(h), mtu); err != nil {
				return nil, fmt.Errorf("underlay: %w", err)
			}
			if err := u.Switch.Do(func() error {
				l, err := netlink.LinkByName(port)
				if err != nil {
					return fmt.Errorf("link %s: %w", port, err)
				}
				br, err := netlink.LinkByName("br0")
				if err != nil {
					return fmt.Errorf("link br0: %w", err)
				}
				if err := netlink.LinkSetMaster(l, br); err != nil {
					return fmt.Errorf("%s into br0: %w", port, err)
				}
				return nil
			}); err != nil {
				return nil, fmt.Errorf("underlay: %w", err)
			}
		}
	}
	if cfg.Pods {
		for _, h := range u.Hosts {
			if err := h.AddPod(); err != nil {
				return nil, fmt.Errorf("underlay: %s: %w", h.NS.Name, err)
			}
		}
	}
	return u, nil
}

// Close deletes every namespace of the underlay (and kills what runs in
// them). It is idempotent.
func (u *Underlay) Close() error {
	var errs []error
	for _, ns := range u.nss {
		errs = append(errs, ns.Close())
	}
	u.nss = nil
	return errors.Join(errs...)
}

// Peer returns the other host of a two-node underlay.
func (u *Underlay) Peer(h *Host) *Host {
	if h == u.Hosts[0] {
		return u.Hosts[1]
	}
	return u.Hosts[0]
}

// TwoHosts is the common test underlay: two namespaces joined by a veth
// pair, 198.18.0.1/24 on "ul0" in A and 198.18.0.2/24 on "ul0" in B.
type TwoHosts struct {
	A, B         *NS
	AddrA, AddrB net.IP
	Hosts        [2]*Host
}

// NewTwoHosts builds the two-host underlay for t (skipping t without
// privileges) and removes it in t.Cleanup.
func NewTwoHosts(t testing.TB) *TwoHosts {
	t.Helper()
	RequirePrivileged(t)
	id := RandSuffix()
	u, err := NewUnderlay(context.Background(), UnderlayConfig{Names: []string{"vxt-a-" + id, "vxt-b-" + id}})
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range u.Hosts {
		h.NS.own(t)
	}
	a, b := u.Hosts[0], u.Hosts[1]
	return &TwoHosts{A: a.NS, B: b.NS, AddrA: a.Underlay.AsSlice(), AddrB: b.Underlay.AsSlice(), Hosts: [2]*Host{a, b}}
}

// NewTestUnderlay builds the underlay of cfg for t (skipping t without
// privileges); its namespaces belong to t (Run, Try, Handle work on them)
// and are removed in t.Cleanup.
func NewTestUnderlay(t testing.TB, cfg UnderlayConfig) *Underlay {
	t.Helper()
	RequirePrivileged(t)
	u, err := NewUnderlay(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range u.Hosts {
		h.NS.own(t)
	}
	if u.Switch != nil {
		u.Switch.own(t)
	}
	return u
}
