package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/wutong-paas/wutong-offline/images/seed"
	"github.com/wutong-paas/wutong-offline/internal/progress"
)

func init() { registryCmds = append(registryCmds, newRegistrySeedCmd) }

// seedResult is what `wtctl registry seed -o json` prints.
type seedResult struct {
	From string `json:"from"`
	Kind string `json:"kind"` // "layout" or "bundle"
	Root string `json:"root"`
	seed.Stats
}

func newRegistrySeedCmd() *cobra.Command {
	var (
		t          trustFlags
		out        outputFlag
		from, root string
		verify     bool
	)
	c := &cobra.Command{
		Use:   "seed --from BUNDLE|OCI-LAYOUT --root DIR",
		Short: "Write images straight into the registry's storage, without pushing",
		Long: `Seed writes every named image of an OCI layout, or of a bundle's oci/ layout, straight into the
filesystem storage of the embedded registry (its rootdirectory), content-addressed: hard links from a layout on the
same filesystem, else verified copies. Every blob is checked before it becomes visible, and tags are written last,
so it is safe while the registry runs: a client sees an image complete or not at all. A bundle is streamed and
verified (signature and every entry) without extracting it. Seeding twice writes nothing the second time.`,
		Args: exactArgs(0, "no arguments; use --from and --root"),
		RunE: func(c *cobra.Command, _ []string) error {
			if err := out.check(); err != nil {
				return err
			}
			if from == "" || root == "" {
				return &usageError{fmt.Errorf("--from and --root are required")}
			}
			opts := seed.Options{Root: root, VerifyExisting: verify}
			res := seedResult{From: from, Root: root}
			var (
				st  *seed.Stats
				err error
			)
			if isLayout(from) {
				res.Kind = "layout"
				var bar *progress.Bar
				if out.format == "text" {
					bar = progress.New(c.ErrOrStderr(), "seed "+filepath.Base(from), blobsSize(from))
					opts.Progress = bar.Add
				}
				st, err = seed.FromLayout(c.Context(), from, opts)
				if bar != nil {
					bar.Done()
				}
			} else {
				res.Kind = "bundle"
				st, err = seedBundle(c, from, &t, out.format == "text", opts)
			}
			if err != nil {
				return err
			}
			res.Stats = *st
			return out.print(c.OutOrStdout(), res, func(p printer) {
				p("Seeded %d images into %s: %d blobs, %s written (%d hard-linked), %d blobs (%s) already there, %d links\n",
					st.Images, root, st.Blobs-st.BlobsSkipped, progress.Bytes(st.BytesWritten), st.BlobsLinked,
					st.BlobsSkipped, progress.Bytes(st.BytesSkipped), st.Links)
			})
		},
	}
	t.register(c)
	out.register(c)
	c.Flags().StringVar(&from, "from", "", "a bundle (or any of its parts) or an OCI layout directory")
	c.Flags().StringVar(&root, "root", "", "the registry's filesystem storage root (rootdirectory)")
	c.Flags().BoolVar(&verify, "verify-existing", false, "re-hash blobs already in the storage instead of trusting them by size")
	return c
}

// seedBundle seeds from a bundle, with a progress bar over the whole payload that the reader streams.
func seedBundle(c *cobra.Command, from string, t *trustFlags, show bool, opts seed.Options) (*seed.Stats, error) {
	ropts, err := t.options()
	if err != nil {
		return nil, err
	}
	// Read the manifest once for the total and the trust warning; FromBundle opens the bundle again to stream it.
	r, _, bar, err := openArchive(c, from, t, map[bool]string{true: "seed"}[show])
	if err != nil {
		return nil, err
	}
	r.Close()
	if bar != nil {
		ropts.Progress = bar.Add
		defer bar.Done()
	}
	return seed.FromBundle(c.Context(), from, ropts, opts)
}

// isLayout reports whether p is a directory with an oci-layout file.
func isLayout(p string) bool {
	fi, err := os.Stat(filepath.Join(p, "oci-layout"))
	return err == nil && fi.Mode().IsRegular()
}

// blobsSize sums the sizes of a layout's blob files, for the progress bar.
func blobsSize(layout string) int64 {
	var n int64
	filepath.WalkDir(filepath.Join(layout, "blobs"), func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}
