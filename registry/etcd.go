package registry

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/vxtun/vxtun/config"
	"github.com/vxtun/vxtun/internal/backoff"
)

// Defaults of EtcdOptions, as flanneld has them.
const (
	DefaultEtcdPrefix   = "/coreos.com/network"
	DefaultEtcdEndpoint = "http://127.0.0.1:2379"
	// DefaultLeaseTTL is the TTL of the etcd lease a subnet key is attached
	// to (flannel's subnetTTL).
	DefaultLeaseTTL = 24 * time.Hour
)

// Errors of the etcd source.
var (
	// ErrNoNetworkConfig: <prefix>/config does not exist.
	ErrNoNetworkConfig = errors.New("network config not found in etcd")
	// ErrNoFreeSubnet: every subnet between SubnetMin and SubnetMax is leased.
	ErrNoFreeSubnet = errors.New("no free subnet")
	// ErrSourceClosed: Run ended because Close was called.
	ErrSourceClosed = errors.New("etcd source closed")
)

const (
	// opTimeout bounds each etcd request.
	opTimeout = 5 * time.Second
	// acquireAttempts is how often a lost create race is retried within
	// one Acquire (each retry re-lists, so it sees the winner's lease).
	acquireAttempts = 64
	// freeCandidates is how many free subnets, counted from SubnetMin, the
	// random pick chooses among (as flannel does, 100).
	freeCandidates = 100
	// Backoff for reconnecting, re-listing and re-acquiring.
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
)

// EtcdOptions configure an EtcdSource. They mirror flanneld's flags.
type EtcdOptions struct {
	// Endpoints are the etcd client URLs (--etcd-endpoints); default
	// DefaultEtcdEndpoint.
	Endpoints []string
	// Prefix is the key prefix of the network (--etcd-prefix); default
	// DefaultEtcdPrefix.
	Prefix string
	// CertFile, KeyFile and CAFile enable TLS (--etcd-certfile,
	// --etcd-keyfile, --etcd-cafile). CertFile and KeyFile go together; CAFile
	// alone verifies the server without a client certificate. An https://
	// endpoint without files uses TLS with the system roots.
	CertFile, KeyFile, CAFile string
	// Username and Password for etcd authentication (--etcd-username,
	// --etcd-password); optional.
	Username, Password string

	// PublicIP is this node's IPv4 underlay address (--public-ip, or the
	// first address of --iface, resolved by the caller). Required: it is
	// written into the lease, and a lease already carrying it is reused
	// after a restart.
	PublicIP netip.Addr
	// PublicIPv6 is this node's IPv6 underlay address (--public-ipv6), or
	// zero. With it and EnableIPv6, the lease publishes it as PublicIPv6
	// (flanneld's dual-stack layout), and leases with a PublicIPv6 become
	// two peers (DualStackPeers). Without it, the IPv6 overlay goes over
	// PublicIP (the lease's PublicIPv6 is null).
	PublicIPv6 netip.Addr
	// VtepMAC is this node's VTEP MAC, written into a vxlan lease. Required
	// when the network config's backend is vxlan.
	VtepMAC net.HardwareAddr

	// LeaseTTL is the TTL of the etcd lease (default DefaultLeaseTTL,
	// rounded up to whole seconds; etcd raises very short TTLs to its
	// minimum, about 2 s). The lease is renewed when half of it is left.
	LeaseTTL time.Duration
	// DialTimeout bounds the first connection attempt of a request
	// (default 5 s).
	DialTimeout time.Duration
	// Logger receives lease changes, skipped leases and connection trouble.
	// nil means slog.Default().
	Logger *slog.Logger
}

// Lease is the subnet lease this node holds in etcd.
type Lease struct {
	// Name is the key's last element, e.g. "10.244.1.0-24"; the key is
	// <prefix>/subnets/<Name>.
	Name string
	// Subnet is this node's overlay subnet.
	Subnet netip.Prefix
	// Subnet6 is this node's IPv6 overlay subnet when the network config
	// has EnableIPv6 (the key is then "<ipv4>-<len>&<ipv6>-<len>").
	Subnet6  netip.Prefix
	PublicIP netip.Addr
	Backend  config.Backend
	VNI      uint32           // vxlan
	VtepMAC  net.HardwareAddr // vxlan
	// NetConf is the network config (<prefix>/config) the lease was taken
	// under, for subnet.env and the MTU. Read-only: it is shared.
	NetConf *config.NetConf
	// Reservation is true when the key is a reservation made by an
	// operator (no etcd lease attached): it never expires and is not renewed.
	Reservation bool
}

