package pipeline_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	ggcrremote "github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/wutong-paas/wutong-offline/bundle"
	"github.com/wutong-paas/wutong-offline/bundle/bundletest"
	"github.com/wutong-paas/wutong-offline/images"
	"github.com/wutong-paas/wutong-offline/images/imagestest"
	"github.com/wutong-paas/wutong-offline/installer/cluster"
	"github.com/wutong-paas/wutong-offline/installer/engine"
	"github.com/wutong-paas/wutong-offline/installer/labtest"
	"github.com/wutong-paas/wutong-offline/installer/pipeline"
	"github.com/wutong-paas/wutong-offline/installer/preflight"
	"github.com/wutong-paas/wutong-offline/installer/remote"
)

func TestMain(m *testing.M) { os.Exit(labtest.Main(m)) }

// extractedBundle is an extracted bundle for amd64 and arm64: a 24 MiB binary (so that a run can be killed
// mid-upload), a manifest, and a layout with one two-arch image.
func extractedBundle(t *testing.T) (string, *bundle.Manifest) {
	dir := t.TempDir()
	l, err := images.CreateLayout(filepath.Join(dir, "oci"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(t.Context(), "registry.k8s.io/pause:3.10", imagestest.RandomIndex(t, []string{"amd64", "arm64"}, 1, 1, 4096), nil); err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 24<<20)
	rand.Read(big)
	big[100] = 'A' // the repair test writes 'X' here: make sure that is a change
	socat := []byte("#!/bin/sh\necho static socat from the bundle\n")
	ctrd, err := os.ReadFile(labtest.Containerd(t))
	if err != nil {
		t.Fatal(err)
	}
	for p, c := range map[string][]byte{"files/amd64/kubelet": big, "files/arm64/kubelet": []byte("arm"), "manifests/flannel.yaml": []byte("kind: Namespace\n"),
		"files/amd64/socat": socat, "files/amd64/containerd": ctrd, "files/amd64/cni-plugins.tgz": cniPlugins(t)} {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755)
		os.WriteFile(filepath.Join(dir, p), c, 0o755)
	}
	imgs, err := l.Images()
	if err != nil {
		t.Fatal(err)
	}
	m := &bundle.Manifest{Arches: []string{"amd64", "arm64"}, Images: []bundle.Image{{Name: "registry.k8s.io/pause:3.10", Arches: map[string]string{}}}}
	for arch, h := range imgs[0].Platforms {
		m.Images[0].Arches[arch] = h.String()
	}
	m.Entries = bundletest.Entries(t, dir, 0o755)
	return dir, m
}

type setup struct {
	lab     *labtest.Lab
	cluster *cluster.Cluster
	in      *pipeline.Install
	keys    remote.HostKeys
}

func newSetup(t *testing.T) *setup {
	l := labtest.Up(t, labtest.Options{ID: "pl", Subnet: 7, N: 2, Personas: []string{"kylin-v10-sp2", "openeuler2203"}})
	// The control plane logs in as root with the lab key; the worker as a sudo user with a password.
	yaml := fmt.Sprintf(`apiVersion: wutong.io/v1alpha1
kind: Cluster
metadata: {name: pl}
spec:
  kubernetes: {serviceCIDR: 10.96.0.0/16}
  hosts:
    - {name: cp1, address: %s, privateKey: %s, roles: [control-plane, registry]}
    - {name: w1, address: %s, user: %s, password: {env: WT_LAB_USER_PASSWORD}, sudo: true, roles: [worker]}
`, l.Hosts[0].IP, l.Key, l.Hosts[1].IP, l.User)
	t.Setenv("WT_LAB_USER_PASSWORD", l.UserPassword)
	p := filepath.Join(t.TempDir(), "cluster.yaml")
	os.WriteFile(p, []byte(yaml), 0o600)
	c, err := cluster.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	dir, m := extractedBundle(t)
	agentDir := labtest.BuildAgent(t)
	in := &pipeline.Install{Cluster: c, BundleDir: dir, Manifest: m,
		Agent: func(arch string) (string, error) { return preflight.LocalAgent(arch, agentDir) }}
	return &setup{lab: l, cluster: c, in: in, keys: remote.HostKeys{Files: []string{l.KnownHosts}}}
}

