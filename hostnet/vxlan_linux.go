package hostnet

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// The kernel vxlan device, programmed as flanneld's vxlan backend programs
// flannel.<VNI> (pkg/backend/vxlan: device.go, vxlan_network.go): netlink
// link "vxlan" with VNI, local, dev, dstport and learning off (GBP if
// asked), <subnet>.0/32, up; per remote lease a permanent neighbour entry,
// a permanent fdb entry (NTF_SELF) and an onlink route.

func (h *host) AddVXLAN(d VXLAN) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return fmt.Errorf("vxlan %s: %w", d.Name, ErrClosed)
	}
	if err := d.check(); err != nil {
		return fmt.Errorf("vxlan %s: %w", d.Name, err)
	}
	parent := 0
	if d.Dev != "" {
		l, err := netlink.LinkByName(d.Dev)
		if err != nil {
			return fmt.Errorf("vxlan %s: underlay %s: %w", d.Name, d.Dev, err)
		}
		parent = l.Attrs().Index
	}
	if old, err := netlink.LinkByName(d.Name); err == nil {
		if _, ok := old.(*netlink.Vxlan); !ok {
			return fmt.Errorf("vxlan %s: %w (%s)", d.Name, ErrLinkExists, old.Type())
		}
		// Left by a crashed vxtun or by flanneld: start from a clean
		// device, so that Close removes all of it.
		if err := netlink.LinkDel(old); err != nil {
			return fmt.Errorf("vxlan %s: delete the old device: %w", d.Name, err)
		}
	}
	var local net.IP
	if d.Local.IsValid() {
		local = d.Local.AsSlice()
	}
	link := &netlink.Vxlan{
		LinkAttrs:    netlink.LinkAttrs{Name: d.Name, HardwareAddr: d.MAC, MTU: d.MTU},
		VxlanId:      int(d.VNI),
		VtepDevIndex: parent,
		SrcAddr:      local,
		Port:         int(d.Port),
		Learning:     false,
		GBP:          d.GBP,
	}
	if err := netlink.LinkAdd(link); err != nil {
		return fmt.Errorf("create %s: %w", d, explainVXLAN(err))
	}
	mark := len(h.undo)
	name := d.Name
	h.record(d.String(), func() error {
		return linkGone(name, func(l netlink.Link) error {
			if err := netlink.LinkDel(l); err != nil {
				return fmt.Errorf("delete vxlan %s: %w", name, err)
			}
			return nil
		})
	})
	fail := func(err error) error {
		h.rollback(mark)
		return fmt.Errorf("vxlan %s: %w", name, err)
	}
	l, err := netlink.LinkByName(name)
	if err != nil {
		return fail(err)
	}
	// As flanneld: no router advertisements on the device. The settings
	// go with the device, so they need no undo.
	sysctls := []struct{ key, value string }{{"accept_ra", "0"}}
	if d.DisableIPv6 {
		sysctls = append(sysctls, struct{ key, value string }{"disable_ipv6", "1"})
	}
	for _, s := range sysctls {
		path := "/proc/sys/net/ipv6/conf/" + name + "/" + s.key
		if err := os.WriteFile(path, []byte(s.value), 0o644); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fail(fmt.Errorf("sysctl %s: %w", s.key, err))
		}
	}
	for _, a := range d.Addrs {
		if err := netlink.AddrAdd(l, &netlink.Addr{IPNet: prefixNet(a)}); err != nil && !errors.Is(err, unix.EEXIST) {
			return fail(fmt.Errorf("address %s: %w", a, err))
		}
	}
	if err := netlink.LinkSetUp(l); err != nil {
		if errors.Is(err, unix.EADDRINUSE) {
			return fail(fmt.Errorf("link up: %w (udp port %d is bound by another socket)", err, d.Port))
		}
		return fail(fmt.Errorf("link up: %w", err))
	}
	return nil
}

// explainVXLAN adds the likely cause to a failure to create the device.
func explainVXLAN(err error) error {
	switch {
	case errors.Is(err, unix.EOPNOTSUPP), errors.Is(err, unix.ENOTSUP):
		return fmt.Errorf("%w (no vxlan support in this kernel: modprobe vxlan)", err)
	case errors.Is(err, unix.EEXIST):
		return fmt.Errorf("%w (another vxlan device has this VNI and port)", err)
	case errors.Is(err, unix.EPERM):
		return fmt.Errorf("%w (needs root or CAP_NET_ADMIN)", err)
	}
	return err
}

// vxlanFullSync bounds how long SetVXLANPeers trusts its record of a
// device's entries: after that (and after any failure, or when the device
// was recreated) it lists the device's entries again and repairs what was
// changed behind its back.
var vxlanFullSync = time.Minute // a variable for the tests