// heldLease is the lease and what renewing it needs.
type heldLease struct {
	Lease
	id      clientv3.LeaseID // 0 for a reservation
	renewAt time.Time
}

// EtcdSource is a Source that reads and writes flannel's etcd v3 layout:
// it holds this node's subnet lease and watches everyone else's.
//
// Lifecycle: NewEtcdSource connects lazily (with a user name it
// authenticates on the first request: etcd_client.go); Acquire (optional)
// takes the lease, so the caller can set up its device and subnet.env
// before forwarding; Run (once) acquires the lease if Acquire was not called,
// renews it, and streams peers until ctx is done; Close releases the client.
// Leases are never revoked on exit, so a restarted node keeps its subnet.
//
// Lease, LeaseChanges and Close are safe to call concurrently with Run.
//
// Peers: every key under <prefix>/subnets/ except our own becomes a
// config.Peer named after the key ("10.244.1.0-24"), with the lease's
// PublicIP, subnet, VNI and VtepMAC, the port of the network config's
// Backend, and Backend "udp" when the lease has no BackendType (what
// flanneld's udp backend writes). Skipped, with a log line: keys that are
// not leases, malformed values (JSON, public IP, MAC, VNI), subnets outside
// Network or overlapping ours, leases carrying our public IP, and leases of
// another backend than the network's — vxlan, flannel's udp encapsulation
// and host-gw routes do not interoperate (flanneld ignores them too), and
// wireguard and the like are not backends vxtun speaks. A host-gw
// network's leases are written and read as flanneld's host-gw backend
// does: BackendType "host-gw", no BackendData. A key whose subnet parses still
// occupies that subnet when picking ours, whatever its value.
//
// Lease lifetime: the key is attached to an etcd lease of LeaseTTL,
// renewed when half of it is left. If the key disappears (expired during a
// long etcd outage, deleted by an operator) or is overwritten with another
// node's address, the source takes a lease again — the same subnet if it is
// free — and announces a changed subnet on LeaseChanges.
type EtcdSource struct {
	opts     EtcdOptions
	log      *slog.Logger
	cfgKey   string // <prefix>/config
	subnets  string // <prefix>/subnets/
	running  atomic.Bool
	leaseCh  chan Lease
	lostCh   chan struct{} // own lease gone (watch saw it deleted or replaced)
	resyncCh chan struct{} // own lease changed: re-list peers

	health *etcdHealth // outage logging

	etcdClient // the client, made on first use (etcd_client.go)

	mu   sync.Mutex
	held *heldLease // nil until acquired

	skipped skipCounts // leases logged and skipped, by reason (SkippedLeases)

	// watchRev, when set (tests only), rewrites the revision a watch starts
	// at, so a test can make it start below etcd's compaction point.
	watchRev func(rev int64) int64
}

