// Package config owns vxtun's configuration formats: flannel's net-conf.json,
// the node settings, the static peers file, flannel's /run/flannel/subnet.env
// (written, and read back as the CNI plugin reads it), and the MTU types.
//
// Everything here is plain data and pure parsing with validation; errors are
// *Error values that name the file and the key (and, for JSON syntax and type
// errors, line and column), e.g.
//
//	peers.json: Peers[1].Subnets[0]: 198.19.2.0/24 overlaps 198.19.2.0/24 of peer "a"
//	net-conf.json:3:15: JSON syntax error: invalid character ',' looking for beginning of object key string
//
// Values returned by the parsers are owned by the caller; the package keeps
// no state and is safe for concurrent use. The only functions that touch the
// system are the Load* readers, ReadSubnetEnv, WriteSubnetEnv,
// LoadOrCreateVtepMAC and Node.ResolveVtepMAC (files), and
// Node.ResolveUnderlay (reads interfaces of the current namespace).
//
// # net-conf.json (flannel's format, parsed as flannel parses it)
//
//	{
//	  "Network": "10.244.0.0/16",      // required when EnableIPv4 (default true)
//	  "SubnetLen": 24,                  // default 24, or prefix+2 for networks smaller than /22
//	  "SubnetMin": "10.244.1.0",        // default: second subnet of Network
//	  "SubnetMax": "10.244.255.0",      // default: last subnet of Network
//	  "EnableIPv6": false,
//	  "IPv6Network": "fd00:10:244::/56", // + IPv6SubnetLen (64), IPv6SubnetMin, IPv6SubnetMax
//	  "Backend": {
//	    "Type": "vxlan",                // vxlan, udp or host-gw; no Backend at all means udp, as in flannel
//	    "VNI": 1,                       // vxlan only
//	    "Port": 8472,                   // default 8472 (vxlan), 8285 (udp)
//	    "GBP": false, "DirectRouting": false,
//	    "MTU": 0                        // TUN MTU override; 0 = underlay MTU - overhead
//	  }
//	}
//
// Keys are case-insensitive and unknown keys are ignored, as with flannel.
// Unlike flannel, a Network with host bits set ("10.244.1.0/16") is an error.
// Other backend types (wireguard, ipip, ...) are an error wrapping
// ErrUnsupportedBackend.
//
// # Node settings (vxtun's own format; unknown keys are errors)
//
//	{
//	  "PublicIP": "198.18.0.1",       // or "Iface": "eth0" (first IPv4 of the interface)
//	  "PublicIPv6": "2001:db8::1",    // with EnableIPv6: a second, IPv6 underlay (default with Iface: its first global IPv6)
//	  "Iface": "eth0",                // optional with PublicIP; used for the underlay MTU
//	  "Subnet": "198.19.1.0/24",      // own subnet, static mode (+ "IPv6Subnet")
//	  "TunName": "vxtun0",
//	  "VtepMACFile": "/var/lib/vxtun/vtep-mac", // or "VtepMAC": "0e:00:00:00:00:01"
//	  "Workers": 0,                   // 0 = number of CPUs
//	  "SubnetFile": "/run/flannel/subnet.env",
//	  "IPMasq": false,
//	  "ListenPort": 0,                // 0 = Backend.Port
//	  "UnderlayMTU": 0                // 0 = MTU of the underlay interface
//	}
//
// # Static peers file (vxtun's own format; unknown keys are errors)
//
//	{"Peers": [
//	  {"Name": "node2", "PublicIP": "198.18.0.2", "Subnets": ["198.19.2.0/24"],
//	   "VtepMAC": "0e:00:00:00:00:02", "Port": 8472, "VNI": 1}
//	]}
//
// Port and VNI are optional (default: net-conf.json's Backend); VtepMAC is
// required for vxlan.
//
// # Loops
//
// What would encapsulate packets back into the overlay, or to ourselves, is
// refused where it can be seen: Peer.Check with a PeerScope refuses a peer
// whose PublicIP lies inside the network (or is loopback), or that carries
// this node's PublicIP (Self) or VTEP MAC (SelfMAC); Node.Validate and
// NetConf.CheckUnderlay refuse an underlay address inside the network.
//
// Parsing a peers file takes time linear in its size: overlapping subnets
// are found by looking each one up, masked to the prefix lengths in use,
// among the others (BenchmarkLoadPeers).
package config
