// Package dataplane is the seam between the node and whatever carries
// overlay packets: the Dataplane interface, the Config it is opened with,
// and its implementations, one file each (userspace_linux.go: the TUN and
// the fastpath forwarder; hostgw.go: flannel's host-gw, kernel routes only;
// directrouting.go: vxlan DirectRouting, an encapsulating dataplane plus
// direct routes for on-link peers; peerroutes.go: the route programming the
// last two share; kernel_linux.go: a kernel vxlan device
// flannel.<VNI> programmed through hostnet as flanneld programs it, the
// kernel forwarding; auto.go: the kernel one where the kernel lets it be
// created and brought up, else the userspace one, with a log line saying
// which and why). dataplane/dataplanetest is a fake for node tests.
//
// Ownership: an Opener's Dataplane owns the devices and sockets it made and
// every host change it asked Config.Host for; Close undoes them. The node
// owns the Dataplane. SetPeers, Stats and Info are safe to call from any
// goroutine while Run runs; Close only after Run returned.
//
// Imports: config, hostnet, and the implementation packages (fastpath, tun).
package dataplane
