package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/vxtun/vxtun/config"
	"github.com/vxtun/vxtun/internal/backoff"
)

// Defaults of KubeOptions, as flanneld has them.
const (
	// DefaultKubeResync is the informer's resync period (flanneld's).
	DefaultKubeResync = 5 * time.Minute
	// DefaultKubeSyncTimeout bounds the wait for the first full list of
	// Nodes (flanneld's nodeControllerSyncTimeout).
	DefaultKubeSyncTimeout = 10 * time.Minute
	// kubeOpTimeout bounds each request of Acquire and of the condition
	// update.
	kubeOpTimeout = 10 * time.Second
)

// KubeOptions configure a KubeSource. They mirror flanneld's
// --kube-subnet-mgr flags and environment.
type KubeOptions struct {
	// APIURL (--kube-api-url) and Kubeconfig (--kubeconfig-file) locate
	// the API server; both empty means the in-cluster config (the pod's
	// service account), as clientcmd.BuildConfigFromFlags does.
	APIURL, Kubeconfig string
	// AnnotationPrefix (--kube-annotation-prefix); default
	// DefaultAnnotationPrefix.
	AnnotationPrefix string
	// SetNetworkUnavailable sets the Node's NetworkUnavailable condition
	// to False once Run starts (--set-node-network-unavailable, true by
	// default in cmd/vxtun as in flanneld).
	SetNetworkUnavailable bool
	// NodeName is this node's Node (NODE_NAME). Empty: the Node the pod
	// PodNamespace/PodName (POD_NAMESPACE, POD_NAME) is scheduled on.
	NodeName, PodName, PodNamespace string

	// NetConf is the network config (net-conf.json), PublicIP this node's
	// IPv4 underlay address, PublicIPv6 its IPv6 underlay address (zero:
	// none; see DualStackPeers) and VtepMAC its VTEP MAC (vxlan). New
	// fills them in from its Node.
	NetConf    *config.NetConf
	PublicIP   netip.Addr
	PublicIPv6 netip.Addr
	VtepMAC    net.HardwareAddr

	// Client, when set, is used instead of one built from APIURL and
	// Kubeconfig (tests).
	Client KubeClient
	// Resync is the informer's resync period (default DefaultKubeResync);
	// SyncTimeout bounds the wait for the first list (default
	// DefaultKubeSyncTimeout).
	Resync, SyncTimeout time.Duration
	// Logger receives skipped nodes, lease and connection messages; nil
	// means slog.Default().
	Logger *slog.Logger
}

// KubeSource is a Source that reads and writes flannel's Kubernetes layout
// (flanneld --kube-subnet-mgr): this node's subnet is its Node's pod CIDR,
// its VTEP is published in the Node's annotations, and every other Node
// that flanneld or vxtun annotated is a peer.
//
// Lifecycle: NewKubeSource builds the client without contacting the API
// server; Acquire (retried by the caller) finds this node's Node, waits for
// its pod CIDR and publishes the annotations; Run (once) sets the
// NetworkUnavailable condition and streams the peers from an informer over
// all Nodes until ctx is done. Lease and LeaseChanges are safe to call
// concurrently with Run.
//
// Peers: a Node with kube-subnet-manager "true", backend-type the
// network's backend, a valid public-ip and backend-data and an IPv4 pod
// CIDR inside Network becomes a peer named after the Node; with
// EnableIPv6 its IPv6 side goes through DualStackPeers (kube_v6.go).
// Other Nodes are ignored: those without the annotation silently, the
// rest (other backend, malformed annotations, subnet outside Network or
// overlapping ours or an earlier peer's) with one log line per node and
// reason. While
// the API server is unreachable nothing is sent, so the receiver keeps
// its peers; the informer re-lists when it returns and the differences are
// sent as Events. The outage is logged by apiHealth (kube_health.go).
type KubeSource struct {
	opts    KubeOptions
	log     *slog.Logger
	keys    kubeAnnotations
	cli     KubeClient
	running atomic.Bool
	leaseCh chan Lease
	// warnedOverwrite6: the ignored public-ipv6-overwrite was logged.
	warnedOverwrite6 atomic.Bool

	mu       sync.Mutex
	nodeName string // resolved by Acquire
	held     *Lease

	// Run's state (only Run's goroutine touches it).
	dirtyMu sync.Mutex
	dirty   map[string]struct{}
	kick    chan struct{}
}

