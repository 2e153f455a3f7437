// Package nettest builds the test hosts that vxtun's privileged tests run on:
// network namespaces with unique names, veth pairs between them, and a way to
// run code or commands inside a namespace, and pods as clusters have them
// (cni_linux.go): pod namespaces attached to a cni0 bridge on their node by
// the CNI reference plugins bridge and host-local, with the configuration
// the flannel CNI plugin builds from the node's subnet.env.
//
// Imports: the standard library, netlink/netns, and config (subnet.env).
//
// Ownership: every namespace made through this package belongs to the test
// that made it and is deleted in t.Cleanup, also when the test fails. Nothing
// is ever created in the host's own namespace.
//
// Concurrency: NS.Do runs its callback on a goroutine of its own, locked to
// an OS thread switched into the namespace, and waits for it; callers may run
// Do from many goroutines at once. Sockets and TUN devices opened inside Do
// stay in that namespace after Do returns.
//
// Privileges: RequirePrivileged skips a test that needs root, /dev/net/tun
// and iproute2 when they are missing (RequireCommand likewise for other
// programs), unless the environment variable VXTUN_REQUIRE_PRIV=1 is set (CI
// sets it), in which case the skip becomes a failure, so CI proves that every
// privileged test ran. RequireCNI does the same for the CNI plugins, which
// scripts/deps.sh installs in CNIBinDir (outside the repository).
//
// Pods: PodNetwork runs the plugins inside the node's namespace (so cni0 is
// made there) with CNI_NETNS pointing at the pod's namespace; host-local's
// state lives in a directory the caller owns (a test's temporary directory).
// NewPod detaches the pod (CNI DEL) in t.Cleanup before its namespace goes.
// PodNetwork's methods may be called concurrently.
package nettest
