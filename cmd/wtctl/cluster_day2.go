package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/wutong-paas/wutong-offline/installer/cluster"
	"github.com/wutong-paas/wutong-offline/installer/engine"
	"github.com/wutong-paas/wutong-offline/installer/kube"
	"github.com/wutong-paas/wutong-offline/installer/pipeline"
	"github.com/wutong-paas/wutong-offline/internal/i18n"
	"github.com/wutong-paas/wutong-offline/internal/progress"
)

func init() {
	clusterCmds = append(clusterCmds, newClusterStatusCmd, newClusterAddNodeCmd, newClusterRemoveNodeCmd, newClusterResetCmd)
}

// clusterClient reaches the installed cluster with the workdir's admin kubeconfig, through the first control
// plane's SSH connection.
func clusterClient(cl *cluster.Cluster, targets []engine.Target) (*kube.Client, error) {
	p := filepath.Join(cl.WorkdirPath(), pipeline.KubeconfigFile)
	conf, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no kubeconfig at %s: the cluster is not installed yet (wtctl cluster install)", p)
	}
	if err != nil {
		return nil, fmt.Errorf("read kubeconfig: %w", err)
	}
	return kube.New(conf, pipeline.ForwardThrough(targets)(cl.ControlPlanes()[0].Name))
}

func newClusterStatusCmd() *cobra.Command {
	var (
		file string
		hk   hostKeyFlags
		out  outputFlag
	)
	c := &cobra.Command{
		Use:   "status -f cluster.yaml",
		Short: "Show the cluster's nodes, the hosts of cluster.yaml that are not nodes, and system pods that are not running",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := out.check(); err != nil {
				return err
			}
			cl, err := cluster.Load(file)
			if err != nil {
				return err
			}
			targets := pipeline.Targets(cl, hk.policy(cl))
			defer pipeline.Close(targets)
			kc, err := clusterClient(cl, targets)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(c.Context(), time.Minute)
			defer cancel()
			st, err := kc.Status(ctx)
			if err != nil {
				return err
			}
			for _, h := range cl.Spec.Hosts {
				if (h.HasRole(cluster.RoleControlPlane) || h.HasRole(cluster.RoleWorker)) &&
					!slices.ContainsFunc(st.Nodes, func(n kube.NodeStatus) bool { return n.Name == h.Name }) {
					st.NotJoined = append(st.NotJoined, h.Name)
				}
			}
			return out.print(c.OutOrStdout(), st, func(p printer) { printStatus(c.OutOrStdout(), st) })
		},
	}
	c.Flags().StringVarP(&file, "file", "f", "cluster.yaml", "cluster.yaml")
	hk.register(c)
	out.register(c)
	return c
}

func printStatus(w io.Writer, st *kube.Status) {
	fmt.Fprintf(w, "Kubernetes %s\n", st.Version)
	printNodes(w, st.Nodes)
	for _, n := range st.Nodes {
		if !n.Ready {
			fmt.Fprintf(w, "%s is not Ready: %s\n", n.Name, n.Reason)
		}
	}
	if len(st.NotJoined) > 0 {
		fmt.Fprintf(w, "in cluster.yaml but not nodes: %s (wtctl cluster add-node)\n", strings.Join(st.NotJoined, ", "))
	}
	if len(st.Unhealthy) == 0 {
		fmt.Fprintln(w, "system pods: all running")
		return
	}
	fmt.Fprintln(w, "system pods not running:")
	for _, p := range st.Unhealthy {
		fmt.Fprintf(w, "  %s/%s on %s: %s\n", p.Namespace, p.Name, p.Node, p.Reason)
	}
}

func newClusterAddNodeCmd() *cobra.Command {
	var f installFlags
	c := &cobra.Command{
		Use:   "add-node -f cluster.yaml [NAME...]",
		Short: "Join hosts added to cluster.yaml to the installed cluster",
		Long: `add-node runs the install phases on the named hosts only (by default: every control plane or worker of
cluster.yaml that is not a node yet), reaching the cluster through the first control plane. Run it after adding the
hosts to cluster.yaml.`,
		RunE: func(c *cobra.Command, args []string) error {
			cl, err := cluster.Load(f.file)
			if err != nil {
				return err
			}
			names := args
			if len(names) == 0 {
				targets := pipeline.Targets(cl, f.hk.policy(cl))
				kc, err := clusterClient(cl, targets)
				if err != nil {
					pipeline.Close(targets)
					return err
				}
				ctx, cancel := context.WithTimeout(c.Context(), time.Minute)
				nodes, err := kc.Nodes(ctx)
				cancel()
				pipeline.Close(targets)
				if err != nil {
					return err
				}
				for _, h := range cl.Spec.Hosts {
					if (h.HasRole(cluster.RoleControlPlane) || h.HasRole(cluster.RoleWorker)) &&
						!slices.ContainsFunc(nodes, func(n kube.NodeStatus) bool { return n.Name == h.Name }) {
						names = append(names, h.Name)
					}
				}
				if len(names) == 0 {
					fmt.Fprintln(c.OutOrStdout(), "every host of cluster.yaml is already a node; nothing to add")
					return nil
				}
			}
			for _, n := range names {
				if !slices.ContainsFunc(cl.Spec.Hosts, func(h cluster.Host) bool { return h.Name == n }) {
					return &usageError{fmt.Errorf("add-node: %s is not a host of %s; add it there first", n, f.file)}
				}
			}
			if !f.dryRun {
				if err := confirm(c, f.yes, fmt.Sprintf("Add %s to cluster %s?", strings.Join(names, ", "), cl.Metadata.Name)); err != nil {
					return err
				}
			}
			return runInstall(c, &f, cl, names)
		},
	}
	f.register(c)
	return c
}

