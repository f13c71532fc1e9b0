// Package kubetest starts a Kubernetes control plane built from source (etcd, kube-apiserver,
// kube-controller-manager and kube-scheduler, by scripts/k8s/controlplane.sh), with kwok (sigs.k8s.io/kwok) for
// fake nodes and pod lifecycles, for the platform's tests and benchmarks.
//
// Everything listens on 127.0.0.1 on free ports, and every process writes its output to a log file in the control
// plane's directory. Without the binaries a test skips and says to run scripts/k8s/controlplane.sh, unless
// WUTONG_LAB_REQUIRED=1 (as in CI), where it fails; WUTONG_LAB=off skips on purpose (make cross-test).
package kubetest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/yaml"
)

// Environment variables.
const (
	EnvK8sBin   = "WUTONG_K8S_BIN"      // directory with etcd, kube-apiserver, kube-controller-manager, kube-scheduler
	EnvKwok     = "WUTONG_KWOK"         // the kwok binary; its stages are in stage/ next to it
	EnvRequired = "WUTONG_LAB_REQUIRED" // "1": missing binaries fail the test instead of skipping it
	EnvLab      = "WUTONG_LAB"          // "off": skip on purpose (make cross-test)

	// KwokVersion is the kwok that scripts/k8s/controlplane.sh builds.
	KwokVersion = "v0.8.0"
	// K8sVersion is the Kubernetes that scripts/k8s/controlplane.sh builds.
	K8sVersion = "v1.37.2"

	// NodeAnnotation marks the nodes kwok manages (kwok runs with --manage-nodes-with-annotation-selector).
	NodeAnnotation = "kwok.x-k8s.io/node"
)

// DefaultK8sBin and DefaultKwok are where scripts/k8s/controlplane.sh puts the binaries for this machine.
var (
	DefaultK8sBin = "/var/cache/wutong-test/k8s-" + K8sVersion + "-r1/" + runtime.GOARCH + "/bin"
	DefaultKwok   = "/var/cache/wutong-test/kwok-" + KwokVersion + "/kwok"
)

// Node is a fake node run by kwok.
type Node struct {
	Name string
	Arch string // amd64, arm64, loong64
}

// Options configure Start.
type Options struct {
	Nodes []Node // default: kwok-amd64-1 (amd64) and kwok-arm64-1 (arm64)
	// NeverReady is a label selector "key=value": pods with that label become Running but never Ready (a kwok
	// stage). Empty: none.
	NeverReady string
	// Volumes is the number of pre-made PersistentVolumes (hostPath under Dir, 10Gi, ReadWriteOnce and
	// ReadWriteMany, no storage class, reclaim Retain), so that PVCs without a class bind. Default 0.
	Volumes int
}

// DefaultNodes are the nodes Start makes when Options.Nodes is empty.
var DefaultNodes = []Node{{Name: "kwok-amd64-1", Arch: "amd64"}, {Name: "kwok-arm64-1", Arch: "arm64"}}

// Paths are the binaries a control plane runs.
type Paths struct {
	Etcd, APIServer, ControllerManager, Scheduler string
	Kubectl                                       string
	Kwok                                          string
	Stages                                        string // kwok's stage YAMLs: Stages/{node/fast,node/heartbeat,pod/fast}/*.yaml
}

// stageDirs are the kwok stages the control plane loads, under Paths.Stages.
var stageDirs = []string{"node/fast", "node/heartbeat", "pod/fast"}

const buildHint = "run scripts/k8s/controlplane.sh (as root; 5-10 minutes on a cold cache, instant on a warm one)"