// NewKubeSource checks opts and creates the API client.
func NewKubeSource(opts KubeOptions) (*KubeSource, error) {
	keys, err := newKubeAnnotations(opts.AnnotationPrefix)
	if err != nil {
		return nil, fmt.Errorf("kube source: %w", err)
	}
	if opts.NetConf == nil {
		return nil, errors.New("kube source: no network config")
	}
	switch opts.NetConf.Backend.Type {
	case config.BackendVXLAN, config.BackendUDP:
	default:
		return nil, fmt.Errorf("kube source: %w: %q", ErrUnsupportedBackend, opts.NetConf.Backend.Type)
	}
	if !opts.NetConf.EnableIPv4 {
		return nil, errors.New("kube source: IPv6-only networks are not supported yet (EnableIPv4 is false)")
	}
	opts.PublicIP = opts.PublicIP.Unmap()
	if !opts.PublicIP.Is4() || opts.PublicIP.IsUnspecified() {
		return nil, fmt.Errorf("kube source: public IP %v: want a unicast IPv4 address", opts.PublicIP)
	}
	if err := checkPublicIPv6(opts.PublicIPv6); err != nil {
		return nil, fmt.Errorf("kube source: %w", err)
	}
	if opts.NetConf.Backend.Type == config.BackendVXLAN {
		if err := config.CheckVtepMAC(opts.VtepMAC); err != nil {
			return nil, fmt.Errorf("kube source: VtepMAC: %w", err)
		}
	}
	if opts.Resync == 0 {
		opts.Resync = DefaultKubeResync
	}
	if opts.SyncTimeout == 0 {
		opts.SyncTimeout = DefaultKubeSyncTimeout
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	cli := opts.Client
	if cli == nil {
		cfg, err := clientcmd.BuildConfigFromFlags(opts.APIURL, opts.Kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("kube source: client config: %w", err)
		}
		cfg.UserAgent = "vxtun"
		cfg.Wrap(newAPIHealth(log).wrap)
		if cli, err = newRESTKube(cfg); err != nil {
			return nil, fmt.Errorf("kube source: client: %w", err)
		}
	}
	return &KubeSource{
		opts: opts, log: log, keys: keys, cli: cli,
		leaseCh: make(chan Lease, 1),
		dirty:   map[string]struct{}{},
		kick:    make(chan struct{}, 1),
	}, nil
}

// String names the source in log lines ("Kubernetes node node1").
func (s *KubeSource) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.nodeName == "" {
		return "Kubernetes"
	}
	return "Kubernetes node " + s.nodeName
}

// NodeName returns this node's Node name once Acquire found it.
func (s *KubeSource) NodeName() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nodeName
}

// Lease returns the lease held now, if any.
func (s *KubeSource) Lease() (Lease, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held == nil {
		return Lease{}, false
	}
	return *s.held, true
}

// LeaseChanges delivers the lease when Acquire first takes it and when the
// Node's pod CIDRs or our published public IP change afterwards. Only the
// newest is kept.
func (s *KubeSource) LeaseChanges() <-chan Lease { return s.leaseCh }

// publish records l as held and announces it if it differs.
func (s *KubeSource) publish(l Lease) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.held
	s.held = &l
	if old != nil && old.Subnet == l.Subnet && old.Subnet6 == l.Subnet6 && old.PublicIP == l.PublicIP {
		return
	}
	select {
	case <-s.leaseCh:
	default:
	}
	s.leaseCh <- l
}

// resolveNodeName finds this node's Node name as flanneld does: NODE_NAME,
// else the spec.nodeName of the pod POD_NAMESPACE/POD_NAME.
func (s *KubeSource) resolveNodeName(ctx context.Context) (string, error) {
	s.mu.Lock()
	name := s.nodeName
	s.mu.Unlock()
	if name != "" {
		return name, nil
	}
	o := s.opts
	name = o.NodeName
	if name == "" {
		if o.PodName == "" || o.PodNamespace == "" {
			return "", errors.New("env variables POD_NAME and POD_NAMESPACE must be set (or NODE_NAME)")
		}
		ctx, cancel := context.WithTimeout(ctx, kubeOpTimeout)
		defer cancel()
		pod, err := s.cli.GetPod(ctx, o.PodNamespace, o.PodName)
		if err != nil {
			return "", fmt.Errorf("error retrieving pod spec for '%s/%s': %w", o.PodNamespace, o.PodName, err)
		}
		if name = pod.Spec.NodeName; name == "" {
			return "", fmt.Errorf("node name not present in pod spec '%s/%s'", o.PodNamespace, o.PodName)
		}
	}
	s.mu.Lock()
	s.nodeName = name
	s.mu.Unlock()
	return name, nil
}

