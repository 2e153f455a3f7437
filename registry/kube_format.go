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

// ownV6 is the IPv6 side a dual-stack node (EnableIPv6, an IPv6 pod
// CIDR) publishes: PublicIP is its public IPv6, zero when its IPv6 overlay
// goes over the IPv4 underlay.
type ownV6 struct {
	PublicIP netip.Addr
}

// ownAnnotations are the annotations this node publishes: exactly what
// flanneld writes for a node of the backend (vxlan: backend-data
// {"VNI":n,"VtepMAC":"…"}; udp: backend-data null). publicIP is the
// address to publish (the overwrite annotation's, when set). A dual-stack
// vxlan node (v6 not nil) adds backend-v6-data, naming the same VTEP (the
// one TUN device carries both families), and public-ipv6 when it has one,
// as flanneld does; a udp node publishes no IPv6 side (flanneld's udp
// backend has none): its IPv6 subnet is read from its pod CIDRs.
func ownAnnotations(k kubeAnnotations, backend config.Backend, vni uint32, mac net.HardwareAddr, publicIP netip.Addr, v6 *ownV6) (map[string]string, error) {
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
	a := map[string]string{
		k.Managed:     "true",
		k.BackendType: string(backend),
		k.BackendData: string(data),
		k.PublicIP:    publicIP.String(),
	}
	if v6 != nil && backend == config.BackendVXLAN {
		a[k.BackendV6Data] = string(data)
		if v6.PublicIP.IsValid() {
			a[k.PublicIPv6] = v6.PublicIP.String()
		}
	}
	return a, nil
}

// errNotManaged marks a Node without kube-subnet-manager "true": not a
// flannel node, ignored without a log line.
var errNotManaged = errors.New("not managed by a kube subnet manager")

// nodePeers turns a Node into the peers of a node whose network config
// is nc and whose public IPv6 is self6 (zero: none): a Node with
// kube-subnet-manager "true", backend-type nc's backend, a unicast IPv4
// public-ip, valid backend-data (vxlan) and an IPv4 pod cidr inside
// Network. With EnableIPv6, its IPv6 side (IPv6 pod cidr, public-ipv6,
// backend-v6-data) goes through DualStackPeers; unrouted6 is its IPv6
// subnet when that is not routed (the Node's IPv6 overlay has an underlay
// this node cannot reach).
//
// errNotManaged for Nodes that are not flannel's; errors wrapping errSkip
// for well-formed ones of no use here (another backend, a subnet outside
// the network), ErrBadNode for malformed ones (flanneld, too, skips a
// dual-stack Node whose public-ipv6 does not parse).
func nodePeers(k kubeAnnotations, nc *config.NetConf, n *corev1.Node, self6 netip.Addr) (peers []config.Peer, unrouted6 netip.Prefix, err error) {
	a := n.Annotations
	if a[k.Managed] != "true" {
		return nil, netip.Prefix{}, errNotManaged
	}
	bt := a[k.BackendType]
	if bt != string(nc.Backend.Type) {
		return nil, netip.Prefix{}, fmt.Errorf("%w: backend-type %q, this network uses %s", errSkip, bt, nc.Backend.Type)
	}
	ip, err := netip.ParseAddr(a[k.PublicIP])
	if err != nil || !ip.Is4() {
		return nil, netip.Prefix{}, fmt.Errorf("%w: public-ip %q is not an IPv4 address", ErrBadNode, a[k.PublicIP])
	}
	sn, sn6, err := podCIDRs(n)
	if err != nil {
		if errors.Is(err, ErrNoPodCIDR) {
			return nil, netip.Prefix{}, fmt.Errorf("%w: %w", ErrBadNode, err)
		}
		return nil, netip.Prefix{}, err
	}
	if !sn.IsValid() {
		return nil, netip.Prefix{}, fmt.Errorf("%w: no IPv4 pod cidr (%v)", ErrBadNode, n.Spec.PodCIDRs)
	}
	p := config.Peer{
		Name:     n.Name,
		PublicIP: ip,
		Port:     nc.Backend.Port,
		Subnets:  []netip.Prefix{sn},
		Backend:  nc.Backend.Type,
	}
	if nc.Backend.Type == config.BackendVXLAN {
		d, err := nodeBackendData(a[k.BackendData])
		if err != nil {
			return nil, netip.Prefix{}, fmt.Errorf("%w: backend-data: %v", ErrBadNode, err)
		}
		if d == nil {
			return nil, netip.Prefix{}, fmt.Errorf("%w: vxlan node without backend-data", ErrBadNode)
		}
		p.VNI, p.VtepMAC = d.VNI, d.VtepMAC
		if p.VNI == 0 {
			p.VNI = nc.Backend.VNI
		}
	}
	peers = []config.Peer{p}
	if nc.EnableIPv6 && sn6.IsValid() {
		v6, err := nodeV6Side(k, nc, a, sn6)
		if err != nil {
			return nil, netip.Prefix{}, err
		}
		var routed bool
		if peers, routed = DualStackPeers(p, v6, self6); !routed {
			unrouted6 = sn6
		}
	}
	scope := config.PeerScope{Network: nc, IPv4Only: true, Self6: self6}
	for i := range peers {
		if err := peers[i].Check(scope); err != nil {
			if errors.Is(err, config.ErrForeignPeer) {
				return nil, netip.Prefix{}, fmt.Errorf("%w: %w", errSkip, err)
			}
			return nil, netip.Prefix{}, fmt.Errorf("%w: %w", ErrBadNode, err)
		}
	}
	return peers, unrouted6, nil
}

