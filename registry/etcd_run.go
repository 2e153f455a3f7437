package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/vxtun/vxtun/config"
	"github.com/vxtun/vxtun/internal/backoff"
)

// Run implements Source. It acquires the lease if Acquire has not (retrying
// with backoff), keeps it renewed, and streams the other nodes' leases as
// peers: a Full update after every (re-)list — at start, after a compacted
// watch revision, after a broken watch, after our lease changed — and Events
// in between. While etcd is unreachable nothing is sent, so the receiver
// keeps forwarding with the last peers. Run may be called once; it returns
// ctx.Err() when ctx is done, or ErrSourceClosed after Close.
func (s *EtcdSource) Run(ctx context.Context, out chan<- Update) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("etcd source: Run called twice")
	}
	// Close ends Run: the client is gone, retrying is pointless.
	parent := ctx
	ctx, cancelRun := context.WithCancel(ctx)
	defer cancelRun()
	stop := context.AfterFunc(s.life, cancelRun)
	defer stop()
	err := s.run(ctx, out)
	if parent.Err() == nil && s.life.Err() != nil {
		return ErrSourceClosed
	}
	return err
}

func (s *EtcdSource) run(ctx context.Context, out chan<- Update) error {
	if _, err := backoff.Retry(ctx, newBackoff(), func() (Lease, error) { return s.Acquire(ctx) },
		func(err error, wait time.Duration) {
			s.log.Error("acquire lease (retrying)", "err", err, "retry-in", wait)
		}); err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{}, 2)
	go func() {
		defer func() { done <- struct{}{} }()
		s.keepLease(ctx)
	}()
	go func() {
		defer func() { done <- struct{}{} }()
		s.watchConn(ctx)
	}()
	err := s.watchPeers(ctx, out)
	cancel()
	<-done
	<-done
	return err
}

// keepLease renews the lease when half its TTL is left (LeaseKeepAlive: no
// PUT, so peers see no event) and re-acquires it when it is lost. flanneld
// instead re-puts the key one hour before expiry; renewing at half the TTL
// lets a node ride out an etcd outage of up to half the TTL (12 h) without
// losing its subnet.
func (s *EtcdSource) keepLease(ctx context.Context) {
	maxRetry := renewRetryMax(s.opts.LeaseTTL)
	bo := backoff.Backoff{Min: min(time.Second, maxRetry), Max: maxRetry}
	retry := time.Duration(0)
	for {
		s.mu.Lock()
		h := *s.held
		s.mu.Unlock()

		var timer <-chan time.Time
		var t *time.Timer
		if h.id != 0 {
			wait := time.Until(h.renewAt)
			if retry > 0 {
				wait = retry
			}
			t = time.NewTimer(max(wait, 0))
			timer = t.C
		}
		stop := func() {
			if t != nil {
				t.Stop()
			}
		}
		select {
		case <-ctx.Done():
			stop()
			return
		case <-s.lostCh:
			stop()
			s.log.Warn("our lease is gone from etcd, re-acquiring", "lease", h.Name)
			s.reacquire(ctx, h.Subnet, h.Subnet6)
			retry = 0
			bo.Reset()
		case <-timer:
			rctx, cancel := context.WithTimeout(ctx, opTimeout)
			resp, err := s.cli.KeepAliveOnce(rctx, h.id)
			cancel()
			switch {
			case err == nil:
				s.mu.Lock()
				if s.held.id == h.id {
					s.held.renewAt = time.Now().Add(time.Duration(resp.TTL) * time.Second / 2)
				}
				s.mu.Unlock()
				retry = 0
				bo.Reset()
				s.health.ok("renew lease")
				s.log.Debug("lease renewed", "lease", h.Name, "ttl-seconds", resp.TTL)
			case errors.Is(err, rpctypes.ErrLeaseNotFound):
				s.log.Warn("our etcd lease expired, re-acquiring", "lease", h.Name)
				s.reacquire(ctx, h.Subnet, h.Subnet6)
				retry = 0
				bo.Reset()
			case ctx.Err() != nil:
				return
			default:
				retry = bo.Next()
				s.health.lost("renew lease", err, "lease", h.Name, "retry-in", retry)
			}
		}
	}
}

