package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/wutong-paas/wutong-offline/installer/cluster"
	"github.com/wutong-paas/wutong-offline/internal/atomicfile"
)

func init() { clusterCmds = append(clusterCmds, newClusterImportConfigCmd, newClusterValidateCmd) }

func newClusterImportConfigCmd() *cobra.Command {
	var (
		out   string
		force bool
	)
	c := &cobra.Command{
		Use:   "import-config FILE [-o cluster.yaml]",
		Short: "Convert a KubeKey config-sample.yaml into a cluster.yaml",
		Long: `import-config reads a KubeKey cluster config (kubekey.kubesphere.io/v1alpha2) and writes the same cluster
as a cluster.yaml: hosts, role groups (with node[1:10] ranges), the control-plane endpoint, the Kubernetes version
and network. Passwords are not copied: each becomes an {env: NAME} reference, and the notes on stderr say which
variables to export. The notes also list what was dropped or changed. The output goes to stdout, or with -o to a
new file (mode 0600); --force overwrites an existing one.`,
		Args: exactArgs(1, "one KubeKey config file"),
		RunE: func(c *cobra.Command, args []string) error {
			if out != "" && !force {
				if _, err := os.Lstat(out); err == nil {
					return &usageError{fmt.Errorf("%s already exists; use --force to overwrite it", out)}
				}
			}
			data, err := os.ReadFile(args[0])
			if err != nil {
				return &usageError{fmt.Errorf("read KubeKey config: %w", err)}
			}
			cl, notes, err := cluster.FromKubeKey(args[0], data)
			if err != nil {
				return err
			}
			doc, err := cluster.Marshal(cl)
			if err != nil {
				return err
			}
			target := out
			if target == "" {
				target = "cluster.yaml"
			}
			header := fmt.Sprintf("# Converted from %s by wtctl cluster import-config.\n"+
				"# Export the variables it references, set spec.bundle, review it, then: wtctl cluster validate -f %s\n",
				filepath.Base(args[0]), target)
			doc = append([]byte(header), doc...)
			if out == "" {
				if _, err := c.OutOrStdout().Write(doc); err != nil {
					return err
				}
			} else if err := atomicfile.Write(out, doc, 0o600); err != nil {
				return fmt.Errorf("write cluster config: %w", err)
			}
			stderr := c.ErrOrStderr()
			for _, n := range notes {
				fmt.Fprintf(stderr, "note: %s\n", n)
			}
			if out != "" {
				fmt.Fprintf(stderr, "wrote %s\n", out)
			}
			return nil
		},
	}
	c.Flags().StringVarP(&out, "output", "o", "", "write the cluster.yaml to this file (mode 0600) instead of stdout")
	c.Flags().BoolVar(&force, "force", false, "overwrite the -o file if it exists")
	return c
}

// validateResult is `wtctl cluster validate -o json`.
type validateResult struct {
	File     string          `json:"file"`
	Valid    bool            `json:"valid"`
	Name     string          `json:"name,omitempty"`
	Hosts    []validatedHost `json:"hosts,omitempty"`
	Problems []problemJSON   `json:"problems"`
	Warnings []problemJSON   `json:"warnings"`
}

type validatedHost struct {
	Name            string   `json:"name"`
	Address         string   `json:"address"`
	InternalAddress string   `json:"internalAddress"`
	Roles           []string `json:"roles"`
}

type problemJSON struct {
	Line    int    `json:"line,omitempty"`
	Path    string `json:"path,omitempty"`
	Message string `json:"message"`
}

func problemsJSON(ps []cluster.Problem) []problemJSON {
	out := []problemJSON{}
	for _, p := range ps {
		out = append(out, problemJSON{p.Line, p.Path, p.Msg})
	}
	return out
}

func newClusterValidateCmd() *cobra.Command {
	var (
		file string
		out  outputFlag
	)
	c := &cobra.Command{
		Use:   "validate [-f cluster.yaml]",
		Short: "Check a cluster.yaml offline and list every problem in it, with its line",
		Long: `validate parses cluster.yaml, applies the defaults and checks it without reaching any host: fields and
their types, names and addresses, roles, logins and sudo, network ranges, and that every {env: NAME} secret is
exported. It lists all problems at once, each with its line and how to fix it, and exits with 2 when there are any.
Warnings (such as an even number of control planes) do not fail it.`,
		Args: exactArgs(0, "no arguments (the file is given with -f)"),
		RunE: func(c *cobra.Command, _ []string) error {
			if err := out.check(); err != nil {
				return err
			}
			res := validateResult{File: file, Problems: []problemJSON{}, Warnings: []problemJSON{}}
			cl, err := cluster.Load(file)
			var ve *cluster.ValidationError
			switch {
			case errors.As(err, &ve):
				res.Problems = problemsJSON(ve.Problems)
				if out.format == "json" {
					if perr := out.print(c.OutOrStdout(), res, nil); perr != nil {
						return perr
					}
				}
				if n := len(ve.Problems); n > 1 {
					return fmt.Errorf("%s has %d problems; fix them all, then run this again:\n%w", file, n, err)
				}
				return err
			case err != nil:
				return &usageError{err}
			}
			res.Valid, res.Name, res.Warnings = true, cl.Metadata.Name, problemsJSON(cl.Warnings())
			for _, h := range cl.Spec.Hosts {
				roles := make([]string, len(h.Roles))
				for i, r := range h.Roles {
					roles[i] = string(r)
				}
				res.Hosts = append(res.Hosts, validatedHost{h.Name, h.Address, h.InternalAddress, roles})
			}
			return out.print(c.OutOrStdout(), res, func(p printer) {
				printSummary(p, cl)
				for _, w := range cl.Warnings() {
					fmt.Fprintf(c.ErrOrStderr(), "warning: %s\n", cluster.FormatProblem(file, w))
				}
			})
		},
	}
	c.Flags().StringVarP(&file, "file", "f", "cluster.yaml", "the cluster.yaml to check")
	out.register(c)
	return c
}

// printSummary is the text form of a valid cluster.
func printSummary(p printer, cl *cluster.Cluster) {
	names := func(hs []cluster.Host) string {
		var ns []string
		for _, h := range hs {
			ns = append(ns, h.Name)
		}
		if len(ns) == 0 {
			return "-"
		}
		return strings.Join(ns, ", ")
	}
	k := cl.Spec.Kubernetes
	version := k.Version
	if version == "" {
		version = "the bundle's"
	}
	p("%s is valid: cluster %s, %d hosts\n", cl.File(), cl.Metadata.Name, len(cl.Spec.Hosts))
	p("  control planes: %s\n", names(cl.ControlPlanes()))
	p("  workers:        %s\n", names(cl.Workers()))
	p("  registry:       %s (%s:%d)\n", names(cl.Registries()), cl.Spec.Registry.Domain, cl.Spec.Registry.Port)
	p("  API endpoint:   %s\n", k.ControlPlaneEndpoint)
	p("  Kubernetes:     %s, %s, pods %s, services %s\n", version, k.CNI, k.PodCIDR, k.ServiceCIDR)
	if b := cl.BundlePath(); b != "" {
		p("  bundle:         %s\n", b)
	}
	p("  workdir:        %s\n", cl.WorkdirPath())
}
