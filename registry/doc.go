// Package registry owns where peers come from: the static peers file and
// flannel's etcd v3 lease layout, and flannel's Kubernetes layout (Nodes, their
// pod CIDRs and flannel annotations: kube*.go). A Source
// emits the current peer set and then add/update/remove events as
// config.Peer data.
//
// Dual stack: DualStackPeers (dualstack.go) is the one conversion of a
// lease's or Node's IPv6 side, shared by the etcd and the Kubernetes
// source: with its own PublicIPv6 and a node with a public IPv6
// (EtcdOptions/KubeOptions.PublicIPv6, filled in by New from
// Node.PublicIPv6) it becomes a second peer "<name>/v6" (V6PeerSuffix).
//
// Seam: Settings choose a source; New (registry.go) is the one place that
// creates it, and Traits says what the node must know beforehand. Beyond
// Source.Run, a source has optional capabilities the node finds by type
// assertion: LeaseHolder (it assigns this node's subnet), Reloader (its
// input is re-read on SIGHUP), NetConfProvider (it keeps the network
// config), SkipCounter (it counts the leases it skips, by reason: etcd,
// etcd_skip.go), io.Closer. A new source is a new file here, a section in
// Settings and a case in Traits and New; the node does not change.
//
// Imports: config, internal/backoff, the etcd client, client-go's REST
// client, informer cache and clientcmd with k8s.io/api's core/v1 types
// only (kube_client.go; never the k8s.io/client-go/kubernetes clientset,
// which registers every API group at init and doubled the daemon's
// memory: tests use its fake through the KubeClient seam). registry does not
// import fastpath or dataplane; the node connects them: it folds each
// Update into its peer set with Apply and hands the result to the
// dataplane.
//
// Concurrency: Run is called once per Source; it returns when its context
// ends (an EtcdSource also after Close), having stopped the goroutines it
// started. The Updates it sends are shared with the receiver, which must not
// modify them. StaticSource.Reload, EtcdSource's Lease, LeaseChanges and
// Close, and KubeSource's Lease, LeaseChanges and NodeName are safe to call from any goroutine while Run runs;
// the KubeSource's apiHealth (its transport's outage log lines) is called
// from client-go's goroutines and locks itself. Apply is not
// synchronised: one goroutine owns the set it folds into.
package registry
