// Package etcdtest runs an in-process etcd server (go.etcd.io/etcd/server/v3/embed)
// for tests that need a real etcd: the registry's etcd source, and the
// end-to-end tests of etcd mode.
//
// Ownership: a Server belongs to the test that started it. It listens on
// ports picked at random on 127.0.0.1, or with StartWith on Options.Host
// inside whatever namespace Options.Do enters (nettest's NS.Do), keeps its
// data in t.TempDir(), and is stopped in t.Cleanup, also when the test
// fails. Stop and Restart let a test take etcd away and bring it back on the
// same ports with the same data. StartTLS serves clients over https and
// requires a client certificate; it writes a throwaway CA and client
// certificate for the test to use. EnableAuth turns authentication on (a
// root user and one user with a role on a key prefix); ClientAs makes a
// client that logs in. Servers use bcrypt's cheapest cost, so logging in
// stays well inside a client's dial timeout under the race detector.
//
// Concurrency: Endpoints and Client are safe for concurrent use; Stop and
// Restart must be called from the test goroutine, not concurrently with each
// other.
package etcdtest
