package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/wutong-paas/wutong-offline/installer/cluster"
	"github.com/wutong-paas/wutong-offline/installer/pipeline"
	"github.com/wutong-paas/wutong-offline/installer/preflight"
	"github.com/wutong-paas/wutong-offline/installer/remote"
	"github.com/wutong-paas/wutong-offline/internal/atomicfile"
	"github.com/wutong-paas/wutong-offline/internal/i18n"
)

func init() { clusterCmds = append(clusterCmds, newClusterPreflightCmd) }

// hostKeyFlags are the host-key options shared by the commands that reach nodes.
type hostKeyFlags struct {
	knownHosts []string
	acceptNew  bool
}

func (h *hostKeyFlags) register(c *cobra.Command) {
	c.Flags().StringSliceVar(&h.knownHosts, "known-hosts", nil, "known_hosts file to trust; repeatable. Default: ~/.ssh/known_hosts. The workdir's known_hosts is always trusted")
	c.Flags().BoolVar(&h.acceptNew, "accept-new-host-keys", false, "record the host key of a node seen for the first time in the workdir (a changed key is still refused)")
}

func (h *hostKeyFlags) policy(cl *cluster.Cluster) remote.HostKeys {
	files := h.knownHosts
	if len(files) == 0 {
		if home, err := os.UserHomeDir(); err == nil {
			files = []string{filepath.Join(home, ".ssh", "known_hosts")}
		}
	}
	return remote.HostKeys{Files: files, Record: filepath.Join(cl.WorkdirPath(), "known_hosts"), AcceptNew: h.acceptNew}
}

func newClusterPreflightCmd() *cobra.Command {
	var (
		file, bundlePath, agentDir string
		t                          trustFlags
		hk                         hostKeyFlags
		out                        outputFlag
	)
	c := &cobra.Command{
		Use:   "preflight -f cluster.yaml",
		Short: "Check every host before anything is installed: OS, arch, resources, disk, ports, clock and more",
		Long: `Preflight reaches every host over SSH, puts the wtctl built for the host's arch at ` + preflight.AgentPath + `,
runs 'wtctl node facts' there and checks the facts. It changes nothing else on the hosts. Each problem comes with
what to do about it. The exit code is non-zero when any host has an error; warnings alone pass.
The report is also written to the workdir as preflight.json, for the install.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := out.check(); err != nil {
				return err
			}
			cl, err := cluster.Load(file)
			if err != nil {
				return err
			}
			in := preflight.Input{Cluster: cl, Lang: i18n.FromEnv(), Ingress: pipeline.IngressWanted(cl, nil)}
			if bundlePath == "" && cl.Spec.Bundle != "" {
				bundlePath = cl.BundlePath()
			}
			if bundlePath != "" {
				r, _, _, err := openArchive(c, bundlePath, &t, "")
				if err != nil {
					return err
				}
				in.Payload = preflight.PayloadOf(r.Manifest)
				in.Ingress = pipeline.IngressWanted(cl, r.Manifest)
				r.Close()
			}
			ctx := c.Context()
			stderr := c.ErrOrStderr()
			fmt.Fprintf(stderr, "checking %d host(s)…\n", len(cl.Spec.Hosts))
			in.Nodes = preflight.Gather(ctx, cl, preflight.GatherOptions{
				HostKeys: hk.policy(cl),
				Agent: func(arch string) (string, error) {
					if agentDir != "" {
						return preflight.LocalAgent(arch, agentDir)
					}
					return preflight.LocalAgent(arch, "dist")
				},
				Progress: func(host string, err error) {
					if err != nil {
						fmt.Fprintf(stderr, "  %v\n", err) // remote errors start with the host's name
					}
				},
			})
			rep := preflight.Check(in)
			if err := saveReport(cl, rep); err != nil {
				return err
			}
			if err := out.print(c.OutOrStdout(), rep, func(p printer) { printPreflight(p, rep) }); err != nil {
				return err
			}
			if n := rep.Count(preflight.Error); n > 0 {
				failed := 0
				for _, h := range rep.Hosts {
					for _, f := range h.Findings {
						if f.Severity == preflight.Error {
							failed++
							break
						}
					}
				}
				return &preflight.FailedError{Errors: n, Warnings: rep.Count(preflight.Warning), Hosts: failed}
			}
			return nil
		},
	}
	c.Flags().StringVarP(&file, "file", "f", "cluster.yaml", "cluster.yaml to check")
	c.Flags().StringVar(&bundlePath, "bundle", "", "bundle archive, for the arch and disk checks. Default: spec.bundle")
	c.Flags().StringVar(&agentDir, "agent-dir", "", "directory holding wtctl-linux-ARCH for the hosts' arches. Default: beside wtctl, then ./dist")
	t.register(c)
	hk.register(c)
	out.register(c)
	return c
}

// saveReport keeps the report in the workdir, where the install reads it (cgroup v1 hosts, for one).
func saveReport(cl *cluster.Cluster, rep *preflight.Report) error {
	data, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	dir := cl.WorkdirPath()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("save preflight report: %w", err)
	}
	if err := atomicfile.Write(filepath.Join(dir, "preflight.json"), data, 0o600); err != nil {
		return fmt.Errorf("save preflight report: %w", err)
	}
	return nil
}

func printPreflight(p printer, rep *preflight.Report) {
	for _, n := range rep.Notes {
		p("note: %s\n", n)
	}
	for _, h := range rep.Hosts {
		p("\n%s  %s  %s  %s  %s\n", h.Name, h.Address, orDash(h.OS), orDash(h.Arch), orDash(h.Kernel))
		if len(h.Findings) == 0 {
			p("  ok\n")
		}
		for _, f := range h.Findings {
			p("  %-7s  %-9s  %s\n", strings.ToUpper(string(f.Severity)), f.Rule, f.Message)
			p("  %-7s  %-9s  → %s\n", "", "", f.Remediation)
		}
	}
	p("\n%d error(s), %d warning(s) on %d host(s)\n", rep.Count(preflight.Error), rep.Count(preflight.Warning), len(rep.Hosts))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