// Binaries finds the binaries: $WUTONG_K8S_BIN (default DefaultK8sBin) holds etcd, kube-apiserver,
// kube-controller-manager and kube-scheduler, and kubectl there or in ../files; $WUTONG_KWOK (default DefaultKwok)
// is kwok, with its stages in stage/ next to it. The error names what is missing and how to build it.
func Binaries() (Paths, error) {
	bin := os.Getenv(EnvK8sBin)
	if bin == "" {
		bin = DefaultK8sBin
	}
	kwok := os.Getenv(EnvKwok)
	if kwok == "" {
		kwok = DefaultKwok
	}
	p := Paths{
		Etcd:              filepath.Join(bin, "etcd"),
		APIServer:         filepath.Join(bin, "kube-apiserver"),
		ControllerManager: filepath.Join(bin, "kube-controller-manager"),
		Scheduler:         filepath.Join(bin, "kube-scheduler"),
		Kubectl:           filepath.Join(bin, "kubectl"),
		Kwok:              kwok,
		Stages:            filepath.Join(filepath.Dir(kwok), "stage"),
	}
	if !executable(p.Kubectl) {
		p.Kubectl = filepath.Join(filepath.Dir(bin), "files", "kubectl") // build.sh's layout
	}
	var missing []string
	for _, f := range []string{p.Etcd, p.APIServer, p.ControllerManager, p.Scheduler, p.Kubectl, p.Kwok} {
		if !executable(f) {
			missing = append(missing, f)
		}
	}
	for _, d := range stageDirs {
		if m, _ := filepath.Glob(filepath.Join(p.Stages, d, "*.yaml")); len(m) == 0 {
			missing = append(missing, filepath.Join(p.Stages, d, "*.yaml"))
		}
	}
	if len(missing) > 0 {
		return p, fmt.Errorf("kubetest: missing %s ($%s=%s, $%s=%s): %s", strings.Join(missing, ", "),
			EnvK8sBin, bin, EnvKwok, kwok, buildHint)
	}
	return p, nil
}

func executable(f string) bool {
	st, err := os.Stat(f)
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
}

// ControlPlane is a running control plane.
type ControlPlane struct {
	Config     *rest.Config // cluster-admin
	Kubeconfig string       // path of a kubeconfig file (0600) for Config
	Dir        string
	Kubectl    string // path of the from-source kubectl

	procs []*proc
	etcd  string // etcd's data dir (on a tmpfs if there is one)
}

// Start starts etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok on loopback with free ports,
// waits until the nodes are Ready, and stops everything (and removes its files) in tb.Cleanup. When a binary is
// missing it skips with a message saying to run scripts/k8s/controlplane.sh, unless WUTONG_LAB_REQUIRED=1 (as in
// CI), where it fails.
func Start(tb testing.TB, opts Options) *ControlPlane {
	tb.Helper()
	if os.Getenv(EnvLab) == "off" {
		tb.Skip("kubetest: lab tests are off (WUTONG_LAB=off, as in make cross-test)")
	}
	p, err := Binaries()
	if err != nil {
		if os.Getenv(EnvRequired) == "1" {
			tb.Fatalf("%v (%s=1 makes this required)", err, EnvRequired)
		}
		tb.Skip(err.Error())
	}
	if len(opts.Nodes) == 0 {
		opts.Nodes = DefaultNodes
	}
	if err := checkOptions(opts); err != nil {
		tb.Fatal(err)
	}
	begin := time.Now()
	var c *ControlPlane
	for attempt := 1; ; attempt++ {
		c, err = start(p, opts)
		// A free port can be taken between net.Listen's close and the process's bind: try again, on others.
		if err == nil || c == nil || attempt == 3 || !strings.Contains(c.Logs(), "address already in use") {
			break
		}
		tb.Logf("kubetest: a port was taken, starting again: %v", err)
		c.stop()
	}
	if c != nil {
		tb.Cleanup(func() {
			if tb.Failed() {
				tb.Logf("kubetest: logs of the control plane in %s:\n%s", c.Dir, c.Logs())
			}
			c.stop()
		})
	}
	if err != nil {
		tb.Fatalf("kubetest: %v", err) // the cleanup logs the tails of the logs
	}
	tb.Logf("kubetest: control plane with %d nodes ready in %v (%s)", len(opts.Nodes), time.Since(begin).Round(time.Millisecond), c.Dir)
	return c
}

func checkOptions(o Options) error {
	seen := map[string]bool{}
	for _, n := range o.Nodes {
		switch n.Arch {
		case "amd64", "arm64", "loong64":
		default:
			return fmt.Errorf("kubetest: node %q: arch %q is not amd64, arm64 or loong64", n.Name, n.Arch)
		}
		if n.Name == "" || seen[n.Name] {
			return fmt.Errorf("kubetest: node names must be unique and not empty: %q", n.Name)
		}
		seen[n.Name] = true
	}
	if o.NeverReady != "" {
		if k, v, ok := strings.Cut(o.NeverReady, "="); !ok || k == "" || v == "" {
			return fmt.Errorf("kubetest: NeverReady %q is not key=value", o.NeverReady)
		}
	}
	if o.Volumes < 0 {
		return fmt.Errorf("kubetest: Volumes %d < 0", o.Volumes)
	}
	return nil
}

