// Package tun owns the Linux TUN device: opening it with IFF_VNET_HDR and
// offloads, multi-queue, batch Read/Write in the shape of wireguard-go's
// tun.Device, GSO splitting on read and GRO coalescing on write, and link
// configuration (MTU, address, route) through netlink.
//
// Buffers: Read and Write take a vector of buffers and an offset; the packet
// lives at bufs[i][offset:]. The bytes before offset are headroom owned by the
// caller (fastpath writes outer headers there). A Device never keeps a
// reference to a caller's buffer after a call returns.
//
// Concurrency: one queue (one Device value) is used by at most one reader
// and one writer goroutine at a time; distinct queues are independent.
package tun
