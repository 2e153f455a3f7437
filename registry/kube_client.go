package registry

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
)

// KubeClient is what a KubeSource asks of the API server: its Node, the
// pod that names it, a list and watch of all Nodes, and patches of a
// Node's status subresource. newRESTKube implements it over a REST client
// that knows only the core/v1 types: the typed clientset
// (k8s.io/client-go/kubernetes) registers every API group of Kubernetes at
// init and doubled the daemon's memory. Tests implement it over client-go's
// fake clientset; an implementation whose watch has no watch-list
// semantics says so with IsWatchListSemanticsUnSupported() bool, as the
// fake clientset does.
type KubeClient interface {
	GetNode(ctx context.Context, name string) (*corev1.Node, error)
	ListNodes(ctx context.Context, opts metav1.ListOptions) (*corev1.NodeList, error)
	WatchNodes(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error)
	// PatchNodeStatus patches the Node's status subresource (annotations
	// too: RBAC grants flannel nodes/status, not nodes).
	PatchNodeStatus(ctx context.Context, name string, pt types.PatchType, data []byte) (*corev1.Node, error)
	GetPod(ctx context.Context, namespace, name string) (*corev1.Pod, error)
}

// restKube is a KubeClient over a core/v1 REST client.
type restKube struct {
	rc *rest.RESTClient
	pc runtime.ParameterCodec
}

// newRESTKube returns a KubeClient for cfg with a scheme of the core/v1
// types only, encoded as the generated core/v1 client encodes them.
func newRESTKube(cfg *rest.Config) (*restKube, error) {
	sch := runtime.NewScheme()
	if err := corev1.AddToScheme(sch); err != nil {
		return nil, fmt.Errorf("core/v1 scheme: %w", err)
	}
	c := rest.CopyConfig(cfg)
	c.APIPath = "/api"
	c.GroupVersion = &corev1.SchemeGroupVersion
	c.NegotiatedSerializer = rest.CodecFactoryForGeneratedClient(sch, serializer.NewCodecFactory(sch)).WithoutConversion()
	if c.UserAgent == "" {
		c.UserAgent = rest.DefaultKubernetesUserAgent()
	}
	rc, err := rest.RESTClientFor(c)
	if err != nil {
		return nil, err
	}
	return &restKube{rc: rc, pc: runtime.NewParameterCodec(sch)}, nil
}

func (k *restKube) GetNode(ctx context.Context, name string) (*corev1.Node, error) {
	n := &corev1.Node{}
	err := k.rc.Get().Resource("nodes").Name(name).VersionedParams(&metav1.GetOptions{}, k.pc).Do(ctx).Into(n)
	return n, err
}

func (k *restKube) ListNodes(ctx context.Context, opts metav1.ListOptions) (*corev1.NodeList, error) {
	l := &corev1.NodeList{}
	err := k.rc.Get().Resource("nodes").VersionedParams(&opts, k.pc).Timeout(timeoutOf(opts)).Do(ctx).Into(l)
	return l, err
}

func (k *restKube) WatchNodes(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	opts.Watch = true
	return k.rc.Get().Resource("nodes").VersionedParams(&opts, k.pc).Timeout(timeoutOf(opts)).Watch(ctx)
}

func (k *restKube) PatchNodeStatus(ctx context.Context, name string, pt types.PatchType, data []byte) (*corev1.Node, error) {
	n := &corev1.Node{}
	err := k.rc.Patch(pt).Resource("nodes").Name(name).SubResource("status").
		VersionedParams(&metav1.PatchOptions{}, k.pc).Body(data).Do(ctx).Into(n)
	return n, err
}

func (k *restKube) GetPod(ctx context.Context, namespace, name string) (*corev1.Pod, error) {
	p := &corev1.Pod{}
	err := k.rc.Get().Namespace(namespace).Resource("pods").Name(name).VersionedParams(&metav1.GetOptions{}, k.pc).Do(ctx).Into(p)
	return p, err
}

// timeoutOf is a list or watch request's own timeout (TimeoutSeconds), as
// the generated clients apply it.
func timeoutOf(opts metav1.ListOptions) time.Duration {
	if opts.TimeoutSeconds == nil {
		return 0
	}
	return time.Duration(*opts.TimeoutSeconds) * time.Second
}