// Client returns a clientset for Config.
func (c *ControlPlane) Client(tb testing.TB) kubernetes.Interface {
	tb.Helper()
	cs, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		tb.Fatalf("kubetest: client: %v", err)
	}
	return cs
}

// Logs returns the tails of each process's log, for failing tests.
func (c *ControlPlane) Logs() string {
	var b strings.Builder
	for _, p := range c.procs {
		fmt.Fprintf(&b, "--- %s (%s)", p.name, p.log)
		select {
		case <-p.done:
			fmt.Fprintf(&b, ", exited: %v", p.err)
		default:
		}
		b.WriteString(" ---\n")
		b.WriteString(tail(p.log, 40, 8<<10))
	}
	return b.String()
}

// tail returns the last n lines (at most limit bytes) of a file.
func tail(file string, n, limit int) string {
	f, err := os.Open(file)
	if err != nil {
		return err.Error() + "\n"
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err.Error() + "\n"
	}
	off := max(st.Size()-int64(limit), 0)
	buf := make([]byte, st.Size()-off)
	if _, err := f.ReadAt(buf, off); err != nil {
		return err.Error() + "\n"
	}
	lines := strings.SplitAfter(string(buf), "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	if off > 0 && len(lines) > 0 {
		lines = lines[1:] // a partial line
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	s := strings.Join(lines, "")
	if s != "" && !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	return s
}

// proc is a process of the control plane.
type proc struct {
	name string
	log  string
	cmd  *exec.Cmd
	done chan struct{} // closed when it exited; err is then set
	err  error
}

func (c *ControlPlane) run(name string, env []string, bin string, args ...string) error {
	log := filepath.Join(c.Dir, name+".log")
	f, err := os.OpenFile(log, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	cmd := exec.Command(bin, args...)
	cmd.Dir = c.Dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	fmt.Fprintf(f, "# %s %s\n", bin, strings.Join(args, " "))
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, log: log, cmd: cmd, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	c.procs = append(c.procs, p)
	return nil
}

// exited returns an error if a process has exited.
func (c *ControlPlane) exited() error {
	for _, p := range c.procs {
		select {
		case <-p.done:
			return fmt.Errorf("%s exited: %v (log: %s)", p.name, p.err, p.log)
		default:
		}
	}
	return nil
}

// stop stops the processes, last started first (SIGTERM, then SIGKILL after 3 s), and removes the files.
func (c *ControlPlane) stop() {
	for i := len(c.procs) - 1; i >= 0; i-- {
		p := c.procs[i]
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(3 * time.Second):
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL) // anything left in its group
	}
	if c.etcd != "" {
		os.RemoveAll(c.etcd)
	}
	os.RemoveAll(c.Dir)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func token() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// start brings the control plane up. It returns the ControlPlane as soon as it has a directory, so that the caller
// can stop it whatever happens.
func start(p Paths, o Options) (*ControlPlane, error) {
	dir, err := os.MkdirTemp("", "kubetest-")
	if err != nil {
		return nil, err
	}
	c := &ControlPlane{Dir: dir, Kubectl: p.Kubectl}
	// etcd on a tmpfs: fsyncs there are free.
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		if d, err := os.MkdirTemp("/dev/shm", "kubetest-etcd-"); err == nil {
			c.etcd = d
		}
	}
	if c.etcd == "" {
		c.etcd = filepath.Join(dir, "etcd")
	}
	ports := make([]int, 3)
	for i := range ports {
		if ports[i], err = freePort(); err != nil {
			return c, err
		}
	}
	etcdPort, peerPort, apiPort := ports[0], ports[1], ports[2]

	// Credentials: static tokens, a service-account key pair.
	admin, kcm, sched, kwok := token(), token(), token(), token()
	// The controller manager is in system:masters and its controllers share its credentials: with
	// --use-service-account-credentials it would spend seconds making a token for each controller.
	tokens := fmt.Sprintf("%s,admin,admin,system:masters\n%s,system:kube-controller-manager,system:kube-controller-manager,system:masters\n"+
		"%s,system:kube-scheduler,system:kube-scheduler\n%s,kwok,kwok,system:masters\n", admin, kcm, sched, kwok)
	if err := os.WriteFile(filepath.Join(dir, "tokens.csv"), []byte(tokens), 0o600); err != nil {
		return c, err
	}
	if err := writeServiceAccountKey(dir); err != nil {
		return c, err
	}

	etcdURL := "http://127.0.0.1:" + strconv.Itoa(etcdPort)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(peerPort)
	if err := c.run("etcd", nil, p.Etcd,
		"--name=kubetest", "--data-dir="+c.etcd,
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=kubetest="+peerURL, "--initial-cluster-state=new",
		"--unsafe-no-fsync=true", "--log-level=warn"); err != nil {
		return c, err
	}
	certDir := filepath.Join(dir, "apiserver-certs")
	if err := c.run("kube-apiserver", nil, p.APIServer,
		"--etcd-servers="+etcdURL,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", "--secure-port="+strconv.Itoa(apiPort),
		"--cert-dir="+certDir,
		"--token-auth-file="+filepath.Join(dir, "tokens.csv"),
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+filepath.Join(dir, "sa.pub"),
		"--service-account-signing-key-file="+filepath.Join(dir, "sa.key"),
		"--service-cluster-ip-range=10.96.0.0/16",
		"--allow-privileged=true",
		// The kubernetes Service's endpoints would be 127.0.0.1, which endpoints may not hold.
		"--endpoint-reconciler-type=none",
		"--profiling=false"); err != nil {
		return c, err
	}

	// The serving certificate is self-signed in --cert-dir, the certificate then its CA's in apiserver.crt: wait
	// for both, trust them.
	host := "https://127.0.0.1:" + strconv.Itoa(apiPort)
	crt := filepath.Join(certDir, "apiserver.crt")
	var ca []byte
	if err := c.poll(30*time.Second, "kube-apiserver's serving certificate "+crt, func() (bool, error) {
		b, err := os.ReadFile(crt)
		if err != nil {
			return false, nil
		}
		n := 0
		for rest := b; ; n++ {
			var blk *pem.Block
			if blk, rest = pem.Decode(rest); blk == nil {
				break
			}
			if _, err := x509.ParseCertificate(blk.Bytes); err != nil {
				return false, nil
			}
		}
		ca = b
		return n >= 2, nil
	}); err != nil {
		return c, err
	}
	c.Config = &rest.Config{Host: host, BearerToken: admin, TLSClientConfig: rest.TLSClientConfig{CAData: ca},
		QPS: 100, Burst: 200}
	c.Kubeconfig = filepath.Join(dir, "admin.kubeconfig")
	kubeconfigs := map[string]string{c.Kubeconfig: admin, "kcm.kubeconfig": kcm, "scheduler.kubeconfig": sched, "kwok.kubeconfig": kwok}
	for file, tok := range kubeconfigs {
		if !filepath.IsAbs(file) {
			file = filepath.Join(dir, file)
		}
		if err := writeKubeconfig(file, host, ca, tok); err != nil {
			return c, err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "ca.crt"), ca, 0o644); err != nil {
		return c, err
	}
	// The controller manager and the scheduler wait for the API server themselves: starting them now overlaps
	// their start-up with the API server's.
	if err := c.run("kube-controller-manager", nil, p.ControllerManager,
		"--kubeconfig="+filepath.Join(dir, "kcm.kubeconfig"),
		"--authentication-kubeconfig="+filepath.Join(dir, "kcm.kubeconfig"),
		"--authorization-kubeconfig="+filepath.Join(dir, "kcm.kubeconfig"),
		"--bind-address=127.0.0.1", "--secure-port=0",
		"--leader-elect=false",
		"--service-account-private-key-file="+filepath.Join(dir, "sa.key"),
		"--root-ca-file="+filepath.Join(dir, "ca.crt"),
		"--controllers=*",
		"--profiling=false"); err != nil {
		return c, err
	}
	if err := c.run("kube-scheduler", nil, p.Scheduler,
		"--kubeconfig="+filepath.Join(dir, "scheduler.kubeconfig"),
		"--authentication-kubeconfig="+filepath.Join(dir, "scheduler.kubeconfig"),
		"--authorization-kubeconfig="+filepath.Join(dir, "scheduler.kubeconfig"),
		"--bind-address=127.0.0.1", "--secure-port=0",
		"--leader-elect=false",
		"--profiling=false"); err != nil {
		return c, err
	}
	cs, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		return c, err
	}
	ctx := context.Background()
	if err := c.poll(60*time.Second, "kube-apiserver /readyz", func() (bool, error) {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		_, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(rctx)
		return err == nil, nil
	}); err != nil {
		return c, err
	}

	stages, err := stagesConfig(p.Stages, o.NeverReady)
	if err != nil {
		return c, err
	}
	if err := os.WriteFile(filepath.Join(dir, "kwok-stages.yaml"), stages, 0o644); err != nil {
		return c, err
	}
	if err := c.run("kwok", []string{"HOME=" + dir}, p.Kwok, // HOME: no ~/.kwok/kwok.yaml of the machine's
		"--kubeconfig="+filepath.Join(dir, "kwok.kubeconfig"),
		"--config="+filepath.Join(dir, "kwok-stages.yaml"),
		"--manage-all-nodes=false",
		"--manage-nodes-with-annotation-selector="+NodeAnnotation+"=fake",
		"--node-ip=127.0.0.1"); err != nil {
		return c, err
	}

	for _, n := range o.Nodes {
		if _, err := cs.CoreV1().Nodes().Create(ctx, node(n), metav1.CreateOptions{}); err != nil {
			return c, fmt.Errorf("create node %s: %w", n.Name, err)
		}
	}
	for i := range o.Volumes {
		if err := c.createVolume(ctx, cs, i+1); err != nil {
			return c, err
		}
	}
	// Ready: the nodes are Ready, and the default namespace's ServiceAccount exists (pods need it).
	if err := c.poll(60*time.Second, "the nodes Ready and the default ServiceAccount", func() (bool, error) {
		for _, n := range o.Nodes {
			got, err := cs.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
			if err != nil || !nodeReady(got) {
				return false, nil
			}
		}
		_, err := cs.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil, err
	}); err != nil {
		return c, err
	}
	return c, nil
}

