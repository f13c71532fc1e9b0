package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/wutong-paas/wutong-offline/installer/cluster"
	"github.com/wutong-paas/wutong-offline/installer/engine"
	"github.com/wutong-paas/wutong-offline/installer/kube"
	"github.com/wutong-paas/wutong-offline/installer/kubeadm"
	"github.com/wutong-paas/wutong-offline/installer/remote"
)

// Files the installer keeps in the workdir (all 0600).
const (
	KubeconfigFile     = "kubeconfig"              // the admin kubeconfig
	joinTokenFile      = "kubeadm/join-token"      // the bootstrap token nodes join with
	certificateKeyFile = "kubeadm/certificate-key" // the key control-plane certificates are uploaded with
)

// initControlPlane runs kubeadm init on the first control plane. An init that never finished (killed, or failed)
// is reset on this node first; a control plane that was initialised is never reset: if its API server does not
// answer, the error says so.
func (in *Install) initControlPlane(ctx context.Context, n *engine.Node) error {
	o, err := in.kubeadmOptions()
	if err != nil {
		return err
	}
	node, err := in.kubeadmNode(n.Host())
	if err != nil {
		return err
	}
	key := ""
	if len(in.Cluster.ControlPlanes()) > 1 {
		if key, err = in.workdirSecret(certificateKeyFile, kubeadm.NewCertificateKey); err != nil {
			return err
		}
	}
	cfg, err := kubeadm.InitConfig(o, node, key)
	if err != nil {
		return err
	}
	for _, w := range o.Warnings() {
		n.Logf("warning: %s", w.EN)
	}
	if _, err := n.PutFile(ctx, initConfigPath, cfg, 0o600); err != nil {
		return err
	}
	if _, err := n.Query(ctx, remote.Cmd{Line: "test -s " + engine.MarkerDir + "/kubeadm-init", Sudo: true}); err == nil {
		// Initialised by an earlier run: make sure it still answers, and change nothing.
		if err := waitAPIServer(ctx, n, 5*time.Minute); err != nil {
			return engine.WithHint(fmt.Errorf("the control plane was initialised by an earlier run but its API server does not answer: %w", err),
				"see journalctl -u kubelet and crictl ps -a on "+n.Name()+"; wtctl cluster reset starts over",
				"请在 "+n.Name()+" 上查看 journalctl -u kubelet 与 crictl ps -a；wtctl cluster reset 可重新开始")
		}
		n.Logf("kubeadm init: done by an earlier run, API server answers")
		return nil
	}
	sum := sha256.Sum256(cfg)
	return n.Step(ctx, "kubeadm-init", hex.EncodeToString(sum[:]), func(ctx context.Context) error {
		if err := resetLeftovers(ctx, n); err != nil {
			return err
		}
		line := "kubeadm init --config " + initConfigPath
		if key != "" {
			line += " --upload-certs"
		}
		if _, err := n.Exec(ctx, "initialise the control plane (kubeadm init)", remote.Cmd{Line: line, Sudo: true,
			Timeout: 40 * time.Minute}); err != nil {
			return kubeadmFailed(ctx, n, "kubeadm init", err)
		}
		return nil
	})
}

// waitAPIServer waits until the node's API server answers /readyz, asked on the node with kubectl.
func waitAPIServer(ctx context.Context, n *engine.Node, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		_, err := n.Query(ctx, remote.Cmd{Line: "kubectl --kubeconfig " + adminConf + " get --raw=/readyz --request-timeout=10s",
			Sudo: true, Timeout: 20 * time.Second})
		if err == nil {
			return nil
		}
		last = err
		select {
		case <-ctx.Done():
			return last
		case <-time.After(3 * time.Second):
		}
	}
}

// accessPhase fetches the admin kubeconfig into the workdir, reaches the API server through the first control
// plane's SSH connection, and prepares what joining nodes need: a join token (renewed when the earlier one
// expired), the CA's hash and, for more control planes, freshly uploaded certificates.
type accessPhase struct{ in *Install }

func (accessPhase) Title() string { return "cluster access" }