// run runs the pipeline once; cancelAt, when it returns true for an event, cancels the run there.
func (s *setup) run(t *testing.T, dryRun bool, cancelAt func(engine.Event) bool, tune ...func(*remote.Config)) (*engine.Summary, error) {
	t.Helper()
	targets := pipeline.Targets(s.cluster, s.keys, tune...)
	defer pipeline.Close(targets)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	e, err := engine.New(targets, engine.Options{Workdir: s.cluster.WorkdirPath(), DryRun: dryRun, Events: func(ev engine.Event) {
		if cancelAt != nil && cancelAt(ev) {
			cancel()
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	return e.Run(ctx, s.in.Phases())
}

// state is what the install touches on a host, as OpenSSH (not our code) sees it.
func (s *setup) state(t *testing.T, h labtest.Host) string {
	return s.lab.SSH(t, h, "cat /etc/hosts /proc/sys/net/ipv4/ip_forward; ls -R /opt/wutong /var/lib/wutong 2>&1; find /opt/wutong -type f -exec sha256sum {} + 2>/dev/null | sort")
}

func TestLabInstall(t *testing.T) {
	s := newSetup(t)
	hosts := s.lab.Hosts
	before := []string{s.state(t, hosts[0]), s.state(t, hosts[1])}

	// A dry run on fresh hosts plans everything and changes nothing.
	sum, err := s.run(t, true, nil)
	if err != nil {
		t.Fatalf("dry run: %v", err)
	}
	if sum.Plan == nil || sum.Changes == 0 || !strings.Contains(sum.Plan.String(), "/opt/wutong/files/amd64/kubelet") {
		t.Fatalf("dry run plan:\n%v", sum.Plan)
	}
	for i, h := range hosts {
		if got := s.state(t, h); got != before[i] {
			t.Fatalf("the dry run changed %s:\nbefore:\n%s\nafter:\n%s", h.Name, before[i], got)
		}
	}

	// Killed at each phase boundary and mid-upload; every re-run goes on from where the last one stopped.
	kills := []struct {
		name string
		at   func(engine.Event) bool
	}{
		{"facts", func(ev engine.Event) bool { p, ok := ev.(engine.PhaseStarted); return ok && p.Phase == "facts" }},
		{"preflight", func(ev engine.Event) bool { p, ok := ev.(engine.PhaseStarted); return ok && p.Phase == "preflight" }},
		{"mid-upload", func(ev engine.Event) bool {
			p, ok := ev.(engine.Progress)
			return ok && strings.HasSuffix(p.Label, "kubelet") && p.Done > 4<<20 && p.Done < p.Total
		}},
		{"node prep", func(ev engine.Event) bool { p, ok := ev.(engine.PhaseStarted); return ok && p.Phase == "node prep" }},
		{"registry", func(ev engine.Event) bool { p, ok := ev.(engine.PhaseStarted); return ok && p.Phase == "registry" }},
		{"container runtime", func(ev engine.Event) bool {
			p, ok := ev.(engine.PhaseStarted)
			return ok && p.Phase == "container runtime"
		}},
		{"image preload", func(ev engine.Event) bool { p, ok := ev.(engine.PhaseStarted); return ok && p.Phase == "image preload" }},
	}
	for _, k := range kills {
		_, err := s.run(t, false, k.at)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("killed at %s: err = %v, want context.Canceled", k.name, err)
		}
	}
	recs, err := engine.ReadJournal(s.cluster.WorkdirPath())
	if err != nil || engine.Unfinished(recs) == nil {
		t.Fatalf("the journal must say what is unfinished: %v", err)
	}
	sum, err = s.run(t, false, nil)
	if err != nil {
		t.Fatalf("resumed run: %v", err)
	}
	// distribute finished in an earlier run for neither host (it was killed mid-upload), node prep for none.
	if sum.Changes == 0 {
		t.Fatal("the resumed run had nothing left to do: the kills did not stop anything")
	}

	// containerd from the bundle runs under systemd with our configuration, as its own config dump shows.
	pids := map[string]string{}
	for _, h := range hosts {
		dump := s.lab.SSH(t, h, "systemctl is-active containerd; /usr/local/bin/containerd config dump")
		for _, want := range []string{"active\n", "SystemdCgroup = true", "sandbox = 'registry.k8s.io/pause:3.10'", "config_path = '/etc/containerd/certs.d'"} {
			if !strings.Contains(dump, want) {
				t.Errorf("%s: containerd: %q missing from its config dump", h.Name, want)
			}
		}
		if cni := s.lab.SSH(t, h, "ls /opt/cni/bin; stat -c %U /opt/cni/bin/bridge"); cni != "bridge\nloopback\nroot" {
			t.Errorf("%s: CNI plugins: %q", h.Name, cni)
		}
		if hostsTOML := s.lab.SSH(t, h, "cat /etc/containerd/certs.d/registry.k8s.io/hosts.toml"); !strings.Contains(hostsTOML, "registry.wutong.local:5443") {
			t.Errorf("%s: certs.d for registry.k8s.io:\n%s", h.Name, hostsTOML)
		}
		pids[h.Name] = s.lab.SSH(t, h, "systemctl show -p MainPID --value containerd wutong-registry")
		// Preloaded: containerd itself (through our agent's Go client) lists the image in kubelet's namespace (the
		// CRI plugin adds its own sha256:CONFIG reference, as for any pulled image).
		if got := s.lab.SSH(t, h, "/opt/wutong/bin/wtctl node images list"); !slices.Contains(strings.Split(got, "\n"), "registry.k8s.io/pause:3.10") {
			t.Errorf("%s: images in containerd's k8s.io namespace: %q", h.Name, got)
		}
	}

	// Done: a second run changes nothing, and restarts nothing.
	sum, err = s.run(t, false, nil)
	if err != nil || sum.Changes != 0 {
		t.Fatalf("second run: %d change(s), %v", sum.Changes, err)
	}
	for _, h := range hosts {
		if got := s.lab.SSH(t, h, "systemctl show -p MainPID --value containerd wutong-registry"); got != pids[h.Name] {
			t.Errorf("%s: a service was restarted by a run that changed nothing: pids %q, then %q", h.Name, pids[h.Name], got)
		}
	}
	for _, h := range hosts {
		st := s.state(t, h)
		if got := s.lab.SSH(t, h, "socat"); got != "static socat from the bundle" {
			t.Errorf("%s: the bundle's socat is not on PATH: %q", h.Name, got)
		}
		for _, want := range []string{"# BEGIN wutong-offline", "registry.wutong.local", "\n1\n", "/opt/wutong/files/amd64/kubelet", "/opt/wutong/bin/wtctl"} {
			if !strings.Contains(st, want) {
				t.Errorf("%s: %q missing:\n%s", h.Name, want, st)
			}
		}
		if strings.Contains(st, "wtpart") {
			t.Errorf("%s: a partial upload was left behind:\n%s", h.Name, st)
		}
	}

	// The registry runs under systemd on cp1, seeded from the payload: pull the image's manifest over TLS with the
	// cluster CA and the generated login, as containerd will.
	work := s.cluster.WorkdirPath()
	caPEM, _ := os.ReadFile(filepath.Join(work, "pki", "ca.crt"))
	pass, _ := os.ReadFile(filepath.Join(work, "registry", "password"))
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	ref, err := name.ParseReference(hosts[0].IP + ":5443/registry.k8s.io/pause:3.10")
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	idx, err := ggcrremote.Index(ref, ggcrremote.WithTransport(tr), ggcrremote.WithAuth(&authn.Basic{Username: "admin", Password: strings.TrimSpace(string(pass))}))
	if err != nil {
		t.Fatalf("pull from the installed registry: %v", err)
	}
	if im, err := idx.IndexManifest(); err != nil || len(im.Manifests) != 2 {
		t.Fatalf("pause index from the registry: %v %v", im, err)
	}
	// Nodes pull without credentials; writing needs them.
	if _, err := ggcrremote.Index(ref, ggcrremote.WithTransport(tr)); err != nil {
		t.Fatalf("anonymous pull (as nodes do): %v", err)
	}
	anonTag, err := name.NewTag(hosts[0].IP + ":5443/registry.k8s.io/pause:anonymous")
	if err != nil {
		t.Fatal(err)
	}
	if err := ggcrremote.Tag(anonTag, idx, ggcrremote.WithTransport(tr)); err == nil {
		t.Fatal("the registry took an anonymous push")
	}

	// A damaged payload file is found and sent again; nothing else changes.
	s.lab.SSH(t, hosts[1], "printf X | dd of=/opt/wutong/files/amd64/kubelet bs=1 seek=100 conv=notrunc status=none")
	sum, err = s.run(t, false, nil)
	if err != nil || sum.Changes != 1 {
		t.Fatalf("repair run: %d change(s), %v; want exactly the damaged file re-sent", sum.Changes, err)
	}
	want, _ := os.ReadFile(filepath.Join(s.in.BundleDir, "files/amd64/kubelet"))
	sha := sha256.Sum256(want)
	if got := s.lab.SSH(t, hosts[1], "sha256sum /opt/wutong/files/amd64/kubelet | cut -d' ' -f1"); got != hex.EncodeToString(sha[:]) {
		t.Fatalf("repaired file sha256 %s", got)
	}
}

func TestLabInstallUnreachableHost(t *testing.T) {
	s := newSetup(t)
	// The worker's address is wrong: it fails in connect with a hint, and the control plane carries on to the end.
	s.cluster.Spec.Hosts[1].Address = "10.99.7.250"
	c, err := cluster.Parse("cluster.yaml", mustMarshal(t, s.cluster), cluster.ParseOptions{Dir: filepath.Dir(s.cluster.File())})
	if err != nil {
		t.Fatal(err)
	}
	s.cluster, s.in.Cluster = c, c
	sum, err := s.run(t, false, nil)
	workerFailedIn(t, sum, err, "connect")
}

func mustMarshal(t *testing.T, c *cluster.Cluster) []byte {
	t.Helper()
	b, err := cluster.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// cniPlugins is a CNI plugins release archive in miniature: ./bridge and ./loopback.
func cniPlugins(t *testing.T) []byte {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, name := range []string{"./bridge", "./loopback"} {
		body := "#!/bin/sh\necho " + name + "\n"
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(body)), Typeflag: tar.TypeReg, Uid: 1001, Gid: 1001})
		tw.Write([]byte(body))
	}
	tw.Close()
	gz.Close()
	return buf.Bytes()
}

// The command line end to end, on one fresh host, with a bundle that wtctl itself builds and signs.
func TestLabInstallCLI(t *testing.T) {
	l := labtest.Up(t, labtest.Options{ID: "pc", Subnet: 10, N: 1, Personas: []string{"uos20"}})
	h := l.Hosts[0]
	agentDir := labtest.BuildAgent(t)
	wtctl := filepath.Join(agentDir, "wtctl-linux-amd64")
	dir := t.TempDir()
	run := func(stdin string, args ...string) (string, string, int) {
		t.Helper()
		cmd := exec.Command(wtctl, args...)
		cmd.Stdin = strings.NewReader(stdin)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return stdout.String(), stderr.String(), code
	}
	must := func(args ...string) string {
		t.Helper()
		out, errOut, code := run("", args...)
		if code != 0 {
			t.Fatalf("wtctl %s: exit %d\n%s\n%s", strings.Join(args, " "), code, out, errOut)
		}
		return out + errOut
	}
	must("bundle", "keygen", "--private", filepath.Join(dir, "k.key"), "--public", filepath.Join(dir, "k.pub"))
	os.WriteFile(filepath.Join(dir, "tool"), []byte("#!/bin/sh\necho tool\n"), 0o755)
	os.WriteFile(filepath.Join(dir, "bundle.yaml"), []byte(`apiVersion: wutong.io/v1alpha1
kind: BundleSpec
name: cli
version: 0.0.1
arches: [amd64]
files:
  - {name: socat, arch: amd64, path: tool}
`), 0o644)
	must("bundle", "build", "-q", "-f", filepath.Join(dir, "bundle.yaml"), "-o", filepath.Join(dir, "out"), "--sign-key", filepath.Join(dir, "k.key"))
	os.WriteFile(filepath.Join(dir, "cluster.yaml"), []byte(fmt.Sprintf(`apiVersion: wutong.io/v1alpha1
kind: Cluster
metadata: {name: cli}
spec:
  kubernetes: {serviceCIDR: 10.96.0.0/16}
  bundle: out/cli-0.0.1.tar.zst
  hosts:
    - {name: solo, address: %s, privateKey: %s, roles: [control-plane, registry]}
`, h.IP, l.Key)), 0o600)
	base := []string{"cluster", "install", "-f", filepath.Join(dir, "cluster.yaml"), "--key", filepath.Join(dir, "k.pub"),
		"--agent-dir", agentDir, "--known-hosts", l.KnownHosts}
	before := s0(t, l, h)

	// Without --yes and without a terminal to ask on: refused as a usage error, nothing touched.
	if _, errOut, code := run("", base...); code != 2 || !strings.Contains(errOut, "--yes") {
		t.Fatalf("unconfirmed install: exit %d\n%s", code, errOut)
	}
	out := must(append(base, "--dry-run")...)
	if !strings.Contains(out, "host solo:") || !strings.Contains(out, "/opt/wutong/files/amd64/socat") {
		t.Fatalf("dry run printed no plan:\n%s", out)
	}
	if got := s0(t, l, h); got != before {
		t.Fatalf("the dry run changed the host:\n%s\n---\n%s", before, got)
	}
	must(append(base, "--yes")...)
	if got := l.SSH(t, h, "socat; systemctl is-active wutong-registry"); got != "tool\nactive" {
		t.Fatalf("after install: %q", got)
	}
	if out := must(append(base, "--yes")...); !strings.Contains(out, "nothing changed") {
		t.Fatalf("second install was not a no-op:\n%s", out)
	}
}

// s0 is what an install touches on h.
func s0(t *testing.T, l *labtest.Lab, h labtest.Host) string {
	return l.SSH(t, h, "cat /etc/hosts; ls -A /opt /usr/local/bin /etc/systemd/system; ls -A /var/lib/wutong 2>&1; true")
}

// A node whose link dies in the middle of the run: it fails in that phase with a hint, the other node goes on to
// the end, and once the link is back a re-run finishes it.
func TestLabInstallLinkLostMidway(t *testing.T) {
	s := newSetup(t)
	worker := s.lab.Hosts[1]
	route := []string{"-n", worker.NetNS, "route", "add", "blackhole", s.lab.JumpIP + "/32"}
	t.Cleanup(func() { exec.Command("ip", "-n", worker.NetNS, "route", "del", "blackhole", s.lab.JumpIP+"/32").Run() })
	quick := func(c *remote.Config) { c.KeepAlive, c.DialTimeout, c.Retries = 300*time.Millisecond, 2*time.Second, 1 }
	var cut bool
	sum, err := s.run(t, false, func(ev engine.Event) bool {
		if p, ok := ev.(engine.PhaseStarted); ok && p.Phase == "distribute" && !cut {
			cut = true
			if out, err := exec.Command("ip", route...).CombinedOutput(); err != nil {
				t.Errorf("cut the link: %v %s", err, out)
			}
		}
		return false
	}, quick)
	workerFailedIn(t, sum, err, "distribute")
	route[3] = "del"
	if out, err := exec.Command("ip", route...).CombinedOutput(); err != nil {
		t.Fatalf("restore the link: %v %s", err, out)
	}
	if _, err := s.run(t, false, nil); err != nil {
		t.Fatalf("re-run after the link came back: %v", err)
	}
}

// workerFailedIn checks a run's outcome: w1 failed in phase with a hint, and cp1 carried on to the end.
func workerFailedIn(t *testing.T, sum *engine.Summary, err error, phase string) {
	t.Helper()
	var hf *engine.HostsFailedError
	if !errors.As(err, &hf) {
		t.Fatalf("err = %v, want HostsFailedError", err)
	}
	for _, h := range sum.Hosts {
		switch h.Name {
		case "w1":
			if h.Status != engine.StatusFailed || h.Phase != phase || h.Hint == "" {
				t.Errorf("w1: %+v, want failed in %q with a hint", h, phase)
			}
		case "cp1":
			if h.Status != engine.StatusDone {
				t.Errorf("cp1 did not go on to the end: %+v", h)
			}
		}
	}
}
