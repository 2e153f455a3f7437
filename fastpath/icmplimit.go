package fastpath

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// ICMP error rate limits, as the Linux kernel applies them to the errors it
// sends (net/ipv4/icmp.c, net/ipv4/inetpeer.c):
//
//   - a global token bucket shared by all workers: icmp_msgs_per_sec
//     (1000) tokens a second, at most icmp_msgs_burst (50);
//   - a bucket per destination of the error (the sender of the offending
//     packet): one token per icmp_ratelimit (1000 ms), at most 6
//     (XRLIM_BURST_FACTOR in inet_peer_xrlim_allow); a destination not seen
//     before starts with a full bucket.
//
// An error is sent only if both buckets have a token; the global one is
// charged only then. Unlike the kernel, frag-needed and packet-too-big are
// limited too (the kernel exempts PMTU messages): every error the
// forwarder makes costs a TUN write on the outbound goroutine. Their
// per-destination bucket is per (sender, original destination), since a
// sender keeps its path MTU per destination and needs one error for each:
// a sender's bulk transfer to one peer does not use up the errors that
// tell it about another. Suppressed errors count as icmp_ratelimited.
//
// Both buckets are touched only on the error path (never per forwarded
// packet): the global one by atomics, the per-destination table under a
// mutex, which is the slow path's only lock.

// ICMPLimits configure the rate limits on ICMP errors; the zero value
// means the kernel's defaults.
type ICMPLimits struct {
	// PerSecond and Burst are the global bucket (all workers together):
	// 0 means 1000 a second, burst 50. PerSecond < 0 turns the global limit
	// off.
	PerSecond, Burst int
	// PerDestInterval and PerDestBurst are each destination's bucket: one
	// error per interval, at most burst at once. 0 means 1 s and 6;
	// PerDestInterval < 0 turns the per-destination limit off.
	PerDestInterval time.Duration
	PerDestBurst    int
}

// Defaults of ICMPLimits (the kernel's sysctl defaults).
const (
	DefaultICMPPerSecond       = 1000
	DefaultICMPBurst           = 50
	DefaultICMPPerDestInterval = time.Second
	DefaultICMPPerDestBurst    = 6
)

// maxICMPDests bounds the per-destination table; when it is full, entries
// whose bucket has refilled are forgotten (they would start full anyway),
// and if none has, the table starts over.
const maxICMPDests = 4096

// icmpLimiter is a Forwarder's: the global bucket and the per-destination
// table. Safe for concurrent use by all workers.
type icmpLimiter struct {
	now func() time.Time

	// Global bucket: credit in micro-tokens, refilled lazily by whichever
	// worker finds it empty; stamp is the time of the last refill (ns).
	global          bool
	perSec, burst   int64
	credit, stampNs atomic.Int64
	perDest         bool
	interval        int64 // ns per token
	destBurst       int64
	mu              sync.Mutex
	dests           map[destKey]destBucket
}

// destKey names a per-destination bucket: the error's destination, and for
// PMTU errors the original packet's destination too (else zero).
type destKey struct{ to, about netip.Addr }

// destBucket is a destination's bucket: tokens in nanoseconds of credit
// (one error costs interval), as inet_peer keeps rate_tokens in jiffies.
type destBucket struct {
	tokens, last int64
}

const microTokens = 1_000_000

func newICMPLimiter(l ICMPLimits, now func() time.Time) *icmpLimiter {
	if now == nil {
		now = time.Now
	}
	il := &icmpLimiter{now: now, global: l.PerSecond >= 0, perDest: l.PerDestInterval >= 0}
	il.perSec, il.burst = int64(l.PerSecond), int64(l.Burst)
	if il.perSec == 0 {
		il.perSec = DefaultICMPPerSecond
	}
	if il.burst <= 0 {
		il.burst = DefaultICMPBurst
	}
	il.interval, il.destBurst = int64(l.PerDestInterval), int64(l.PerDestBurst)
	if il.interval == 0 {
		il.interval = int64(DefaultICMPPerDestInterval)
	}
	if il.destBurst <= 0 {
		il.destBurst = DefaultICMPPerDestBurst
	}
	t := now().UnixNano()
	il.credit.Store(il.burst * microTokens)
	il.stampNs.Store(t)
	if il.perDest {
		il.dests = make(map[destKey]destBucket, maxICMPDests)
	}
	return il
}

// allow reports whether an ICMP error to dst may be sent now, and if so
// charges the buckets; about is the original packet's destination for a
// PMTU error (frag-needed, packet-too-big), the zero Addr for others.
func (il *icmpLimiter) allow(dst, about netip.Addr) bool {
	now := il.now().UnixNano()
	if il.global && !il.globalHasToken(now) {
		return false
	}
	if il.perDest && !il.destAllow(destKey{dst, about}, now) {
		return false
	}
	if il.global {
		il.credit.Add(-microTokens)
	}
	return true
}

// globalHasToken refills the global bucket for the time since the last
// refill and reports whether it holds a whole token. Two workers may both
// see the last token and both send: the kernel accepts the same race.
func (il *icmpLimiter) globalHasToken(now int64) bool {
	if il.credit.Load() >= microTokens {
		return true
	}
	old := il.stampNs.Load()
	elapsed := now - old
	if elapsed <= 0 {
		return false
	}
	elapsed = min(elapsed, int64(time.Second))
	incr := il.perSec * elapsed / (int64(time.Second) / microTokens)
	if incr <= 0 || !il.stampNs.CompareAndSwap(old, now) {
		return il.credit.Load() >= microTokens
	}
	for {
		c := il.credit.Load()
		n := min(c+incr, il.burst*microTokens)
		if il.credit.CompareAndSwap(c, n) {
			return n >= microTokens
		}
	}
}

// destAllow is inet_peer_xrlim_allow for dst.
func (il *icmpLimiter) destAllow(dst destKey, now int64) bool {
	il.mu.Lock()
	defer il.mu.Unlock()
	full := il.destBurst * il.interval
	b, ok := il.dests[dst]
	if !ok {
		if len(il.dests) >= maxICMPDests {
			il.forget(now, full)
		}
		b = destBucket{tokens: full, last: now}
	}
	b.tokens = min(b.tokens+max(now-b.last, 0), full)
	b.last = now
	allowed := b.tokens >= il.interval
	if allowed {
		b.tokens -= il.interval
	}
	il.dests[dst] = b
	return allowed
}

// forget makes room in the per-destination table: it drops the entries
// whose bucket has refilled by now (they would start full anyway), or all
// of them if none has.
func (il *icmpLimiter) forget(now, full int64) {
	for a, b := range il.dests {
		if b.tokens+(now-b.last) >= full {
			delete(il.dests, a)
		}
	}
	if len(il.dests) >= maxICMPDests {
		clear(il.dests)
	}
}
