package main

import (
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/wutong-paas/wutong-offline/bundle"
	"github.com/wutong-paas/wutong-offline/bundle/build"
	"github.com/wutong-paas/wutong-offline/bundle/parts"
	"github.com/wutong-paas/wutong-offline/internal/i18n"
	"github.com/wutong-paas/wutong-offline/internal/logctx"
	"github.com/wutong-paas/wutong-offline/internal/progress"
)

func newBundleCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "bundle",
		Short: "Build, verify, inspect, extract, split and join signed offline bundles",
	}
	c.AddCommand(newBundleBuildCmd(), newBundleVerifyCmd(), newBundleInspectCmd(), newBundleExtractCmd(),
		newBundleKeygenCmd(), newBundleSplitCmd(), newBundleJoinCmd())
	return c
}

// trustFlags are the signature options shared by the reading commands.
type trustFlags struct {
	keys     []string
	insecure bool
}

func (t *trustFlags) register(c *cobra.Command) {
	c.Flags().StringSliceVar(&t.keys, "key", nil, "trusted public key (PEM); repeatable. Default: the keys in "+bundle.DefaultTrustDir)
	c.Flags().BoolVar(&t.insecure, "insecure-skip-verify", false, "accept an unsigned bundle or an unknown signer (DANGEROUS)")
}

func (t *trustFlags) options() (bundle.ReadOptions, error) {
	var opts bundle.ReadOptions
	for _, k := range t.keys {
		pub, err := bundle.LoadPublicKey(k)
		if err != nil {
			return opts, &usageError{err}
		}
		opts.Keys = append(opts.Keys, pub)
	}
	opts.InsecureSkipVerify = t.insecure
	return opts, nil
}

// warnUntrusted prints the loud warning for an archive accepted without a trusted signature.
func warnUntrusted(w io.Writer, r *bundle.Reader) {
	if r.Trusted {
		return
	}
	who := "it is UNSIGNED"
	if r.SignerKeyID != "" {
		who = "its signer " + r.SignerKeyID + " is NOT TRUSTED"
	}
	fmt.Fprintf(w, "\n!!! %s\n!!! This bundle: %s. Use it only if you know where it came from.\n\n", i18n.T(i18n.FromEnv(), i18n.WarnUnsigned), who)
}

func openArchive(c *cobra.Command, path string, t *trustFlags, title string) (*bundle.Reader, *bundle.Source, *progress.Bar, error) {
	opts, err := t.options()
	if err != nil {
		return nil, nil, nil, err
	}
	var bar *progress.Bar
	var pending int64
	opts.Progress = func(n int64) {
		if bar != nil {
			bar.Add(n)
		} else {
			pending += n
		}
	}
	r, src, err := bundle.Open(path, opts)
	if err != nil {
		return nil, nil, nil, err
	}
	warnUntrusted(c.ErrOrStderr(), r)
	if title != "" {
		bar = progress.New(c.ErrOrStderr(), title+" "+filepath.Base(path), r.Manifest.PayloadSize())
		bar.Add(pending)
	}
	return r, src, bar, nil
}

func newBundleBuildCmd() *cobra.Command {
	var (
		specPath, outDir, keyPath, split string
		force, asJSON, quiet             bool
	)
	c := &cobra.Command{
		Use:   "build -f bundle.yaml -o DIR",
		Short: "Build a signed bundle from bundle.yaml",
		Long: `Build resolves every file and image of bundle.yaml, keeps only the bundle's arches of each image,
stages one OCI image layout with deduplicated blobs, and writes DIR/NAME-VERSION.tar.zst with the manifest
first and its signature second. A failed build leaves nothing behind.`,
		Example: "  wtctl bundle build -f bundle.yaml -o dist --sign-key release.key --split 3900M",
		Args:    exactArgs(0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			if specPath == "" || outDir == "" {
				return &usageError{fmt.Errorf("both -f bundle.yaml and -o DIR are required")}
			}
			spec, err := build.LoadSpec(specPath)
			if err != nil {
				return &usageError{err}
			}
			opts := build.Options{Spec: spec, OutDir: outDir, Force: force}
			if split != "" {
				if opts.SplitSize, err = parts.ParseSize(split); err != nil {
					return &usageError{err}
				}
			}
			if keyPath != "" {
				if opts.Key, err = bundle.LoadPrivateKey(keyPath); err != nil {
					return &usageError{err}
				}
			} else {
				fmt.Fprintln(c.ErrOrStderr(), "WARNING: no --sign-key given: the bundle will be UNSIGNED and refused by default when verified.")
			}
			errw := c.ErrOrStderr()
			if !quiet {
				opts.Progress = func(title string, total int64) build.Progress { return progress.New(errw, title, total) }
			}
			ctx := logctx.With(c.Context(), slog.New(slog.NewTextHandler(errw, &slog.HandlerOptions{Level: logLevel(quiet), ReplaceAttr: dropTime})))
			res, err := build.Build(ctx, opts)
			if err != nil {
				return err
			}
			out := outputFlag{format: "text"}
			if asJSON {
				out.format = "json"
			}
			return out.print(c.OutOrStdout(), res, func(p printer) { printBuildResult(p, res) })
		},
	}
	c.Flags().StringVarP(&specPath, "file", "f", "", "bundle.yaml to build")
	c.Flags().StringVarP(&outDir, "out", "o", "", "directory for NAME-VERSION.tar.zst")
	c.Flags().StringVar(&keyPath, "sign-key", "", "ed25519 private key (PEM, from 'wtctl bundle keygen')")
	c.Flags().StringVar(&split, "split", "", "write parts of at most SIZE (e.g. 3900M, 4G) for FAT32 media")
	c.Flags().BoolVar(&force, "force", false, "replace an existing archive of the same name")
	c.Flags().BoolVar(&asJSON, "json", false, "print the result (digests, files) as JSON")
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress or log lines")
	return c
}

