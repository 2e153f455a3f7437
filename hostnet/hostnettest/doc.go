// Package hostnettest is an in-memory hostnet.Host for unit tests of the
// code that drives a host (the node, dataplanes): it records the state a
// real host would have (links, sysctls, forward rules, the peer filter and
// its drop counter, which a test advances with AddPeerFilterDrops), reports it through accessors, and
// can be told to fail a call, so callers' error paths and rollbacks can be
// tested without privileges.
//
// Ownership: a Fake owns copies of everything passed to it; accessors return
// copies. Concurrency: all methods are safe for concurrent use (one mutex).
//
// Imports: hostnet and the standard library only.
package hostnettest
