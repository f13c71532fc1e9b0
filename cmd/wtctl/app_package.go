package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/wutong-paas/wutong-offline/bundle"
	"github.com/wutong-paas/wutong-offline/internal/i18n"
	"github.com/wutong-paas/wutong-offline/internal/logctx"
	"github.com/wutong-paas/wutong-offline/internal/progress"
	"github.com/wutong-paas/wutong-offline/platform/app"
	"github.com/wutong-paas/wutong-offline/platform/appkg"
)

// newAppPackageCmd is `wtctl app package`: build, inspect and verify offline app packages.
func newAppPackageCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "package",
		Short: "Build, inspect and verify offline app packages (.wtapp)",
		Long: `An app package (.wtapp) carries one version of an app for an air-gapped platform: its model (app.json) and
every image it uses, narrowed to the package arches, in one signed archive.`,
	}
	c.AddCommand(newAppPackageBuildCmd(), newAppPackageInspectCmd(), newAppPackageVerifyCmd())
	return c
}

// appPackageResult is what build, inspect and verify print: the package, its app and its images.
type appPackageResult struct {
	Path          string           `json:"path,omitempty"`
	Size          int64            `json:"size,omitempty"`
	PayloadSize   int64            `json:"payloadSize"`
	Key           string           `json:"key"`
	Name          string           `json:"name"`
	Version       string           `json:"version"`
	Arches        []string         `json:"arches"`
	Created       time.Time        `json:"created"`
	ContentDigest string           `json:"contentDigest"`
	PackageDigest string           `json:"packageDigest"`
	Signer        string           `json:"signer,omitempty"`
	Trusted       bool             `json:"trusted"`
	TrustProblem  string           `json:"trustProblem,omitempty"`
	Components    []appComponentIO `json:"components"`
	Images        []bundle.Image   `json:"images"`
	Verified      bool             `json:"verified,omitempty"` // verify: every entry and the layout checked
}

type appComponentIO struct {
	Name   string   `json:"name"`
	Kind   string   `json:"kind,omitempty"`
	Image  string   `json:"image"`
	Arches []string `json:"arches,omitempty"`
}

func appPackageResultOf(info *appkg.Info) appPackageResult {
	a := info.App
	r := appPackageResult{Path: info.Path, Size: info.Size, PayloadSize: info.PayloadSize, Key: a.Key, Name: a.Name,
		Version: a.Version, Arches: info.Arches, Created: info.Created, ContentDigest: info.ContentDigest,
		PackageDigest: info.PackageDigest, Signer: info.Signer, Trusted: info.Trusted, TrustProblem: info.TrustProblem,
		Components: []appComponentIO{}, Images: info.Images}
	for _, c := range a.Components {
		r.Components = append(r.Components, appComponentIO{Name: c.Name, Kind: c.Kind, Image: c.Image, Arches: c.Arches})
	}
	return r
}