// dropTime keeps log lines short for people; the progress lines carry timing already.
func dropTime(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}

func logLevel(quiet bool) slog.Level {
	if quiet {
		return slog.LevelWarn
	}
	return slog.LevelInfo
}

func printBuildResult(p printer, r *build.Result) {
	p("Built %s %s for %s\n", r.Name, r.Version, strings.Join(r.Arches, ", "))
	if len(r.Parts) > 0 {
		p("Archive: %s in %d parts (%s)\n", r.Archive, len(r.Parts), progress.Bytes(r.Size))
		for _, pt := range r.Parts {
			p("  %s\n", pt)
		}
	} else {
		p("Archive: %s (%s; payload %s)\n", r.Archive, progress.Bytes(r.Size), progress.Bytes(r.PayloadSize))
	}
	if r.Signer != "" {
		p("Signed by: %s\n", r.Signer)
	} else {
		p("Signed by: nobody (UNSIGNED)\n")
	}
	p("Manifest sha256: %s\n", r.ManifestSHA256)
	printImages(p, r.Images)
	printFiles(p, r.Files)
}

func printFiles(p printer, files []build.ResultFile) {
	if len(files) == 0 {
		return
	}
	p("Files:\n")
	for _, f := range files {
		p("  %-40s %10s  sha256:%s\n", f.Path, progress.Bytes(f.Size), f.SHA256)
	}
}

func printImages(p printer, imgs []bundle.Image) {
	if len(imgs) == 0 {
		return
	}
	p("Images:\n")
	for _, im := range imgs {
		p("  %s\n    index   %s\n", im.Name, im.Digest)
		arches := make([]string, 0, len(im.Arches))
		for a := range im.Arches {
			arches = append(arches, a)
		}
		sort.Strings(arches)
		for _, a := range arches {
			p("    %-7s %s\n", a, im.Arches[a])
		}
	}
}

type verifyResult struct {
	Archive string   `json:"archive"`
	Parts   []string `json:"parts,omitempty"`
	Name    string   `json:"name"`
	Version string   `json:"version"`
	Entries int      `json:"entries"`
	Bytes   int64    `json:"bytes"`
	Signer  string   `json:"signer,omitempty"`
	Trusted bool     `json:"trusted"`
	OK      bool     `json:"ok"`
}

func newBundleVerifyCmd() *cobra.Command {
	var (
		t   trustFlags
		out outputFlag
	)
	c := &cobra.Command{
		Use:   "verify FILE",
		Short: "Check a bundle's signature and every entry, without extracting",
		Long: `Verify streams the whole bundle (or its parts): it checks the signature, then every entry's name,
order, size and sha256 against the signed manifest, and that nothing is missing or extra. Nothing is written.`,
		Args: exactArgs(1, "one bundle file (or any of its parts)"),
		RunE: func(c *cobra.Command, args []string) error {
			if err := out.check(); err != nil {
				return err
			}
			r, src, bar, err := openArchive(c, args[0], &t, map[bool]string{true: "verify"}[out.format == "text"])
			if err != nil {
				return err
			}
			defer r.Close()
			err = r.Verify(c.Context())
			if bar != nil {
				bar.Done()
			}
			if err != nil {
				return err
			}
			res := verifyResult{Archive: src.Path, Parts: src.Parts, Name: r.Manifest.Name, Version: r.Manifest.Version,
				Entries: len(r.Manifest.Entries), Bytes: r.Manifest.PayloadSize(), Signer: r.SignerKeyID, Trusted: r.Trusted, OK: true}
			return out.print(c.OutOrStdout(), res, func(p printer) {
				p("OK: %s %s: %d entries, %s verified", res.Name, res.Version, res.Entries, progress.Bytes(res.Bytes))
				if len(res.Parts) > 0 {
					p(" across %d parts", len(res.Parts))
				}
				if res.Trusted {
					p("; signed by %s (trusted)\n", res.Signer)
				} else {
					p("; signature NOT verified\n")
				}
			})
		},
	}
	t.register(c)
	out.register(c)
	return c
}

