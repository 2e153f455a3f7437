package encap

// flannel's legacy "udp" backend carries the raw inner IP packet as the
// whole UDP payload: no header, no Ethernet frame, no VNI. Decapsulation is
// TrimIP on the datagram; encapsulation writes nothing.
const (
	// UDPLegacyOverhead is the number of bytes the legacy UDP format puts in
	// front of the inner packet: none.
	UDPLegacyOverhead = 0
	// UDPLegacyPort is flannel's default port for the udp backend.
	UDPLegacyPort = 8285
	// UDPLegacyOverheadIPv4 is the on-wire overhead over an IPv4 underlay
	// (outer IPv4 + UDP): TUN MTU = underlay MTU − 28.
	UDPLegacyOverheadIPv4 = IPv4MinimumSize + UDPMinimumSize
	// UDPLegacyOverheadIPv6 is the same for an IPv6 underlay (48).
	UDPLegacyOverheadIPv6 = IPv6MinimumSize + UDPMinimumSize
)
