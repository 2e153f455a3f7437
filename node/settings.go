package node

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"time"

	"github.com/vxtun/vxtun/config"
	"github.com/vxtun/vxtun/dataplane"
	"github.com/vxtun/vxtun/internal/backoff"
	"github.com/vxtun/vxtun/registry"
)

// startupBackoff paces the retries of startup steps that wait for the peer
// source (reading the network config, taking the lease).
var startupBackoff = backoff.Backoff{Min: 250 * time.Millisecond, Max: 10 * time.Second}

// settings are the node's resolved settings. Fixed once resolve returned,
// except subnet (a lease move changes it; the run loop owns it).
type settings struct {
	nc       *config.NetConf
	node     *config.Node
	traits   registry.Traits
	underlay config.Underlay
	// underlay6 is the second, IPv6 underlay's address (underlay6.go), or
	// zero; local6 tells whether it is assigned here.
	underlay6 netip.Addr
	local6    bool
	mtu6      config.WireMTU // its interface's wire MTU, 0 if unknown
	mac       net.HardwareAddr
	subnet    netip.Prefix // own IPv4 subnet
	subnet6   netip.Prefix // own IPv6 subnet (node file, or the lease with EnableIPv6)
	mtu       config.TunMTU
	port      uint16
}

// retry retries fn with the startup backoff, logging each failure.
func (n *Node) retry(ctx context.Context, what string, fn func() error) error {
	_, err := backoff.Retry(ctx, startupBackoff, func() (struct{}, error) { return struct{}{}, fn() },
		func(err error, wait time.Duration) {
			n.log.Warn(what+" (retrying)", "err", err, "retry-in", wait)
		})
	return err
}

