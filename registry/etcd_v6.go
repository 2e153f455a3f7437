package registry

import (
	"fmt"
	"math/rand/v2"
	"net/netip"

	"github.com/vxtun/vxtun/config"
)

// IPv6 subnets of dual-stack leases (EnableIPv6): picked like the IPv4
// ones, between IPv6SubnetMin and IPv6SubnetMax, at random among the first
// freeCandidates free ones, as flanneld does.

// fitsConfig6 reports whether sn6 is the IPv6 part a lease of this node may
// have under nc: none without EnableIPv6, else one of IPv6SubnetLen between
// IPv6SubnetMin and IPv6SubnetMax (flannel's isIPv6SubnetConfigCompat).
func fitsConfig6(nc *config.NetConf, sn6 netip.Prefix) bool {
	if !nc.EnableIPv6 {
		return !sn6.IsValid()
	}
	return sn6.IsValid() && sn6.Bits() == nc.IPv6SubnetLen &&
		!sn6.Addr().Less(nc.IPv6SubnetMin) && !nc.IPv6SubnetMax.Less(sn6.Addr())
}

// pickSubnet6 chooses a free IPv6 subnet: prefer if it fits and is free,
// otherwise a random one among the first freeCandidates free subnets from
// IPv6SubnetMin up.
func pickSubnet6(nc *config.NetConf, taken []netip.Prefix, prefer netip.Prefix) (netip.Prefix, error) {
	free := func(sn netip.Prefix) bool {
		for _, p := range taken {
			if p.Overlaps(sn) {
				return false
			}
		}
		return true
	}
	if prefer.IsValid() && fitsConfig6(nc, prefer) && free(prefer) {
		return prefer, nil
	}
	var cands []netip.Prefix
	for a := nc.IPv6SubnetMin; !nc.IPv6SubnetMax.Less(a) && len(cands) < freeCandidates; {
		sn := netip.PrefixFrom(a, nc.IPv6SubnetLen)
		if free(sn) {
			cands = append(cands, sn)
		}
		next, ok := nextSubnet6(a, nc.IPv6SubnetLen)
		if !ok {
			break
		}
		a = next
	}
	if len(cands) == 0 {
		return netip.Prefix{}, fmt.Errorf("%w between %s and %s", ErrNoFreeSubnet, nc.IPv6SubnetMin, nc.IPv6SubnetMax)
	}
	return cands[rand.IntN(len(cands))], nil
}

// nextSubnet6 returns the start of the /bits subnet after the one starting
// at a; ok is false when it would wrap past the end of the address space.
func nextSubnet6(a netip.Addr, bits int) (netip.Addr, bool) {
	b := a.As16()
	inc := byte(0x80 >> uint((bits-1)%8))
	for i := (bits - 1) / 8; i >= 0; i-- {
		sum := uint16(b[i]) + uint16(inc)
		b[i] = byte(sum)
		if sum < 0x100 {
			return netip.AddrFrom16(b), true
		}
		inc = 1
	}
	return netip.Addr{}, false
}
