package main

import (
	"runtime"

	"github.com/spf13/cobra"

	"github.com/wutong-paas/wutong-offline/installer/containerd"
	"github.com/wutong-paas/wutong-offline/installer/payload"
)

func init() { nodeCmds = append(nodeCmds, newNodeImagesCmd) }

func newNodeImagesCmd() *cobra.Command {
	var (
		address, layout, ns, alias string
		asJSON                     bool
	)
	c := &cobra.Command{
		Use:   "images import|list",
		Short: "Preload the payload's images into containerd (namespace k8s.io), or list them",
		Long: `Import streams the OCI layout that the installer put on this node into containerd through its Go client,
for this node's arch, keeping the images' upstream names, so that kubelet finds the control plane's images even
when the registry is down. With --alias-registry each image also gets the name it has in the local registry, the
name the cluster's manifests use. Importing again changes nothing. List shows the images containerd holds.`,
		Args:      cobra.MatchAll(cobra.ExactArgs(1), cobra.OnlyValidArgs),
		ValidArgs: []string{"import", "list"},
		RunE: func(c *cobra.Command, args []string) error {
			var names []string
			var err error
			if args[0] == "import" {
				names, err = containerd.Import(c.Context(), address, layout, ns, runtime.GOARCH)
				if err == nil && alias != "" {
					var aliases []string
					aliases, err = containerd.Alias(c.Context(), address, ns, alias, names)
					names = append(names, aliases...)
				}
			} else {
				names, err = containerd.List(c.Context(), address, ns)
			}
			if err != nil {
				return err
			}
			if names == nil {
				names = []string{}
			}
			out := outputFlag{format: "text"}
			if asJSON {
				out.format = "json"
			}
			return out.print(c.OutOrStdout(), names, func(p printer) {
				for _, n := range names {
					p("%s\n", n)
				}
			})
		},
	}
	c.Flags().StringVar(&address, "address", containerd.Socket, "containerd's socket")
	c.Flags().StringVar(&layout, "layout", payload.NodeRoot+"/oci", "the OCI layout to import")
	c.Flags().StringVar(&ns, "namespace", containerd.Namespace, "containerd namespace")
	c.Flags().StringVar(&alias, "alias-registry", "", "also name each imported image as it is named in this local registry (HOST:PORT), so kubelet needs no pull")
	c.Flags().BoolVar(&asJSON, "json", false, "print the image names as JSON (for the installer)")
	return c
}