// resolve reads and checks every setting, creates the peer source and, if
// it leases subnets, takes the lease. On success n.src is set.
func (n *Node) resolve(ctx context.Context) (*settings, error) {
	c := n.cfg
	s := &settings{}
	var err error
	if s.traits, err = c.Registry.Traits(); err != nil {
		return nil, err
	}
	if c.NodeFile != "" {
		if s.node, err = config.LoadNode(c.NodeFile); err != nil {
			return nil, err
		}
	} else {
		// No node file: the node is described by PublicIP and Iface.
		var ip string
		if c.PublicIP.IsValid() {
			ip = c.PublicIP.String()
		}
		j, err := json.Marshal(struct{ PublicIP, Iface string }{ip, c.Iface})
		if err != nil {
			return nil, fmt.Errorf("node from flags: %w", err)
		}
		if s.node, err = config.ParseNode("command line", j); err != nil {
			return nil, err
		}
	}
	nd := s.node
	mergeOverrides(nd, c)
	if s.underlay, err = nd.ResolveUnderlay(); err != nil {
		return nil, err
	}
	if !s.underlay.IP.IsValid() {
		return nil, fmt.Errorf("no underlay address: set PublicIP, --public-ip or --iface")
	}
	kind := s.traits.Kind
	if s.traits.LeasesSubnets && (nd.Subnet.IsValid() || nd.IPv6Subnet.IsValid()) {
		return nil, fmt.Errorf("%s: Subnet: must not be set in %s mode (the subnet comes from the lease)", nd.File, kind)
	}
	if s.traits.IPv4Only && !s.underlay.IP.Is4() {
		return nil, fmt.Errorf("%s mode needs an IPv4 public IP, got %s", kind, s.underlay.IP)
	}

	if s.nc, err = n.netConf(ctx, s); err != nil {
		return nil, err
	}
	if s.traits.LeasesSubnets && s.nc.Backend.Type == config.BackendVXLAN && nd.VtepMAC == nil && nd.VtepMACFile == "" {
		nd.VtepMACFile = DefaultVtepMACFile
	}
	if err := nd.Validate(s.nc); err != nil {
		return nil, err
	}
	if err := s.nc.CheckUnderlay(s.underlay.IP); err != nil {
		return nil, err
	}
	if err := n.resolveUnderlay6(s, nd); err != nil {
		return nil, err
	}
	if !s.traits.LeasesSubnets {
		if s.nc.EnableIPv4 && !nd.Subnet.IsValid() {
			return nil, fmt.Errorf("%s: Subnet: missing: %s mode needs this node's subnet", nd.File, kind)
		}
		if s.nc.EnableIPv6 && !nd.IPv6Subnet.IsValid() {
			return nil, fmt.Errorf("%s: IPv6Subnet: missing: EnableIPv6 is set in %s", nd.File, s.nc.File)
		}
		s.subnet, s.subnet6 = nd.Subnet, nd.IPv6Subnet
	}
	if s.nc.Backend.Type == config.BackendVXLAN {
		if s.mac, err = nd.ResolveVtepMAC(); err != nil {
			return nil, err
		}
	}
	s.mtu = s.tunMTU()
	if s.mtu < config.MinTunMTU {
		return nil, fmt.Errorf("underlay MTU %d (IPv6 underlay: %d) leaves no room for %s encapsulation", s.underlay.MTU, s.mtu6, s.nc.Backend.Type)
	}
	s.port = nd.Port(s.nc)
	if _, check := c.opener(s.nc); check != nil {
		if err := check(n.dataplaneConfig(s)); err != nil {
			return nil, err
		}
	}

	src, err := c.NewSource(c.Registry, registry.Node{
		NetConf: s.nc, PublicIP: s.underlay.IP, PublicIPv6: s.underlay6, VtepMAC: s.mac, Subnets: nd.OwnSubnets(), Logger: n.log,
	})
	if err != nil {
		return nil, err
	}
	n.src = src
	if sc, ok := src.(registry.SkipCounter); ok {
		n.skips.Store(&skipRef{sc})
	}
	if lh, ok := src.(registry.LeaseHolder); ok {
		if err := n.takeLease(ctx, s, lh, src); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// mergeOverrides applies the Config's overrides to the node file's settings.
func mergeOverrides(nd *config.Node, c Config) {
	switch {
	case c.PublicIP.IsValid():
		nd.PublicIP = c.PublicIP.Unmap()
		if c.Iface != "" {
			nd.Iface = c.Iface
		}
	case c.Iface != "":
		nd.Iface = c.Iface
		nd.PublicIP = netip.Addr{} // from the interface
	}
	if c.PublicIPv6.IsValid() {
		nd.PublicIPv6 = c.PublicIPv6
	}
	if c.TunName != "" {
		nd.TunName = c.TunName
	}
	if c.Workers > 0 {
		nd.Workers = c.Workers
	}
	if c.SubnetFile != "" {
		nd.SubnetFile = c.SubnetFile
	}
	if c.ListenPort > 0 {
		nd.ListenPort = c.ListenPort
	}
	if c.VtepMACFile != "" {
		nd.VtepMAC, nd.VtepMACFile = nil, c.VtepMACFile
	}
	if c.IPMasq {
		nd.IPMasq = true
	}
}

// netConf loads the network config: the file if one is given, else from a
// peer source that keeps it (a probe source, closed again), else the
// default file.
func (n *Node) netConf(ctx context.Context, s *settings) (*config.NetConf, error) {
	c := n.cfg
	if c.NetConfFile != "" {
		return config.LoadNetConf(c.NetConfFile)
	}
	if !s.traits.KeepsNetConf {
		return config.LoadNetConf(config.DefaultNetConfPath)
	}
	probe, err := c.NewSource(c.Registry, registry.Node{PublicIP: s.underlay.IP, Logger: n.log})
	if err != nil {
		return nil, err
	}
	defer closeSource(probe)
	np, ok := probe.(registry.NetConfProvider)
	if !ok {
		return nil, fmt.Errorf("%s peer source keeps no network config: give a net-conf file", s.traits.Kind)
	}
	var nc *config.NetConf
	err = n.retry(ctx, "read network config from "+s.traits.Kind, func() error {
		var err error
		nc, err = np.NetConf(ctx)
		return err
	})
	return nc, err
}

// takeLease acquires the subnet lease and checks it against the network
// config in use.
func (n *Node) takeLease(ctx context.Context, s *settings, lh registry.LeaseHolder, src registry.Source) error {
	var lease registry.Lease
	if err := n.retry(ctx, "acquire subnet lease", func() error {
		var err error
		lease, err = lh.Acquire(ctx)
		return err
	}); err != nil {
		return err
	}
	if lease.NetConf != nil {
		if n.cfg.NetConfFile != "" {
			if lease.NetConf.Network != s.nc.Network || lease.NetConf.Backend.Type != s.nc.Backend.Type {
				return fmt.Errorf("--net-conf %s (Network %s, backend %s) disagrees with the network config of %s (Network %s, backend %s)",
					n.cfg.NetConfFile, s.nc.Network, s.nc.Backend.Type, describe(src), lease.NetConf.Network, lease.NetConf.Backend.Type)
			}
		} else {
			s.nc = lease.NetConf
		}
	}
	s.subnet, s.subnet6 = lease.Subnet, lease.Subnet6
	n.log.Info("holding subnet lease", "lease", lease.Name, "subnet", lease.Subnet.String(), "reservation", lease.Reservation)
	return nil
}

// checkLeaseNetConf refuses a new lease taken under a network config that
// the running dataplane was not set up for: its subnet may lie outside the
// routed Network, or the encapsulation may differ. The node then stops with
// an error, so that a restart reads the new config. With a net-conf file
// only the Network and the backend type are compared, as at startup.
func (n *Node) checkLeaseNetConf(s *settings, nc *config.NetConf) error {
	if nc == nil {
		return nil
	}
	same := nc.Network == s.nc.Network && nc.Backend.Type == s.nc.Backend.Type
	if n.cfg.NetConfFile == "" {
		same = same && nc.SubnetLen == s.nc.SubnetLen && nc.Backend == s.nc.Backend
	}
	if same {
		return nil
	}
	return fmt.Errorf("network config in %s changed (Network %s, backend %+v; running with Network %s, backend %+v): restart vxtun to apply it",
		s.traits.Kind, nc.Network, nc.Backend, s.nc.Network, s.nc.Backend)
}

// listenAddr is the underlay address the dataplane binds: the public IP
// when it is assigned here, else the wildcard (the public IP is then a NAT
// address, as flanneld's --public-ip allows).
func (s *settings) listenAddr() netip.AddrPort {
	ip := s.underlay.IP
	if !s.underlay.Local {
		ip = netip.IPv4Unspecified()
		if s.underlay.IP.Is6() {
			ip = netip.IPv6Unspecified()
		}
	}
	return netip.AddrPortFrom(ip, s.port)
}

// dataplaneConfig is the dataplane's config for the current subnet(s);
// Host is left to the caller.
func (n *Node) dataplaneConfig(s *settings) dataplane.Config {
	return dataplane.Config{
		NetConf:       s.nc,
		Subnet:        s.subnet,
		Subnet6:       s.subnet6,
		Underlay:      s.underlay,
		ListenAddr:    s.listenAddr(),
		ListenAddr6:   s.listenAddr6(),
		VtepMAC:       s.mac,
		DeviceName:    s.node.TunName,
		Workers:       s.node.Workers,
		MTU:           s.mtu,
		BusyPoll:      n.cfg.BusyPoll,
		BusyPollIdle:  n.cfg.BusyPollIdle,
		BusyPollAhead: n.cfg.BusyPollAhead,
		CPULocal:      n.cfg.CPULocal,
		Logger:        n.log,
	}
}

// closeSource closes src if it holds resources.
func closeSource(src registry.Source) {
	if c, ok := src.(io.Closer); ok {
		_ = c.Close()
	}
}

// describe names a source for log lines.
func describe(src registry.Source) string {
	if s, ok := src.(fmt.Stringer); ok {
		return s.String()
	}
	return fmt.Sprintf("%T", src)
}