// renewRetryMax caps the renewal retry interval at a tenth of the TTL and
// one minute.
func renewRetryMax(ttl time.Duration) time.Duration {
	return max(min(ttl/10, time.Minute), 100*time.Millisecond)
}

// reacquire takes a lease again, preferring the subnet held before, until it
// succeeds or ctx is done; then it publishes it and asks the watch loop to
// re-list (the peer set depends on which key is ours).
func (s *EtcdSource) reacquire(ctx context.Context, prefer, prefer6 netip.Prefix) {
	// Drain a stale loss signal: the watch may report the deletion that
	// the renewal already noticed.
	select {
	case <-s.lostCh:
	default:
	}
	h, err := backoff.Retry(ctx, newBackoff(), func() (*heldLease, error) { return s.acquire(ctx, prefer, prefer6) },
		func(err error, wait time.Duration) {
			s.log.Error("re-acquire lease (retrying)", "err", err, "retry-in", wait)
		})
	if err != nil {
		return
	}
	s.mu.Lock()
	s.publishLocked(h)
	s.mu.Unlock()
	select {
	case s.resyncCh <- struct{}{}:
	default:
	}
}

// ownName returns the held lease's name and subnet.
func (s *EtcdSource) ownName() (string, netip.Prefix) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.held.Name, s.held.Subnet
}

// isOurs reports whether a value of our key still carries our public IP.
func (s *EtcdSource) isOurs(value []byte) bool {
	a, err := decodeLeaseValue(value)
	return err == nil && a.PublicIP == s.opts.PublicIP
}

func (s *EtcdSource) signalLost() {
	select {
	case s.lostCh <- struct{}{}:
	default:
	}
}

// watchPeers lists and watches <prefix>/subnets/ until ctx is done.
func (s *EtcdSource) watchPeers(ctx context.Context, out chan<- Update) error {
	bo := newBackoff()
	var wait time.Duration // before the next (re-)list; 0 after a good watch
	peers := map[string]config.Peer{}
	for {
		if err := backoff.Sleep(ctx, wait); err != nil {
			return err
		}
		// Drain a pending resync request: this list serves it.
		select {
		case <-s.resyncCh:
		default:
		}
		nc, err := s.NetConf(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			wait = bo.Next()
			s.health.lost("read network config", err, "retry-in", wait)
			continue
		}
		lctx, cancel := context.WithTimeout(ctx, opTimeout)
		resp, err := s.cli.Get(lctx, s.subnets, clientv3.WithPrefix())
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			wait = bo.Next()
			s.health.lost("list leases", err, "retry-in", wait)
			continue
		}
		s.health.ok("list leases")
		clear(peers)
		own, _ := s.ownName()
		ownSeen := false
		for _, kv := range resp.Kvs {
			if strings.TrimPrefix(string(kv.Key), s.subnets) == own {
				ownSeen = s.isOurs(kv.Value)
				continue
			}
			for _, p := range s.kvPeers(nc, kv) {
				peers[p.Name] = p
			}
		}
		if !ownSeen {
			// Lost between acquiring and listing (or while the watch was
			// down): the watch will not report it, so do it here.
			s.signalLost()
		}
		full := sortedPeers(peers)
		if err := send(ctx, out, Update{Full: true, Peers: full}); err != nil {
			return err
		}
		s.log.Info("peers synced", "peers", len(full), "revision", resp.Header.Revision)

		rev := resp.Header.Revision + 1
		if s.watchRev != nil {
			rev = s.watchRev(rev)
		}
		watchOK := s.watchFrom(ctx, out, nc, peers, rev)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if watchOK {
			bo.Reset()
			wait = 0
		} else {
			wait = bo.Next()
		}
	}
}

