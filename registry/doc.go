// Package registry owns where peers come from: the static peers file and
// flannel's etcd v3 lease layout. A Source emits the current peer set and
// then add/update/remove events as config.Peer data.
//
// registry does not import fastpath; cmd/vxtun connects the two: it folds
// each Update into its peer set with Apply and hands the result to the
// forwarder.
//
// Concurrency: Run is called once per Source; it returns when its context
// ends (an EtcdSource also after Close), having stopped the goroutines it
// started. The Updates it sends are shared with the receiver, which must not
// modify them. StaticSource.Reload and EtcdSource's Lease, LeaseChanges and
// Close are safe to call from any goroutine while Run runs. Apply is not
// synchronised: one goroutine owns the set it folds into.
package registry