// poll calls f every 50 ms until it returns true, a process exits, or the timeout.
func (c *ControlPlane) poll(timeout time.Duration, what string, f func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := f()
		if err != nil {
			return fmt.Errorf("waiting for %s: %w", what, err)
		}
		if ok {
			return nil
		}
		if err := c.exited(); err != nil {
			return fmt.Errorf("waiting for %s: %w", what, err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("waiting for %s: timed out after %v", what, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func node(n Node) *corev1.Node {
	res := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("32"),
		corev1.ResourceMemory: resource.MustParse("256Gi"),
		corev1.ResourcePods:   resource.MustParse("110"),
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: n.Name,
			Labels: map[string]string{
				corev1.LabelArchStable: n.Arch,
				corev1.LabelOSStable:   "linux",
				corev1.LabelHostname:   n.Name,
				"type":                 "kwok",
			},
			Annotations: map[string]string{NodeAnnotation: "fake"},
		},
		Status: corev1.NodeStatus{
			Capacity:    res,
			Allocatable: res,
			NodeInfo:    corev1.NodeSystemInfo{Architecture: n.Arch, OperatingSystem: "linux"},
		},
	}
}

func (c *ControlPlane) createVolume(ctx context.Context, cs kubernetes.Interface, i int) error {
	path := filepath.Join(c.Dir, "volumes", fmt.Sprintf("pv-%d", i))
	if err := os.MkdirAll(path, 0o755); err != nil {
		return err
	}
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("kubetest-pv-%d", i), Labels: map[string]string{"type": "kwok"}},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("10Gi")},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce, corev1.ReadWriteMany},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: path}},
		},
	}
	if _, err := cs.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create volume %s: %w", pv.Name, err)
	}
	return nil
}