// watchFrom applies watch events from rev on to peers and sends them as
// Events. It returns when the watch ends; ok reports whether re-listing may
// start at once (compaction, resync request, or a watch that worked for a
// while) rather than after a backoff.
func (s *EtcdSource) watchFrom(ctx context.Context, out chan<- Update, nc *config.NetConf,
	peers map[string]config.Peer, rev int64) (ok bool) {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wch := s.cli.Watch(clientv3.WithRequireLeader(wctx), s.subnets, clientv3.WithPrefix(), clientv3.WithRev(rev))
	delivered := false
	for {
		select {
		case <-ctx.Done():
			return false
		case <-s.resyncCh:
			s.log.Info("our lease changed, re-listing peers")
			return true
		case wr, open := <-wch:
			if !open {
				if ctx.Err() != nil {
					return false
				}
				s.health.lost("watch leases", errWatchClosed)
				return delivered
			}
			if wr.CompactRevision != 0 || errors.Is(wr.Err(), rpctypes.ErrCompacted) {
				s.log.Warn("lease watch revision compacted, re-listing", "revision", rev, "compact-revision", wr.CompactRevision)
				return true
			}
			if err := wr.Err(); err != nil {
				s.health.lost("watch leases", err)
				return delivered
			}
			delivered = true
			if wr.Header.Revision > 0 {
				rev = wr.Header.Revision + 1
			}
			evs := s.applyEvents(nc, peers, wr.Events)
			if len(evs) == 0 {
				continue
			}
			if err := send(ctx, out, Update{Events: evs}); err != nil {
				return false
			}
		}
	}
}

// applyEvents folds etcd events into peers and returns the peer events.
func (s *EtcdSource) applyEvents(nc *config.NetConf, peers map[string]config.Peer, evs []*clientv3.Event) []Event {
	var out []Event
	own, _ := s.ownName()
	for _, ev := range evs {
		name := strings.TrimPrefix(string(ev.Kv.Key), s.subnets)
		if name == own {
			// Our own key: deleted (expired, or removed by an operator) or
			// overwritten with someone else's address means our lease is gone.
			if ev.Type == mvccpb.DELETE || !s.isOurs(ev.Kv.Value) {
				s.signalLost()
			}
			continue
		}
		var now []config.Peer
		if ev.Type != mvccpb.DELETE {
			now = s.kvPeers(nc, ev.Kv)
		}
		out = foldLease(peers, name, now, out)
	}
	return out
}

// foldLease sets the peers of lease name (itself and name+V6PeerSuffix) in
// peers to now (empty: the lease is gone or unusable) and appends the
// events that makes.
func foldLease(peers map[string]config.Peer, name string, now []config.Peer, out []Event) []Event {
	for _, pn := range [...]string{name, name + V6PeerSuffix} {
		old, known := peers[pn]
		var p config.Peer
		ok := false
		for _, q := range now {
			if q.Name == pn {
				p, ok = q, true
			}
		}
		switch {
		case !ok && known:
			delete(peers, pn)
			out = append(out, Event{Type: PeerRemoved, Peer: old})
		case !ok:
		case !known:
			peers[pn] = p
			out = append(out, Event{Type: PeerAdded, Peer: p})
		case !peerEqual(old, p):
			peers[pn] = p
			out = append(out, Event{Type: PeerUpdated, Peer: p})
		}
	}
	return out
}

// kvPeers turns a lease key-value into its peers (one, or two for a
// dual-stack lease with a PublicIPv6 when this node has one too), logging
// and skipping what cannot be one: our own lease, keys that are not leases,
// malformed values, subnets outside the network or overlapping ours, other
// backends.
func (s *EtcdSource) kvPeers(nc *config.NetConf, kv *mvccpb.KeyValue) []config.Peer {
	name := strings.TrimPrefix(string(kv.Key), s.subnets)
	own, ownSubnet := s.ownName()
	if name == own {
		return nil
	}
	if a, err := decodeLeaseValue(kv.Value); err == nil && a.PublicIP == s.opts.PublicIP && bytes.Equal(a.VtepMAC, s.opts.VtepMAC) {
		// Ours (our address and VTEP MAC), taken a moment ago (the watch
		// can report a new lease before it is published as held) or left
		// by an earlier run: not a peer, and nothing to warn about. Another
		// node with our address still gets the warning below.
		s.log.Debug("skipping a lease of ours", "key", string(kv.Key))
		return nil
	}
	self := leaseSelf{ip: s.opts.PublicIP, ip6: s.opts.PublicIPv6, mac: s.opts.VtepMAC, own: []netip.Prefix{ownSubnet, s.ownSubnet6()}}
	ps, routed6, err := leasePeers(nc, name, kv.Value, self)
	if err != nil {
		s.skipped.count(err)
		s.log.Warn("skipping lease", "key", string(kv.Key), "err", err)
		return nil
	}
	if _, sn6, _ := parseSubnetKeys(name); nc.EnableIPv6 && sn6.IsValid() && !routed6 {
		s.log.Info("lease's IPv6 subnet is carried on a second underlay (flanneld's flannel-v6.1, PublicIPv6) and this node has no public IPv6: routing only its IPv4 subnet",
			"key", string(kv.Key), "ipv6-subnet", sn6)
	}
	return ps
}

