// Package dataplanetest is a fake dataplane.Dataplane and Opener for unit
// tests of what drives a dataplane (the node): it records every Open and
// every peer set, rejects peer sets on request, and lets a test make Run
// fail, without touching the host.
//
// Concurrency: every method of Opener and Fake is safe for concurrent use;
// Wait blocks until a condition on the fake holds.
//
// Imports: dataplane, config.
package dataplanetest