// vxlanSynced is what SetVXLANPeers last applied to a device.
type vxlanSynced struct {
	index   int
	entries VXLANEntries
	at      time.Time // of the last full sync
}

func (h *host) SetVXLANPeers(name string, peers []VXLANPeer) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return fmt.Errorf("vxlan %s peers: %w", name, ErrClosed)
	}
	want, err := Entries(peers)
	if err != nil {
		return fmt.Errorf("vxlan %s peers: %w", name, err)
	}
	l, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("vxlan %s peers: %w", name, err)
	}
	index := l.Attrs().Index
	// A one-peer change of a large set touches one peer's entries instead
	// of listing every route, neighbour and fdb entry of the device.
	last := h.vxlan[name]
	if last != nil && last.index == index && time.Since(last.at) < vxlanFullSync {
		err = diffVXLAN(index, last.entries, want)
	} else {
		last = &vxlanSynced{index: index, at: time.Now()}
		err = syncVXLAN(index, want)
	}
	if err != nil {
		delete(h.vxlan, name) // list again next time
		return fmt.Errorf("vxlan %s peers: %w", name, err)
	}
	last.entries = want
	if h.vxlan == nil {
		h.vxlan = map[string]*vxlanSynced{}
	}
	h.vxlan[name] = last
	return nil
}

// diffVXLAN changes the device's entries from have (applied before) into
// want, in syncVXLAN's order, touching only what differs.
func diffVXLAN(index int, have, want VXLANEntries) error {
	for dst, gw := range have.Route {
		if _, keep := want.Route[dst]; keep {
			continue // replaced below if changed
		}
		r := &netlink.Route{LinkIndex: index, Dst: prefixNet(dst), Gw: gw.AsSlice(), Table: unix.RT_TABLE_MAIN}
		if err := netlink.RouteDel(r); err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("delete route %s via %s: %w", dst, gw, err)
		}
	}
	for ip := range have.Neigh {
		if _, keep := want.Neigh[ip]; keep {
			continue
		}
		if err := netlink.NeighDel(&netlink.Neigh{LinkIndex: index, IP: ip.AsSlice(), Family: netlink.FAMILY_V4}); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("delete neighbour %s: %w", ip, err)
		}
	}
	for mac, ip := range have.FDB {
		if _, keep := want.FDB[mac]; keep {
			continue
		}
		hw, _ := net.ParseMAC(mac)
		if err := netlink.NeighDel(&netlink.Neigh{LinkIndex: index, Family: unix.AF_BRIDGE, Flags: netlink.NTF_SELF,
			IP: ip.AsSlice(), HardwareAddr: hw}); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("delete fdb %s dst %s: %w", mac, ip, err)
		}
	}
	for ip, mac := range want.Neigh {
		if m, ok := have.Neigh[ip]; ok && m == mac {
			continue
		}
		if err := setNeigh(index, ip, mac); err != nil {
			return err
		}
	}
	for mac, ip := range want.FDB {
		if i, ok := have.FDB[mac]; ok && i == ip {
			continue
		}
		if err := setFDB(index, mac, ip); err != nil {
			return err
		}
	}
	for dst, gw := range want.Route {
		if g, ok := have.Route[dst]; ok && g == gw {
			continue
		}
		if err := replaceRoute(index, dst, gw); err != nil {
			return err
		}
	}
	return nil
}

// setNeigh, setFDB and replaceRoute add or replace one entry, as flanneld
// programs them.
func setNeigh(index int, ip netip.Addr, mac string) error {
	hw, _ := net.ParseMAC(mac)
	if err := netlink.NeighSet(&netlink.Neigh{LinkIndex: index, State: netlink.NUD_PERMANENT, Type: unix.RTN_UNICAST,
		IP: ip.AsSlice(), HardwareAddr: hw}); err != nil {
		return fmt.Errorf("neighbour %s lladdr %s: %w", ip, mac, err)
	}
	return nil
}

func setFDB(index int, mac string, ip netip.Addr) error {
	hw, _ := net.ParseMAC(mac)
	if err := netlink.NeighSet(&netlink.Neigh{LinkIndex: index, State: netlink.NUD_PERMANENT, Family: unix.AF_BRIDGE,
		Flags: netlink.NTF_SELF, IP: ip.AsSlice(), HardwareAddr: hw}); err != nil {
		return fmt.Errorf("fdb %s dst %s: %w", mac, ip, err)
	}
	return nil
}