// NewEtcdSource checks opts and prepares the etcd client. It does not wait
// for etcd to be reachable, nor authenticate: with a user name and
// password the client is made, and authenticates, on the first request
// (etcd_client.go).
func NewEtcdSource(opts EtcdOptions) (*EtcdSource, error) {
	if len(opts.Endpoints) == 0 {
		opts.Endpoints = []string{DefaultEtcdEndpoint}
	}
	if opts.Prefix == "" {
		opts.Prefix = DefaultEtcdPrefix
	}
	opts.Prefix = "/" + strings.Trim(opts.Prefix, "/")
	if opts.LeaseTTL == 0 {
		opts.LeaseTTL = DefaultLeaseTTL
	}
	if opts.LeaseTTL < 0 {
		return nil, fmt.Errorf("etcd source: negative lease TTL %v", opts.LeaseTTL)
	}
	if opts.DialTimeout == 0 {
		opts.DialTimeout = 5 * time.Second
	}
	opts.PublicIP = opts.PublicIP.Unmap()
	if !opts.PublicIP.Is4() || opts.PublicIP.IsUnspecified() {
		return nil, fmt.Errorf("etcd source: public IP %v: want a unicast IPv4 address", opts.PublicIP)
	}
	if err := checkPublicIPv6(opts.PublicIPv6); err != nil {
		return nil, fmt.Errorf("etcd source: %w", err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	tlsCfg, err := etcdTLS(opts)
	if err != nil {
		return nil, fmt.Errorf("etcd source: %w", err)
	}
	log = log.With("etcd-prefix", opts.Prefix)
	s := &EtcdSource{
		opts:     opts,
		log:      log,
		health:   &etcdHealth{log: log},
		cfgKey:   opts.Prefix + "/config",
		subnets:  opts.Prefix + "/subnets/",
		leaseCh:  make(chan Lease, 1),
		lostCh:   make(chan struct{}, 1),
		resyncCh: make(chan struct{}, 1),
	}
	if err := s.initClient(opts, tlsCfg); err != nil {
		return nil, fmt.Errorf("etcd source: client: %w", err)
	}
	return s, nil
}

func etcdTLS(o EtcdOptions) (*tls.Config, error) {
	if (o.CertFile == "") != (o.KeyFile == "") {
		return nil, errors.New("etcd TLS: certfile and keyfile must be given together")
	}
	if o.CertFile == "" && o.CAFile == "" {
		for _, ep := range o.Endpoints {
			if strings.HasPrefix(ep, "https://") {
				return &tls.Config{MinVersion: tls.VersionTLS12}, nil
			}
		}
		return nil, nil
	}
	info := transport.TLSInfo{CertFile: o.CertFile, KeyFile: o.KeyFile, TrustedCAFile: o.CAFile}
	c, err := info.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("etcd TLS: %w", err)
	}
	return c, nil
}

// Lease returns the lease currently held, if any.
func (s *EtcdSource) Lease() (Lease, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held == nil {
		return Lease{}, false
	}
	return s.held.Lease, true
}

// LeaseChanges delivers the lease when it is first acquired and whenever it
// changes afterwards (it was lost — deleted, or expired while etcd was
// unreachable — and a different subnet had to be taken). The channel holds
// only the newest lease: an unread older one is replaced. The caller
// rewrites subnet.env and its own address when it receives one.
func (s *EtcdSource) LeaseChanges() <-chan Lease {
	return s.leaseCh
}

// publishLocked records h as held and announces it if it differs from the
// previous lease. Called with s.mu held.
func (s *EtcdSource) publishLocked(h *heldLease) {
	old := s.held
	s.held = h
	if old != nil && old.Name == h.Name && old.PublicIP == h.PublicIP &&
		old.Backend == h.Backend && old.VNI == h.VNI && bytes.Equal(old.VtepMAC, h.VtepMAC) {
		return
	}
	select {
	case <-s.leaseCh:
	default:
	}
	s.leaseCh <- h.Lease
}

// NetConf reads and parses <prefix>/config.
func (s *EtcdSource) NetConf(ctx context.Context) (*config.NetConf, error) {
	cli, err := s.client(ctx)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", s.cfgKey, err)
	}
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	resp, err := cli.Get(ctx, s.cfgKey)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", s.cfgKey, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, fmt.Errorf("read %s: %w", s.cfgKey, ErrNoNetworkConfig)
	}
	nc, err := config.ParseNetConf("etcd "+s.cfgKey, resp.Kvs[0].Value)
	if err != nil {
		return nil, err
	}
	if !nc.EnableIPv4 {
		return nil, fmt.Errorf("%s: the etcd source needs an IPv4 Network (EnableIPv4)", s.cfgKey)
	}
	return nc, nil
}