func (p accessPhase) DryRun(ctx context.Context, env *engine.Env) error {
	n := env.Node(p.in.firstControlPlane().Name)
	n.Logf("dry run: would fetch %s into the workdir, make or renew a join token, and upload control-plane certificates when there are more control planes", adminConf)
	return nil
}

func (p accessPhase) Run(ctx context.Context, env *engine.Env) error {
	in := p.in
	first := in.firstControlPlane()
	n := env.Node(first.Name)
	if n == nil {
		return fmt.Errorf("the first control plane %s is not a target", first.Name)
	}
	if !slices.Contains(env.Nodes(), n) {
		return engine.WithHint(fmt.Errorf("the first control plane %s failed earlier in this run: the cluster cannot be reached through it", first.Name),
			"fix what failed on "+first.Name+" (see above), then run the install again",
			"请先解决 "+first.Name+" 上的问题（见上文），再重新运行安装")
	}
	res, err := n.Query(ctx, remote.Cmd{Line: "cat " + adminConf, Sudo: true})
	if err != nil {
		return fmt.Errorf("read %s on %s: %w", adminConf, first.Name, err)
	}
	conf := res.Stdout
	if in.Workdir != "" {
		if err := writeSecretFile(filepath.Join(in.Workdir, KubeconfigFile), conf); err != nil {
			return err
		}
	}
	var dial kube.Dialer
	if in.Forward != nil {
		dial = in.Forward(first.Name)
	}
	c, err := kube.New(conf, dial)
	if err != nil {
		return err
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	err = waitReady(rctx, c)
	cancel()
	if err != nil {
		return engine.WithHint(fmt.Errorf("reach the API server through %s: %w", first.Name, err),
			"see journalctl -u kubelet and crictl ps -a on "+first.Name, "请在 "+first.Name+" 上查看 journalctl -u kubelet 与 crictl ps -a")
	}
	ca, err := caFromKubeconfig(conf)
	if err != nil {
		return err
	}
	hash, err := kubeadm.CACertHash(ca)
	if err != nil {
		return err
	}
	j := kubeadm.Join{CACertHashes: []string{hash}}
	var old []byte
	tokenPath := ""
	if in.Workdir != "" {
		tokenPath = filepath.Join(in.Workdir, joinTokenFile)
		old, _ = os.ReadFile(tokenPath)
	}
	token, renewed, err := c.JoinToken(ctx, strings.TrimSpace(string(old)), in.now())
	if err != nil {
		return err
	}
	if renewed {
		n.Logf("made a join token valid for %s", kube.TokenTTL)
	}
	if renewed && tokenPath != "" {
		if err := writeSecretFile(tokenPath, []byte(token+"\n")); err != nil {
			return err
		}
	}
	j.Token = token
	if len(in.Cluster.ControlPlanes()) > 1 {
		if j.CertificateKey, err = in.workdirSecret(certificateKeyFile, kubeadm.NewCertificateKey); err != nil {
			return err
		}
		// Uploaded certificates expire after two hours: upload them again while a control plane still has to join.
		if in.controlPlanesToJoin(ctx, env) {
			if _, err := n.Exec(ctx, "upload the control-plane certificates for the joining control planes", remote.Cmd{Sudo: true,
				Line: "kubeadm init phase upload-certs --upload-certs --config " + initConfigPath, Timeout: 5 * time.Minute}); err != nil {
				return err
			}
		}
	}
	in.mu.Lock()
	in.kube, in.join = c, &j
	in.mu.Unlock()
	return nil
}

func waitReady(ctx context.Context, c *kube.Client) error {
	var last error
	for {
		if last = c.Ready(ctx); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return last
		case <-time.After(3 * time.Second):
		}
	}
}

// controlPlanesToJoin reports whether a control plane other than the first has not joined yet.
func (in *Install) controlPlanesToJoin(ctx context.Context, env *engine.Env) bool {
	for _, h := range in.Cluster.ControlPlanes()[1:] {
		n := env.Node(h.Name)
		if n == nil {
			continue
		}
		if _, err := n.Query(ctx, remote.Cmd{Line: "test -s " + engine.MarkerDir + "/kubeadm-join", Sudo: true}); err != nil {
			return true
		}
	}
	return false
}

