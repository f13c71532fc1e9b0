package kube

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// Applied is one object that Apply applied.
type Applied struct {
	Kind, Namespace, Name string
}

func (a Applied) String() string {
	if a.Namespace == "" {
		return a.Kind + "/" + a.Name
	}
	return a.Kind + "/" + a.Namespace + "/" + a.Name
}

// Decode splits multi-document YAML (or JSON) into objects, skipping empty documents. source names the input
// in errors.
func Decode(source string, data []byte) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var objs []*unstructured.Unstructured
	for i := 1; ; i++ {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return objs, nil
			}
			return nil, fmt.Errorf("%s: document %d: %w", source, i, err)
		}
		if len(m) == 0 {
			continue
		}
		u := &unstructured.Unstructured{Object: m}
		if u.GetAPIVersion() == "" || u.GetKind() == "" || u.GetName() == "" {
			return nil, fmt.Errorf("%s: document %d: apiVersion, kind and metadata.name are required", source, i)
		}
		objs = append(objs, u)
	}
}

// Apply applies every object of the multi-document YAML data with server-side apply, in order, as FieldManager,
// forcing ownership of the fields it sets. A kind the API server does not know yet (a CRD applied just before) is
// retried for up to a minute while discovery catches up.
func (c *Client) Apply(ctx context.Context, source string, data []byte) ([]Applied, error) {
	objs, err := Decode(source, data)
	if err != nil {
		return nil, err
	}
	var done []Applied
	for _, u := range objs {
		a, err := c.ApplyObject(ctx, u)
		if err != nil {
			return done, fmt.Errorf("apply %s: %w", source, err)
		}
		done = append(done, a)
	}
	return done, nil
}

// ApplyObject server-side applies one object.
func (c *Client) ApplyObject(ctx context.Context, u *unstructured.Unstructured) (Applied, error) {
	gvk := u.GroupVersionKind()
	a := Applied{Kind: gvk.Kind, Namespace: u.GetNamespace(), Name: u.GetName()}
	var mapping *meta.RESTMapping
	err := poll(ctx, 2*time.Second, func(context.Context) (bool, error) {
		m, err := c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err == nil {
			mapping = m
			return true, nil
		}
		if !meta.IsNoMatchError(err) {
			return false, err
		}
		c.mapper.Reset()
		return false, err
	})
	if err != nil {
		return a, fmt.Errorf("%s: unknown kind %s: %w", a, gvk, err)
	}
	body, err := u.MarshalJSON()
	if err != nil {
		return a, fmt.Errorf("%s: %w", a, err)
	}
	force := true
	opts := metav1.PatchOptions{FieldManager: FieldManager, Force: &force}
	if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
		ns := u.GetNamespace()
		if ns == "" {
			ns = "default"
			a.Namespace = ns
		}
		_, err = c.dyn.Resource(mapping.Resource).Namespace(ns).Patch(ctx, u.GetName(), types.ApplyPatchType, body, opts)
	} else {
		_, err = c.dyn.Resource(mapping.Resource).Patch(ctx, u.GetName(), types.ApplyPatchType, body, opts)
	}
	if err != nil {
		return a, fmt.Errorf("%s: %w", a, err)
	}
	return a, nil
}
