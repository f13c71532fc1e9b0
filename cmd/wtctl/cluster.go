package main

import "github.com/spf13/cobra"

// clusterCmds are the `wtctl cluster` subcommands; each lives in its own cluster_*.go file and adds itself here.
var clusterCmds []func() *cobra.Command

func newClusterCmd() *cobra.Command {
	c := &cobra.Command{
		Use:     "cluster",
		Aliases: []string{"install"},
		Short:   "Describe, check and install a cluster from cluster.yaml",
	}
	for _, f := range clusterCmds {
		c.AddCommand(f())
	}
	return c
}