func writeKubeconfig(file, host string, ca []byte, tok string) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["kubetest"] = &clientcmdapi.Cluster{Server: host, CertificateAuthorityData: ca}
	cfg.AuthInfos["kubetest"] = &clientcmdapi.AuthInfo{Token: tok}
	cfg.Contexts["kubetest"] = &clientcmdapi.Context{Cluster: "kubetest", AuthInfo: "kubetest"}
	cfg.CurrentContext = "kubetest"
	b, err := clientcmd.Write(*cfg)
	if err != nil {
		return err
	}
	return os.WriteFile(file, b, 0o600)
}

// writeServiceAccountKey writes sa.key and sa.pub, an ECDSA P-256 key pair for service-account tokens.
func writeServiceAccountKey(dir string) error {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "sa.key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "sa.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o644)
}

// stagesConfig concatenates kwok's stages (node/fast, node/heartbeat, pod/fast) into one multi-document config.
// With neverReady "key=value", pod-ready skips pods with that label, and a pod-never-ready stage makes them Running
// with Ready=False instead.
func stagesConfig(dir, neverReady string) ([]byte, error) {
	var docs [][]byte
	for _, d := range stageDirs {
		files, err := filepath.Glob(filepath.Join(dir, d, "*.yaml"))
		if err != nil {
			return nil, err
		}
		if len(files) == 0 {
			return nil, fmt.Errorf("no kwok stages in %s: %s", filepath.Join(dir, d), buildHint)
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				return nil, err
			}
			if neverReady != "" && filepath.Base(f) == "pod-ready.yaml" {
				if b, err = excludeLabel(b, neverReady); err != nil {
					return nil, fmt.Errorf("%s: %w", f, err)
				}
			}
			docs = append(docs, bytes.TrimSpace(b))
		}
	}
	if neverReady != "" {
		k, v, _ := strings.Cut(neverReady, "=")
		st, err := json.Marshal(map[string]any{
			"apiVersion": "kwok.x-k8s.io/v1alpha1",
			"kind":       "Stage",
			"metadata":   map[string]any{"name": "pod-never-ready"},
			"spec": map[string]any{
				"resourceRef": map[string]any{"apiGroup": "v1", "kind": "Pod"},
				"selector": map[string]any{
					"matchLabels": map[string]string{k: v},
					"matchExpressions": []any{
						map[string]any{"key": ".metadata.deletionTimestamp", "operator": "DoesNotExist"},
						map[string]any{"key": ".status.phase", "operator": "In", "values": []string{"Pending"}},
					},
				},
				"next": map[string]any{"statusTemplate": neverReadyTemplate},
			},
		})
		if err != nil {
			return nil, err
		}
		y, err := yaml.JSONToYAML(st)
		if err != nil {
			return nil, err
		}
		docs = append(docs, bytes.TrimSpace(y))
	}
	return append(bytes.Join(docs, []byte("\n---\n")), '\n'), nil
}

