package main

import (
	"bufio"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/wutong-paas/wutong-offline/bundle"
	"github.com/wutong-paas/wutong-offline/installer/cluster"
	"github.com/wutong-paas/wutong-offline/installer/engine"
	"github.com/wutong-paas/wutong-offline/installer/pipeline"
	"github.com/wutong-paas/wutong-offline/installer/preflight"
	"github.com/wutong-paas/wutong-offline/internal/i18n"
	"github.com/wutong-paas/wutong-offline/internal/progress"
)

func init() { clusterCmds = append(clusterCmds, newClusterInstallCmd) }

func newClusterInstallCmd() *cobra.Command {
	var (
		file, bundlePath, agentDir string
		dryRun, yes                bool
		parallel                   int
		t                          trustFlags
		hk                         hostKeyFlags
	)
	c := &cobra.Command{
		Use:   "install -f cluster.yaml",
		Short: "Install the cluster: connect, facts, preflight, distribute the payload, prepare the nodes",
		Long: `Install verifies and extracts the bundle into the workdir, then runs the phases on every host, in parallel
under a limit. Every change on a node goes through one gate: --dry-run prints the exact per-host plan and changes
nothing. Each step leaves a marker on the node; a re-run skips what is done and still verified, redoes what
changed and continues from what failed. A host that fails is named with its phase, error and what to do; the
others carry on. The journal and one log per host are in the workdir. Ctrl-C stops cleanly; run it again to resume.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			cl, err := cluster.Load(file)
			if err != nil {
				return err
			}
			if bundlePath == "" {
				bundlePath = cl.BundlePath()
			}
			if bundlePath == "" {
				return &usageError{fmt.Errorf("no bundle: set spec.bundle in %s or pass --bundle", file)}
			}
			stderr := c.ErrOrStderr()
			tty := progress.IsTerminal(stderr)
			if !dryRun && !yes {
				if !progress.IsTerminal(c.InOrStdin()) {
					return &usageError{fmt.Errorf("install changes %d host(s): pass --yes to confirm, or --dry-run to see the plan", len(cl.Spec.Hosts))}
				}
				fmt.Fprintf(stderr, "Install on %d host(s) of cluster %s? [y/N] ", len(cl.Spec.Hosts), cl.Metadata.Name)
				answer, _ := bufio.NewReader(c.InOrStdin()).ReadString('\n')
				if a := strings.TrimSpace(strings.ToLower(answer)); a != "y" && a != "yes" {
					return fmt.Errorf("not confirmed; nothing was changed")
				}
			}
			// The bundle is verified while it is extracted; a second run finds it in place.
			r, _, bar, err := openArchive(c, bundlePath, &t, "verify and extract")
			if err != nil {
				return err
			}
			dir := filepath.Join(cl.WorkdirPath(), "bundle")
			res, err := bundle.Extract(c.Context(), r, dir)
			r.Close()
			if bar != nil {
				bar.Done()
			}
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(c.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			in := &pipeline.Install{Cluster: cl, BundleDir: res.Dir, Manifest: r.Manifest,
				Agent: func(arch string) (string, error) {
					if agentDir != "" {
						return preflight.LocalAgent(arch, agentDir)
					}
					return preflight.LocalAgent(arch, "dist")
				}}
			targets := pipeline.Targets(cl, hk.policy(cl))
			defer pipeline.Close(targets)
			render := engine.NewTextRenderer(stderr, tty)
			e, err := engine.New(targets, engine.Options{Workdir: cl.WorkdirPath(), DryRun: dryRun, Parallel: parallel,
				Lang: i18n.FromEnv(), Events: render.Handle})
			if err != nil {
				return err
			}
			sum, err := e.Run(ctx, in.Phases())
			if dryRun && sum != nil && sum.Plan != nil {
				fmt.Fprint(c.OutOrStdout(), sum.Plan.String())
			}
			return err
		},
	}
	c.Flags().StringVarP(&file, "file", "f", "cluster.yaml", "cluster.yaml")
	c.Flags().StringVar(&bundlePath, "bundle", "", "bundle archive (or any of its parts). Default: spec.bundle")
	c.Flags().StringVar(&agentDir, "agent-dir", "", "directory holding wtctl-linux-ARCH for the hosts' arches. Default: beside wtctl, then ./dist")
	c.Flags().BoolVar(&dryRun, "dry-run", false, "print the exact per-host plan; change nothing on any host")
	c.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	c.Flags().IntVar(&parallel, "parallel", 10, "hosts worked on at once")
	t.register(c)
	hk.register(c)
	return c
}
