package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/wutong-paas/wutong-offline/internal/atomicfile"
	"github.com/wutong-paas/wutong-offline/internal/progress"
	"github.com/wutong-paas/wutong-offline/platform/api"
	"github.com/wutong-paas/wutong-offline/platform/client"
)

func newAppCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "app",
		Short: "Offline app packages, the platform's app market, and installed apps: package, import, install, upgrade, rollback, status",
	}
	c.AddCommand(newAppPackageCmd(), newAppLoginCmd(), newAppLogoutCmd(), newAppImportCmd(), newAppListCmd(),
		newAppVersionsCmd(), newAppImportsCmd(), newAppExportCmd(),
		newAppInstallCmd(), newAppUpgradeCmd(), newAppRollbackCmd(), newAppHistoryCmd(), newAppStatusCmd(), newAppLogsCmd(),
		newAppUninstallCmd())
	return c
}

// appConfig is what `wtctl app login` keeps: the server, how to trust it, and the token. The file is 0600.
type appConfig struct {
	Server string `json:"server"`
	CACert string `json:"caCert,omitempty"`
	User   string `json:"user"`
	Token  string `json:"token"`
}

// appConfigPath is $WUTONG_CONFIG, or wutong/config.json in the user's config directory.
func appConfigPath() (string, error) {
	if p := os.Getenv("WUTONG_CONFIG"); p != "" {
		return p, nil
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("find config directory: %w (set WUTONG_CONFIG=FILE)", err)
	}
	return filepath.Join(dir, "wutong", "config.json"), nil
}

func loadAppConfig() (*appConfig, error) {
	p, err := appConfigPath()
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, &usageError{errors.New("not logged in: run 'wtctl app login SERVER --user NAME' first")}
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	var c appConfig
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("read %s: %w (log in again to rewrite it)", p, err)
	}
	return &c, nil
}

func saveAppConfig(c *appConfig) (string, error) {
	p, err := appConfigPath()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return "", fmt.Errorf("make config directory: %w", err)
	}
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return "", err
	}
	if err := atomicfile.Write(p, data, 0o600); err != nil {
		return "", fmt.Errorf("write %s: %w", p, err)
	}
	return p, nil
}

// appClient is a client logged in as `wtctl app login` left it.
func appClient() (*client.Client, *appConfig, error) {
	cfg, err := loadAppConfig()
	if err != nil {
		return nil, nil, err
	}
	cl, err := client.New(client.Options{Server: cfg.Server, Token: cfg.Token, CACert: cfg.CACert})
	return cl, cfg, err
}

// loginHint makes an expired or revoked token say what to do.
func loginHint(err error, cfg *appConfig) error {
	if client.IsUnauthorized(err) {
		return fmt.Errorf("%w\nlog in again: wtctl app login %s --user %s", err, cfg.Server, cfg.User)
	}
	return err
}

func newAppLoginCmd() *cobra.Command {
	var user, ca string
	var passStdin bool
	c := &cobra.Command{
		Use:   "login SERVER --user NAME [--password-stdin]",
		Short: "Log in to a platform server and keep the token in the user's config directory (0600)",
		Example: `  wtctl app login https://10.99.0.10:30080 --user admin
  kubectl -n wutong-system get secret wutong-admin -o jsonpath='{.data.password}' | base64 -d | \
    wtctl app login https://10.99.0.10:30080 --user admin --password-stdin`,
		Args: exactArgs(1, "the server URL"),
		RunE: func(c *cobra.Command, args []string) error {
			if user == "" {
				return &usageError{errors.New("--user NAME is required")}
			}
			var pw string
			var err error
			switch {
			case passStdin:
				pw, err = readPassword(c.InOrStdin())
			case progress.IsTerminal(os.Stdin):
				fmt.Fprintf(c.ErrOrStderr(), "Password for %s: ", user)
				var b []byte
				b, err = term.ReadPassword(int(os.Stdin.Fd()))
				fmt.Fprintln(c.ErrOrStderr())
				pw = string(b)
			default:
				return &usageError{errors.New("no terminal to ask for the password: pipe it in with --password-stdin")}
			}
			if err != nil {
				return err
			}
			cl, err := client.New(client.Options{Server: args[0], CACert: ca})
			if err != nil {
				return &usageError{err}
			}
			s, err := cl.Login(c.Context(), user, pw)
			if err != nil {
				return err
			}
			p, err := saveAppConfig(&appConfig{Server: cl.Server(), CACert: ca, User: s.User.Name, Token: s.Token})
			if err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "Logged in to %s as %s (token kept in %s until %s).\n", cl.Server(), s.User.Name, p, s.ExpiresAt.Local().Format(time.DateTime))
			return nil
		},
	}
	c.Flags().StringVarP(&user, "user", "u", "", "user name")
	c.Flags().BoolVar(&passStdin, "password-stdin", false, "read the password from the first line of stdin")
	c.Flags().StringVar(&ca, "ca-cert", "", "PEM file of the CA that signed the server's certificate")
	return c
}

func newAppLogoutCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "logout",
		Short: "Revoke the kept token and forget it",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			cl, cfg, err := appClient()
			if err != nil {
				return err
			}
			if err := cl.Logout(c.Context()); err != nil && !client.IsUnauthorized(err) {
				return err
			}
			p, _ := appConfigPath()
			if err := os.Remove(p); err != nil {
				return fmt.Errorf("forget token: %w", err)
			}
			fmt.Fprintf(c.OutOrStdout(), "Logged out of %s.\n", cfg.Server)
			return nil
		},
	}
}

func newAppImportCmd() *cobra.Command {
	var team string
	var noWait bool
	var out outputFlag
	c := &cobra.Command{
		Use:   "import FILE",
		Short: "Import an offline app package into the platform: upload with progress, then follow the push",
		Example: `  wtctl app import /media/usb/redis-7.2.0.wtapp
  wtctl app import shop-1.4.0.wtapp --team delivery`,
		Args: exactArgs(1, "the package file"),
		RunE: func(c *cobra.Command, args []string) error {
			if err := out.check(); err != nil {
				return err
			}
			cl, cfg, err := appClient()
			if err != nil {
				return err
			}
			fi, err := os.Stat(args[0])
			if err != nil {
				return &usageError{fmt.Errorf("package: %w", err)}
			}
			errw := c.ErrOrStderr()
			opts := client.ImportOptions{Team: team}
			var bar *progress.Bar
			if out.format == "text" {
				bar = progress.New(errw, "upload "+filepath.Base(args[0]), fi.Size())
				opts.Progress = bar.Add
			}
			im, err := cl.StartImport(c.Context(), args[0], opts)
			if bar != nil {
				bar.Done()
			}
			if err != nil {
				return loginHint(err, cfg)
			}
			if !noWait && !im.Terminal() {
				last := ""
				im, err = cl.WaitImport(c.Context(), im.ID, time.Second, func(i *api.Import) {
					if i.State != last && out.format == "text" {
						fmt.Fprintf(errw, "import %s: %s\n", i.ID, i.State)
						last = i.State
					}
				})
				if err != nil {
					return err
				}
			}
			return out.print(c.OutOrStdout(), im, func(p printer) {
				switch {
				case im.Unchanged:
					p("%s %s was already imported with the same content: nothing changed.\n", im.App, im.Version)
				case im.State == api.ImportDone:
					p("Imported %s %s into team %s (import %s).\n", im.App, im.Version, im.Team, im.ID)
				default:
					p("Import %s of %s %s is %s; follow it with: wtctl app imports\n", im.ID, im.App, im.Version, im.State)
				}
			})
		},
	}
	c.Flags().StringVar(&team, "team", "", "team to import into (default: your only team)")
	c.Flags().BoolVar(&noWait, "no-wait", false, "return once the package is uploaded and verified, without waiting for the image push")
	out.register(c)
	return c
}

// appQuery is a read-only `wtctl app` command: it asks the server as `wtctl app login` left the user, and prints the
// answer as text or JSON.
func appQuery[T any](use, short string, args cobra.PositionalArgs, ask func(ctx context.Context, cl *client.Client, args []string) (T, error),
	text func(w io.Writer, p printer, v T)) *cobra.Command {
	var out outputFlag
	c := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  args,
		RunE: func(c *cobra.Command, args []string) error {
			if err := out.check(); err != nil {
				return err
			}
			cl, cfg, err := appClient()
			if err != nil {
				return err
			}
			v, err := ask(c.Context(), cl, args)
			if err != nil {
				return loginHint(err, cfg)
			}
			return out.print(c.OutOrStdout(), v, func(p printer) { text(c.OutOrStdout(), p, v) })
		},
	}
	out.register(c)
	return c
}

