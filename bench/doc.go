// Package bench owns vxtun's end-to-end benchmark harness: a two-node
// network-namespace testbed that measures plain veth, kernel vxlan, vxtun
// VXLAN, vxtun legacy UDP and the overlays users would pick instead
// (wireguard-go, nebula: built by the harness with go install into a cache
// directory outside the repository, unavailable when they cannot be) in one
// run, alternating, and reports ratios to kernel vxlan.
//
// UDP rates come from the package's own generator (udpgen*.go: RunGen, a
// paced sendmmsg thread per CPU and a receiver counting by sequence number),
// TCP from iperf3; machine CPU per GB from /proc/stat (cpustat*.go).
//
// The control plane at scale (controlplane*.go: RunControlPlane,
// BenchmarkControlPlane) is measured apart from the modes, in two
// namespaces of its own: a full 5 000-peer set and one-peer updates applied
// to the real userspace dataplane and the nftables peer filter in process,
// then a vxtun daemon with a static peers file of one peer and of 5 000
// (reload time, VmRSS, VmHWM, RssAnon from /proc). Its peers' public IPs
// are in 198.18.1.0–198.18.120.255 and are never sent to.
//
// Layout: the pure parts (the RFC 2544 rate search, median/percentile/ratio
// math, the table, JSON and SVG writers) are portable and unit-tested
// without privileges. The modes (veth, kernel vxlan, vxtun daemons) live in
// _linux.go files on top of internal/nettest, which owns the namespaces,
// the underlay, daemons, config writers, and running and parsing iperf3
// and ping.
//
// Ownership: a Harness owns every namespace and process it starts. Its Close
// kills what still runs in its namespaces and deletes them; cmd/vxbench calls
// Close on return and on SIGINT/SIGTERM, so an interrupted run leaves
// nothing behind. Namespaces are named "vxb-<random>-<mode>-<node>".
//
// Network safety: the testbed uses only 198.18.0.0/24 (underlay) and
// 198.19.0.0/16 (overlay) inside its own namespaces and creates nothing in
// the host's namespace.
//
// Concurrency: a Harness is used by one goroutine; Close may be called from
// another goroutine (a signal handler) at any time and is idempotent.
package bench
