package registry

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/vxtun/vxtun/config"
)

// flannel's Kubernetes layout (flanneld --kube-subnet-mgr), as flanneld
// reads and writes it. A node's subnet is its spec.podCIDRs (one per
// family) or spec.podCIDR, assigned by the node controller; flanneld adds
// annotations to the Node, prefix flannel.alpha.coreos.com/:
//
//	kube-subnet-manager: "true"
//	backend-type:        "vxlan"
//	backend-data:        {"VNI":1,"VtepMAC":"0e:76:78:00:00:01"}   (udp: null)
//	public-ip:           "198.18.0.1"
//	backend-v6-data, public-ipv6                                  (dual stack)
//
// public-ip-overwrite and public-ipv6-overwrite are set by an operator and
// only read: the node publishes that address as its public-ip.

// DefaultAnnotationPrefix is flanneld's --kube-annotation-prefix.
const DefaultAnnotationPrefix = "flannel.alpha.coreos.com"

// ErrBadAnnotationPrefix is a --kube-annotation-prefix flanneld would
// refuse.
var ErrBadAnnotationPrefix = errors.New("bad annotation prefix")

// annotationPrefixRE is flanneld's check of a normalised prefix: a DNS
// name, one slash, and optionally a name part ending in '-'. Anchored at
// the start, unlike flanneld's, so that a prefix the API server would
// refuse ("Example.com") fails at startup.
var annotationPrefixRE = regexp.MustCompile(`^(?:[a-z0-9_-]+\.)+[a-z0-9_-]+/(?:[a-z0-9_-]+-)?$`)

// kubeAnnotations are the full annotation keys for one prefix.
type kubeAnnotations struct {
	Managed, BackendType, BackendData, PublicIP string
	BackendV6Data, PublicIPv6                   string
	PublicIPOverwrite, PublicIPv6Overwrite      string
}

// newKubeAnnotations normalises prefix as flanneld does ("example.com"
// becomes "example.com/", "example.com/x" becomes "example.com/x-") and
// returns the keys.
func newKubeAnnotations(prefix string) (kubeAnnotations, error) {
	if prefix == "" {
		prefix = DefaultAnnotationPrefix
	}
	switch n := strings.Count(prefix, "/"); {
	case n > 1:
		return kubeAnnotations{}, fmt.Errorf("%w %q: at most one slash", ErrBadAnnotationPrefix, prefix)
	case n == 0:
		prefix += "/"
	}
	if !strings.HasSuffix(prefix, "/") && !strings.HasSuffix(prefix, "-") {
		prefix += "-"
	}
	if !annotationPrefixRE.MatchString(prefix) {
		return kubeAnnotations{}, fmt.Errorf("%w %q: want fqdn/[0-9a-z-_]*", ErrBadAnnotationPrefix, prefix)
	}
	return kubeAnnotations{
		Managed:             prefix + "kube-subnet-manager",
		BackendType:         prefix + "backend-type",
		BackendData:         prefix + "backend-data",
		PublicIP:            prefix + "public-ip",
		BackendV6Data:       prefix + "backend-v6-data",
		PublicIPv6:          prefix + "public-ipv6",
		PublicIPOverwrite:   prefix + "public-ip-overwrite",
		PublicIPv6Overwrite: prefix + "public-ipv6-overwrite",
	}, nil
}

// Errors of the Kubernetes layout.
var (
	// ErrNoPodCIDR: the Node has no spec.podCIDR yet (the node controller
	// assigns it shortly after the node registers).
	ErrNoPodCIDR = errors.New("pod cidr not assigned")
	// ErrBadNode: a Node's pod CIDRs or flannel annotations are malformed.
	ErrBadNode = errors.New("bad node")
)

// podCIDRs returns the node's IPv4 and IPv6 pod subnets (either may be
// invalid: not assigned), read as flanneld reads them: spec.podCIDRs (at
// most one per family) or, when empty, spec.podCIDR.
func podCIDRs(n *corev1.Node) (v4, v6 netip.Prefix, err error) {
	cidrs := n.Spec.PodCIDRs
	if len(cidrs) == 0 && n.Spec.PodCIDR != "" {
		cidrs = []string{n.Spec.PodCIDR}
	}
	if len(cidrs) == 0 {
		return v4, v6, ErrNoPodCIDR
	}
	if len(cidrs) > 2 {
		return v4, v6, fmt.Errorf("%w: %d pod cidrs: want IPv4, IPv6 or one of each", ErrBadNode, len(cidrs))
	}
	for _, c := range cidrs {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return netip.Prefix{}, netip.Prefix{}, fmt.Errorf("%w: pod cidr %q: %v", ErrBadNode, c, err)
		}
		p = p.Masked()
		dst := &v4
		if !p.Addr().Is4() {
			dst = &v6
		}
		if dst.IsValid() {
			return netip.Prefix{}, netip.Prefix{}, fmt.Errorf("%w: two pod cidrs of one family (%s, %s)", ErrBadNode, *dst, p)
		}
		*dst = p
	}
	return v4, v6, nil
}

