//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wutong-paas/wutong-offline/installer/engine"
	"github.com/wutong-paas/wutong-offline/installer/labtest"
)

func TestMain(m *testing.M) { os.Exit(labtest.Main(m)) }

// k8sVersion is the Kubernetes the bundle is built from.
const k8sVersion = "v1.37.2"

// kubeadmTimeout is generous: the VMs are emulated (TCG) when KVM is missing, on a machine with 2 cores.
const kubeadmTimeout = "30m"

func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(dir)
}

// run runs a command from the repository root, failing the test with its output when it fails.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = repoRoot(t)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out.String())
	}
	return out.String()
}

type timing struct {
	phase string
	d     time.Duration
}

// runTimes is one install run's phase durations, from the journal.
type runTimes struct {
	run    string
	phases []timing
}

// phaseTimes reads each run's phase durations from the journal, in run order.
func phaseTimes(t *testing.T, workdir string) []runTimes {
	recs, err := engine.ReadJournal(workdir)
	if err != nil {
		t.Fatal(err)
	}
	started := map[string]time.Time{}
	var out []runTimes
	for _, r := range recs {
		switch r.Kind {
		case engine.KindRunStarted:
			out = append(out, runTimes{run: r.Run})
		case engine.KindPhaseStarted:
			started[r.Run+"/"+r.Phase] = r.Time
		case engine.KindPhaseDone, engine.KindPhaseFailed:
			if s, ok := started[r.Run+"/"+r.Phase]; ok && len(out) > 0 && out[len(out)-1].run == r.Run {
				out[len(out)-1].phases = append(out[len(out)-1].phases, timing{r.Phase, r.Time.Sub(s)})
			}
		}
	}
	return out
}

