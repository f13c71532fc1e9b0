package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/wutong-paas/wutong-offline/installer/nodeprep"
)

func init() { nodeCmds = append(nodeCmds, newNodePrepCmd) }

func newNodePrepCmd() *cobra.Command {
	var (
		asJSON, dryRun bool
		hosts, ports   []string
		modules        []string
		firewall, root string
	)
	c := &cobra.Command{
		Use:   "prep",
		Short: "Prepare this node for Kubernetes: swap, kernel modules, sysctl, SELinux, firewalld, /etc/hosts",
		Long: `Prep checks each setting and changes only what differs, so a second run changes nothing. It turns swap off
(and comments it out of /etc/fstab), loads and persists the kernel modules, sets and persists the network
sysctls, makes SELinux permissive, opens the cluster's ports in firewalld (or stops it), and keeps the cluster's
names in a managed block of /etc/hosts. With --dry-run it lists what it would change and changes nothing.`,
		Example: `  wtctl node prep --dry-run
  wtctl node prep --json --host 10.0.0.11=cp1 --host 10.0.0.11=registry.wutong.local --port 6443/tcp`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			o := nodeprep.Options{Root: root, Firewall: firewall, Ports: ports, DryRun: dryRun}
			if len(modules) > 0 {
				o.Modules = append(nodeprep.DefaultModules(), modules...)
			}
			for _, h := range hosts {
				ip, names, ok := strings.Cut(h, "=")
				if !ok || ip == "" || names == "" {
					return &usageError{fmt.Errorf("--host %q: write IP=NAME[,NAME…]", h)}
				}
				o.Hosts = append(o.Hosts, nodeprep.HostEntry{IP: ip, Names: strings.Split(names, ",")})
			}
			res, err := nodeprep.Apply(c.Context(), o)
			out := outputFlag{format: "text"}
			if asJSON {
				out.format = "json"
			}
			if res != nil {
				if perr := out.print(c.OutOrStdout(), res, func(p printer) { printPrep(p, res) }); perr != nil && err == nil {
					err = perr
				}
			}
			return err
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print the changes as JSON (for the installer)")
	c.Flags().BoolVar(&dryRun, "dry-run", false, "list what would change; change nothing")
	c.Flags().StringArrayVar(&hosts, "host", nil, "IP=NAME[,NAME…] for the managed /etc/hosts block, repeatable")
	c.Flags().StringArrayVar(&ports, "port", nil, "port to open in firewalld, as 6443/tcp, repeatable")
	c.Flags().StringArrayVar(&modules, "module", nil, "another kernel module to load, repeatable (ip_vs for IPVS mode)")
	c.Flags().StringVar(&firewall, "firewall", nodeprep.FirewallOpen, "firewalld: open (the ports), stop, or leave")
	c.Flags().StringVar(&root, "root", "/", "prepare the files of an image mounted here instead (runs no commands)")
	return c
}

func printPrep(p printer, r *nodeprep.Result) {
	verb := "changed"
	if r.DryRun {
		verb = "would change"
	}
	if len(r.Changes) == 0 {
		p("nothing to change: the node is prepared\n")
		return
	}
	for _, ch := range r.Changes {
		p("%-13s %-8s %s  (%s)\n", verb, ch.Kind, ch.Target, ch.Why)
	}
}
