package dataplane

import (
	"errors"
	"fmt"

	"github.com/vxtun/vxtun/config"
)

// ErrKernelUnsupported is wrapped by CheckKernel and OpenKernel when the
// network config asks for something the kernel dataplane does not do
// (legacy UDP, an IPv6 underlay or overlay); auto then uses the userspace
// dataplane.
var ErrKernelUnsupported = errors.New("not supported by the kernel dataplane")

// Names of the dataplanes (vxtun run --dataplane).
const (
	KindAuto      = "auto"      // kernel where it can be used, else userspace
	KindUserspace = "userspace" // the TUN device and the fastpath forwarder
	KindKernel    = "kernel"    // a kernel vxlan device programmed as flanneld does
)

// Kinds lists the names --dataplane accepts, the default first.
func Kinds() []string { return []string{KindAuto, KindUserspace, KindKernel} }

// KernelDeviceName is the kernel vxlan device of VNI vni: flannel.<VNI>,
// the name flanneld gives it, so that a node moved from flanneld to vxtun
// looks the same to tools and operators.
func KernelDeviceName(vni uint32) string { return fmt.Sprintf("flannel.%d", vni) }

// Drop reasons of the kernel dataplane: the device's own counters.
const (
	DropKernelTxDropped = "tx_dropped"
	DropKernelRxDropped = "rx_dropped"
	DropKernelTxErrors  = "tx_errors"
	DropKernelRxErrors  = "rx_errors"
)

// checkKernelConfig is what the kernel dataplane needs of cfg, judged
// without touching the host.
func checkKernelConfig(cfg Config) error {
	switch {
	case cfg.NetConf == nil:
		return errors.New("no network config")
	case cfg.NetConf.Backend.Type != config.BackendVXLAN:
		return fmt.Errorf("%w: backend %s (the kernel has no device for flannel's legacy UDP)", ErrKernelUnsupported, cfg.NetConf.Backend.Type)
	case !cfg.Underlay.IP.Is4():
		return fmt.Errorf("%w: IPv6 underlay %s", ErrKernelUnsupported, cfg.Underlay.IP)
	case cfg.ListenAddr6.IsValid():
		return fmt.Errorf("%w: a second, IPv6 underlay %s (--public-ipv6; flanneld's flannel-v6.1)", ErrKernelUnsupported, cfg.ListenAddr6.Addr())
	case cfg.Subnet6.IsValid():
		return fmt.Errorf("%w: IPv6 overlay", ErrKernelUnsupported)
	case !cfg.Subnet.IsValid():
		return errors.New("no IPv4 subnet")
	case len(cfg.VtepMAC) != 6:
		return fmt.Errorf("VtepMAC %v is not a 6-byte MAC", cfg.VtepMAC)
	case cfg.ListenAddr.Port() == 0:
		return errors.New("no UDP port")
	}
	return nil
}