func replaceRoute(index int, dst netip.Prefix, gw netip.Addr) error {
	r := &netlink.Route{LinkIndex: index, Dst: prefixNet(dst), Gw: gw.AsSlice(), Flags: int(netlink.FLAG_ONLINK),
		Scope: netlink.SCOPE_UNIVERSE}
	if err := netlink.RouteReplace(r); err != nil {
		return fmt.Errorf("route %s via %s onlink: %w", dst, gw, err)
	}
	return nil
}

// syncVXLAN changes the device's entries into want. Removals go first
// (route, neighbour, fdb, as flanneld removes a lease), then additions
// (neighbour, fdb, route, as flanneld adds one).
func syncVXLAN(index int, want VXLANEntries) error {
	neighs, err := netlink.NeighList(index, netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("list neighbours: %w", err)
	}
	fdbs, err := netlink.NeighList(index, unix.AF_BRIDGE)
	if err != nil {
		return fmt.Errorf("list fdb: %w", err)
	}
	routes, err := netlink.RouteListFiltered(netlink.FAMILY_V4,
		&netlink.Route{LinkIndex: index, Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_OIF|netlink.RT_FILTER_TABLE)
	if err != nil {
		return fmt.Errorf("list routes: %w", err)
	}

	haveRoute := map[netip.Prefix]bool{}
	for _, r := range routes {
		if r.Dst == nil || r.Gw == nil {
			continue // not one of ours (e.g. a kernel route)
		}
		dst, gw := netPrefix(r.Dst), addrOf(r.Gw)
		if want.Route[dst] == gw && r.Flags&int(netlink.FLAG_ONLINK) != 0 {
			haveRoute[dst] = true
			continue
		}
		if _, keep := want.Route[dst]; keep {
			continue // replaced below
		}
		if err := netlink.RouteDel(&r); err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("delete route %s via %s: %w", dst, gw, err)
		}
	}
	haveNeigh := map[netip.Addr]bool{}
	for _, n := range neighs {
		ip := addrOf(n.IP)
		if mac, ok := want.Neigh[ip]; ok {
			haveNeigh[ip] = n.State == netlink.NUD_PERMANENT && n.HardwareAddr.String() == mac
			continue
		}
		if n.State != netlink.NUD_PERMANENT {
			continue // the kernel's own
		}
		if err := netlink.NeighDel(&n); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("delete neighbour %s: %w", ip, err)
		}
	}
	haveFDB := map[string]bool{}
	for _, f := range fdbs {
		mac := f.HardwareAddr.String()
		if ip, ok := want.FDB[mac]; ok {
			if addrOf(f.IP) == ip && f.State&netlink.NUD_PERMANENT != 0 {
				haveFDB[mac] = true
			}
			continue
		}
		f.Family, f.Flags = unix.AF_BRIDGE, netlink.NTF_SELF
		if err := netlink.NeighDel(&f); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("delete fdb %s dst %s: %w", mac, addrOf(f.IP), err)
		}
	}

	for ip, mac := range want.Neigh {
		if haveNeigh[ip] {
			continue
		}
		if err := setNeigh(index, ip, mac); err != nil {
			return err
		}
	}
	for mac, ip := range want.FDB {
		if haveFDB[mac] {
			continue
		}
		if err := setFDB(index, mac, ip); err != nil {
			return err
		}
	}
	for dst, gw := range want.Route {
		if haveRoute[dst] {
			continue
		}
		if err := replaceRoute(index, dst, gw); err != nil {
			return err
		}
	}
	return nil
}

func (h *host) LinkStats(name string) (LinkStats, error) {
	l, err := netlink.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return LinkStats{}, fmt.Errorf("link stats %s: %w", name, ErrNoSuchLink)
		}
		return LinkStats{}, fmt.Errorf("link stats %s: %w", name, err)
	}
	s := l.Attrs().Statistics
	if s == nil {
		return LinkStats{}, fmt.Errorf("link stats %s: the kernel reported none", name)
	}
	return LinkStats{
		RxPackets: s.RxPackets, RxBytes: s.RxBytes, TxPackets: s.TxPackets, TxBytes: s.TxBytes,
		RxDropped: s.RxDropped, TxDropped: s.TxDropped, RxErrors: s.RxErrors, TxErrors: s.TxErrors,
	}, nil
}

// netPrefix converts a netlink destination.
func netPrefix(n *net.IPNet) netip.Prefix {
	a := addrOf(n.IP)
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a, ones)
}

// addrOf converts a netlink address (4- or 16-byte IPv4) to netip.
func addrOf(ip net.IP) netip.Addr {
	a, _ := netip.AddrFromSlice(ip)
	return a.Unmap()
}
