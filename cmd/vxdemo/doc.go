// Command vxdemo shows vxtun working with a Linux kernel vxlan node, on one
// machine, without touching the host's own network namespace:
//
//	sudo go run ./cmd/vxdemo          # or: make demo
//	sudo go run ./cmd/vxdemo -quick   # short run (CI)
//	sudo go run ./cmd/vxdemo -backend host-gw   # host-gw; node3 as flanneld's host-gw
//	sudo go run ./cmd/vxdemo -direct-routing    # vxlan DirectRouting on node1, node2
//
// It builds vxtun, makes four network namespaces — a "switch" holding a
// Linux bridge, and three nodes plugged into it (underlay 198.18.0.1-3/24) —
// runs vxtun (VXLAN) on node1 and node2, and programs node3's kernel vxlan
// device exactly as flannel programs flannel.1 (VNI 1, nolearning,
// <subnet>.0/32, a permanent neighbour, fdb entry and onlink route per
// remote node). Each node gets a pod as clusters have them: a namespace of
// its own behind the node's cni0 bridge, attached by the CNI reference
// plugins bridge and host-local with the configuration the flannel CNI
// plugin builds from the node's subnet.env (vxtun writes it on node1 and
// node2; the demo writes node3's as flanneld would). Then it pings and runs
// a TCP transfer between every pair of pods, prints what it saw (RTT,
// throughput, vxtun's packet and drop counters) and removes everything
// again — also on Ctrl-C and on failure.
//
// It needs root, iproute2, ping (installed with apt-get if missing) and the
// CNI plugins (scripts/deps.sh, run by make demo, installs them);
// iperf3 is used for the transfers when installed, else the demo itself
// sends and checks the data (-tool go).
//
// Ownership: every namespace the demo makes (names vxdemo-<id>-…) and its
// work directory belong to one run and are removed when it ends; nothing is
// created in the host's own namespace. Pods are detached (CNI DEL) before
// their namespaces go.
//
// Imports: config (subnet.env), internal/flannelvxlan, internal/nettest
// (the CNI pod helper), internal/interrupt; vxtun itself runs as a process.
//
// Concurrency: the run is sequential; one goroutine per vxtun daemon waits
// for it to exit, and the first signal cancels the run's context.
package main
