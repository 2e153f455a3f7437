package config

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// peersJSON is the static peers file:
//
//	{"Peers": [{"Name": "node2", "PublicIP": "198.18.0.2",
//	            "Subnets": ["198.19.2.0/24"], "VtepMAC": "0e:00:00:00:00:02"}]}
//
// Port and VNI are optional per peer (default: net-conf.json's Backend).
type peersJSON struct {
	Peers []peerJSON
}

type peerJSON struct {
	Name     string
	PublicIP string
	Subnets  []string
	VtepMAC  string
	Port     int64
	VNI      *int64
}

// LoadPeers reads and parses the static peers file at path. See ParsePeers.
func LoadPeers(path string, nc *NetConf, own []netip.Prefix) ([]Peer, error) {
	data, err := ReadFile(path, MaxPeersFileSize)
	if err != nil {
		return nil, fmt.Errorf("read peers: %w", err)
	}
	return ParsePeers(path, data, nc, own)
}

// LoadPeersIn reads and parses the static peers file at path. See
// ParsePeersIn.
func LoadPeersIn(path string, scope PeerScope) ([]Peer, error) {
	data, err := ReadFile(path, MaxPeersFileSize)
	if err != nil {
		return nil, fmt.Errorf("read peers: %w", err)
	}
	return ParsePeersIn(path, data, scope)
}

// ParsePeers parses a static peers file; file names it in errors. Backend,
// Port and VNI default to nc.Backend. own are this node's subnets: a peer
// subnet overlapping one is an error, as are a bad IP or MAC, a duplicate
// name, PublicIP:Port or VtepMAC, overlapping peer subnets and subnets
// outside the overlay network. Peers keep the file's order. Unknown keys are
// errors.
func ParsePeers(file string, data []byte, nc *NetConf, own []netip.Prefix) ([]Peer, error) {
	return ParsePeersIn(file, data, PeerScope{Network: nc, Own: own})
}

// ParsePeersIn is ParsePeers with the node's whole view: scope.Network
// (required) gives the backend defaults and the overlay, scope.Own this
// node's subnets, scope.Self and scope.SelfMAC this node's public IP and
// VTEP MAC, which no peer may carry (an encapsulation loop). scope.Backend
// is taken from scope.Network.
func ParsePeersIn(file string, data []byte, scope PeerScope) ([]Peer, error) {
	nc := scope.Network
	if nc == nil {
		return nil, fmt.Errorf("parse peers %s: no network config", file)
	}
	scope.Backend = nc.Backend.Type
	var j peersJSON
	if err := decodeJSON(file, data, &j, true); err != nil {
		return nil, err
	}
	var (
		peers = make([]Peer, 0, len(j.Peers))
		names = make(map[string]int, len(j.Peers))
		macs  = make(map[[6]byte]string, len(j.Peers))
		addrs = make(map[netip.AddrPort]string, len(j.Peers))
		subs  = newSubnetSet(len(j.Peers))
	)
	for i, pj := range j.Peers {
		key := func(k string) string { return fmt.Sprintf("Peers[%d].%s", i, k) }
		p := Peer{Backend: nc.Backend.Type, Port: nc.Backend.Port, VNI: nc.Backend.VNI}

		p.Name = strings.TrimSpace(pj.Name)
		if p.Name == "" {
			return nil, keyErr(file, key("Name"), "missing")
		}
		if prev, dup := names[p.Name]; dup {
			return nil, keyErr(file, key("Name"), "duplicate peer name %q (also Peers[%d])", p.Name, prev)
		}
		names[p.Name] = i

		if pj.PublicIP == "" {
			return nil, keyErr(file, key("PublicIP"), "missing")
		}
		ip, err := parseUnderlayIP(pj.PublicIP)
		if err != nil {
			return nil, keyErr(file, key("PublicIP"), "%v", err)
		}
		p.PublicIP = ip

		if pj.Port < 0 || pj.Port > 65535 {
			return nil, keyErr(file, key("Port"), "%d is out of range 1..65535", pj.Port)
		}
		if pj.Port != 0 {
			p.Port = uint16(pj.Port)
		}
		ap := netip.AddrPortFrom(p.PublicIP, p.Port)
		if other, dup := addrs[ap]; dup {
			return nil, keyErr(file, key("PublicIP"), "%s is also peer %q's address", ap, other)
		}
		addrs[ap] = p.Name

		if pj.VNI != nil {
			if p.Backend != BackendVXLAN {
				return nil, keyErr(file, key("VNI"), "only the vxlan backend has a VNI")
			}
			if *pj.VNI < 0 || *pj.VNI > MaxVNI {
				return nil, keyErr(file, key("VNI"), "%d is out of range 0..%d", *pj.VNI, MaxVNI)
			}
			p.VNI = uint32(*pj.VNI)
		}

		switch {
		case pj.VtepMAC != "":
			mac, err := ParseVtepMAC(pj.VtepMAC)
			if err != nil {
				return nil, keyErr(file, key("VtepMAC"), "%v", err)
			}
			if other, dup := macs[[6]byte(mac)]; dup {
				return nil, keyErr(file, key("VtepMAC"), "%s is also peer %q's VtepMAC", mac, other)
			}
			macs[[6]byte(mac)] = p.Name
			p.VtepMAC = mac
		case p.Backend == BackendVXLAN:
			return nil, keyErr(file, key("VtepMAC"), "missing (required by the vxlan backend)")
		}

		if len(pj.Subnets) == 0 {
			return nil, keyErr(file, key("Subnets"), "missing: a peer needs at least one subnet")
		}
		for k, s := range pj.Subnets {
			sn, err := parseSubnet(s)
			if err != nil {
				return nil, keyErr(file, key(fmt.Sprintf("Subnets[%d]", k)), "%v", err)
			}
			p.Subnets = append(p.Subnets, sn)
		}

		if err := p.Check(scope); err != nil {
			var pe *PeerError
			if errors.As(err, &pe) {
				return nil, keyErr(file, key(pe.Field), "%s", pe.Msg)
			}
			return nil, keyErr(file, fmt.Sprintf("Peers[%d]", i), "%v", err)
		}
		for k, sn := range p.Subnets {
			subs.add(sn, i, k)
		}
		peers = append(peers, p)
	}
	// Overlaps between peers (and within one) are the set's business.
	if c, ok := subs.firstOverlap(); ok {
		skey := fmt.Sprintf("Peers[%d].Subnets[%d]", c.later.peer, c.later.sub)
		if c.later.peer == c.earlier.peer {
			return nil, keyErr(file, skey, "%s overlaps %s of the same peer", c.later.p, c.earlier.p)
		}
		return nil, keyErr(file, skey, "%s overlaps %s of peer %q", c.later.p, c.earlier.p, peers[c.earlier.peer].Name)
	}
	return peers, nil
}

