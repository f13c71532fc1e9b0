package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/wutong-paas/wutong-offline/images/push"
	"github.com/wutong-paas/wutong-offline/internal/logctx"
	"github.com/wutong-paas/wutong-offline/internal/progress"
)

func init() { registryCmds = append(registryCmds, newRegistryPushCmd) }

func newRegistryPushCmd() *cobra.Command {
	var (
		t                   trustFlags
		out                 outputFlag
		from, to, user, ca  string
		passStdin, insecure bool
		concurrency         int
	)
	c := &cobra.Command{
		Use:   "push --from BUNDLE|OCI-LAYOUT --to REGISTRY",
		Short: "Push a bundle's images (or an OCI layout's) to a registry",
		Long: `Push copies every image of a signed bundle, or of an OCI image layout directory, to REGISTRY (HOST[:PORT]).
Each image keeps its digests and lands under REGISTRY/<source registry>/<path>, e.g. registry.k8s.io/pause:3.10
becomes REGISTRY/registry.k8s.io/pause:3.10 and nginx:1.27 becomes REGISTRY/docker.io/library/nginx:1.27.
A bundle is verified completely before anything is pushed. Blobs the registry already has are skipped, so running
it again after an interruption sends only what is missing.`,
		Example: `  wtctl registry push --from wutong-1.0.0.tar.zst --to harbor.example.com --username admin --password-stdin < pass.txt
  wtctl registry push --from ./oci --to 10.99.0.10:5000 --ca-cert /etc/wutong/pki/ca.crt`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			if err := out.check(); err != nil {
				return err
			}
			if from == "" || to == "" {
				return &usageError{errors.New("both --from BUNDLE|OCI-LAYOUT and --to REGISTRY are required")}
			}
			if strings.Contains(to, "://") || strings.Contains(to, "/") {
				return &usageError{fmt.Errorf("--to %q must be HOST[:PORT], without scheme or path", to)}
			}
			opts := push.Options{Target: to, Username: user, CACert: ca, InsecureHTTP: insecure, Concurrency: concurrency}
			if passStdin {
				if user == "" {
					return &usageError{errors.New("--password-stdin needs --username")}
				}
				p, err := readPassword(c.InOrStdin())
				if err != nil {
					return err
				}
				opts.Password = p
			}
			errw := c.ErrOrStderr()
			if insecure {
				fmt.Fprintf(errw, "WARNING: --insecure-http: talking plain HTTP to %s; credentials and images travel unencrypted.\n", to)
			}
			var bar *progress.Bar
			if out.format == "text" {
				opts.Planned = func(total int64) { bar = progress.New(errw, "push to "+to, total) }
				opts.Progress = func(n int64) {
					if bar != nil {
						bar.Add(n)
					}
				}
			}
			ctx := logctx.With(c.Context(), slog.New(slog.NewTextHandler(errw, &slog.HandlerOptions{Level: slog.LevelWarn, ReplaceAttr: dropTime})))
			var (
				res *push.Result
				err error
			)
			if st, serr := os.Stat(from); serr == nil && st.IsDir() {
				res, err = push.FromLayout(ctx, from, opts)
			} else {
				ropts, oerr := t.options()
				if oerr != nil {
					return oerr
				}
				if t.insecure {
					fmt.Fprintf(errw, "\n!!! --insecure-skip-verify: %s is accepted even if unsigned or signed by an unknown key.\n\n", filepath.Base(from))
				}
				res, err = push.FromBundle(ctx, from, ropts, opts)
			}
			if bar != nil {
				bar.Done()
			}
			if err != nil {
				return err
			}
			return out.print(c.OutOrStdout(), res, func(p printer) {
				for _, img := range res.Images {
					p("%s -> %s@%s\n", img.Name, img.Target, img.Digest)
				}
				p("Pushed %d images to %s: %d blobs uploaded (%s), %d already there, %d mounted\n", len(res.Images), to,
					res.BlobsUploaded, progress.Bytes(res.BytesUploaded), res.BlobsSkipped, res.BlobsMounted)
			})
		},
	}
	c.Flags().StringVar(&from, "from", "", "bundle file (or any of its parts), or an OCI image layout directory")
	c.Flags().StringVar(&to, "to", "", "registry HOST[:PORT] to push to")
	c.Flags().StringVar(&user, "username", "", "registry user (default: docker config credentials, else anonymous)")
	c.Flags().BoolVar(&passStdin, "password-stdin", false, "read the registry password from stdin")
	c.Flags().StringVar(&ca, "ca-cert", "", "PEM CA certificate to trust for the registry, besides the system roots")
	c.Flags().BoolVar(&insecure, "insecure-http", false, "talk plain HTTP to the registry (no TLS)")
	c.Flags().IntVar(&concurrency, "concurrency", 4, "blobs uploaded at once")
	t.register(c)
	out.register(c)
	return c
}
