package hostnettest

import (
	"fmt"
	"maps"
	"slices"

	"github.com/vxtun/vxtun/hostnet"
)

// Method names for Fail (the kernel vxlan device).
const (
	AddVXLAN      = "AddVXLAN"
	SetVXLANPeers = "SetVXLANPeers"
	LinkStats     = "LinkStats"
)

// vxlanDev is a recorded kernel vxlan device and its entries.
type vxlanDev struct {
	dev     hostnet.VXLAN
	entries hostnet.VXLANEntries
	stats   hostnet.LinkStats
}

// AddVXLAN records the device; a device of the same name is replaced, as
// on the real host. A link of that name recorded by ConfigureLink is
// ErrLinkExists.
func (f *Fake) AddVXLAN(d hostnet.VXLAN) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.failing(AddVXLAN); err != nil {
		return fmt.Errorf("create %s: %w", d, err)
	}
	if f.closed {
		return fmt.Errorf("vxlan %s: %w", d.Name, hostnet.ErrClosed)
	}
	if _, ok := f.links[d.Name]; ok {
		return fmt.Errorf("vxlan %s: %w", d.Name, hostnet.ErrLinkExists)
	}
	if f.vxlans == nil {
		f.vxlans = map[string]*vxlanDev{}
	}
	d.MAC = slices.Clone(d.MAC)
	d.Addrs = slices.Clone(d.Addrs)
	e, _ := hostnet.Entries(nil)
	f.vxlans[d.Name] = &vxlanDev{dev: d, entries: e}
	return nil
}

// SetVXLANPeers records the device's entries for peers.
func (f *Fake) SetVXLANPeers(name string, peers []hostnet.VXLANPeer) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.failing(SetVXLANPeers); err != nil {
		return fmt.Errorf("vxlan %s peers: %w", name, err)
	}
	if f.closed {
		return fmt.Errorf("vxlan %s peers: %w", name, hostnet.ErrClosed)
	}
	v, ok := f.vxlans[name]
	if !ok {
		return fmt.Errorf("vxlan %s peers: no such device", name)
	}
	e, err := hostnet.Entries(peers)
	if err != nil {
		return fmt.Errorf("vxlan %s peers: %w", name, err)
	}
	v.entries = e
	return nil
}

// LinkStats returns what SetLinkStats stored for the vxlan device name.
func (f *Fake) LinkStats(name string) (hostnet.LinkStats, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.failing(LinkStats); err != nil {
		return hostnet.LinkStats{}, fmt.Errorf("link stats %s: %w", name, err)
	}
	v, ok := f.vxlans[name]
	if !ok {
		return hostnet.LinkStats{}, fmt.Errorf("link stats %s: %w", name, hostnet.ErrNoSuchLink)
	}
	return v.stats, nil
}

// SetLinkStats sets the counters LinkStats reports for the vxlan device
// name; it reports whether there is such a device.
func (f *Fake) SetLinkStats(name string, s hostnet.LinkStats) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.vxlans[name]
	if ok {
		v.stats = s
	}
	return ok
}

// VXLAN returns the recorded vxlan device called name.
func (f *Fake) VXLAN(name string) (hostnet.VXLAN, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.vxlans[name]
	if !ok {
		return hostnet.VXLAN{}, false
	}
	d := v.dev
	d.MAC, d.Addrs = slices.Clone(d.MAC), slices.Clone(d.Addrs)
	return d, true
}

// VXLANEntries returns the device's entries in ip(8)'s words
// (hostnet.VXLANEntries.Lines), sorted; nil if there is no such device.
func (f *Fake) VXLANEntries(name string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.vxlans[name]
	if !ok {
		return nil
	}
	return v.entries.Lines(name)
}

// vxlanChangesLocked describes the vxlan devices for Changes; callers
// hold mu.
func (f *Fake) vxlanChangesLocked() []string {
	var out []string
	for _, name := range slices.Sorted(maps.Keys(f.vxlans)) {
		v := f.vxlans[name]
		out = append(out, v.dev.String())
		out = append(out, v.entries.Lines(name)...)
	}
	return out
}

// DeleteVXLAN forgets the vxlan device name, as if someone had deleted it
// behind vxtun's back; it reports whether there was one.
func (f *Fake) DeleteVXLAN(name string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.vxlans[name]
	delete(f.vxlans, name)
	return ok
}
