package cluster

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/goccy/go-yaml"
)

// sectionComments are written above the sections of spec by Marshal.
var sectionComments = []struct{ field, text string }{
	{"ssh", " SSH defaults for every host; a host may override any of them. Secrets are a string or {env: NAME}."},
	{"hosts", " Roles: control-plane (odd count: 1, 3, 5), worker, registry."},
	{"kubernetes", " Pod and service ranges must not overlap each other or the hosts' internal addresses."},
	{"registry", " The image registry wtctl runs on the registry hosts; an empty password is generated at install."},
	{"bundle", " The bundle archive; a relative path is relative to this file."},
	{"ingress", " The ingress controller (Traefik, IngressClass traefik) answers on ports 80 and 443 of every node."},
}

// Marshal writes c as a cluster.yaml that Parse reads back: fields in a fixed order, unset ones left out, and a
// comment above the main sections. Secrets are written as {env: NAME}; a literal secret is written as
// "<redacted>", which Parse rejects, so a file meant to be read back should reference its secrets by env.
func Marshal(c *Cluster) (out []byte, err error) {
	cm := yaml.CommentMap{}
	spec := reflect.ValueOf(c.Spec)
	fields := reflect.TypeOf(c.Spec)
	for _, sc := range sectionComments {
		for i := 0; i < fields.NumField(); i++ {
			if name := yamlName(fields.Field(i)); name == sc.field && !spec.Field(i).IsZero() {
				cm["$.spec."+sc.field] = []*yaml.Comment{yaml.HeadComment(sc.text)}
			}
		}
	}
	err = safely(func() (err error) {
		out, err = yaml.MarshalWithOptions(c, yaml.Indent(2), yaml.IndentSequence(true), yaml.WithComment(cm))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("marshal cluster config: %w", err)
	}
	return out, nil
}

func yamlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	return name
}
