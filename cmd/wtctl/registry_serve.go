package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/wutong-paas/wutong-offline/images/registry"
	"github.com/wutong-paas/wutong-offline/internal/logctx"
	"github.com/wutong-paas/wutong-offline/internal/pki"
)

func init() {
	registryCmds = append(registryCmds, newRegistryServeCmd, newRegistryCertCmd, newRegistryHtpasswdCmd)
}

func newRegistryServeCmd() *cobra.Command {
	var (
		opts  registry.Options
		debug bool
	)
	c := &cobra.Command{
		Use:   "serve --root DIR [--addr HOST:PORT] [--tls-cert F --tls-key F] [--htpasswd F [--anonymous-pull]] [--read-only]",
		Short: "Run the embedded image registry in the foreground (for a systemd unit); SIGTERM stops it gracefully",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			if opts.Root == "" {
				return &usageError{errors.New("--root is required")}
			}
			if (opts.TLSCert == "") != (opts.TLSKey == "") {
				return &usageError{errors.New("--tls-cert and --tls-key go together")}
			}
			level := slog.LevelInfo
			if debug {
				level = slog.LevelDebug
			}
			// A service logs with timestamps: journald keeps them, and plain stderr files need them.
			log := slog.New(slog.NewTextHandler(c.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
			return registry.Serve(logctx.With(c.Context(), log), opts)
		},
	}
	f := c.Flags()
	f.StringVar(&opts.Root, "root", "", "storage root directory, e.g. /var/lib/wutong/registry (created when missing)")
	f.StringVar(&opts.Addr, "addr", registry.DefaultAddr, "listen address HOST:PORT")
	f.StringVar(&opts.TLSCert, "tls-cert", "", "serve HTTPS with this PEM certificate (needs --tls-key)")
	f.StringVar(&opts.TLSKey, "tls-key", "", "PEM private key of --tls-cert")
	f.StringVar(&opts.Htpasswd, "htpasswd", "", "require basic auth from the users of this bcrypt htpasswd file (see 'wtctl registry htpasswd')")
	f.BoolVar(&opts.ReadOnly, "read-only", false, "refuse pushes and deletes")
	f.BoolVar(&opts.AnonymousPull, "anonymous-pull", false, "with --htpasswd: serve pulls without credentials; pushes and deletes still need them")
	f.DurationVar(&opts.ShutdownTimeout, "shutdown-timeout", registry.DefaultShutdownTimeout, "how long running requests may finish after SIGTERM")
	f.BoolVar(&debug, "debug", false, "log routine request errors (404, 401) too")
	return c
}

func newRegistryCertCmd() *cobra.Command {
	var (
		caDir, outCert, outKey string
		hosts                  []string
		days                   int
	)
	c := &cobra.Command{
		Use:   "cert --ca-dir DIR --host NAME_OR_IP... --out-cert F --out-key F",
		Short: "Issue the registry's TLS server certificate from the CA in DIR (ca.crt, ca.key), creating the CA when missing",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			if caDir == "" || outCert == "" || outKey == "" || len(hosts) == 0 {
				return &usageError{errors.New("--ca-dir, --host, --out-cert and --out-key are required")}
			}
			if days < 0 {
				return &usageError{errors.New("--days must not be negative")}
			}
			ca, created, err := loadOrCreateCA(filepath.Join(caDir, "ca.crt"), filepath.Join(caDir, "ca.key"))
			if err != nil {
				return err
			}
			certPEM, keyPEM, err := ca.IssueServer(hosts, time.Duration(days)*24*time.Hour)
			if err != nil {
				return &usageError{err}
			}
			if err := pki.WriteKeyPair(outCert, outKey, certPEM, keyPEM); err != nil {
				return err
			}
			if created {
				fmt.Fprintf(c.OutOrStdout(), "created CA %s\n", filepath.Join(caDir, "ca.crt"))
			}
			fmt.Fprintf(c.OutOrStdout(), "issued %s for %s\n", outCert, strings.Join(hosts, ", "))
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&caDir, "ca-dir", "", "directory of the cluster CA (ca.crt, ca.key 0600), e.g. /etc/wutong/pki")
	f.StringSliceVar(&hosts, "host", nil, "DNS name or IP address the registry is reached by; repeatable")
	f.StringVar(&outCert, "out-cert", "", "where to write the server certificate (0644)")
	f.StringVar(&outKey, "out-key", "", "where to write the server key (0600)")
	f.IntVar(&days, "days", 0, "validity in days (default 5 years, never past the CA's expiry)")
	return c
}

// loadOrCreateCA loads the CA at the paths, or creates it when neither file exists. Half a CA is an error.
func loadOrCreateCA(certPath, keyPath string) (ca *pki.CA, created bool, err error) {
	_, certErr := os.Stat(certPath)
	_, keyErr := os.Stat(keyPath)
	if errors.Is(certErr, os.ErrNotExist) && errors.Is(keyErr, os.ErrNotExist) {
		if ca, err = pki.NewCA("Wutong Offline CA", 0); err != nil {
			return nil, false, err
		}
		if err := ca.WriteFiles(certPath, keyPath); err != nil {
			return nil, false, err
		}
		return ca, true, nil
	}
	ca, err = pki.LoadCA(certPath, keyPath)
	return ca, false, err
}

func newRegistryHtpasswdCmd() *cobra.Command {
	var (
		file, user string
		fromStdin  bool
	)
	c := &cobra.Command{
		Use:   "htpasswd --file F --user U --password-stdin",
		Short: "Add a registry user or change its password in a bcrypt htpasswd file (0600)",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			if file == "" || user == "" {
				return &usageError{errors.New("--file and --user are required")}
			}
			if !fromStdin {
				return &usageError{errors.New("give the password on stdin with --password-stdin (never on the command line)")}
			}
			pass, err := readPassword(c.InOrStdin())
			if err != nil {
				return err
			}
			if err := registry.WriteHtpasswd(file, user, pass); err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "set password of %s in %s\n", user, file)
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&file, "file", "", "htpasswd file, e.g. /etc/wutong/registry/htpasswd (created when missing)")
	f.StringVar(&user, "user", "", "user name")
	f.BoolVar(&fromStdin, "password-stdin", false, "read the password from the first line of stdin")
	return c
}

// readPassword returns the first line of r without its line ending.
func readPassword(r io.Reader) (string, error) {
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", &usageError{errors.New("empty password on stdin")}
	}
	return line, nil
}