// Acquire finds this node's Node, takes its pod CIDR as the subnet (an
// error wrapping ErrNoPodCIDR while none is assigned: the caller retries)
// and publishes flanneld's annotations if they differ. It makes one
// attempt.
func (s *KubeSource) Acquire(ctx context.Context) (Lease, error) {
	name, err := s.resolveNodeName(ctx)
	if err != nil {
		return Lease{}, err
	}
	gctx, cancel := context.WithTimeout(ctx, kubeOpTimeout)
	n, err := s.cli.GetNode(gctx, name)
	cancel()
	if err != nil {
		return Lease{}, fmt.Errorf("get node %q: %w", name, err)
	}
	l, err := s.ensure(ctx, n)
	if err != nil {
		return Lease{}, err
	}
	s.publish(l)
	return l, nil
}

// ownLease checks our Node's pod CIDRs and returns the lease they give,
// and the annotations we must publish on it. With EnableIPv6 the Node
// must have an IPv6 pod CIDR inside IPv6Network too (the lease's Subnet6).
func (s *KubeSource) ownLease(n *corev1.Node) (Lease, map[string]string, error) {
	nc := s.opts.NetConf
	v4, v6, err := podCIDRs(n)
	if errors.Is(err, ErrNoPodCIDR) {
		return Lease{}, nil, fmt.Errorf("node %q %w (waiting for the node controller to assign spec.podCIDR)", n.Name, err)
	}
	if err != nil {
		return Lease{}, nil, fmt.Errorf("node %q: %w", n.Name, err)
	}
	if !v4.IsValid() {
		return Lease{}, nil, fmt.Errorf("node %q has no IPv4 pod cidr (%v)", n.Name, n.Spec.PodCIDRs)
	}
	if !inNetwork(nc.Network, v4) {
		return Lease{}, nil, fmt.Errorf("subnet %q specified in the flannel net config doesn't contain %q PodCIDR of the %q node",
			nc.Network, v4, n.Name)
	}
	v6, err = s.ownSubnet6(n, v6)
	if err != nil {
		return Lease{}, nil, err
	}
	pub := s.opts.PublicIP
	if ow := n.Annotations[s.keys.PublicIPOverwrite]; ow != "" {
		ip, err := netip.ParseAddr(ow)
		if err != nil || !ip.Is4() {
			return Lease{}, nil, fmt.Errorf("node %q: annotation %s %q is not an IPv4 address", n.Name, s.keys.PublicIPOverwrite, ow)
		}
		pub = ip
	}
	var side6 *ownV6
	if v6.IsValid() {
		if side6, err = s.ownV6Side(n); err != nil {
			return Lease{}, nil, err
		}
	}
	want, err := ownAnnotations(s.keys, nc.Backend.Type, nc.Backend.VNI, s.opts.VtepMAC, pub, side6)
	if err != nil {
		return Lease{}, nil, err
	}
	l := Lease{Name: n.Name, Subnet: v4, Subnet6: v6, PublicIP: pub, Backend: nc.Backend.Type}
	if nc.Backend.Type == config.BackendVXLAN {
		l.VNI, l.VtepMAC = nc.Backend.VNI, s.opts.VtepMAC
	}
	return l, want, nil
}

