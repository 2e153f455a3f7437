// Package flannelvxlan builds the ip(8) and bridge(8) commands that program a
// Linux kernel vxlan device exactly as flannel's vxlan backend programs
// flannel.1: VNI 1, dstport 8472, nolearning, the node's own <subnet>.0/32 on
// the device, and per remote lease a permanent neighbour entry, a permanent
// fdb entry and an onlink route. Tests, the demo and the benchmark harness use
// it to build the kernel-vxlan peer vxtun must interoperate with.
// DualStack (dualstack.go) is a dual-stack flanneld node: flannel.1 over
// IPv4 and flannel-v6.1 over IPv6, each with its own MAC.
//
// It stays separate from hostnet's kernel vxlan device (vxtun's kernel
// dataplane) on purpose: it is the independent reference, built from
// iproute2 commands rather than netlink calls, that tests compare vxtun's
// device with (hostnet's TestVXLANLikeFlannel), so a mistake in one does
// not hide in both.
//
// It only returns argument vectors; running them (in which network
// namespace) is the caller's business. The package has no state and is safe
// for concurrent use.
package flannelvxlan
