// Package nettest is vxtun's one testbed: the test hosts that privileged
// tests, the end-to-end benchmark (bench) and the demo run on, and the
// traffic and configuration helpers they share.
//
// Files by job:
//
//   - priv.go: what a testbed needs (root, /dev/net/tun, iproute2, tools)
//     and the skip-or-fail rule for tests.
//   - ns_linux.go: named network namespaces (NS): create, run code (Do)
//     or commands (Exec, Command) inside, delete.
//   - topology_linux.go: veth pairs, the address plan on links, Underlay
//     (two nodes on one veth, or N nodes on a bridge in a switch
//     namespace) and the test shorthand TwoHosts.
//   - addrs.go: the address plan of DESIGN.md (node N: underlay
//     198.18.0.N, subnet 198.19.N.0/24, pod 198.19.N.1, VtepMAC).
//   - configs.go: writers for net-conf.json, node.json and peers.json.
//   - daemon_linux.go: long-running commands in a namespace (Daemon).
//   - ping*.go, iperf*.go, tcp_linux.go: traffic: ping and its parser,
//     iperf3 runs and their JSON parser, TCP transfers and echoes whose
//     content is checked by length and SHA-256.
//   - proc*.go: CPU time and peak RSS of a process.
//
// API shape: the core functions take a context where they wait, return
// errors and never need a testing.TB, so programs (bench, the demo) use
// them; thin wrappers for tests take t first (NewNS, Veth, NewTwoHosts,
// StartDaemon, WaitExit, RequirePrivileged) and fail t or register
// t.Cleanup.
//
// Ownership: a namespace from CreateNS or NewUnderlay belongs to the
// caller, who deletes it with Close (which first kills what still runs in
// it); one from NewNS or NewTwoHosts belongs to the test and is deleted in
// t.Cleanup, also when the test fails. A Daemon belongs to whoever
// started it and ends with Stop or Kill (StartDaemon: in t.Cleanup).
// Nothing is ever created in the host's own namespace: a multi-node
// underlay puts its bridge in a namespace of its own. Addresses are only
// 198.18.0.0/24 and 198.19.0.0/16 (DESIGN.md, "Test hosts").
//
// Imports: the standard library, netlink, netns, and config (pods read the
// node's subnet.env; the tests read back the files it writes with config's
// parsers). config imports no test code, so every package's tests may use
// nettest.
//
// Concurrency: NS.Do runs its callback on a goroutine of its own, locked
// to an OS thread switched into the namespace, and waits for it; callers
// may run Do from many goroutines at once. Sockets and TUN devices opened
// inside Do stay in that namespace after Do returns. Daemon methods are
// safe from several goroutines once Start has returned. Underlay.Close
// and NS.Close are not safe concurrently with building.
//
// Privileges: RequirePrivileged skips a test that needs root, /dev/net/tun
// and iproute2 when they are missing (RequireCommand likewise for other
// programs), unless the environment variable VXTUN_REQUIRE_PRIV=1 is set (CI
// sets it), in which case the skip becomes a failure, so CI proves that every
// privileged test ran. CheckPrivileged and CheckTools are the same checks
// as errors, for programs.
//
// Pods: cni_linux.go attaches pod namespaces to a cni0 bridge on their node
// with the CNI reference plugins bridge and host-local, configured as the
// flannel CNI plugin configures them from the node's subnet.env.
// PodNetwork runs the plugins inside the node's namespace (so cni0 is made
// there) with CNI_NETNS pointing at the pod's namespace; host-local's state
// lives in a directory the caller owns (a test's temporary directory).
// NewPod detaches the pod (CNI DEL) in t.Cleanup before its namespace goes.
// PodNetwork's methods may be called concurrently. RequireCNI skips or
// fails like RequirePrivileged when the plugins (installed by
// scripts/deps.sh in CNIBinDir, outside the repository) are missing.
package nettest