// ensure publishes our annotations on n if they differ and returns our
// lease.
func (s *KubeSource) ensure(ctx context.Context, n *corev1.Node) (Lease, error) {
	l, want, err := s.ownLease(n)
	if err != nil {
		return Lease{}, err
	}
	diff := map[string]any{}
	for k, v := range want {
		if n.Annotations[k] != v {
			diff[k] = v
		}
	}
	// An IPv6 side we no longer have (EnableIPv6 turned off, the public
	// IPv6 gone) is removed: peers would send to it. JSON null deletes.
	for _, k := range []string{s.keys.BackendV6Data, s.keys.PublicIPv6} {
		if _, ok := want[k]; !ok && n.Annotations[k] != "" {
			diff[k] = nil
		}
	}
	if len(diff) == 0 {
		return l, nil
	}
	if ow := n.Annotations[s.keys.PublicIPOverwrite]; ow != "" && n.Annotations[s.keys.PublicIP] != ow {
		s.log.Info("publishing the public IP of the node's overwrite annotation", "annotation", s.keys.PublicIPOverwrite, "public-ip", ow)
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": diff}})
	if err != nil {
		return Lease{}, fmt.Errorf("annotation patch: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, kubeOpTimeout)
	defer cancel()
	if _, err := s.cli.PatchNodeStatus(pctx, n.Name, types.StrategicMergePatchType, patch); err != nil {
		return Lease{}, fmt.Errorf("annotate node %q: %w", n.Name, err)
	}
	args := []any{"node", n.Name, "subnet", l.Subnet.String(), "public-ip", l.PublicIP.String()}
	if l.Subnet6.IsValid() {
		args = append(args, "ipv6-subnet", l.Subnet6.String(), "public-ipv6", want[s.keys.PublicIPv6])
	}
	s.log.Info("published this node's lease in its Node annotations", args...)
	return l, nil
}

// setNetworkUnavailable sets the NetworkUnavailable condition to False,
// as flanneld does once its backend runs.
func (s *KubeSource) setNetworkUnavailable(ctx context.Context, name string) error {
	now := metav1.Now()
	cond := corev1.NodeCondition{
		Type:               corev1.NodeNetworkUnavailable,
		Status:             corev1.ConditionFalse,
		Reason:             "FlannelIsUp",
		Message:            "vxtun is running on this node",
		LastTransitionTime: now,
		LastHeartbeatTime:  now,
	}
	patch, err := json.Marshal(map[string]any{"status": map[string]any{"conditions": []corev1.NodeCondition{cond}}})
	if err != nil {
		return fmt.Errorf("condition patch: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, kubeOpTimeout)
	defer cancel()
	if _, err := s.cli.PatchNodeStatus(ctx, name, types.StrategicMergePatchType, patch); err != nil {
		return fmt.Errorf("set NetworkUnavailable=False on node %q: %w", name, err)
	}
	return nil
}

// Run implements Source: it sets the NetworkUnavailable condition (in the
// background, retried), runs an informer over all Nodes, sends a Full
// update once the first list is in, and Events for every change after
// that. Run may be called once; it returns ctx.Err() when ctx is done.
func (s *KubeSource) Run(ctx context.Context, out chan<- Update) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("kube source: Run called twice")
	}
	if _, err := backoff.Retry(ctx, newBackoff(), func() (Lease, error) { return s.Acquire(ctx) },
		func(err error, wait time.Duration) {
			s.log.Warn("acquire lease (retrying)", "err", err, "retry-in", wait)
		}); err != nil {
		return err
	}
	name := s.NodeName()
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	if s.opts.SetNetworkUnavailable {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = backoff.Retry(ctx, newBackoff(), func() (struct{}, error) {
				return struct{}{}, s.setNetworkUnavailable(ctx, name)
			}, func(err error, wait time.Duration) {
				s.log.Warn("node condition (retrying)", "err", err, "retry-in", wait)
			})
		}()
	}

	inf := s.newInformer()
	wg.Add(1)
	go func() {
		defer wg.Done()
		inf.Run(ctx.Done())
	}()
	if err := s.waitSynced(ctx, inf); err != nil {
		return err
	}
	w := newKubeWatch(s, name, inf.GetStore())
	full := w.resync()
	if err := send(ctx, out, Update{Full: true, Peers: full}); err != nil {
		return err
	}
	s.log.Info("peers from Kubernetes Nodes", "peers", len(full), "nodes", len(inf.GetStore().ListKeys()))
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.kick:
		}
		evs := w.apply(ctx, s.takeDirty())
		if len(evs) == 0 {
			continue
		}
		if err := send(ctx, out, Update{Events: evs}); err != nil {
			return err
		}
	}
}

