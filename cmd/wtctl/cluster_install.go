package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/wutong-paas/wutong-offline/bundle"
	"github.com/wutong-paas/wutong-offline/installer/cluster"
	"github.com/wutong-paas/wutong-offline/installer/engine"
	"github.com/wutong-paas/wutong-offline/installer/kubeadm"
	"github.com/wutong-paas/wutong-offline/installer/pipeline"
	"github.com/wutong-paas/wutong-offline/installer/preflight"
	"github.com/wutong-paas/wutong-offline/internal/i18n"
	"github.com/wutong-paas/wutong-offline/internal/progress"
)

func init() { clusterCmds = append(clusterCmds, newClusterInstallCmd) }

// installFlags are the flags of install and add-node.
type installFlags struct {
	file, bundlePath, agentDir string
	dryRun, yes                bool
	parallel                   int
	kubeadmTimeout             time.Duration
	ignorePreflight            []string
	t                          trustFlags
	hk                         hostKeyFlags
}

func (f *installFlags) register(c *cobra.Command) {
	c.Flags().StringVarP(&f.file, "file", "f", "cluster.yaml", "cluster.yaml")
	c.Flags().StringVar(&f.bundlePath, "bundle", "", "bundle archive (or any of its parts). Default: spec.bundle")
	c.Flags().StringVar(&f.agentDir, "agent-dir", "", "directory holding wtctl-linux-ARCH for the hosts' arches. Default: beside wtctl, then ./dist")
	c.Flags().BoolVar(&f.dryRun, "dry-run", false, "print the exact per-host plan; change nothing on any host")
	c.Flags().BoolVarP(&f.yes, "yes", "y", false, "do not ask for confirmation")
	c.Flags().IntVar(&f.parallel, "parallel", 10, "hosts worked on at once")
	c.Flags().DurationVar(&f.kubeadmTimeout, "kubeadm-timeout", 0, "kubeadm's timeouts (control-plane and kubelet health, API calls, discovery, TLS bootstrap); default: kubeadm's own. Raise it for slow (emulated) machines")
	c.Flags().StringSliceVar(&f.ignorePreflight, "ignore-preflight-errors", nil, "kubeadm preflight checks to ignore on every node (kubeadm's names)")
	f.t.register(c)
	f.hk.register(c)
}

// confirm asks before changing hosts, unless --yes or --dry-run.
func confirm(c *cobra.Command, yes bool, question string) error {
	if yes {
		return nil
	}
	if !progress.IsTerminal(c.InOrStdin()) {
		return &usageError{fmt.Errorf("%s: pass --yes to confirm, or --dry-run to see the plan", strings.TrimSuffix(question, "?"))}
	}
	fmt.Fprintf(c.ErrOrStderr(), "%s [y/N] ", question)
	answer, _ := bufio.NewReader(c.InOrStdin()).ReadString('\n')
	if a := strings.TrimSpace(strings.ToLower(answer)); a != "y" && a != "yes" {
		return fmt.Errorf("not confirmed; nothing was changed")
	}
	return nil
}

