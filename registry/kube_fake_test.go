package registry

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
)

// fakeKube is a KubeClient over client-go's fake clientset, for unit
// tests (the typed clientset stays out of the daemon).
type fakeKube struct{ cs *fake.Clientset }

func (f fakeKube) GetNode(ctx context.Context, name string) (*corev1.Node, error) {
	return f.cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
}

func (f fakeKube) ListNodes(ctx context.Context, opts metav1.ListOptions) (*corev1.NodeList, error) {
	return f.cs.CoreV1().Nodes().List(ctx, opts)
}

func (f fakeKube) WatchNodes(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	return f.cs.CoreV1().Nodes().Watch(ctx, opts)
}

func (f fakeKube) PatchNodeStatus(ctx context.Context, name string, pt types.PatchType, data []byte) (*corev1.Node, error) {
	return f.cs.CoreV1().Nodes().Patch(ctx, name, pt, data, metav1.PatchOptions{}, "status")
}

func (f fakeKube) GetPod(ctx context.Context, namespace, name string) (*corev1.Pod, error) {
	return f.cs.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
}

// IsWatchListSemanticsUnSupported passes on the fake clientset's answer
// (it has no watch-list semantics) to the informer.
func (f fakeKube) IsWatchListSemanticsUnSupported() bool {
	return f.cs.IsWatchListSemanticsUnSupported()
}
