package main

import "github.com/spf13/cobra"

// registryCmds are the `wtctl registry` subcommands; each lives in its own registry_*.go file and adds itself here.
var registryCmds []func() *cobra.Command

func newRegistryCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "registry",
		Short: "Run the embedded image registry, seed it straight from a bundle, or push to an external registry",
	}
	for _, f := range registryCmds {
		c.AddCommand(f())
	}
	return c
}
