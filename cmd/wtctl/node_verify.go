package main

import (
	"github.com/spf13/cobra"

	"github.com/wutong-paas/wutong-offline/installer/payload"
)

func init() { nodeCmds = append(nodeCmds, newNodeVerifyCmd) }

func newNodeVerifyCmd() *cobra.Command {
	var (
		root   string
		asJSON bool
	)
	c := &cobra.Command{
		Use:   "verify",
		Short: "Check payload files on this node against a list of \"SHA256 SIZE PATH\" lines read from stdin",
		Long: `Verify hashes the listed files under --root, several at a time, and reports each one that is missing, of
the wrong size or with the wrong sha256. The installer runs it to decide whether the payload on a node is intact.`,
		Args: exactArgs(0, "no arguments; the list comes on stdin"),
		RunE: func(c *cobra.Command, _ []string) error {
			files, err := payload.ReadList(c.InOrStdin())
			if err != nil {
				return &usageError{err}
			}
			problems, err := payload.Verify(c.Context(), root, files)
			if err != nil {
				return err
			}
			if problems == nil {
				problems = []payload.Problem{}
			}
			out := outputFlag{format: "text"}
			if asJSON {
				out.format = "json"
			}
			return out.print(c.OutOrStdout(), problems, func(p printer) {
				if len(problems) == 0 {
					p("%d files intact\n", len(files))
				}
				for _, pr := range problems {
					p("%-7s %s\n", pr.Reason, pr.Path)
				}
			})
		},
	}
	c.Flags().StringVar(&root, "root", payload.NodeRoot, "directory the paths are relative to")
	c.Flags().BoolVar(&asJSON, "json", false, "print the problems as JSON (for the installer)")
	return c
}