func TestClusterInstall(t *testing.T) {
	tmp := t.TempDir()
	t0 := time.Now()

	// 1. The from-source bundle (Kubernetes, etcd, CoreDNS, containerd, crictl, flannel, CNI plugins, local-path;
	// cached under /var/cache/wutong-test), plus the platform image.
	run(t, "scripts/k8s/build.sh", "--version", k8sVersion, "--arch", "amd64")
	out := "/var/cache/wutong-test/k8s-" + k8sVersion + "-r1"
	wtctl := filepath.Join(tmp, "wtctl")
	run(t, "go", "build", "-o", wtctl, "./cmd/wtctl")
	agents := labtest.BuildAgent(t)
	run(t, wtctl, "bundle", "keygen", "--private", filepath.Join(tmp, "release.key"), "--public", filepath.Join(tmp, "release.pub"))
	archive := buildBundle(t, out, tmp, filepath.Join(tmp, "release.key"))
	tBundle := time.Since(t0)

	// 2. One control plane (with the registry) and one worker.
	t1 := time.Now()
	// This machine has 2 cores and no KVM: the worker gets 1 vCPU so that the emulated control plane gets more.
	l := labtest.UpVMs(t, labtest.VMOptions{ID: "e2e", Subnet: 62, N: 2, CPUList: []int{2, 1}, MemoryMiB: 4096, Disk: "20G"})
	cp, w := l.Hosts[0], l.Hosts[1]
	tBoot := time.Since(t1)
	spec := fmt.Sprintf(`apiVersion: wutong.io/v1alpha1
kind: Cluster
metadata: {name: e2e}
spec:
  ssh: {privateKey: %s}
  kubernetes:
    serviceCIDR: 10.96.0.0/16
  bundle: %s
  hosts:
    - {name: cp1, address: %s, roles: [control-plane, registry]}
    - {name: w1, address: %s, roles: [worker]}
`, l.Key, archive, cp.IP, w.IP)
	clusterYAML := filepath.Join(tmp, "cluster.yaml")
	if err := os.WriteFile(clusterYAML, []byte(spec), 0o600); err != nil {
		t.Fatal(err)
	}
	workdir := filepath.Join(tmp, ".wutong", "e2e")
	install := func(ctx context.Context) *exec.Cmd {
		cmd := exec.CommandContext(ctx, wtctl, "cluster", "install", "-f", clusterYAML, "--yes", "--key", filepath.Join(tmp, "release.pub"),
			"--known-hosts", l.KnownHosts, "--agent-dir", agents, "--kubeadm-timeout", kubeadmTimeout)
		cmd.Dir = tmp
		return cmd
	}

	// 3. The install, killed once mid-way: while kubeadm init runs on the control plane.
	t2 := time.Now()
	var log1 bytes.Buffer
	first := install(t.Context())
	first.Stdout, first.Stderr = &log1, &log1
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	deadline := time.Now().Add(60 * time.Minute)
	for time.Now().Before(deadline) && !killed {
		time.Sleep(2 * time.Second)
		recs, _ := engine.ReadJournal(workdir)
		for _, r := range recs {
			if r.Kind == engine.KindStepStarted && r.Step == "kubeadm-init" && time.Since(r.Time) > 20*time.Second {
				_ = first.Process.Signal(syscall.SIGKILL)
				killed = true
				break
			}
			if r.Kind == engine.KindRunFinished {
				t.Fatalf("the first run finished (%s) before it could be cut:\n%s", r.Reason, log1.String())
			}
		}
	}
	_ = first.Wait()
	if !killed {
		t.Fatalf("kubeadm init never started:\n%s", log1.String())
	}
	t.Logf("first run killed during kubeadm init after %s", time.Since(t2).Round(time.Second))

	// The re-run resets what the killed kubeadm init left on cp1 and completes.
	t3 := time.Now()
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Minute)
	defer cancel()
	second := install(ctx)
	var log2 bytes.Buffer
	second.Stdout, second.Stderr = &log2, &log2
	if err := second.Run(); err != nil {
		t.Fatalf("the re-run failed: %v\n%s", err, log2.String())
	}
	tResume := time.Since(t3)
	t.Logf("re-run:\n%s", log2.String())
	if !strings.Contains(log2.String(), "Kubernetes "+k8sVersion) {
		t.Errorf("the summary lacks the version:\n%s", log2.String())
	}

	// 4. Checked on the nodes with kubectl, independently of the installer's own client.
	kubectl := "kubectl --kubeconfig /etc/kubernetes/admin.conf "
	var nodes struct {
		Items []struct {
			Metadata struct{ Name string }
			Status   struct {
				Conditions []struct{ Type, Status string }
				NodeInfo   struct{ KubeletVersion string }
			}
		}
	}
	if err := json.Unmarshal([]byte(l.SSH(t, cp, kubectl+"get nodes -o json")), &nodes); err != nil {
		t.Fatal(err)
	}
	ready := map[string]bool{}
	for _, n := range nodes.Items {
		for _, c := range n.Status.Conditions {
			if c.Type == "Ready" && c.Status == "True" && n.Status.NodeInfo.KubeletVersion == k8sVersion {
				ready[n.Metadata.Name] = true
			}
		}
	}
	if !ready["cp1"] || !ready["w1"] || len(nodes.Items) != 2 {
		t.Fatalf("nodes Ready at %s: %v\n%s", k8sVersion, ready, l.SSH(t, cp, kubectl+"get nodes -o wide"))
	}
	if st, err := os.Stat(filepath.Join(workdir, "kubeconfig")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("workdir kubeconfig: %v, %v (want mode 0600)", st, err)
	}

	// A pod on the worker whose image is pulled from the local registry: the preloaded copy is removed first, and
	// the pull policy is Always.
	image := "registry.wutong.local:5443/registry.k8s.io/pause:" + pauseTag(t, out)
	l.SSH(t, w, "ctr -n k8s.io images rm "+image+" >/dev/null 2>&1; true")
	pod := fmt.Sprintf(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"from-registry","namespace":"default"},
