package kube

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
)

// manifestPath is deploy/kube-vxtun.yml of the repository.
func manifestPath(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("no caller")
	}
	return filepath.Join(filepath.Dir(file), "..", "..", "deploy", "kube-vxtun.yml")
}

// manifestObjects parses the manifest's documents.
func manifestObjects(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	b, err := os.ReadFile(manifestPath(t))
	if err != nil {
		t.Fatal(err)
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(b), 4096)
	var objs []*unstructured.Unstructured
	for {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			t.Fatalf("parse manifest: %v", err)
		}
		if len(m) == 0 {
			continue
		}
		objs = append(objs, &unstructured.Unstructured{Object: m})
	}
	return objs
}

// applyManifest creates every object of deploy/kube-vxtun.yml with strict
// field validation (an unknown or misspelt field is an error) and returns
// them as created.
func applyManifest(t *testing.T, s *apiServer) []*unstructured.Unstructured {
	t.Helper()
	cfg := s.adminConfig()
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	groups, err := restmapper.GetAPIGroupResources(s.Admin().Discovery())
	if err != nil {
		t.Fatal(err)
	}
	mapper := restmapper.NewDiscoveryRESTMapper(groups)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out []*unstructured.Unstructured
	for _, o := range manifestObjects(t) {
		gvk := o.GroupVersionKind()
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			t.Fatalf("%s %s: %v", gvk.Kind, o.GetName(), err)
		}
		ri := dyn.Resource(m.Resource)
		var c dynamic.ResourceInterface = ri
		if o.GetNamespace() != "" {
			c = ri.Namespace(o.GetNamespace())
		}
		got, err := c.Create(ctx, o, metav1.CreateOptions{FieldValidation: "Strict"})
		if err != nil {
			t.Fatalf("create %s %s: got %v, want it accepted", gvk.Kind, o.GetName(), err)
		}
		out = append(out, got)
	}
	return out
}