func newAppPackageBuildCmd() *cobra.Command {
	var (
		appFile, output, outDir, keyPath string
		arches, layouts                  []string
		force, asJSON, quiet             bool
	)
	c := &cobra.Command{
		Use:   "build -f app.yaml [-o FILE | --out-dir DIR]",
		Short: "Build a signed app package from app.yaml",
		Long: `Build reads app.yaml, resolves every image its components use, keeps only the package arches of each, stages
one OCI image layout with deduplicated blobs and writes KEY-VERSION.wtapp (or -o FILE) with the manifest first and
its signature second. A failed build leaves nothing behind.

Images are taken from the OCI layouts given with --oci-layout (matched by their ref name, so nginx:1.27 also matches
docker.io/library/nginx:1.27), else pulled from their registry with the docker config credentials.
The package arches are --arch, else the app's arches, else amd64 and arm64.`,
		Example: `  wtctl app package build -f app.yaml -o shop-1.0.0.wtapp --sign-key release.key
  wtctl app package build -f app.yaml --out-dir dist --arch amd64,arm64,loong64 --oci-layout ./images`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			if appFile == "" {
				return &usageError{errors.New("-f app.yaml is required")}
			}
			if output != "" && outDir != "" {
				return &usageError{errors.New("give either -o FILE or --out-dir DIR, not both")}
			}
			opts := appkg.BuildOptions{AppFile: appFile, Output: output, OutDir: outDir, Arches: arches, Layouts: layouts, Force: force}
			errw := c.ErrOrStderr()
			if keyPath != "" {
				var err error
				if opts.Key, err = bundle.LoadPrivateKey(keyPath); err != nil {
					return &usageError{err}
				}
			} else {
				fmt.Fprintln(errw, "WARNING: no --sign-key given: the package will be UNSIGNED and refused by default when imported or verified.")
			}
			if !quiet {
				opts.Progress = func(title string, total int64) appkg.Progress { return progress.New(errw, title, total) }
			}
			ctx := logctx.With(c.Context(), slog.New(slog.NewTextHandler(errw, &slog.HandlerOptions{Level: logLevel(quiet), ReplaceAttr: dropTime})))
			info, err := appkg.Build(ctx, opts)
			var ve *app.ValidationError
			if errors.As(err, &ve) {
				return &usageError{err}
			}
			if err != nil {
				return err
			}
			res := appPackageResultOf(info)
			out := outputFlag{format: "text"}
			if asJSON {
				out.format = "json"
			}
			return out.print(c.OutOrStdout(), res, func(p printer) {
				p("Built %s %s for %s\n", res.Key, res.Version, strings.Join(res.Arches, ", "))
				p("Package: %s (%s; payload %s)\n", res.Path, progress.Bytes(res.Size), progress.Bytes(res.PayloadSize))
				if res.Signer != "" {
					p("Signed by: %s\n", res.Signer)
				} else {
					p("Signed by: nobody (UNSIGNED)\n")
				}
				printAppPackageBody(p, res)
			})
		},
	}
	c.Flags().StringVarP(&appFile, "file", "f", "", "app.yaml to package")
	c.Flags().StringVarP(&output, "output", "o", "", "package file to write (default: DIR/KEY-VERSION.wtapp)")
	c.Flags().StringVar(&outDir, "out-dir", "", "directory for KEY-VERSION.wtapp (default: the current directory)")
	c.Flags().StringVar(&keyPath, "sign-key", "", "ed25519 private key (PEM, from 'wtctl bundle keygen')")
	c.Flags().StringSliceVar(&arches, "arch", nil, "package arches, e.g. amd64,arm64 (default: the app's arches, else amd64,arm64)")
	c.Flags().StringArrayVar(&layouts, "oci-layout", nil, "OCI image layout directory to take images from before their registry; repeatable")
	c.Flags().BoolVar(&force, "force", false, "replace an existing package file")
	c.Flags().BoolVar(&asJSON, "json", false, "print the result (digests, images) as JSON")
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress or log lines")
	return c
}

func newAppPackageInspectCmd() *cobra.Command {
	var (
		t   trustFlags
		out outputFlag
	)
	c := &cobra.Command{
		Use:   "inspect FILE",
		Short: "Show what an app package holds: app, components, images with digests, and its signer",
		Long: `Inspect reads only the head of the package: its manifest, signature and app.json. It shows whether the signer
is trusted but does not refuse an untrusted package, and it does not check the images: use 'wtctl app package verify'.`,
		Args: exactArgs(1, "one app package file"),
		RunE: func(c *cobra.Command, args []string) error {
			if err := out.check(); err != nil {
				return err
			}
			ro, err := t.options()
			if err != nil {
				return err
			}
			ro.InsecureSkipVerify = true // show, don't judge; Trusted and TrustProblem say what a reader would decide
			info, err := appkg.Inspect(c.Context(), args[0], ro)
			if err != nil {
				return err
			}
			res := appPackageResultOf(info)
			return out.print(c.OutOrStdout(), res, func(p printer) {
				p("App package %s %s (%s)\n", res.Key, res.Version, res.Name)
				p("Arches:     %s\n", strings.Join(res.Arches, ", "))
				p("Created:    %s\n", res.Created.Format("2006-01-02 15:04:05 MST"))
				switch {
				case res.Trusted:
					p("Signer:     %s (trusted)\n", res.Signer)
				case res.Signer != "":
					p("Signer:     %s (NOT trusted: %s)\n", res.Signer, res.TrustProblem)
				default:
					p("Signer:     none (UNSIGNED)\n")
				}
				p("Package:    %s, %s (payload %s)\n", res.Path, progress.Bytes(res.Size), progress.Bytes(res.PayloadSize))
				printAppPackageBody(p, res)
			})
		},
	}
	t.register(c)
	c.Flags().Lookup("insecure-skip-verify").Hidden = true
	out.register(c)
	return c
}

