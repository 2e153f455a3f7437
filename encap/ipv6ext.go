package encap

// IPv6 extension headers (RFC 8200 §4) as next-header values, for code that
// steps over them to the transport header.
const (
	ProtocolIPv6HopByHop = 0
	ProtocolIPv6Routing  = 43
	ProtocolIPv6DestOpts = 60
)