// Acquire reads the network config and takes this node's lease, if it does
// not hold one already: it reuses a lease that carries this node's public IP
// and fits the config (a restart), otherwise creates the key of a free
// subnet in a transaction that fails if the key exists, retrying lost races.
// It makes one attempt; Run retries with backoff.
func (s *EtcdSource) Acquire(ctx context.Context) (Lease, error) {
	if l, ok := s.Lease(); ok {
		return l, nil
	}
	h, err := s.acquire(ctx, netip.Prefix{}, netip.Prefix{})
	if err != nil {
		return Lease{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held != nil { // a concurrent Acquire won; both hold the same key
		return s.held.Lease, nil
	}
	s.publishLocked(h)
	return h.Lease, nil
}

// acquire takes a lease; prefer and prefer6, when valid and free, are
// tried before a random free subnet (the subnets held before a lease was
// lost).
func (s *EtcdSource) acquire(ctx context.Context, prefer, prefer6 netip.Prefix) (*heldLease, error) {
	nc, err := s.NetConf(ctx)
	if err != nil {
		return nil, err
	}
	attrs := leaseAttrs{PublicIP: s.opts.PublicIP, Backend: nc.Backend.Type}
	if attrs.Backend == config.BackendVXLAN {
		attrs.VNI = nc.Backend.VNI
		attrs.VtepMAC = s.opts.VtepMAC
		if nc.EnableIPv6 {
			// Without a public IPv6 the IPv6 overlay goes over the IPv4
			// underlay: PublicIPv6 stays null. With one, it is published
			// as flanneld does (PublicIPv6); either way BackendV6Data names
			// the same VtepMAC: one TUN device answers for both families,
			// so one MAC is all a peer needs to know.
			attrs.V6 = &leaseV6{PublicIP: s.opts.PublicIPv6, VNI: nc.Backend.VNI, VtepMAC: s.opts.VtepMAC}
		}
	}
	value, err := encodeLeaseValue(attrs)
	if err != nil {
		return nil, err
	}

	gctx, cancel := context.WithTimeout(ctx, opTimeout)
	grant, err := s.cli.Grant(gctx, ttlSeconds(s.opts.LeaseTTL))
	cancel()
	if err != nil {
		return nil, fmt.Errorf("grant etcd lease: %w", err)
	}
	granted := time.Now()
	keep := false
	defer func() {
		if !keep {
			s.revoke(ctx, grant.ID)
		}
	}()
	held := func(name string, sn, sn6 netip.Prefix, id clientv3.LeaseID) *heldLease {
		h := &heldLease{
			Lease: Lease{Name: name, Subnet: sn, Subnet6: sn6, PublicIP: attrs.PublicIP, Backend: attrs.Backend,
				VNI: attrs.VNI, VtepMAC: attrs.VtepMAC, NetConf: nc, Reservation: id == 0},
			id:      id,
			renewAt: granted.Add(time.Duration(grant.TTL) * time.Second / 2),
		}
		keep = id != 0
		return h
	}

	for attempt := 0; attempt < acquireAttempts; attempt++ {
		if attempt > 0 {
			if err := backoff.Sleep(ctx, time.Duration(rand.Int64N(int64(20*time.Millisecond)))); err != nil {
				return nil, err
			}
		}
		lctx, cancel := context.WithTimeout(ctx, opTimeout)
		resp, err := s.cli.Get(lctx, s.subnets, clientv3.WithPrefix())
		cancel()
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", s.subnets, err)
		}

		var taken, taken6 []netip.Prefix
		var mine *leaseKV
		for _, kv := range resp.Kvs {
			name := strings.TrimPrefix(string(kv.Key), s.subnets)
			sn, sn6, err := parseSubnetKeys(name)
			if err != nil || strings.Contains(name, "/") {
				continue // not a lease; does not occupy a subnet
			}
			taken = append(taken, sn)
			if sn6.IsValid() {
				taken6 = append(taken6, sn6)
			}
			if mine != nil {
				continue
			}
			a, err := decodeLeaseValue(kv.Value)
			if err != nil || a.PublicIP != s.opts.PublicIP {
				continue
			}
			lk := &leaseKV{name: name, key: string(kv.Key), subnet: sn, subnet6: sn6, modRev: kv.ModRevision, etcdLease: kv.Lease}
			if fitsConfig(nc, sn) && fitsConfig6(nc, sn6) {
				mine = lk
				continue
			}
			// flannel deletes a lease of ours that no longer fits the config.
			s.log.Warn("deleting our lease that does not fit the network config",
				"lease", name, "network", nc.Network, "subnet-len", nc.SubnetLen,
				"subnet-min", nc.SubnetMin, "subnet-max", nc.SubnetMax)
			if err := s.txn(ctx, clientv3.Compare(clientv3.ModRevision(lk.key), "=", lk.modRev), clientv3.OpDelete(lk.key)); err != nil && !errors.Is(err, errTxnFailed) {
				return nil, err
			}
			continue
		}

		if mine != nil {
			// Restart: keep the subnet, rewrite our attributes (the VtepMAC
			// may have changed) under the new etcd lease, unless the key is an
			// operator's reservation without a lease.
			id := grant.ID
			put := clientv3.OpPut(mine.key, string(value), clientv3.WithLease(id))
			if mine.etcdLease == 0 {
				id = 0
				put = clientv3.OpPut(mine.key, string(value))
			}
			err := s.txn(ctx, clientv3.Compare(clientv3.ModRevision(mine.key), "=", mine.modRev), put)
			if errors.Is(err, errTxnFailed) {
				continue
			}
			if err != nil {
				return nil, err
			}
			s.log.Info("reusing lease of our public IP", "lease", mine.name, "public-ip", attrs.PublicIP)
			// The key's previous etcd lease is left to expire: revoking it
			// would make a still-running process with our address (an
			// overlapping restart) re-take the key in turn.
			return held(mine.name, mine.subnet, mine.subnet6, id), nil
		}

		sn, err := pickSubnet(nc, taken, prefer)
		if err != nil {
			return nil, err
		}
		var sn6 netip.Prefix
		if nc.EnableIPv6 {
			if sn6, err = pickSubnet6(nc, taken6, prefer6); err != nil {
				return nil, err
			}
		}
		name := dualSubnetKey(sn, sn6)
		key := s.subnets + name
		err = s.txn(ctx, clientv3.Compare(clientv3.CreateRevision(key), "=", 0),
			clientv3.OpPut(key, string(value), clientv3.WithLease(grant.ID)))
		if errors.Is(err, errTxnFailed) {
			s.log.Debug("lost the race for a subnet, retrying", "lease", name)
			continue
		}
		if err != nil {
			return nil, err
		}
		s.log.Info("acquired lease", "lease", name, "public-ip", attrs.PublicIP, "backend", attrs.Backend)
		return held(name, sn, sn6, grant.ID), nil
	}
	return nil, fmt.Errorf("acquire lease: lost the race for a subnet %d times", acquireAttempts)
}

// revoke releases an etcd lease that holds none of our keys any more (best
// effort: unrevoked, it expires after its TTL).
func (s *EtcdSource) revoke(ctx context.Context, id clientv3.LeaseID) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), opTimeout)
	defer cancel()
	if _, err := s.cli.Revoke(rctx, id); err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		s.log.Debug("revoke unused etcd lease", "lease-id", int64(id), "err", err)
	}
}

