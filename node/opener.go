package node

import (
	"errors"

	"github.com/vxtun/vxtun/config"
	"github.com/vxtun/vxtun/dataplane"
)

// opener returns the Opener and the start check for the network config
// nc: Config.Opener and Config.Check when an Opener is set, else the
// dataplane of the backend and Config.Dataplane (Config.Check, if set,
// replacing its check): host-gw has its own; vxlan with DirectRouting
// wraps the userspace dataplane (routes to on-link peers, VXLAN to the
// rest); otherwise Config.Dataplane chooses (auto, userspace, kernel).
func (c Config) opener(nc *config.NetConf) (dataplane.Opener, func(dataplane.Config) error) {
	if c.Opener != nil {
		return c.Opener, c.Check
	}
	var open dataplane.Opener
	var check func(dataplane.Config) error
	switch {
	case nc.Backend.Type == config.BackendHostGW:
		open, check = dataplane.OpenHostGW, dataplane.CheckHostGW
	case nc.Backend.Type == config.BackendVXLAN && nc.Backend.DirectRouting:
		open, check = dataplane.OpenDirectRouting, dataplane.CheckUserspace
		if c.Dataplane == dataplane.KindKernel {
			check = func(dataplane.Config) error {
				return errDirectRoutingKernel
			}
		}
	default:
		open, check = openerOf(c.Dataplane, c.NewHost)
	}
	if c.Check != nil {
		check = c.Check
	}
	return open, check
}

// errDirectRoutingKernel: the kernel dataplane routes every peer through
// its vxlan device; DirectRouting's direct routes would clash with them.
var errDirectRoutingKernel = errors.New("DirectRouting needs the userspace dataplane: --dataplane kernel does not support it (use auto or userspace)")
