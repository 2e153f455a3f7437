package node

import (
	"fmt"
	"slices"
	"strings"

	"github.com/vxtun/vxtun/dataplane"
	"github.com/vxtun/vxtun/hostnet"
)

// checkDataplane refuses an unknown Config.Dataplane.
func checkDataplane(kind string) error {
	if kind == "" || slices.Contains(dataplane.Kinds(), kind) {
		return nil
	}
	return fmt.Errorf("unknown dataplane %q (want %s)", kind, strings.Join(dataplane.Kinds(), ", "))
}

// openerOf returns the Opener and the start check of the dataplane kind
// (checked by checkDataplane; "" is auto).
func openerOf(kind string, newHost func() hostnet.Host) (dataplane.Opener, func(dataplane.Config) error) {
	switch kind {
	case dataplane.KindUserspace:
		return dataplane.OpenUserspace, dataplane.CheckUserspace
	case dataplane.KindKernel:
		return dataplane.OpenKernel, dataplane.CheckKernel
	}
	a := dataplane.Auto{NewHost: newHost}
	return a.Open, a.Check
}