type leaseKV struct {
	name, key string
	subnet    netip.Prefix
	subnet6   netip.Prefix
	modRev    int64
	etcdLease int64
}

var errTxnFailed = errors.New("transaction condition failed")

// txn runs If(cmp).Then(op) and returns errTxnFailed when cmp is false.
func (s *EtcdSource) txn(ctx context.Context, cmp clientv3.Cmp, op clientv3.Op) error {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	resp, err := s.cli.Txn(ctx).If(cmp).Then(op).Commit()
	if err != nil {
		return fmt.Errorf("etcd txn: %w", err)
	}
	if !resp.Succeeded {
		return errTxnFailed
	}
	return nil
}

func ttlSeconds(d time.Duration) int64 {
	s := int64((d + time.Second - 1) / time.Second)
	return max(s, 1)
}

// fitsConfig reports whether sn is a subnet this node may hold under nc.
func fitsConfig(nc *config.NetConf, sn netip.Prefix) bool {
	return sn.Bits() == nc.SubnetLen && !sn.Addr().Less(nc.SubnetMin) && !nc.SubnetMax.Less(sn.Addr())
}

// pickSubnet chooses a free subnet: prefer if it fits and is free,
// otherwise a random one among the first freeCandidates free subnets from
// SubnetMin up (flannel's strategy: random, to make races unlikely).
func pickSubnet(nc *config.NetConf, taken []netip.Prefix, prefer netip.Prefix) (netip.Prefix, error) {
	sameLen := make(map[netip.Addr]struct{}, len(taken))
	var other []netip.Prefix
	for _, p := range taken {
		if p.Bits() == nc.SubnetLen {
			sameLen[p.Addr()] = struct{}{}
		} else {
			other = append(other, p)
		}
	}
	free := func(sn netip.Prefix) bool {
		if _, ok := sameLen[sn.Addr()]; ok {
			return false
		}
		for _, p := range other {
			if p.Overlaps(sn) {
				return false
			}
		}
		return true
	}
	if prefer.IsValid() && fitsConfig(nc, prefer) && free(prefer) {
		return prefer, nil
	}
	step := uint64(1) << (32 - nc.SubnetLen)
	lo, hi := addr4(nc.SubnetMin), addr4(nc.SubnetMax)
	var cands []netip.Prefix
	for a := lo; a <= hi && len(cands) < freeCandidates; a += step {
		sn := netip.PrefixFrom(fromAddr4(a), nc.SubnetLen)
		if free(sn) {
			cands = append(cands, sn)
		}
	}
	if len(cands) == 0 {
		return netip.Prefix{}, fmt.Errorf("%w between %s and %s", ErrNoFreeSubnet, nc.SubnetMin, nc.SubnetMax)
	}
	return cands[rand.IntN(len(cands))], nil
}

func addr4(a netip.Addr) uint64 {
	b := a.As4()
	return uint64(b[0])<<24 | uint64(b[1])<<16 | uint64(b[2])<<8 | uint64(b[3])
}

func fromAddr4(v uint64) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// newBackoff is the backoff for reconnecting, re-listing and re-acquiring.
func newBackoff() backoff.Backoff {
	return backoff.Backoff{Min: minBackoff, Max: maxBackoff}
}