func newClusterRemoveNodeCmd() *cobra.Command {
	var (
		file              string
		dryRun, yes, keep bool
		drainTimeout      time.Duration
		hk                hostKeyFlags
	)
	c := &cobra.Command{
		Use:   "remove-node NAME -f cluster.yaml",
		Short: "Drain a node, reset it (kubeadm reset and the installer's files) and delete it from the cluster",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			cl, err := cluster.Load(file)
			if err != nil {
				return err
			}
			targets := pipeline.Targets(cl, hk.policy(cl))
			defer pipeline.Close(targets)
			rm := &pipeline.RemoveNode{Cluster: cl, Name: args[0], DrainTimeout: drainTimeout, KeepPayload: keep}
			if err := rm.Check(); err != nil {
				return &usageError{err}
			}
			if rm.Client, err = clusterClient(cl, targets); err != nil {
				return err
			}
			if !dryRun {
				if err := confirm(c, yes, fmt.Sprintf("Drain and remove %s from cluster %s?", args[0], cl.Metadata.Name)); err != nil {
					return err
				}
			}
			if err := runPhases(c, cl, targets, dryRun, rm.Phases()); err != nil {
				return err
			}
			if !dryRun {
				fmt.Fprintf(c.OutOrStdout(), "%s removed. Delete it from %s, or the next install joins it again.\n", args[0], file)
			}
			return nil
		},
	}
	c.Flags().StringVarP(&file, "file", "f", "cluster.yaml", "cluster.yaml")
	c.Flags().BoolVar(&dryRun, "dry-run", false, "print the plan; change nothing")
	c.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	c.Flags().BoolVar(&keep, "keep-payload", false, "keep the bundle's payload in /opt/wutong on the node")
	c.Flags().DurationVar(&drainTimeout, "drain-timeout", 5*time.Minute, "how long the drain may take")
	hk.register(c)
	return c
}

func newClusterResetCmd() *cobra.Command {
	var (
		file              string
		dryRun, yes, keep bool
		hk                hostKeyFlags
	)
	c := &cobra.Command{
		Use:   "reset -f cluster.yaml [NAME...]",
		Short: "Take every node (or the named ones) back to before the install",
		Long: `reset runs kubeadm reset on the nodes, stops and removes kubelet, containerd and the registry with their
binaries, configuration, data and the installer's markers, the pod network's interfaces and rules, and the
installer's /etc/hosts block, sysctl and module files. With --keep-payload the bundle's payload stays in
/opt/wutong, so a reinstall uploads nothing. Swap, SELinux and firewalld stay as node preparation left them.
Registry data is deleted: images pushed after the install are lost.`,
		RunE: func(c *cobra.Command, args []string) error {
			cl, err := cluster.Load(file)
			if err != nil {
				return err
			}
			for _, n := range args {
				if !slices.ContainsFunc(cl.Spec.Hosts, func(h cluster.Host) bool { return h.Name == n }) {
					return &usageError{fmt.Errorf("reset: %s is not a host of %s", n, file)}
				}
			}
			if !dryRun {
				what := fmt.Sprintf("every host (%d) of cluster %s", len(cl.Spec.Hosts), cl.Metadata.Name)
				if len(args) > 0 {
					what = strings.Join(args, ", ")
				}
				if err := confirm(c, yes, "Reset "+what+"? This deletes the cluster's data."); err != nil {
					return err
				}
			}
			targets := pipeline.Targets(cl, hk.policy(cl))
			defer pipeline.Close(targets)
			r := &pipeline.Reset{Cluster: cl, KeepPayload: keep, Only: args, Workdir: cl.WorkdirPath()}
			return runPhases(c, cl, targets, dryRun, r.Phases())
		},
	}
	c.Flags().StringVarP(&file, "file", "f", "cluster.yaml", "cluster.yaml")
	c.Flags().BoolVar(&dryRun, "dry-run", false, "print the per-host plan; change nothing")
	c.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	c.Flags().BoolVar(&keep, "keep-payload", false, "keep the bundle's payload in /opt/wutong")
	hk.register(c)
	return c
}

// runPhases runs a day-2 pipeline over targets with the text renderer, printing the plan in a dry run.
func runPhases(c *cobra.Command, cl *cluster.Cluster, targets []engine.Target, dryRun bool, phases []engine.Phase) error {
	ctx, stop := signal.NotifyContext(c.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	stderr := c.ErrOrStderr()
	render := engine.NewTextRenderer(stderr, progress.IsTerminal(stderr))
	e, err := engine.New(targets, engine.Options{Workdir: cl.WorkdirPath(), DryRun: dryRun, Parallel: 10,
		Lang: i18n.FromEnv(), Events: render.Handle})
	if err != nil {
		return err
	}
	sum, err := e.Run(ctx, phases)
	if dryRun && sum != nil && sum.Plan != nil {
		fmt.Fprint(c.OutOrStdout(), sum.Plan.String())
	}
	return err
}

// printNodes prints the node table of install's summary and of status.
func printNodes(w io.Writer, nodes []kube.NodeStatus) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tSTATUS\tROLES\tVERSION\tINTERNAL-IP\tOS\tARCH\tRUNTIME")
	for _, n := range nodes {
		s := "Ready"
		if !n.Ready {
			s = "NotReady"
		}
		if n.Unschedulable {
			s += ",SchedulingDisabled"
		}
		roles := strings.Join(n.Roles, ",")
		if roles == "" {
			roles = "<none>"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", n.Name, s, roles, n.KubeletVersion, n.InternalIP, n.OS, n.Arch, n.Runtime)
	}
	tw.Flush()
}
