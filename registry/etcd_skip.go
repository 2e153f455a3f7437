package registry

import (
	"errors"
	"strings"
	"sync/atomic"

	"github.com/vxtun/vxtun/config"
)

// Reasons an etcd lease is skipped, as SkippedLeases reports them (the
// reason label of vxtun_etcd_skipped_leases_total).
const (
	// SkipLoop: the lease would loop: a public IP inside the network, a
	// loopback one, this node's own public IP or VTEP MAC.
	SkipLoop = "loop"
	// SkipOtherBackend: a lease of another backend than the network's, or
	// of one vxtun does not speak.
	SkipOtherBackend = "other_backend"
	// SkipSubnet: a subnet outside the network or overlapping this node's.
	SkipSubnet = "subnet"
	// SkipMalformed: a key that is not a lease, or a value that does not
	// parse (JSON, public IP, MAC, VNI).
	SkipMalformed = "malformed"
)

// Indexes of the reasons in skipReasons and skipCounts.
const (
	skipLoop = iota
	skipOtherBackend
	skipSubnet
	skipMalformed
	numSkipReasons
)

var skipReasons = [numSkipReasons]string{
	skipLoop: SkipLoop, skipOtherBackend: SkipOtherBackend, skipSubnet: SkipSubnet, skipMalformed: SkipMalformed,
}

// skipCounts counts skipped leases by reason. Safe from any goroutine.
type skipCounts [numSkipReasons]atomic.Uint64

// count counts one lease that leasePeers refused with err.
func (c *skipCounts) count(err error) { c[skipReason(err)].Add(1) }

// snapshot returns every reason's count, zeros included.
func (c *skipCounts) snapshot() map[string]uint64 {
	m := make(map[string]uint64, len(skipReasons))
	for i, r := range skipReasons {
		m[r] = c[i].Load()
	}
	return m
}

// skipReason classifies an error of leasePeers.
func skipReason(err error) int {
	var pe *config.PeerError
	switch {
	case errors.Is(err, ErrUnsupportedBackend):
		return skipOtherBackend
	case !errors.As(err, &pe):
		return skipMalformed // the key or the value did not parse
	case pe.Field == "Backend" && errors.Is(pe.Kind, config.ErrForeignPeer):
		return skipOtherBackend
	case pe.Field == "PublicIP", pe.Field == "VtepMAC" && errors.Is(pe.Kind, config.ErrForeignPeer):
		// Inside the network, loopback, or ours; or our VTEP MAC. (A lease
		// without a unicast IPv4 public IP does not parse.)
		return skipLoop
	case strings.HasPrefix(pe.Field, "Subnets") && errors.Is(pe.Kind, config.ErrForeignPeer):
		return skipSubnet
	}
	return skipMalformed
}

// SkippedLeases returns how many lease values this source has logged and
// skipped as unusable, by reason (SkipLoop, SkipOtherBackend, SkipSubnet,
// SkipMalformed; every reason is present), counted each time one is seen:
// at every (re-)list and watch event. Safe from any goroutine.
func (s *EtcdSource) SkippedLeases() map[string]uint64 { return s.skipped.snapshot() }
