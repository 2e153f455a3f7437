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

// ParsePeers parses a static peers file; file names it in errors. Backend,
// Port and VNI default to nc.Backend. own are this node's subnets: a peer
// subnet overlapping one is an error, as are a bad IP or MAC, a duplicate
// name, PublicIP:Port or VtepMAC, overlapping peer subnets and subnets
// outside the overlay network. Peers keep the file's order. Unknown keys are
// errors.
func ParsePeers(file string, data []byte, nc *NetConf, own []netip.Prefix) ([]Peer, error) {
	var j peersJSON
	if err := decodeJSON(file, data, &j, true); err != nil {
		return nil, err
	}
	type owner struct {
		name string
		p    netip.Prefix
	}
	var (
		peers    = make([]Peer, 0, len(j.Peers))
		names    = map[string]int{}
		macs     = map[string]string{}
		addrs    = map[netip.AddrPort]string{}
		prefixes []owner
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
			if other, dup := macs[mac.String()]; dup {
				return nil, keyErr(file, key("VtepMAC"), "%s is also peer %q's VtepMAC", mac, other)
			}
			macs[mac.String()] = p.Name
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

		if err := p.Check(PeerScope{Backend: nc.Backend.Type, Network: nc, Own: own}); err != nil {
			var pe *PeerError
			if errors.As(err, &pe) {
				return nil, keyErr(file, key(pe.Field), "%s", pe.Msg)
			}
			return nil, keyErr(file, fmt.Sprintf("Peers[%d]", i), "%v", err)
		}

		// Overlaps between peers (and within one) are the set's business.
		for k, sn := range p.Subnets {
			skey := key(fmt.Sprintf("Subnets[%d]", k))
			for _, o := range prefixes {
				if !o.p.Overlaps(sn) {
					continue
				}
				if o.name == p.Name {
					return nil, keyErr(file, skey, "%s overlaps %s of the same peer", sn, o.p)
				}
				return nil, keyErr(file, skey, "%s overlaps %s of peer %q", sn, o.p, o.name)
			}
			prefixes = append(prefixes, owner{p.Name, sn})
		}
		peers = append(peers, p)
	}
	return peers, nil
}
