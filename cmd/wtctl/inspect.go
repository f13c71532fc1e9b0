package main

import (
	"crypto/ed25519"
	"strings"

	"github.com/spf13/cobra"

	"github.com/wutong-paas/wutong-offline/bundle"
	"github.com/wutong-paas/wutong-offline/bundle/build"
	"github.com/wutong-paas/wutong-offline/internal/progress"
)

type inspectResult struct {
	Archive           string             `json:"archive"`
	Parts             []string           `json:"parts,omitempty"`
	Size              int64              `json:"size"`
	Kind              string             `json:"kind"`
	Name              string             `json:"name"`
	Version           string             `json:"version"`
	Arches            []string           `json:"arches"`
	KubernetesVersion string             `json:"kubernetesVersion,omitempty"`
	Created           string             `json:"created"`
	Signer            string             `json:"signer,omitempty"`
	Trusted           bool               `json:"trusted"`
	TrustProblem      string             `json:"trustProblem,omitempty"`
	Images            []bundle.Image     `json:"images"`
	Files             []build.ResultFile `json:"files"`
	Entries           int                `json:"entries"`
	PayloadSize       int64              `json:"payloadSize"`
}

func newBundleInspectCmd() *cobra.Command {
	var (
		t   trustFlags
		out outputFlag
	)
	c := &cobra.Command{
		Use:   "inspect FILE",
		Short: "Show what a bundle holds: images with per-arch digests, files, and its signer",
		Long: `Inspect reads only the manifest and signature at the start of the bundle. It shows whether the signer is
trusted but does not refuse an untrusted bundle, and it does not check the payload: use 'wtctl bundle verify'.`,
		Args: exactArgs(1, "one bundle file (or any of its parts)"),
		RunE: func(c *cobra.Command, args []string) error {
			if err := out.check(); err != nil {
				return err
			}
			opts, err := t.options()
			if err != nil {
				return err
			}
			keys := opts.Keys
			opts.InsecureSkipVerify = true
			r, src, err := bundle.Open(args[0], opts)
			if err != nil {
				return err
			}
			defer r.Close()
			if len(keys) == 0 {
				if keys, err = bundle.LoadTrustDir(bundle.DefaultTrustDir); err != nil {
					return err
				}
			}
			res := inspectFor(r, src, keys)
			return out.print(c.OutOrStdout(), res, func(p printer) { printInspect(p, res) })
		},
	}
	t.register(c)
	c.Flags().Lookup("insecure-skip-verify").Hidden = true
	out.register(c)
	return c
}

func inspectFor(r *bundle.Reader, src *bundle.Source, keys []ed25519.PublicKey) inspectResult {
	m := r.Manifest
	res := inspectResult{Archive: src.Path, Parts: src.Parts, Size: src.Size, Kind: m.Kind, Name: m.Name, Version: m.Version,
		Arches: m.Arches, KubernetesVersion: m.KubernetesVersion, Created: m.Created.Format("2006-01-02 15:04:05 MST"),
		Images: m.Images, Entries: len(m.Entries), PayloadSize: m.PayloadSize(), Signer: r.Signature.KeyID}
	if _, ok, err := bundle.CheckSignature(r.ManifestBytes, r.Signature, keys, false); ok {
		res.Trusted = true
	} else if err != nil {
		res.TrustProblem = err.Error()
	}
	for _, f := range m.Files {
		if e, ok := m.Entry(f.Path); ok {
			res.Files = append(res.Files, build.ResultFile{Path: f.Path, Arch: f.Arch, Size: e.Size, SHA256: e.SHA256})
		}
	}
	for _, e := range m.Entries {
		if strings.HasPrefix(e.Path, "manifests/") || strings.HasPrefix(e.Path, "apps/") {
			res.Files = append(res.Files, build.ResultFile{Path: e.Path, Size: e.Size, SHA256: e.SHA256})
		}
	}
	return res
}

func printInspect(p printer, r inspectResult) {
	p("%s %s %s\n", r.Kind, r.Name, r.Version)
	p("Arches:     %s\n", strings.Join(r.Arches, ", "))
	if r.KubernetesVersion != "" {
		p("Kubernetes: %s\n", r.KubernetesVersion)
	}
	p("Created:    %s\n", r.Created)
	switch {
	case r.Trusted:
		p("Signer:     %s (trusted)\n", r.Signer)
	case r.Signer != "":
		p("Signer:     %s (NOT trusted: %s)\n", r.Signer, r.TrustProblem)
	default:
		p("Signer:     none (UNSIGNED)\n")
	}
	if len(r.Parts) > 0 {
		p("Archive:    %s, %d parts, %s\n", r.Archive, len(r.Parts), progress.Bytes(r.Size))
	} else {
		p("Archive:    %s, %s\n", r.Archive, progress.Bytes(r.Size))
	}
	p("Payload:    %d entries, %s\n", r.Entries, progress.Bytes(r.PayloadSize))
	printImages(p, r.Images)
	printFiles(p, r.Files)
}