"spec":{"nodeName":"w1","containers":[{"name":"c","image":%q,"imagePullPolicy":"Always"}]}}`, image)
	l.SSH(t, cp, "echo '"+pod+"' | "+kubectl+"apply -f -")
	l.SSH(t, cp, kubectl+"wait --for=condition=Ready pod/from-registry --timeout=10m")
	events := l.SSH(t, cp, kubectl+"get events --field-selector involvedObject.name=from-registry -o jsonpath='{.items[*].message}'")
	if !strings.Contains(events, "Successfully pulled image") || !strings.Contains(events, image) {
		t.Errorf("the pod's image was not pulled from the local registry; events: %s", events)
	}
	if got := l.SSH(t, cp, kubectl+"get pod from-registry -o jsonpath='{.spec.nodeName} {.status.phase}'"); got != "w1 Running" {
		t.Errorf("pod: %q, want w1 Running", got)
	}
	// System pods run: DNS, the pod network and the storage provisioner.
	for _, q := range []string{"-n kube-system rollout status deploy/coredns", "-n kube-flannel rollout status ds/kube-flannel-ds",
		"-n local-path-storage rollout status deploy/local-path-provisioner"} {
		l.SSH(t, cp, kubectl+q+" --timeout=5m")
	}
	if sc := l.SSH(t, cp, kubectl+"get storageclass local-path -o jsonpath='{.metadata.annotations.storageclass\\.kubernetes\\.io/is-default-class}'"); sc != "true" {
		t.Errorf("local-path default class annotation = %q", sc)
	}

	// The platform answers, and takes in a package through its API.
	checkPlatform(t, l, cp, log2.String(), workdir, filepath.Join(tmp, "release.key"))

	// A third run changes nothing.
	third := install(ctx)
	if b, err := third.CombinedOutput(); err != nil {
		t.Fatalf("the third run failed: %v\n%s", err, b)
	}

	// 5. Reset leaves the nodes clean.
	t4 := time.Now()
	run(t, wtctl, "cluster", "reset", "-f", clusterYAML, "--yes", "--known-hosts", l.KnownHosts)
	tReset := time.Since(t4)
	for _, h := range l.Hosts {
		left := l.SSH(t, h, `for p in kubelet containerd containerd-shim kube-apiserver etcd flanneld wtctl; do pgrep -x $p; done; `+
			`ls -d /etc/kubernetes /var/lib/kubelet /var/lib/etcd /var/lib/containerd /etc/cni /opt/cni /opt/wutong /var/lib/wutong /etc/wutong /usr/local/bin/kubelet 2>/dev/null; `+
			`ip -o link show cni0 2>/dev/null; ip -o link show flannel.1 2>/dev/null; ss -Hltn 'sport = :6443 or sport = :10250 or sport = :5443 or sport = :2379'; `+
			`grep -c wutong-offline /etc/hosts; true`)
		if strings.TrimSpace(left) != "0" {
			t.Errorf("%s after reset still has:\n%s", h.Name, left)
		}
	}

	// Timing.
	var b strings.Builder
	fmt.Fprintf(&b, "\n%-28s %10s\n", "e2e step", "seconds")
	for _, r := range []timing{{"build the bundle", tBundle}, {"boot 2 VMs", tBoot}, {"install, killed run + re-run", time.Since(t2) - time.Since(t3) + tResume},
		{"reset", tReset}} {
		fmt.Fprintf(&b, "%-28s %10.0f\n", r.phase, r.d.Seconds())
	}
	for i, rt := range phaseTimes(t, workdir) {
		fmt.Fprintf(&b, "\nrun %d (%s)\n", i+1, rt.run)
		for _, p := range rt.phases {
			fmt.Fprintf(&b, "  %-26s %10.1f\n", p.phase, p.d.Seconds())
		}
	}
	t.Log(b.String())
	if f := os.Getenv("E2E_TIMING"); f != "" {
		_ = os.WriteFile(f, []byte(b.String()), 0o644)
	}
}

// pauseTag reads the pause image's tag from the build's image list.
func pauseTag(t *testing.T, out string) string {
	b, err := os.ReadFile(filepath.Join(out, "images.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Fields(string(b)) {
		if strings.Contains(l, "/pause:") {
			return l[strings.LastIndex(l, ":")+1:]
		}
	}
	t.Fatalf("no pause image in %s/images.txt", out)
	return ""
}
