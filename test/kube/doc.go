// Package kube holds vxtun's tests against a real kube-apiserver, run in
// process over an embedded etcd. It is a Go module of its own so that the
// daemon's go.mod does not carry k8s.io/kubernetes. Run it with GOWORK=off
// (make test-kube).
package kube