// subnetSet finds overlapping subnets among many in time linear in their
// number: two prefixes overlap only when one contains the other, so each
// prefix is looked up, masked to every shorter length in use, among all
// the others (one map lookup per distinct prefix length, of which a peer
// set has one or two).
type subnetSet struct {
	at    map[netip.Prefix]subnetPos // first position of each prefix
	lens4 [33]bool
	lens6 [129]bool
	all   []subnetPos
	dup   *subnetOverlap // the first repeated prefix, in file order
}

// subnetPos is where a subnet sits in the file: Peers[peer].Subnets[sub].
type subnetPos struct {
	p         netip.Prefix
	peer, sub int
}

func (a subnetPos) before(b subnetPos) bool {
	return a.peer < b.peer || (a.peer == b.peer && a.sub < b.sub)
}

// subnetOverlap is a pair of overlapping subnets, earlier in the file first.
type subnetOverlap struct{ earlier, later subnetPos }

func newSubnetSet(n int) *subnetSet {
	return &subnetSet{at: make(map[netip.Prefix]subnetPos, n), all: make([]subnetPos, 0, n)}
}

// add records p at Peers[peer].Subnets[sub]; calls come in file order.
func (s *subnetSet) add(p netip.Prefix, peer, sub int) {
	pos := subnetPos{p, peer, sub}
	if first, dup := s.at[p]; dup {
		if s.dup == nil {
			s.dup = &subnetOverlap{first, pos}
		}
		return
	}
	s.at[p] = pos
	if p.Addr().Is4() {
		s.lens4[p.Bits()] = true
	} else {
		s.lens6[p.Bits()] = true
	}
	s.all = append(s.all, pos)
}

// firstOverlap returns the overlap whose later subnet comes first in the
// file (ties: the earliest other subnet), as a scan in file order against
// everything before would report it.
func (s *subnetSet) firstOverlap() (subnetOverlap, bool) {
	var best subnetOverlap
	found := false
	consider := func(c subnetOverlap) {
		if !found || c.later.before(best.later) || (c.later == best.later && c.earlier.before(best.earlier)) {
			best, found = c, true
		}
	}
	if s.dup != nil {
		consider(*s.dup)
	}
	for _, x := range s.all {
		lens := s.lens4[:]
		if x.p.Addr().Is6() {
			lens = s.lens6[:]
		}
		for l := 0; l < x.p.Bits(); l++ {
			if !lens[l] {
				continue
			}
			anc, _ := x.p.Addr().Prefix(l)
			a, ok := s.at[anc]
			if !ok {
				continue
			}
			if a.before(x) {
				consider(subnetOverlap{a, x})
			} else {
				consider(subnetOverlap{x, a})
			}
		}
	}
	return best, found
}
