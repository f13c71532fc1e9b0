package main

import (
	"runtime"

	"github.com/spf13/cobra"
)

// Set with -ldflags "-X main.version=... -X main.commit=... -X main.date=...".
var (
	version = "dev"
	commit  = "unknown"
	date    = "unknown"
)

type versionInfo struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	BuildDate string `json:"buildDate"`
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"`
}

func newVersionCmd() *cobra.Command {
	var out outputFlag
	c := &cobra.Command{
		Use:   "version",
		Short: "Print the version of wtctl",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			v := versionInfo{version, commit, date, runtime.Version(), runtime.GOOS + "/" + runtime.GOARCH}
			return out.print(c.OutOrStdout(), v, func(p printer) {
				p("wtctl %s (commit %s, built %s, %s, %s)\n", v.Version, v.Commit, v.BuildDate, v.GoVersion, v.Platform)
			})
		},
	}
	out.register(c)
	return c
}