func newBundleExtractCmd() *cobra.Command {
	var (
		t    trustFlags
		dest string
	)
	c := &cobra.Command{
		Use:   "extract FILE -C DIR",
		Short: "Verify and extract a bundle into a new directory",
		Long: `Extract verifies every entry while it writes into a temporary directory next to DIR, and renames it to DIR
only when the whole bundle checked out. DIR must not exist or be empty. Re-running after an interruption starts
over cleanly; re-running after success does nothing.`,
		Args: exactArgs(1, "one bundle file (or any of its parts)"),
		RunE: func(c *cobra.Command, args []string) error {
			if dest == "" {
				return &usageError{fmt.Errorf("-C DIR is required")}
			}
			if err := checkPartsFirst(c, args[0]); err != nil {
				return err
			}
			r, _, bar, err := openArchive(c, args[0], &t, "extract")
			if err != nil {
				return err
			}
			defer r.Close()
			res, err := bundle.Extract(c.Context(), r, dest)
			bar.Done()
			if err != nil {
				return err
			}
			if res.AlreadyDone {
				fmt.Fprintf(c.OutOrStdout(), "%s already holds %s %s; nothing to do\n", res.Dir, r.Manifest.Name, r.Manifest.Version)
				return nil
			}
			fmt.Fprintf(c.OutOrStdout(), "Extracted %s %s into %s: %d entries, %s, all verified\n", r.Manifest.Name, r.Manifest.Version, res.Dir, res.Entries, progress.Bytes(res.Bytes))
			return nil
		},
	}
	t.register(c)
	c.Flags().StringVarP(&dest, "directory", "C", "", "directory to create with the bundle's content")
	return c
}

// checkPartsFirst hashes every part of a split bundle before extraction starts, so that a bad copy is named
// before minutes of extraction, not after.
func checkPartsFirst(c *cobra.Command, path string) error {
	set, err := bundle.OpenParts(path)
	if err != nil || set == nil {
		return err
	}
	bar := progress.New(c.ErrOrStderr(), fmt.Sprintf("check %d parts of %s", len(set.Parts()), set.Archive()), set.TotalSize())
	err = set.Verify(c.Context(), bar.Add)
	bar.Done()
	return err
}

func newBundleKeygenCmd() *cobra.Command {
	var priv, pub string
	var out outputFlag
	c := &cobra.Command{
		Use:   "keygen",
		Short: "Create an ed25519 signing key pair as PEM files",
		Long: `Keygen writes a private key (PKCS#8 PEM, mode 0600) for 'bundle build --sign-key' and a public key (PKIX PEM)
to hand to field engineers ('--key', or ` + bundle.DefaultTrustDir + `). Existing files are never overwritten.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			if err := out.check(); err != nil {
				return err
			}
			fp, err := bundle.GenerateKey(priv, pub)
			if err != nil {
				return err
			}
			v := map[string]string{"privateKey": priv, "publicKey": pub, "fingerprint": fp}
			return out.print(c.OutOrStdout(), v, func(p printer) {
				p("Private key: %s (keep it secret)\nPublic key:  %s\nFingerprint: %s\n", priv, pub, fp)
			})
		},
	}
	c.Flags().StringVar(&priv, "private", "wutong-release.key", "private key file to create")
	c.Flags().StringVar(&pub, "public", "wutong-release.pub", "public key file to create")
	out.register(c)
	return c
}

func newBundleSplitCmd() *cobra.Command {
	var size, outDir string
	c := &cobra.Command{
		Use:     "split FILE --size SIZE",
		Short:   "Split a bundle into parts for FAT32 media (each under 4 GiB, each with its own sha256)",
		Example: "  wtctl bundle split demo-0.1.0.tar.zst --size 3900M -C /media/usb",
		Args:    exactArgs(1, "one bundle file"),
		RunE: func(c *cobra.Command, args []string) error {
			if size == "" {
				return &usageError{fmt.Errorf("--size is required, e.g. --size 3900M")}
			}
			n, err := parts.ParseSize(size)
			if err != nil {
				return &usageError{err}
			}
			ps, err := parts.Split(c.Context(), args[0], n, outDir)
			if err != nil {
				return err
			}
			for _, p := range ps {
				fmt.Fprintln(c.OutOrStdout(), p)
			}
			return nil
		},
	}
	c.Flags().StringVar(&size, "size", "", "largest part size, e.g. 3900M or 4G (at most 4 GiB - 1)")
	c.Flags().StringVarP(&outDir, "directory", "C", "", "directory for the parts (default: next to FILE)")
	return c
}

func newBundleJoinCmd() *cobra.Command {
	var out string
	c := &cobra.Command{
		Use:   "join PART -o FILE",
		Short: "Check every part, then join them back into one bundle file",
		Args:  exactArgs(1, "any one part of the bundle"),
		RunE: func(c *cobra.Command, args []string) error {
			p, err := parts.Join(c.Context(), args[0], out)
			if err != nil {
				return err
			}
			fmt.Fprintln(c.OutOrStdout(), p)
			return nil
		},
	}
	c.Flags().StringVarP(&out, "out", "o", "", "file to write (default: the original archive name next to the parts)")
	return c
}
