package main

import (
	"github.com/spf13/cobra"

	"github.com/wutong-paas/wutong-offline/installer/containerd"
)

func init() { nodeCmds = append(nodeCmds, newNodeRuntimeCheckCmd) }

func newNodeRuntimeCheckCmd() *cobra.Command {
	var (
		address string
		asJSON  bool
	)
	c := &cobra.Command{
		Use:   "runtime-check",
		Short: "Check that containerd on this node answers, through its Go client",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			st, err := containerd.Check(c.Context(), address)
			if err != nil {
				return err
			}
			out := outputFlag{format: "text"}
			if asJSON {
				out.format = "json"
			}
			return out.print(c.OutOrStdout(), st, func(p printer) { p("containerd %s, serving: %v\n", st.Version, st.Serving) })
		},
	}
	c.Flags().StringVar(&address, "address", containerd.Socket, "containerd's socket")
	c.Flags().BoolVar(&asJSON, "json", false, "print as JSON (for the installer)")
	return c
}
