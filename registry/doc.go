// Package registry owns where peers come from: the static peers file and
// flannel's etcd v3 lease layout. A Source emits the current peer set and
// then add/update/remove events as config.Peer data.
//
// registry does not import fastpath; cmd/vxtun connects the two.
package registry