// joinNode joins a control plane or worker with kubeadm join. A join that never finished is reset on this node
// first. The step's inputs leave the token out, so a renewed token does not join a node twice.
func (in *Install) joinNode(ctx context.Context, n *engine.Node) error {
	in.mu.Lock()
	j := in.join
	in.mu.Unlock()
	h := n.Host()
	controlPlane := h.HasRole(cluster.RoleControlPlane)
	if j == nil {
		if n.DryRun() {
			n.Logf("dry run: would join as a %s once the first control plane is up", map[bool]string{true: "control plane", false: "worker"}[controlPlane])
			return nil
		}
		return errors.New("no join token: the cluster access phase did not run")
	}
	o, err := in.kubeadmOptions()
	if err != nil {
		return err
	}
	node, err := in.kubeadmNode(h)
	if err != nil {
		return err
	}
	jj := *j
	jj.ControlPlane = controlPlane
	if !controlPlane {
		jj.CertificateKey = ""
	}
	cfg, err := kubeadm.JoinConfig(o, node, jj)
	if err != nil {
		return err
	}
	if _, err := n.PutFile(ctx, joinConfigPath, cfg, 0o600); err != nil { // 0600: the join config holds the token
		return err
	}
	inputs := struct {
		Name, Endpoint string
		ControlPlane   bool
	}{h.Name, o.ControlPlaneEndpoint, controlPlane}
	verify := func(ctx context.Context) error {
		if _, err := n.Query(ctx, remote.Cmd{Line: "test -s " + kubeletConf + " && systemctl is-active --quiet " + kubeletUnit, Sudo: true}); err != nil {
			return fmt.Errorf("kubelet is not running with %s", kubeletConf)
		}
		return nil
	}
	return n.Step(ctx, "kubeadm-join", inputs, func(ctx context.Context) error {
		if err := resetLeftovers(ctx, n); err != nil {
			return err
		}
		what := "join the cluster as a worker (kubeadm join)"
		if controlPlane {
			what = "join the cluster as a control plane (kubeadm join)"
		}
		if _, err := n.Exec(ctx, what, remote.Cmd{Line: "kubeadm join --config " + joinConfigPath, Sudo: true,
			Timeout: 40 * time.Minute}); err != nil {
			return kubeadmFailed(ctx, n, "kubeadm join", err)
		}
		return nil
	}, engine.Verify(verify))
}

// caFromKubeconfig returns the cluster CA of a kubeconfig's current context.
func caFromKubeconfig(conf []byte) ([]byte, error) {
	cfg, err := clientcmd.Load(conf)
	if err != nil {
		return nil, fmt.Errorf("read kubeconfig: %w", err)
	}
	ctx := cfg.Contexts[cfg.CurrentContext]
	if ctx == nil || cfg.Clusters[ctx.Cluster] == nil || len(cfg.Clusters[ctx.Cluster].CertificateAuthorityData) == 0 {
		return nil, errors.New("read kubeconfig: no cluster CA in its current context")
	}
	return cfg.Clusters[ctx.Cluster].CertificateAuthorityData, nil
}

// workdirSecret returns the secret kept in the workdir file rel, making it with mk the first time.
func (in *Install) workdirSecret(rel string, mk func() (string, error)) (string, error) {
	if in.Workdir == "" {
		return mk()
	}
	p := filepath.Join(in.Workdir, rel)
	if b, err := os.ReadFile(p); err == nil && strings.TrimSpace(string(b)) != "" {
		return strings.TrimSpace(string(b)), nil
	}
	s, err := mk()
	if err != nil {
		return "", err
	}
	return s, writeSecretFile(p, []byte(s+"\n"))
}

// writeSecretFile writes data to p with mode 0600, atomically.
func writeSecretFile(p string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	if err := os.Chmod(tmp, 0o600); err != nil { // an older tmp file may have had another mode
		return fmt.Errorf("write %s: %w", p, err)
	}
	if err := os.Rename(tmp, p); err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	return nil
}

func (in *Install) now() time.Time {
	if in.Now != nil {
		return in.Now()
	}
	return time.Now()
}