// excludeLabel adds to a Stage's selector a requirement that the label key=value is not set.
func excludeLabel(stage []byte, label string) ([]byte, error) {
	k, v, _ := strings.Cut(label, "=")
	var s map[string]any
	if err := yaml.Unmarshal(stage, &s); err != nil {
		return nil, err
	}
	spec, _ := s["spec"].(map[string]any)
	if spec == nil {
		return nil, errors.New("no spec")
	}
	sel, _ := spec["selector"].(map[string]any)
	if sel == nil {
		sel = map[string]any{}
		spec["selector"] = sel
	}
	exprs, _ := sel["matchExpressions"].([]any)
	key, err := json.Marshal(k) // a jq string literal: JSON's quoting
	if err != nil {
		return nil, err
	}
	sel["matchExpressions"] = append(exprs, map[string]any{
		"key": ".metadata.labels[" + string(key) + "]", "operator": "NotIn", "values": []string{v},
	})
	return yaml.Marshal(s)
}

// neverReadyTemplate is pod-ready's status without readiness: the containers run, the pod is not Ready.
const neverReadyTemplate = `{{ $now := Now }}

conditions:
- lastTransitionTime: {{ $now | Quote }}
  status: "True"
  type: Initialized
- lastTransitionTime: {{ $now | Quote }}
  status: "False"
  reason: ContainersNotReady
  type: Ready
- lastTransitionTime: {{ $now | Quote }}
  status: "False"
  reason: ContainersNotReady
  type: ContainersReady

containerStatuses:
{{ range .spec.containers }}
- image: {{ .image | Quote }}
  name: {{ .name | Quote }}
  ready: false
  started: true
  restartCount: 0
  state:
    running:
      startedAt: {{ $now | Quote }}
{{ end }}

initContainerStatuses:
{{ range .spec.initContainers }}
- image: {{ .image | Quote }}
  name: {{ .name | Quote }}
  ready: true
  restartCount: 0
  state:
    terminated:
      exitCode: 0
      finishedAt: {{ $now | Quote }}
      reason: Completed
      startedAt: {{ $now | Quote }}
{{ end }}
{{ $hostIPs := NodeIPsWith .spec.nodeName }}
{{ with $hostIPs }}
hostIP: {{ index . 0 | Quote }}
hostIPs:
{{ range . }}
- ip: {{ . | Quote }}
{{ end }}
{{ end }}
{{ $podIPs := PodIPsWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) ( or .metadata.name "" ) ( or .metadata.namespace "" ) }}
{{ with $podIPs }}
podIP: {{ index . 0 | Quote }}
podIPs:
{{ range . }}
- ip: {{ . | Quote }}
{{ end }}
{{ end }}
phase: Running
startTime: {{ $now | Quote }}
`
