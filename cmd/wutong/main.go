// Command wutong is the 梧桐PaaS platform server. `wutong serve` runs the API; the work lives in platform/server.
// Secrets (the registry and admin passwords) come from files or the environment, never from the command line,
// where every user of the host could read them.
package main

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/wutong-paas/wutong-offline/bundle"
	"github.com/wutong-paas/wutong-offline/internal/logctx"
	"github.com/wutong-paas/wutong-offline/platform/deploy"
	"github.com/wutong-paas/wutong-offline/platform/server"
)

// Set with -ldflags "-X main.version=… -X main.commit=… -X main.date=…".
var (
	version = "dev"
	commit  = "unknown"
	date    = "unknown"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRootCmd(os.Stdout, os.Stderr)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "Error: %v\n", err)
		os.Exit(1)
	}
}

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{Use: "wutong", Short: "The 梧桐PaaS platform server", SilenceUsage: true, SilenceErrors: true}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(newServeCmd(), &cobra.Command{
		Use: "version", Short: "Print the version", Args: cobra.NoArgs,
		Run: func(c *cobra.Command, _ []string) {
			fmt.Fprintf(c.OutOrStdout(), "wutong %s (commit %s, built %s, %s, %s/%s)\n", version, commit, date, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		},
	})
	return root
}

// plainHTTPAllowed refuses to serve plain HTTP beyond loopback unless asked to: the login password and the session
// cookie would cross the network in clear text.
func plainHTTPAllowed(listen string, insecure bool) error {
	if insecure {
		return nil
	}
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Errorf("--listen %q: %w", listen, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("refusing to serve plain HTTP on %q: give --tls-cert and --tls-key (the installer issues them from the cluster CA), "+
		"listen on loopback only, or pass --insecure-http behind a TLS proxy", listen)
}

// clusterConfig reaches the cluster apps are installed on: the kubeconfig file when given, else the pod's service
// account when running inside a cluster, else none.
func clusterConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig != "" {
		cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("read --kubeconfig: %w", err)
		}
		return cfg, nil
	}
	if os.Getenv("KUBERNETES_SERVICE_HOST") == "" {
		return nil, nil
	}
	cfg, err := rest.InClusterConfig()
	if err != nil {
		return nil, fmt.Errorf("in-cluster config: %w", err)
	}
	return cfg, nil
}

// readSecret reads a secret from a file (first line) or, when file is empty, from the environment variable env.
func readSecret(file, env string) (string, error) {
	if file == "" {
		return os.Getenv(env), nil
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("read secret: %w", err)
	}
	line, _, _ := strings.Cut(string(data), "\n")
	return strings.TrimRight(line, "\r"), nil
}

