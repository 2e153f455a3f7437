// Package dataplane is the seam between the node and whatever carries
// overlay packets: the Dataplane interface, the Config it is opened with,
// and its implementations, one file each (userspace_linux.go: the TUN and
// the fastpath forwarder). dataplane/dataplanetest is a fake for node tests.
//
// Ownership: an Opener's Dataplane owns the devices and sockets it made and
// every host change it asked Config.Host for; Close undoes them. The node
// owns the Dataplane. SetPeers, Stats and Info are safe to call from any
// goroutine while Run runs; Close only after Run returned.
//
// Imports: config, hostnet, and the implementation packages (fastpath, tun).
package dataplane