// ownAnnotations are the annotations this node publishes: exactly what
// flanneld writes for an IPv4 node of the backend (vxlan: backend-data
// {"VNI":n,"VtepMAC":"…"}; udp: backend-data null). publicIP is the
// address to publish (the overwrite annotation's, when set).
func ownAnnotations(k kubeAnnotations, backend config.Backend, vni uint32, mac net.HardwareAddr, publicIP netip.Addr) (map[string]string, error) {
	data := []byte("null")
	switch backend {
	case config.BackendUDP:
	case config.BackendVXLAN:
		if err := config.CheckVtepMAC(mac); err != nil {
			return nil, fmt.Errorf("backend data: VtepMAC: %w", err)
		}
		var err error
		if data, err = json.Marshal(vxlanData{VNI: vni, VtepMAC: mac.String()}); err != nil {
			return nil, fmt.Errorf("backend data: %w", err)
		}
	default:
		return nil, fmt.Errorf("%w: %q", ErrUnsupportedBackend, backend)
	}
	return map[string]string{
		k.Managed:     "true",
		k.BackendType: string(backend),
		k.BackendData: string(data),
		k.PublicIP:    publicIP.String(),
	}, nil
}

// errNotManaged marks a Node without kube-subnet-manager "true": not a
// flannel node, ignored without a log line.
var errNotManaged = errors.New("not managed by a kube subnet manager")

// nodePeer turns a Node into a peer of a node whose network config is nc:
// a Node with kube-subnet-manager "true", backend-type nc's backend, a
// unicast IPv4 public-ip, valid backend-data (vxlan) and an IPv4 pod cidr
// inside Network. errNotManaged for Nodes that are not flannel's; errors
// wrapping errSkip for well-formed ones of no use here (another backend, a
// subnet outside the network), ErrBadNode for malformed ones.
func nodePeer(k kubeAnnotations, nc *config.NetConf, n *corev1.Node) (config.Peer, error) {
	a := n.Annotations
	if a[k.Managed] != "true" {
		return config.Peer{}, errNotManaged
	}
	bt := a[k.BackendType]
	if bt != string(nc.Backend.Type) {
		return config.Peer{}, fmt.Errorf("%w: backend-type %q, this network uses %s", errSkip, bt, nc.Backend.Type)
	}
	ip, err := netip.ParseAddr(a[k.PublicIP])
	if err != nil || !ip.Is4() {
		return config.Peer{}, fmt.Errorf("%w: public-ip %q is not an IPv4 address", ErrBadNode, a[k.PublicIP])
	}
	sn, _, err := podCIDRs(n)
	if err != nil {
		if errors.Is(err, ErrNoPodCIDR) {
			return config.Peer{}, fmt.Errorf("%w: %w", ErrBadNode, err)
		}
		return config.Peer{}, err
	}
	if !sn.IsValid() {
		return config.Peer{}, fmt.Errorf("%w: no IPv4 pod cidr (%v)", ErrBadNode, n.Spec.PodCIDRs)
	}
	p := config.Peer{
		Name:     n.Name,
		PublicIP: ip,
		Port:     nc.Backend.Port,
		Subnets:  []netip.Prefix{sn},
		Backend:  nc.Backend.Type,
	}
	if nc.Backend.Type == config.BackendVXLAN {
		raw := a[k.BackendData]
		var d vxlanData
		if raw == "" || raw == "null" {
			return config.Peer{}, fmt.Errorf("%w: vxlan node without backend-data", ErrBadNode)
		}
		if err := json.Unmarshal([]byte(raw), &d); err != nil {
			return config.Peer{}, fmt.Errorf("%w: backend-data: %v", ErrBadNode, err)
		}
		if d.VNI > config.MaxVNI {
			return config.Peer{}, fmt.Errorf("%w: backend-data: VNI %d out of range", ErrBadNode, d.VNI)
		}
		mac, err := config.ParseVtepMAC(d.VtepMAC)
		if err != nil {
			return config.Peer{}, fmt.Errorf("%w: backend-data: VtepMAC: %v", ErrBadNode, err)
		}
		p.VNI, p.VtepMAC = d.VNI, mac
		if p.VNI == 0 {
			p.VNI = nc.Backend.VNI
		}
	}
	if err := p.Check(config.PeerScope{Network: nc, IPv4Only: true}); err != nil {
		if errors.Is(err, config.ErrForeignPeer) {
			return config.Peer{}, fmt.Errorf("%w: %w", errSkip, err)
		}
		return config.Peer{}, fmt.Errorf("%w: %w", ErrBadNode, err)
	}
	return p, nil
}

// inNetwork reports whether sn lies inside network.
func inNetwork(network, sn netip.Prefix) bool {
	return network.IsValid() && sn.IsValid() && network.Bits() <= sn.Bits() && network.Contains(sn.Addr())
}
