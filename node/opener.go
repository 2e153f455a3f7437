package node

import (
	"github.com/vxtun/vxtun/config"
	"github.com/vxtun/vxtun/dataplane"
)

// opener returns the Opener and the start check for the network config
// nc: Config.Opener and Config.Check when an Opener is set, else the
// dataplane of the backend (Config.Check, if set, replacing its check).
func (c Config) opener(nc *config.NetConf) (dataplane.Opener, func(dataplane.Config) error) {
	if c.Opener != nil {
		return c.Opener, c.Check
	}
	open, check := dataplane.OpenUserspace, dataplane.CheckUserspace
	switch {
	case nc.Backend.Type == config.BackendHostGW:
		open, check = dataplane.OpenHostGW, dataplane.CheckHostGW
	case nc.Backend.Type == config.BackendVXLAN && nc.Backend.DirectRouting:
		open = dataplane.OpenDirectRouting
	}
	if c.Check != nil {
		check = c.Check
	}
	return open, check
}
