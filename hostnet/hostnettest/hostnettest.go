package hostnettest

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/vxtun/vxtun/hostnet"
)

// Method names for Fail.
const (
	ConfigureLink = "ConfigureLink"
	SetSysctl     = "SetSysctl"
	// SetForwardAccept's name for Fail.
	SetForwardAccept = "SetForwardAccept"
	Close            = "Close"
	// SetPeerFilter's name for Fail.
	SetPeerFilter = "SetPeerFilter"
)

// Fake is a hostnet.Host that keeps the host's state in memory. The zero
// value is not usable; call New.
type Fake struct {
	mu      sync.Mutex
	links   map[string]hostnet.Link
	sysctls map[string]string
	forward []netip.Prefix
	masq    *fakeMasq            // masq.go
	vxlans  map[string]*vxlanDev // vxlan.go
	pf      *peerFilter
	fail    map[string]error
	calls   []string
	closed  bool
	routes  routeState // SetPeerRoutes and OnLink (routes.go)
}

var _ hostnet.Host = (*Fake)(nil)

// New returns an empty Fake.
func New() *Fake {
	return &Fake{links: map[string]hostnet.Link{}, sysctls: map[string]string{}, fail: map[string]error{}}
}

// Fail makes the next call of method (ConfigureLink, SetSysctl,
// SetForwardAccept, SetPeerFilter, Close)
// return err without changing the state. A nil err clears it.
func (f *Fake) Fail(method string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil {
		delete(f.fail, method)
		return
	}
	f.fail[method] = err
}

// failing consumes a planned failure of method; callers hold mu.
func (f *Fake) failing(method string) error {
	f.calls = append(f.calls, method)
	err, ok := f.fail[method]
	if !ok {
		return nil
	}
	delete(f.fail, method)
	return err
}

// ConfigureLink records the link's configuration. Asking again merges:
// addresses and routes are added once, MTU replaced, the queue length only
// raised, as on a real host.
func (f *Fake) ConfigureLink(l hostnet.Link) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.failing(ConfigureLink); err != nil {
		return fmt.Errorf("configure %s: %w", l.Name, err)
	}
	if f.closed {
		return fmt.Errorf("configure %s: %w", l.Name, hostnet.ErrClosed)
	}
	cur, ok := f.links[l.Name]
	if !ok {
		cur = hostnet.Link{Name: l.Name}
	}
	if l.MTU > 0 {
		cur.MTU = l.MTU
	}
	cur.TxQueueLen = max(cur.TxQueueLen, l.TxQueueLen)
	for _, a := range l.Addrs {
		if !slices.Contains(cur.Addrs, a) {
			cur.Addrs = append(cur.Addrs, a)
		}
	}
	for _, r := range l.Routes {
		if !slices.Contains(cur.Routes, r.Masked()) {
			cur.Routes = append(cur.Routes, r.Masked())
		}
	}
	f.links[l.Name] = cur
	return nil
}

// SetSysctl records key=value.
func (f *Fake) SetSysctl(key, value string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.failing(SetSysctl); err != nil {
		return fmt.Errorf("sysctl %s=%s: %w", key, value, err)
	}
	if f.closed {
		return fmt.Errorf("sysctl %s: %w", key, hostnet.ErrClosed)
	}
	f.sysctls[key] = value
	return nil
}

// SetForwardAccept records networks (masked, deduplicated) as the
// forward-accept set, replacing the previous one.
func (f *Fake) SetForwardAccept(networks []netip.Prefix) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.failing(SetForwardAccept); err != nil {
		return fmt.Errorf("forward accept %v: %w", networks, err)
	}
	if f.closed {
		return fmt.Errorf("forward accept: %w", hostnet.ErrClosed)
	}
	var nets []netip.Prefix
	for _, p := range networks {
		if !p.IsValid() {
			return fmt.Errorf("forward accept: invalid network %v", p)
		}
		if !slices.Contains(nets, p.Masked()) {
			nets = append(nets, p.Masked())
		}
	}
	f.forward = nets
	return nil
}

// ForwardAccept returns the recorded forward-accept networks.
func (f *Fake) ForwardAccept() []netip.Prefix {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.forward)
}

