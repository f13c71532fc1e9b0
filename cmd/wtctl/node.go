package main

import "github.com/spf13/cobra"

// nodeCmds are the `wtctl node` subcommands; each lives in its own node_*.go file and adds itself here.
var nodeCmds []func() *cobra.Command

// newNodeCmd is the node-side agent. The installer uploads the wtctl built for a node's arch and runs
// `wtctl node <verb> --json` there over SSH, so node work is Go code with structured results.
func newNodeCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "node",
		Short: "Node-side agent: commands the installer runs on each node over SSH",
	}
	for _, f := range nodeCmds {
		c.AddCommand(f())
	}
	return c
}
