package registry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"

	"github.com/vxtun/vxtun/config"
)

// Optional capabilities of a Source. The node discovers them with type
// assertions, so a source implements only what it has and the node has no
// per-source branches.
type (
	// LeaseHolder is a source that assigns this node's subnet (etcd: a
	// lease under <prefix>/subnets/).
	LeaseHolder interface {
		// Acquire takes the lease if it is not held yet (one attempt; the
		// caller retries) and returns it.
		Acquire(ctx context.Context) (Lease, error)
		// Lease returns the lease held now, if any.
		Lease() (Lease, bool)
		// LeaseChanges delivers the lease when it is first taken and
		// whenever it changes (only the newest is kept).
		LeaseChanges() <-chan Lease
	}
	// Reloader is a source whose input can be re-read on request (the
	// static peers file, on SIGHUP). Reload does not block.
	Reloader interface {
		Reload()
	}
	// NetConfProvider is a source that keeps the network config itself
	// (etcd: <prefix>/config).
	NetConfProvider interface {
		NetConf(ctx context.Context) (*config.NetConf, error)
	}
	// SkipCounter is a source that counts the leases it logged and skipped
	// as unusable, by reason (etcd: SkipLoop, SkipOtherBackend, ...). Safe
	// from any goroutine.
	SkipCounter interface {
		SkippedLeases() map[string]uint64
	}
)

// Settings choose where peers come from and how to reach it: exactly one
// section is set. A new source adds a section here, a file beside this
// one, and a case in Traits and New.
type Settings struct {
	// PeersFile is the static peers file (static mode).
	PeersFile string
	// Etcd reaches flannel's etcd layout (etcd mode). PublicIP, VtepMAC
	// and Logger are filled in by New from its Node.
	Etcd *EtcdOptions
	// Kube reaches the Kubernetes API server (flanneld --kube-subnet-mgr):
	// Nodes and their flannel annotations. NetConf, PublicIP, VtepMAC and
	// Logger are filled in by New from its Node.
	Kube *KubeOptions
}

// Traits are what a node must know about a source before it can create it.
type Traits struct {
	// Kind names the source in messages ("static", "etcd").
	Kind string
	// LeasesSubnets: the source assigns this node's subnet (it is a
	// LeaseHolder), so the node settings must not name one.
	LeasesSubnets bool
	// KeepsNetConf: the source holds the network config (it is a
	// NetConfProvider); it is read from there unless a file is given.
	KeepsNetConf bool
	// IPv4Only: the source needs an IPv4 public IP.
	IPv4Only bool
}

// ErrNoSource is returned when Settings choose no source or several.
var ErrNoSource = errors.New("choose exactly one peer source")

// Traits describes the source s chooses.
func (s Settings) Traits() (Traits, error) {
	var set []string
	for _, on := range []struct {
		name string
		set  bool
	}{{"peers file", s.PeersFile != ""}, {"etcd", s.Etcd != nil}, {"kube", s.Kube != nil}} {
		if on.set {
			set = append(set, on.name)
		}
	}
	if len(set) > 1 {
		return Traits{}, fmt.Errorf("%s: %w", strings.Join(set, " and "), ErrNoSource)
	}
	switch {
	case s.PeersFile != "":
		return Traits{Kind: "static"}, nil
	case s.Etcd != nil:
		return Traits{Kind: "etcd", LeasesSubnets: true, KeepsNetConf: true, IPv4Only: true}, nil
	case s.Kube != nil:
		return Traits{Kind: "kube", LeasesSubnets: true, IPv4Only: true}, nil
	}
	return Traits{}, ErrNoSource
}

// Node is this node as a source sees it.
type Node struct {
	// NetConf is the network config. It may be nil only for a source
	// that keeps it (Traits.KeepsNetConf): such a source serves then only
	// as a NetConfProvider to read it, and is closed again.
	NetConf *config.NetConf
	// PublicIP is this node's underlay address.
	PublicIP netip.Addr
	// PublicIPv6 is this node's IPv6 underlay address next to the IPv4
	// PublicIP (--public-ipv6), or zero (etcd and kube sources).
	PublicIPv6 netip.Addr
	// VtepMAC is this node's VTEP MAC (vxlan), written into a lease.
	VtepMAC net.HardwareAddr
	// Subnets are this node's own subnets when it has them already
	// (static mode); peers may not overlap them.
	Subnets []netip.Prefix
	// Logger receives the source's log lines; nil means slog.Default().
	Logger *slog.Logger
}

// New creates the source s chooses, for node n. It is the one place that
// picks a source. A source that holds resources implements io.Closer; the
// caller closes it after Run returned.
//
// The static source reads and checks its file here, so a bad file is a
// startup error.
func New(s Settings, n Node) (Source, error) {
	tr, err := s.Traits()
	if err != nil {
		return nil, err
	}
	if n.NetConf == nil && !tr.KeepsNetConf {
		return nil, fmt.Errorf("%s peer source: no network config", tr.Kind)
	}
	switch {
	case s.PeersFile != "":
		if _, err := config.LoadPeersIn(s.PeersFile, config.PeerScope{Network: n.NetConf, Own: n.Subnets,
			Self: n.PublicIP, SelfMAC: n.VtepMAC}); err != nil {
			return nil, err
		}
		return NewStaticSource(s.PeersFile, n.NetConf, n.Subnets,
			StaticOptions{Logger: n.Logger, Self: n.PublicIP, SelfMAC: n.VtepMAC}), nil
	case s.Kube != nil:
		o := *s.Kube
		o.NetConf, o.PublicIP, o.PublicIPv6, o.VtepMAC, o.Logger = n.NetConf, n.PublicIP, n.PublicIPv6, n.VtepMAC, n.Logger
		return NewKubeSource(o)
	default: // etcd
		o := *s.Etcd
		o.PublicIP, o.PublicIPv6, o.VtepMAC, o.Logger = n.PublicIP, n.PublicIPv6, n.VtepMAC, n.Logger
		return NewEtcdSource(o)
	}
}

// The capabilities of the sources in this package.
var (
	_ Reloader        = (*StaticSource)(nil)
	_ LeaseHolder     = (*EtcdSource)(nil)
	_ NetConfProvider = (*EtcdSource)(nil)
	_ LeaseHolder     = (*KubeSource)(nil)
)

// String names the source in log lines ("the peers file /etc/vxtun/peers.json").
func (s *StaticSource) String() string { return "the peers file " + s.path }

// String names the source in log lines ("etcd /coreos.com/network").
func (s *EtcdSource) String() string { return "etcd " + s.opts.Prefix }
