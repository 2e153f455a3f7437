// Package hostnet owns every change vxtun makes to the host's network
// state: link configuration (MTU, queue length, addresses, routes), sysctls,
// forward-accept rules (nftables: vxtun's own table "vxtun" plus tagged
// rules in the host's forward-hook base chains, e.g. iptables-nft's FORWARD),
// masquerade rules (flanneld's --ip-masq: a NAT chain "postrouting" in
// the same table, masq.go and masq_linux.go), the peer filter (sets of
// peer addresses and an input-hook drop rule in table "vxtun", updated
// element by element; peerfilter_linux.go), peer routes (SetPeerRoutes:
// host-gw and DirectRouting, routes.go and routes_linux.go) and kernel
// vxlan devices with their neighbour/fdb entries (vxlan_linux.go). Nothing
// else in vxtun changes the host. The three nftables features share table
// inet "vxtun" (and may sit in different Hosts): each removes only its own
// chain and sets, and the table goes with the last of them, when nothing
// else is left in it (table_linux.go).
//
// A Host is declarative where it can be: it is told what the host should
// look like, records how to undo each change, and Close undoes all of them
// in reverse order and reports failures in one error. hostnet/hostnettest
// is an in-memory fake for unit tests.
//
// Concurrency: a Host's methods are safe for concurrent use (one mutex).
// The Linux implementation acts in the network namespace of the calling
// thread; callers that switch namespaces lock their OS thread. Its nftables
// changes go through one lasting netlink connection, opened by the first of
// them (so in that call's namespace) and closed by Close (nft_linux.go).
//
// Imports: vishvananda/netlink, golang.org/x/sys/unix (and google/nftables
// for rules). Linux-only code is in _linux.go files.
package hostnet