func newAppPackageVerifyCmd() *cobra.Command {
	var (
		t   trustFlags
		out outputFlag
	)
	c := &cobra.Command{
		Use:   "verify FILE",
		Short: "Check an app package's signature, every entry and its image layout, without extracting",
		Long: `Verify streams the whole package: it checks the signature, every entry's name, order, size and sha256 against
the signed manifest, that app.json, the manifest and the OCI layout name exactly the same images, and that every
manifest, config and layer of those images is there for the package arches. Nothing is written.`,
		Args: exactArgs(1, "one app package file"),
		RunE: func(c *cobra.Command, args []string) error {
			if err := out.check(); err != nil {
				return err
			}
			ro, err := t.options()
			if err != nil {
				return err
			}
			head, err := appkg.Inspect(c.Context(), args[0], ro)
			if err != nil {
				return err
			}
			warnUntrustedApp(c.ErrOrStderr(), head)
			var bar *progress.Bar
			if out.format == "text" {
				bar = progress.New(c.ErrOrStderr(), "verify "+filepath.Base(args[0]), head.PayloadSize)
				ro.Progress = bar.Add
			}
			info, err := appkg.Verify(c.Context(), args[0], ro)
			if bar != nil {
				bar.Done()
			}
			if err != nil {
				return err
			}
			res := appPackageResultOf(info)
			res.Verified = true
			return out.print(c.OutOrStdout(), res, func(p printer) {
				p("OK: %s %s: %d images for %s, %s verified", res.Key, res.Version, len(res.Images), strings.Join(res.Arches, ", "), progress.Bytes(res.PayloadSize))
				if res.Trusted {
					p("; signed by %s (trusted)\n", res.Signer)
				} else {
					p("; signature NOT verified\n")
				}
				p("Content digest: %s\n", res.ContentDigest)
			})
		},
	}
	t.register(c)
	out.register(c)
	return c
}

// warnUntrustedApp prints the loud warning for a package accepted without a trusted signature.
func warnUntrustedApp(w io.Writer, info *appkg.Info) {
	if info.Trusted {
		return
	}
	who := "it is UNSIGNED"
	if info.Signer != "" {
		who = "its signer " + info.Signer + " is NOT TRUSTED"
	}
	fmt.Fprintf(w, "\n!!! %s\n!!! This app package: %s. Use it only if you know where it came from.\n\n", i18n.T(i18n.FromEnv(), i18n.WarnUnsigned), who)
}

// printAppPackageBody prints the digests, components and images shared by build and inspect.
func printAppPackageBody(p printer, r appPackageResult) {
	p("Content digest: %s\n", r.ContentDigest)
	p("Package digest: %s\n", r.PackageDigest)
	if len(r.Components) > 0 {
		p("Components:\n")
		for _, c := range r.Components {
			p("  %-20s %-10s %s", c.Name, c.Kind, c.Image)
			if len(c.Arches) > 0 {
				p(" (%s only)", strings.Join(c.Arches, ", "))
			}
			p("\n")
		}
	}
	printImages(p, r.Images)
}