// errWatchClosed is a watch channel that closed without an error.
var errWatchClosed = errors.New("watch closed")

// errSkip marks leases that are valid but not usable as a peer here.
var errSkip = errors.New("not a peer")

// leaseSelf is the node a lease is turned into peers for: its public IP
// and IPv6 (zero: none), its VTEP MAC and its subnets (zero ones ignored).
type leaseSelf struct {
	ip, ip6 netip.Addr
	mac     net.HardwareAddr
	own     []netip.Prefix
}

// leasePeers converts one lease (key name and value) into the peers of
// node self whose network config is nc. A lease that would loop (a public
// IP inside the network, ours, or our VTEP MAC) is an error, as is a
// loopback public IP.
//
// A dual-stack lease's IPv6 subnet (with EnableIPv6) goes where
// DualStackPeers says: to the same peer when the lease carries it over
// PublicIP with the same VtepMAC (as vxtun without a public IPv6 writes it:
// PublicIPv6 null), to a second peer over PublicIPv6 (flanneld's
// flannel-v6.1) when self has a public IPv6, else nowhere (routed6 false).
func leasePeers(nc *config.NetConf, name string, value []byte, self leaseSelf) (peers []config.Peer, routed6 bool, err error) {
	if strings.Contains(name, "/") {
		return nil, false, fmt.Errorf("%w %q: nested key", ErrBadLeaseKey, name)
	}
	sn, sn6, err := parseSubnetKeys(name)
	if err != nil {
		return nil, false, err
	}
	a, err := decodeLeaseValue(value)
	if err != nil {
		return nil, false, err
	}
	p := config.Peer{
		Name:     name,
		PublicIP: a.PublicIP,
		Port:     nc.Backend.Port,
		Subnets:  []netip.Prefix{sn},
		Backend:  a.Backend,
	}
	if a.Backend == config.BackendVXLAN {
		p.VNI = a.VNI
		if p.VNI == 0 {
			p.VNI = nc.Backend.VNI
		}
		p.VtepMAC = a.VtepMAC
	}
	peers = []config.Peer{p}
	if sn6.IsValid() && nc.EnableIPv6 {
		v6 := V6Side{Subnet: sn6}
		if a.V6 != nil {
			v6.PublicIP, v6.VNI, v6.VtepMAC = a.V6.PublicIP, a.V6.VNI, a.V6.VtepMAC
		}
		peers, routed6 = DualStackPeers(p, v6, self.ip6)
	}
	scope := config.PeerScope{Backend: nc.Backend.Type, Network: nc, Self: self.ip, Self6: self.ip6, SelfMAC: self.mac}
	for _, o := range self.own {
		if o.IsValid() {
			scope.Own = append(scope.Own, o)
		}
	}
	for i := range peers {
		if err := peers[i].Check(scope); err != nil {
			if errors.Is(err, config.ErrForeignPeer) {
				return nil, false, fmt.Errorf("%w: %w", errSkip, err)
			}
			return nil, false, fmt.Errorf("%w: %w", ErrBadLeaseValue, err)
		}
	}
	return peers, routed6, nil
}

// ownSubnet6 returns the held lease's IPv6 subnet, if any.
func (s *EtcdSource) ownSubnet6() netip.Prefix {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held == nil {
		return netip.Prefix{}
	}
	return s.held.Subnet6
}
