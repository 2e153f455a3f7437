// Package nettest builds the test hosts that vxtun's privileged tests run on:
// network namespaces with unique names, veth pairs between them, and a way to
// run code or commands inside a namespace.
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
// privileged test ran.
package nettest