// nodeV6Side reads a dual-stack Node's IPv6 side: its IPv6 pod cidr sn6,
// public-ipv6 (optional: vxtun without a public IPv6 publishes none) and,
// for vxlan, backend-v6-data (optional).
func nodeV6Side(k kubeAnnotations, nc *config.NetConf, a map[string]string, sn6 netip.Prefix) (V6Side, error) {
	v6 := V6Side{Subnet: sn6}
	if s := a[k.PublicIPv6]; s != "" {
		ip, err := netip.ParseAddr(s)
		if err != nil || !ip.Is6() || ip.Is4In6() || ip.Zone() != "" || ip.IsUnspecified() || ip.IsMulticast() {
			return V6Side{}, fmt.Errorf("%w: public-ipv6 %q is not a unicast IPv6 address", ErrBadNode, s)
		}
		v6.PublicIP = ip
	}
	if nc.Backend.Type == config.BackendVXLAN {
		d, err := nodeBackendData(a[k.BackendV6Data])
		if err != nil {
			return V6Side{}, fmt.Errorf("%w: backend-v6-data: %v", ErrBadNode, err)
		}
		if d != nil {
			v6.VNI, v6.VtepMAC = d.VNI, d.VtepMAC
		}
	}
	return v6, nil
}

// vtep is a decoded vxlan backend-data.
type vtep struct {
	VNI     uint32
	VtepMAC net.HardwareAddr
}

// nodeBackendData decodes a vxlan backend-data or backend-v6-data
// annotation; nil for none ("" or "null").
func nodeBackendData(raw string) (*vtep, error) {
	if raw == "" || raw == "null" {
		return nil, nil
	}
	var d vxlanData
	if err := json.Unmarshal([]byte(raw), &d); err != nil {
		return nil, err
	}
	if d.VNI > config.MaxVNI {
		return nil, fmt.Errorf("VNI %d out of range", d.VNI)
	}
	mac, err := config.ParseVtepMAC(d.VtepMAC)
	if err != nil {
		return nil, fmt.Errorf("VtepMAC: %v", err)
	}
	return &vtep{VNI: d.VNI, VtepMAC: mac}, nil
}

// inNetwork reports whether sn lies inside network.
func inNetwork(network, sn netip.Prefix) bool {
	return network.IsValid() && sn.IsValid() && network.Bits() <= sn.Bits() && network.Contains(sn.Addr())
}
