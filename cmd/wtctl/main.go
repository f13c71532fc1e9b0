// Command wtctl is everything a person runs for Wutong Offline: bundles today; registry, cluster and apps next.
// It is a thin shell: it parses flags, calls the libraries and prints.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/wutong-paas/wutong-offline/bundle"
	"github.com/wutong-paas/wutong-offline/bundle/parts"
	"github.com/wutong-paas/wutong-offline/images/push"
	"github.com/wutong-paas/wutong-offline/installer/cluster"
	"github.com/wutong-paas/wutong-offline/installer/preflight"
	"github.com/wutong-paas/wutong-offline/internal/i18n"
	"github.com/wutong-paas/wutong-offline/platform/api"
)

// Exit codes. Scripts may rely on them; see README.md.
const (
	exitOK        = 0
	exitError     = 1 // any other failure
	exitUsage     = 2 // bad flags or arguments
	exitIntegrity = 3 // damaged, incomplete or unsafe archive
	exitTrust     = 4 // signature missing or not trusted
	exitDiskFull  = 5 // not enough space
	exitAuth      = 6 // a registry refused the credentials
	exitPreflight = 7 // preflight found errors on a host
)

// usageError marks errors in how the command was called.
type usageError struct{ error }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRootCmd(os.Stdout, os.Stderr)
	err := root.ExecuteContext(ctx)
	os.Exit(report(os.Stderr, err))
}

// report prints err for a person and returns the exit code for it.
func report(w io.Writer, err error) int {
	if err == nil {
		return exitOK
	}
	code := exitCode(err)
	fmt.Fprintf(w, "Error: %v\n", err)
	fmt.Fprintf(w, "%s\n", i18n.T(i18n.FromEnv(), hintFor[code]))
	return code
}

// hintFor is the translated what-to-do line printed under each error, by exit code.
var hintFor = map[int]string{
	exitError:     i18n.ErrGeneric,
	exitUsage:     i18n.ErrUsage,
	exitIntegrity: i18n.ErrIntegrity,
	exitTrust:     i18n.ErrTrust,
	exitDiskFull:  i18n.ErrDiskFull,
	exitAuth:      i18n.ErrAuth,
	exitPreflight: i18n.ErrPreflight,
}

func exitCode(err error) int {
	var (
		ue *usageError
		ie *bundle.IntegrityError
		se *bundle.UnsafeEntryError
		pe *parts.PartError
		te *bundle.TrustError
		de *bundle.DiskFullError
		ae *push.AuthError
		ve *cluster.ValidationError
		fe *preflight.FailedError
		pr *api.Problem
	)
	switch {
	case errors.As(err, &ue), errors.As(err, &ve):
		return exitUsage
	case errors.As(err, &fe):
		return exitPreflight
	case errors.As(err, &te):
		return exitTrust
	case errors.As(err, &ie), errors.As(err, &se), errors.As(err, &pe):
		return exitIntegrity
	case errors.As(err, &de), errors.Is(err, syscall.ENOSPC):
		return exitDiskFull
	case errors.As(err, &ae):
		return exitAuth
	case errors.As(err, &pr) && (pr.Status == 401 || pr.Status == 403):
		return exitAuth
	}
	return exitError
}

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "wtctl",
		Short:         "Wutong Offline: build, carry and install air-gapped 梧桐PaaS bundles",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &usageError{fmt.Errorf("%w\nSee '%s --help'", err, c.CommandPath())}
	})
	root.AddCommand(newVersionCmd(), newBundleCmd(), newRegistryCmd(), newClusterCmd(), newNodeCmd(), newAppCmd())
	return root
}

// exactArgs is cobra.ExactArgs with a usage error.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if len(args) != n {
			return &usageError{fmt.Errorf("%s takes %s (got %d arguments)\nSee '%s --help'", c.CommandPath(), what, len(args), c.CommandPath())}
		}
		return nil
	}
}