func newAppListCmd() *cobra.Command {
	return appQuery("list", "List the apps of the market that you can see", exactArgs(0, "no arguments"),
		func(ctx context.Context, cl *client.Client, _ []string) ([]api.App, error) { return cl.Apps(ctx) },
		func(w io.Writer, p printer, apps []api.App) {
			if len(apps) == 0 {
				p("No apps yet: import a package with 'wtctl app import FILE'.\n")
				return
			}
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "APP\tNAME\tTEAM\tLATEST\tUPDATED")
			for _, a := range apps {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", a.Key, a.Name, a.Team, a.LatestVersion, a.UpdatedAt.Local().Format(time.DateTime))
			}
			tw.Flush()
		})
}

func newAppVersionsCmd() *cobra.Command {
	return appQuery("versions APP", "List an app's imported versions with their images", exactArgs(1, "the app key"),
		func(ctx context.Context, cl *client.Client, args []string) ([]api.Version, error) {
			return cl.Versions(ctx, args[0])
		},
		func(_ io.Writer, p printer, vs []api.Version) {
			for _, v := range vs {
				p("%s %s  %s  imported %s by %s  signer %s\n", v.App, v.Version, progress.Bytes(v.Size),
					v.CreatedAt.Local().Format(time.DateTime), v.CreatedBy, orDash(v.Signer))
				for _, im := range v.Images {
					p("  %s\n    → %s\n      %s\n", im.Name, im.Target, im.Digest)
				}
			}
		})
}

func newAppImportsCmd() *cobra.Command {
	return appQuery("imports", "List package imports of your teams, newest first, with where each stands", exactArgs(0, "no arguments"),
		func(ctx context.Context, cl *client.Client, _ []string) ([]api.Import, error) { return cl.Imports(ctx) },
		func(w io.Writer, p printer, ims []api.Import) {
			if len(ims) == 0 {
				p("No imports yet.\n")
				return
			}
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "IMPORT\tTEAM\tAPP\tVERSION\tSTATE\tRECEIVED\tUPDATED\tERROR")
			for _, im := range ims {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", im.ID, im.Team, orDash(im.App), orDash(im.Version), im.State,
					progress.Bytes(im.Received), im.UpdatedAt.Local().Format(time.DateTime), im.Error)
			}
			tw.Flush()
		})
}

func newAppExportCmd() *cobra.Command {
	var file string
	var force bool
	c := &cobra.Command{
		Use:   "export APP VERSION [--file FILE]",
		Short: "Download an imported version as an offline app package (same content digests as the original)",
		Args:  exactArgs(2, "the app key and the version"),
		RunE: func(c *cobra.Command, args []string) error {
			cl, cfg, err := appClient()
			if err != nil {
				return err
			}
			if file == "" {
				file = args[0] + "-" + args[1] + ".wtapp"
			}
			if _, err := os.Stat(file); err == nil && !force {
				return &usageError{fmt.Errorf("%s exists: remove it or pass --force", file)}
			}
			tmp, err := os.CreateTemp(filepath.Dir(file), "."+filepath.Base(file)+".part-*")
			if err != nil {
				return fmt.Errorf("export: %w", err)
			}
			defer os.Remove(tmp.Name())
			bar := progress.New(c.ErrOrStderr(), "export "+args[0]+" "+args[1], 0)
			n, err := cl.Export(c.Context(), args[0], args[1], io.MultiWriter(tmp, addWriter{bar}))
			bar.Done()
			if err == nil {
				err = tmp.Sync()
			}
			if cerr := tmp.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return loginHint(err, cfg)
			}
			if err := os.Rename(tmp.Name(), file); err != nil {
				return fmt.Errorf("export: %w", err)
			}
			fmt.Fprintf(c.OutOrStdout(), "Wrote %s (%s). Check it with: wtctl app package verify %s\n", file, progress.Bytes(n), file)
			return nil
		},
	}
	c.Flags().StringVarP(&file, "file", "f", "", "output file (default APP-VERSION.wtapp)")
	c.Flags().BoolVar(&force, "force", false, "replace an existing file")
	return c
}

type addWriter struct{ b *progress.Bar }

func (a addWriter) Write(p []byte) (int, error) { a.b.Add(int64(len(p))); return len(p), nil }