func newServeCmd() *cobra.Command {
	var (
		opts                       server.Options
		listen, regPassFile        string
		adminPassFile, exportKey   string
		keyFiles                   []string
		tlsCert, tlsKey, logFormat string
		maxUpload                  int64
		insecureHTTP               bool
		kubeconfig, clusterName    string
	)
	c := &cobra.Command{
		Use:   "serve",
		Short: "Serve the platform API (/api/v1, /healthz, /metrics)",
		Example: `  WUTONG_REGISTRY_PASSWORD=… wutong serve --data-dir /var/lib/wutong --registry 10.99.0.10:5000 \
    --registry-user wutong --registry-ca /etc/wutong/pki/ca.crt --trusted-keys /etc/wutong/trusted-keys`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			var h slog.Handler = slog.NewTextHandler(c.ErrOrStderr(), nil)
			if logFormat == "json" {
				h = slog.NewJSONHandler(c.ErrOrStderr(), nil)
			}
			log := slog.New(h)
			ctx := logctx.With(c.Context(), log)
			if opts.Registry.Target == "" {
				return errors.New("--registry HOST:PORT is required: imported images are pushed there")
			}
			var err error
			if opts.Registry.Password, err = readSecret(regPassFile, "WUTONG_REGISTRY_PASSWORD"); err != nil {
				return err
			}
			if opts.AdminPassword, err = readSecret(adminPassFile, "WUTONG_ADMIN_PASSWORD"); err != nil {
				return err
			}
			for _, f := range keyFiles {
				k, err := bundle.LoadPublicKey(f)
				if err != nil {
					return err
				}
				opts.TrustedKeys = append(opts.TrustedKeys, k)
			}
			if exportKey != "" {
				k, err := bundle.LoadPrivateKey(exportKey)
				if err != nil {
					return err
				}
				opts.ExportKey = ed25519.PrivateKey(k)
			}
			opts.MaxUploadBytes = maxUpload << 20
			if tlsCert != "" {
				cert, err := tls.LoadX509KeyPair(tlsCert, tlsKey)
				if err != nil {
					return fmt.Errorf("load TLS certificate: %w", err)
				}
				opts.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
			} else if err := plainHTTPAllowed(listen, insecureHTTP); err != nil {
				return err
			}
			if tlsCert == "" && insecureHTTP {
				log.Warn("INSECURE: serving plain HTTP (--insecure-http): passwords and session cookies cross the network in clear text")
			}
			cfg, err := clusterConfig(kubeconfig)
			if err != nil {
				return err
			}
			if cfg != nil {
				opts.Deploy.Clusters = []deploy.Cluster{{Name: clusterName, Config: cfg}}
			} else {
				log.Warn("no cluster: apps can be imported but not installed (give --kubeconfig, or run inside the cluster)")
			}
			srv, err := server.New(ctx, opts)
			if err != nil {
				return err
			}
			defer srv.Close()
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("listen: %w", err)
			}
			log.Info("serving", "address", ln.Addr().String(), "tls", tlsCert != "", "version", version, "registry", opts.Registry.Target)
			return srv.Serve(ctx, ln)
		},
	}
	f := c.Flags()
	f.StringVar(&opts.DataDir, "data-dir", "/var/lib/wutong", "database, import staging and the generated admin password")
	f.StringVar(&listen, "listen", ":8080", "address to listen on")
	f.StringVar(&opts.StoreDSN, "store", "", "store: empty for SQLite in the data dir, sqlite:PATH, or postgres://USER@HOST/DB (password via PGPASSWORD)")
	f.StringVar(&opts.Registry.Target, "registry", "", "cluster registry HOST:PORT that imported images are pushed to")
	f.StringVar(&opts.Registry.Username, "registry-user", "", "registry user (password from --registry-password-file or $WUTONG_REGISTRY_PASSWORD)")
	f.StringVar(&regPassFile, "registry-password-file", "", "file holding the registry password")
	f.StringVar(&opts.Registry.CACert, "registry-ca", "", "PEM CA certificate of the registry")
	f.BoolVar(&opts.Registry.InsecureHTTP, "registry-insecure-http", false, "talk plain HTTP to the registry (tests only)")
	f.StringVar(&opts.TrustDir, "trusted-keys", bundle.DefaultTrustDir, "directory of trusted package signer public keys")
	f.StringSliceVar(&keyFiles, "key", nil, "trusted package signer public key file (repeatable; replaces --trusted-keys)")
	f.BoolVar(&opts.InsecureSkipVerify, "insecure-skip-verify", false, "accept unsigned packages and unknown signers (integrity is still checked)")
	f.Int64Var(&maxUpload, "max-upload", 64<<10, "largest package accepted, in MiB")
	f.StringVar(&opts.AdminUser, "admin-user", "admin", "name of the first admin, made when the store has no users")
	f.StringVar(&adminPassFile, "admin-password-file", "", "file holding the first admin's password (else $WUTONG_ADMIN_PASSWORD, else generated into DATA-DIR/admin-password)")
	f.StringVar(&exportKey, "export-sign-key", "", "private key that signs exported packages")
	f.StringVar(&tlsCert, "tls-cert", "", "serve HTTPS with this certificate")
	f.StringVar(&tlsKey, "tls-key", "", "the TLS certificate's key")
	f.BoolVar(&insecureHTTP, "insecure-http", false, "serve plain HTTP on a non-loopback address (passwords and cookies in clear text; behind a TLS proxy only)")
	f.StringSliceVar(&opts.AllowedOrigins, "allowed-origin", nil, "further origin (https://host:port) whose pages may send logged-in writes, e.g. a TLS proxy in front (repeatable)")
	f.IntVar(&opts.MaxImports, "max-imports", 4, "imports that may run at once; more are answered 429")
	f.StringVar(&logFormat, "log-format", "text", "log format: text or json")
	f.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig of the cluster apps are installed on (default: the in-cluster service account when running in a pod)")
	f.StringVar(&clusterName, "cluster-name", deploy.LocalCluster, "name the cluster is recorded under")
	f.DurationVar(&opts.Deploy.ComponentTimeout, "component-timeout", deploy.DefaultComponentTimeout, "how long a component may take to become ready before its revision fails (and an upgrade is rolled back)")
	f.StringVar(&opts.Deploy.IngressClass, "ingress-class", deploy.DefaultIngressClass, "ingress class that serves apps' external http ports")
	f.StringVar(&opts.Deploy.Domain, "app-domain", "", "base domain of external http ports that name none: COMPONENT-INSTALL.NAMESPACE.DOMAIN (empty: path-only routes)")
	return c
}
