package nettest

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// NetConf is flannel's net-conf.json as the testbed writes it; zero fields
// are left out, so the reader's defaults apply.
type NetConf struct {
	Network     string `json:",omitempty"`
	SubnetLen   int    `json:",omitempty"`
	SubnetMin   string `json:",omitempty"`
	SubnetMax   string `json:",omitempty"`
	EnableIPv6  bool   `json:",omitempty"`
	IPv6Network string `json:",omitempty"`
	Backend     Backend
}

// Backend is net-conf.json's Backend object.
type Backend struct {
	Type          string
	VNI           int  `json:",omitempty"`
	Port          int  `json:",omitempty"`
	GBP           bool `json:",omitempty"`
	DirectRouting bool `json:",omitempty"`
	MTU           int  `json:",omitempty"`
}

// NodeConf is vxtun's node.json; zero fields are left out.
type NodeConf struct {
	PublicIP    string `json:",omitempty"`
	Iface       string `json:",omitempty"`
	Subnet      string `json:",omitempty"`
	IPv6Subnet  string `json:",omitempty"`
	TunName     string `json:",omitempty"`
	VtepMAC     string `json:",omitempty"`
	VtepMACFile string `json:",omitempty"`
	Workers     int    `json:",omitempty"`
	SubnetFile  string `json:",omitempty"`
	IPMasq      bool   `json:",omitempty"`
	ListenPort  int    `json:",omitempty"`
	UnderlayMTU int    `json:",omitempty"`
}

// PeersConf is vxtun's static peers.json.
type PeersConf struct {
	Peers []PeerConf
}

// PeerConf is one entry of peers.json; Port and VNI default to the
// backend's.
type PeerConf struct {
	Name     string
	PublicIP string
	Subnets  []string
	VtepMAC  string `json:",omitempty"`
	Port     int    `json:",omitempty"`
	VNI      int    `json:",omitempty"`
}

// PeerOf is the peers.json entry of node n; withMAC adds its VtepMAC
// (needed by VXLAN, not by legacy UDP).
func PeerOf(n Node, withMAC bool) PeerConf {
	p := PeerConf{Name: n.Name(), PublicIP: n.Underlay.String(), Subnets: []string{n.Subnet.String()}}
	if withMAC {
		p.VtepMAC = n.VtepMAC.String()
	}
	return p
}

// PeersOf is the peers.json listing nodes, with their VtepMACs if withMAC.
func PeersOf(withMAC bool, nodes ...Node) PeersConf {
	ps := PeersConf{Peers: []PeerConf{}}
	for _, n := range nodes {
		ps.Peers = append(ps.Peers, PeerOf(n, withMAC))
	}
	return ps
}

// ConfigFiles are the paths of one vxtun node's configuration in a
// directory.
type ConfigFiles struct {
	Dir, NetConf, Node, Peers, SubnetEnv string
}

// FilesIn names the files of a node whose configuration lives in dir:
// net-conf.json, node.json, peers.json and subnet.env.
func FilesIn(dir string) ConfigFiles {
	return ConfigFiles{
		Dir:       dir,
		NetConf:   filepath.Join(dir, "net-conf.json"),
		Node:      filepath.Join(dir, "node.json"),
		Peers:     filepath.Join(dir, "peers.json"),
		SubnetEnv: filepath.Join(dir, "subnet.env"),
	}
}

// Write creates the directory and writes the three files.
func (f ConfigFiles) Write(nc NetConf, node NodeConf, peers PeersConf) error {
	if err := os.MkdirAll(f.Dir, 0o755); err != nil {
		return fmt.Errorf("write configs: %w", err)
	}
	for _, w := range []struct {
		path string
		v    any
	}{{f.NetConf, nc}, {f.Node, node}, {f.Peers, peers}} {
		if err := WriteJSON(w.path, w.v); err != nil {
			return err
		}
	}
	return nil
}

// Args is the "vxtun run" flags naming the three files.
func (f ConfigFiles) Args() []string {
	return []string{"--net-conf", f.NetConf, "--node", f.Node, "--peers", f.Peers}
}

// WriteJSON writes v as indented JSON to path, replacing the file
// atomically (by rename) as an operator's tooling would.
func WriteJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	return WriteFileAtomic(path, append(b, '\n'))
}

// WriteFileAtomic writes b to path by writing path.tmp and renaming it.
func WriteFileAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	return nil
}