func newClusterInstallCmd() *cobra.Command {
	var f installFlags
	c := &cobra.Command{
		Use:   "install -f cluster.yaml",
		Short: "Install the cluster: prepare the nodes, start the registry and containerd, bootstrap Kubernetes",
		Long: `Install verifies and extracts the bundle into the workdir, then runs the phases on every host, in parallel
under a limit: connect, facts, preflight, distribute the payload, node prep, registry, container runtime, image
preload, kubelet, kubeadm init on the first control plane, cluster access (the admin kubeconfig is saved in the
workdir, 0600), kubeadm join of the other nodes, the pod network, all nodes Ready, and the storage class.
Every change on a node goes through one gate: --dry-run prints the exact per-host plan and changes nothing. Each
step leaves a marker on the node; a re-run skips what is done and still verified, redoes what changed and continues
from what failed (a node whose kubeadm run failed is reset first, that node only). A host that fails is named with
its phase, error and what to do; the others carry on. The journal and one log per host are in the workdir. Ctrl-C
stops cleanly; run it again to resume.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			cl, err := cluster.Load(f.file)
			if err != nil {
				return err
			}
			if !f.dryRun {
				if err := confirm(c, f.yes, fmt.Sprintf("Install on %d host(s) of cluster %s?", len(cl.Spec.Hosts), cl.Metadata.Name)); err != nil {
					return err
				}
			}
			return runInstall(c, &f, cl, nil)
		},
	}
	f.register(c)
	return c
}

// signerKey is the trusted key that signed the bundle: the platform trusts the same release key for app packages.
// None when the bundle was accepted without a trusted signature.
func signerKey(r *bundle.Reader, t *trustFlags) []ed25519.PublicKey {
	if !r.Trusted {
		return nil
	}
	opts, err := t.options()
	if err != nil {
		return nil
	}
	keys := opts.Keys
	if len(keys) == 0 {
		if keys, err = bundle.LoadTrustDir(bundle.DefaultTrustDir); err != nil {
			return nil
		}
	}
	for _, k := range keys {
		if bundle.Fingerprint(k) == r.SignerKeyID {
			return []ed25519.PublicKey{k}
		}
	}
	return nil
}

// runInstall runs the install pipeline, on only those hosts when only is set (add-node), and prints the summary.
func runInstall(c *cobra.Command, f *installFlags, cl *cluster.Cluster, only []string) error {
	bundlePath := f.bundlePath
	if bundlePath == "" {
		bundlePath = cl.BundlePath()
	}
	if bundlePath == "" {
		return &usageError{fmt.Errorf("no bundle: set spec.bundle in %s or pass --bundle", f.file)}
	}
	stderr := c.ErrOrStderr()
	// The bundle is verified while it is extracted; a second run finds it in place.
	r, _, bar, err := openArchive(c, bundlePath, &f.t, "verify and extract")
	if err != nil {
		return err
	}
	dir := filepath.Join(cl.WorkdirPath(), "bundle")
	res, err := bundle.Extract(c.Context(), r, dir)
	r.Close()
	if bar != nil {
		bar.Done()
	}
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(c.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	targets := pipeline.Targets(cl, f.hk.policy(cl))
	defer pipeline.Close(targets)
	in := &pipeline.Install{Cluster: cl, BundleDir: res.Dir, Manifest: r.Manifest, Workdir: cl.WorkdirPath(),
		Forward: pipeline.ForwardThrough(targets), Only: only, IgnorePreflightErrors: f.ignorePreflight,
		PlatformKeys: signerKey(r, &f.t),
		Agent: func(arch string) (string, error) {
			if f.agentDir != "" {
				return preflight.LocalAgent(arch, f.agentDir)
			}
			return preflight.LocalAgent(arch, "dist")
		}}
	if t := f.kubeadmTimeout; t > 0 {
		in.Timeouts = kubeadm.Timeouts{ControlPlaneComponentHealthCheck: t, KubeletHealthCheck: t, KubernetesAPICall: t,
			Discovery: t, TLSBootstrap: t, EtcdAPICall: t}
		in.ReadyTimeout = max(t, 20*time.Minute)
	}
	render := engine.NewTextRenderer(stderr, progress.IsTerminal(stderr))
	e, err := engine.New(targets, engine.Options{Workdir: cl.WorkdirPath(), DryRun: f.dryRun, Parallel: f.parallel,
		Lang: i18n.FromEnv(), Events: render.Handle})
	if err != nil {
		return err
	}
	sum, err := e.Run(ctx, in.Phases())
	if f.dryRun && sum != nil && sum.Plan != nil {
		fmt.Fprint(c.OutOrStdout(), sum.Plan.String())
	}
	if err != nil || f.dryRun {
		return err
	}
	qctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	s, err := in.ClusterSummary(qctx)
	if err != nil {
		return fmt.Errorf("read the cluster's summary: %w", err)
	}
	if s != nil {
		var pa *pipeline.PlatformAccess
		if s.PlatformURL != "" {
			a := in.PlatformAccess()
			pa = &a
		}
		printInstallSummary(c.OutOrStdout(), s, pa)
	}
	return nil
}

// printInstallSummary prints the nodes, the version, the kubeconfig and what to do next; pa is how to reach the
// platform, nil when it was not installed.
func printInstallSummary(w io.Writer, s *pipeline.Summary, pa *pipeline.PlatformAccess) {
	zh := i18n.FromEnv() == i18n.ZH
	fmt.Fprintf(w, "\nKubernetes %s\n", s.Version)
	printNodes(w, s.Nodes)
	if pa != nil {
		printPlatformAccess(w, *pa, zh)
	}
	if s.Kubeconfig != "" {
		if zh {
			fmt.Fprintf(w, "\nkubeconfig（0600）：%s\n下一步：\n  export KUBECONFIG=%s\n  kubectl get pods -A\n  wtctl cluster status -f cluster.yaml\n", s.Kubeconfig, s.Kubeconfig)
		} else {
			fmt.Fprintf(w, "\nkubeconfig (0600): %s\nNext:\n  export KUBECONFIG=%s\n  kubectl get pods -A\n  wtctl cluster status -f cluster.yaml\n", s.Kubeconfig, s.Kubeconfig)
		}
	}
}

// printPlatformAccess prints the platform's URL, the CA file to trust (HTTPS), the login command and how to read
// the admin password.
func printPlatformAccess(w io.Writer, pa pipeline.PlatformAccess, zh bool) {
	switch {
	case zh && pa.HTTPS:
		fmt.Fprintf(w, "\n梧桐平台：%s\n它以 HTTPS 提供服务，证书由集群 CA 签发；请在浏览器与客户端中信任本机上的 CA 文件：\n  %s\n", pa.URL, pa.CAFile)
	case zh:
		fmt.Fprintf(w, "\n梧桐平台：%s\n注意：它以明文 HTTP 提供服务（spec.platform.insecureHTTP），密码与会话令牌在网络上不加密\n", pa.URL)
	case pa.HTTPS:
		fmt.Fprintf(w, "\nWutong platform: %s\nIt serves HTTPS with a certificate from the cluster CA; trust this CA file (on this machine) in browsers and clients:\n  %s\n", pa.URL, pa.CAFile)
	default:
		fmt.Fprintf(w, "\nWutong platform: %s\nNote: it serves plain HTTP (spec.platform.insecureHTTP): passwords and session tokens cross the network unencrypted\n", pa.URL)
	}
	if zh {
		fmt.Fprintf(w, "以 admin 登录：\n  %s\n管理员 admin 的密码：\n  %s\n", pa.Login, pa.PasswordCommand)
	} else {
		fmt.Fprintf(w, "Log in as admin:\n  %s\nThe password of user admin:\n  %s\n", pa.Login, pa.PasswordCommand)
	}
}