// Changes describes the recorded state in the real Host's words, sorted
// by kind (links, then sysctls).
func (f *Fake) Changes() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, name := range slices.Sorted(maps.Keys(f.links)) {
		l := f.links[name]
		if l.MTU > 0 {
			out = append(out, fmt.Sprintf("mtu %d dev %s", l.MTU, name))
		}
		if l.TxQueueLen > 0 {
			out = append(out, fmt.Sprintf("txqueuelen %d dev %s", l.TxQueueLen, name))
		}
		for _, a := range l.Addrs {
			out = append(out, fmt.Sprintf("address %s dev %s", a, name))
		}
		for _, r := range l.Routes {
			out = append(out, fmt.Sprintf("route %s dev %s", r, name))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(f.sysctls)) {
		out = append(out, fmt.Sprintf("sysctl %s=%s", k, f.sysctls[k]))
	}
	if len(f.forward) > 0 {
		s := make([]string, len(f.forward))
		for i, p := range f.forward {
			s[i] = p.String()
		}
		out = append(out, "nftables forward accept "+strings.Join(s, " "))
	}
	if f.masq != nil && len(f.masq.nets) > 0 {
		s := make([]string, len(f.masq.nets))
		for i, m := range f.masq.nets {
			s[i] = m.String()
		}
		out = append(out, "nftables masquerade "+strings.Join(s, " "))
	}
	if f.pf != nil {
		out = append(out, fmt.Sprintf("nftables peer filter udp dport %d: drop sources other than %d peers", f.pf.port, len(f.pf.addrs)))
	}
	return append(out, f.vxlanChangesLocked()...)
}

// Close forgets all state, as the real Host undoes it. A planned failure
// is returned, but the state is still undone (as the real Host undoes what
// it can). Idempotent.
func (f *Fake) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	err := f.failing(Close)
	if f.closed {
		return nil
	}
	f.closed = true
	clear(f.links)
	clear(f.sysctls)
	clear(f.vxlans)
	f.forward = nil
	f.pf = nil
	if err != nil {
		return fmt.Errorf("undo host changes: %w", err)
	}
	return nil
}

// Link returns the recorded configuration of the link called name.
func (f *Fake) Link(name string) (hostnet.Link, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.links[name]
	l.Addrs, l.Routes = slices.Clone(l.Addrs), slices.Clone(l.Routes)
	return l, ok
}

// Sysctl returns the recorded value of key.
func (f *Fake) Sysctl(key string) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.sysctls[key]
	return v, ok
}

// Closed reports whether Close was called.
func (f *Fake) Closed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed
}

// Calls returns the names of the methods called so far (not the
// accessors), in order.
func (f *Fake) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// peerFilter is the recorded SetPeerFilter state.
type peerFilter struct {
	port  uint16
	addrs []netip.Addr // sorted, unmapped, unique
	drops uint64
}

// SetPeerFilter records the filter's port and addresses (unmapped, sorted,
// deduplicated), replacing the previous ones.
func (f *Fake) SetPeerFilter(port uint16, peers []netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.failing(SetPeerFilter); err != nil {
		return fmt.Errorf("peer filter: %w", err)
	}
	if f.closed {
		return fmt.Errorf("peer filter: %w", hostnet.ErrClosed)
	}
	if port == 0 {
		return fmt.Errorf("peer filter: port 0")
	}
	addrs := make([]netip.Addr, 0, len(peers))
	for _, a := range peers {
		if !a.IsValid() {
			return fmt.Errorf("peer filter: invalid address %v", a)
		}
		addrs = append(addrs, a.Unmap().WithZone(""))
	}
	slices.SortFunc(addrs, netip.Addr.Compare)
	addrs = slices.Compact(addrs)
	var drops uint64
	if f.pf != nil {
		drops = f.pf.drops
	}
	f.pf = &peerFilter{port: port, addrs: addrs, drops: drops}
	return nil
}

// PeerFilterDrops returns what AddPeerFilterDrops added (0 without a
// filter).
func (f *Fake) PeerFilterDrops() (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.pf == nil {
		return 0, nil
	}
	return f.pf.drops, nil
}

// AddPeerFilterDrops counts n datagrams as dropped by the filter, as the
// kernel would; without a filter it does nothing.
func (f *Fake) AddPeerFilterDrops(n uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.pf != nil {
		f.pf.drops += n
	}
}

// PeerFilter returns the recorded filter: its port and addresses; ok is
// false when no filter is set.
func (f *Fake) PeerFilter() (port uint16, addrs []netip.Addr, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.pf == nil {
		return 0, nil, false
	}
	return f.pf.port, slices.Clone(f.pf.addrs), true
}
