// Package bench owns vxtun's end-to-end benchmark harness: a two-node
// network-namespace testbed that measures plain veth, kernel vxlan, vxtun
// VXLAN and vxtun legacy UDP in one run, alternating, and reports ratios to
// kernel vxlan.
package bench
