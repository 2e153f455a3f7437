package bench

import (
	"context"
	"errors"
	"fmt"

	"github.com/vxtun/vxtun/internal/flannelvxlan"
	"github.com/vxtun/vxtun/internal/nettest"
)

// Node is one side of a testbed: its namespace and its address plan
// (node N owns 198.19.N.0/24; its pod address 198.19.N.1/32 on lo is the
// traffic endpoint).
type Node = nettest.Host

// Testbed is two namespaces joined by a veth underlay "ul0" (MTU 1500),
// each with its pod address on lo. Which overlay carries pod-to-pod
// traffic is the Mode's business.
type Testbed struct {
	Mode  string
	Nodes [2]*Node
	Dir   string // per-mode scratch directory (configs, logs)
}

// UnderlayMTU is the veth MTU of the testbed.
const UnderlayMTU = nettest.UnderlayMTU

// ErrUnavailable is wrapped by a Mode's Setup when the mode cannot run on
// this machine or build (e.g. the vxtun binary is missing); the harness
// then reports the mode as unavailable instead of failing.
var ErrUnavailable = errors.New("unavailable")

// ErrNotInDaemon is wrapped (with ErrUnavailable) when the daemon under
// test lacks an optional feature a mode needs (vxtun-busy-poll without
// --busy-poll): a property of the binary measured, not of this machine,
// so vxbench -strict reports it without failing.
var ErrNotInDaemon = errors.New("not in this daemon")

// unavailable returns an error wrapping ErrUnavailable with a reason.
func unavailable(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUnavailable, fmt.Sprintf(format, args...))
}

// Mode is one way of carrying pod traffic between the two nodes.
type Mode interface {
	// Name is the short name used in flags, tables and namespace names.
	Name() string
	// Setup configures tb so that Nodes[0].Pod and Nodes[1].Pod reach each
	// other. A mode that cannot run returns an error wrapping ErrUnavailable.
	Setup(ctx context.Context, tb *Testbed) error
	// PIDs returns the processes whose CPU time the mode's dataplane uses
	// (nil for kernel modes), one per node in node order when each node
	// runs one (split_linux.go relies on it).
	PIDs() []int
	// Check returns an error if a process of the mode has died.
	Check() error
	// Stop ends the mode's processes (the namespaces go away afterwards).
	Stop() error
}

// newTestbed builds the two namespaces, the underlay and pod addresses.
func newTestbed(ctx context.Context, h *Harness, mode, dir string) (*Testbed, error) {
	u, err := h.newUnderlay(ctx, nettest.UnderlayConfig{
		Names: []string{fmt.Sprintf("vxb-%s-%s-a", h.runID, mode), fmt.Sprintf("vxb-%s-%s-b", h.runID, mode)},
		MTU:   UnderlayMTU,
		Pods:  true,
	})
	if err != nil {
		return nil, err
	}
	return &Testbed{Mode: mode, Dir: dir, Nodes: [2]*Node{u.Hosts[0], u.Hosts[1]}}, nil
}

// peer returns the other node.
func (tb *Testbed) peer(n *Node) *Node {
	if n == tb.Nodes[0] {
		return tb.Nodes[1]
	}
	return tb.Nodes[0]
}

// VethMode routes the pod subnets directly over the underlay veth: no
// encapsulation at all, the ceiling.
type VethMode struct{}

// Name implements Mode.
func (VethMode) Name() string { return "veth" }

// Setup implements Mode.
func (VethMode) Setup(ctx context.Context, tb *Testbed) error {
	for _, n := range tb.Nodes {
		p := tb.peer(n)
		if _, err := n.NS.Exec(ctx, "ip", "route", "add", p.Subnet.String(), "via", p.Underlay.String(), "dev", "ul0"); err != nil {
			return fmt.Errorf("veth mode: %w", err)
		}
	}
	return nil
}

// PIDs implements Mode.
func (VethMode) PIDs() []int { return nil }

// Check implements Mode.
func (VethMode) Check() error { return nil }

// Stop implements Mode.
func (VethMode) Stop() error { return nil }

// KernelVXLANMode sets up the Linux vxlan device exactly as flannel's
// vxlan backend does: flannel.1 with VNI 1, dstport 8472, nolearning, the
// node's <subnet>.0/32 on it, MTU underlay−50, and per remote node a
// permanent neighbour entry, a permanent fdb entry and an onlink route.
type KernelVXLANMode struct{}

// Name implements Mode.
func (KernelVXLANMode) Name() string { return "kernel-vxlan" }

// FlannelVXLANCommands returns the iproute2 commands that program node n
// of tb the way flannel programs flannel.1 for its single peer.
func FlannelVXLANCommands(tb *Testbed, n *Node) [][]string {
	p := tb.peer(n)
	d := flannelvxlan.Device{Local: n.Underlay, MAC: n.VtepMAC, Subnet: n.Subnet, MTU: UnderlayMTU - 50}
	return d.Commands(flannelvxlan.Remote{Subnet: p.Subnet, PublicIP: p.Underlay, VtepMAC: p.VtepMAC})
}

// Setup implements Mode.
func (KernelVXLANMode) Setup(ctx context.Context, tb *Testbed) error {
	for _, n := range tb.Nodes {
		if err := n.NS.ExecAll(ctx, FlannelVXLANCommands(tb, n)); err != nil {
			return fmt.Errorf("kernel vxlan mode: %w", err)
		}
	}
	return nil
}

// PIDs implements Mode.
func (KernelVXLANMode) PIDs() []int { return nil }

// Check implements Mode.
func (KernelVXLANMode) Check() error { return nil }

// Stop implements Mode.
func (KernelVXLANMode) Stop() error { return nil }