// newInformer returns an informer over all Nodes whose handlers mark the
// changed Node dirty. The store keeps only what a peer needs (name,
// annotations, pod CIDRs), which keeps a 5 000-node cluster small.
func (s *KubeSource) newInformer() cache.SharedIndexInformer {
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return retryUnreachable(ctx, func() (runtime.Object, error) { return s.cli.ListNodes(ctx, o) })
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return retryUnreachable(ctx, func() (watch.Interface, error) { return s.cli.WatchNodes(ctx, o) })
		},
	}
	// With the client's watch-list capability (a fake clientset has none).
	inf := cache.NewSharedIndexInformerWithOptions(cache.ToListWatcherWithWatchListSemantics(lw, s.cli), &corev1.Node{},
		cache.SharedIndexInformerOptions{ResyncPeriod: s.opts.Resync})
	_ = inf.SetTransform(slimNode)
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { s.markDirty(obj) },
		UpdateFunc: func(_, obj any) { s.markDirty(obj) },
		DeleteFunc: func(obj any) { s.markDirty(obj) },
	})
	return inf
}

// reconnectEvery is the longest wait between two attempts to reach an
// unreachable API server. The informer's own backoff grows to 30 s; this
// keeps the gap after an outage short, so peers added meanwhile are seen
// within seconds of the server's return.
const reconnectEvery = time.Second

// retryUnreachable calls fn until it succeeds, fails with an error that
// is not about reaching the server, or ctx ends. The outage is logged by
// the client's transport (apiHealth).
func retryUnreachable[T any](ctx context.Context, fn func() (T, error)) (T, error) {
	bo := backoff.Backoff{Min: 100 * time.Millisecond, Max: reconnectEvery}
	for {
		v, err := fn()
		if err == nil || !unreachable(err) {
			return v, err
		}
		select {
		case <-ctx.Done():
			return v, err
		case <-time.After(bo.Next()):
		}
	}
}

// unreachable reports whether err means that the API server could not be
// reached or could not serve (connection refused or reset, TLS or HTTP
// transport failures, 5xx, timeouts).
func unreachable(err error) bool {
	var ue *url.Error
	var ne net.Error
	return errors.As(err, &ue) || errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		apierrors.IsServiceUnavailable(err) || apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) ||
		apierrors.IsTooManyRequests(err) || apierrors.IsInternalError(err)
}

// slimNode keeps of a Node what the source reads.
func slimNode(obj any) (any, error) {
	n, ok := obj.(*corev1.Node)
	if !ok {
		return obj, nil
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: n.Name, UID: n.UID, ResourceVersion: n.ResourceVersion, Annotations: n.Annotations,
		},
		Spec: corev1.NodeSpec{PodCIDR: n.Spec.PodCIDR, PodCIDRs: n.Spec.PodCIDRs},
	}, nil
}

// waitSynced waits until the informer has listed all Nodes, logging every
// 30 s, at most SyncTimeout.
func (s *KubeSource) waitSynced(ctx context.Context, inf cache.SharedIndexInformer) error {
	start := time.Now()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	next := start.Add(30 * time.Second)
	for !inf.HasSynced() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case now := <-tick.C:
			if now.Sub(start) > s.opts.SyncTimeout {
				return fmt.Errorf("kube source: no list of Nodes within %v", s.opts.SyncTimeout)
			}
			if now.After(next) {
				s.log.Warn("still waiting for the list of Nodes from the API server", "waited", now.Sub(start).Round(time.Second))
				next = now.Add(30 * time.Second)
			}
		}
	}
	return nil
}

// markDirty records that the Node of an informer event changed.
func (s *KubeSource) markDirty(obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	n, ok := obj.(*corev1.Node)
	if !ok {
		return
	}
	s.dirtyMu.Lock()
	s.dirty[n.Name] = struct{}{}
	s.dirtyMu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// takeDirty returns the dirty Node names, sorted, and clears the set.
func (s *KubeSource) takeDirty() []string {
	s.dirtyMu.Lock()
	names := make([]string, 0, len(s.dirty))
	for n := range s.dirty {
		names = append(names, n)
	}
	clear(s.dirty)
	s.dirtyMu.Unlock()
	slices.Sort(names)
	return names
}
