// Package backoff is vxtun's one retry helper: an exponential Backoff
// (Min doubling up to Max), a context-aware Sleep, and Retry, which calls a
// function until it succeeds, its context ends, or it fails with an error
// marked by Permanent (one retrying cannot cure).
//
// Ownership: a Backoff is a small value owned by the loop that retries; it
// is not safe for concurrent use. Sleep and Retry hold no state between
// calls.
//
// Imports: the standard library only. Used by node (startup retries) and
// registry (reconnecting, re-listing, re-acquiring the etcd lease).
package backoff
