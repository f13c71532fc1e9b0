// Package labtest brings up lab hosts (scripts/lab: systemd-nspawn containers with real OpenSSH sshd, each in its
// own network namespace in 10.99.0.0/16) for integration tests, and takes them down afterwards.
//
// The lab needs root, debootstrap, systemd-nspawn and OpenSSH's client tools. Without them a test skips and says
// why, unless WUTONG_LAB_REQUIRED=1 (as in CI), where a missing prerequisite fails the test. WUTONG_LAB=off skips
// lab tests on purpose (make cross-test runs the unit tests under qemu-user).
package labtest

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// Lab is a running lab.
type Lab struct {
	ID           string `json:"lab"`
	StateDir     string `json:"stateDir"`
	JumpIP       string `json:"jumpIP"`
	Key          string `json:"key"`        // the lab's private key, authorised for root and User on every host
	KnownHosts   string `json:"knownHosts"` // every host's keys, as the lab recorded them at boot
	RootPassword string `json:"rootPassword"`
	User         string `json:"user"` // a sudo user that needs its password for sudo
	UserPassword string `json:"userPassword"`
	Hosts        []Host `json:"hosts"`

	script string // the script that brought it up (scripts/lab/lab or scripts/vm/vm), which Main takes it down with
}

// Host is one lab host.
type Host struct {
	Name      string `json:"name"`
	IP        string `json:"ip"`
	Persona   string `json:"persona"`
	NetNS     string `json:"netns"`
	Root      string `json:"root"` // its root file system as seen from the jump host
	PID       int    `json:"pid"`
	MachineID string `json:"machineID"`
	State     string `json:"state"`
}

// Options for Up.
type Options struct {
	ID       string   // lab id, 1-5 lower-case letters or digits; distinct per test package
	Subnet   int      // K in 10.99.K.0/24; distinct per test package
	N        int      // hosts; default 1
	Personas []string // given round-robin; default debian12
	Rate     string   // tc rate per host link, such as 1gbit; default unshaped
}

var (
	mu    sync.Mutex
	labs  = map[string]*Lab{}
	locks = map[string]*os.File{}
)

// lockDir holds one lock file per lab id.
const lockDir = "/run/wutong-lab-locks"

// Script is the path of scripts/lab/lab.
func Script() (string, error) {
	return repoPath("scripts", "lab", "lab")
}

// repoPath joins elem to the directory holding go.mod, found above the working directory.
func repoPath(elem ...string) (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(append([]string{dir}, elem...)...), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// Prerequisites returns why the lab cannot run here, or "".
func Prerequisites() string {
	if os.Geteuid() != 0 {
		return "the lab needs root"
	}
	for _, c := range []string{"debootstrap", "systemd-nspawn", "ssh-keygen", "ip", "chroot"} {
		if _, err := exec.LookPath(c); err != nil {
			return c + " is missing (apt-get install debootstrap systemd-container openssh-client iproute2)"
		}
	}
	return ""
}

func skipOrFail(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("WUTONG_LAB_REQUIRED") == "1" {
		t.Fatalf("lab required (WUTONG_LAB_REQUIRED=1) but unavailable: %s", why)
	}
	t.Skipf("lab unavailable: %s", why)
}

// Up returns the lab with o.ID, bringing it up fresh on first use in this test binary. Call Down from TestMain
// (see Main) to take every lab down.
func Up(t testing.TB, o Options) *Lab {
	t.Helper()
	if os.Getenv("WUTONG_LAB") == "off" {
		t.Skip("lab tests are off (WUTONG_LAB=off, as in make cross-test)")
	}
	if why := Prerequisites(); why != "" {
		skipOrFail(t, why)
	}
	script, err := Script()
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"up", strconv.Itoa(max(o.N, 1))}
	for _, p := range o.Personas {
		args = append(args, "--persona", p)
	}
	if o.Rate != "" {
		args = append(args, "--rate", o.Rate)
	}
	return bringUp(t, script, o.ID, o.Subnet, args)
}

// bringUp returns the lab with id, bringing it up fresh with `script up` on first use in this test binary.
func bringUp(t testing.TB, script, id string, subnet int, up []string) *Lab {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if l, ok := labs[id]; ok {
		return l
	}
	// Another test process (a second go test, a CI run) may be using this lab: wait for it rather than tear its
	// hosts down. The lock is held until Main takes the lab down.
	if locks[id] == nil { // a second flock from this process would wait for itself
		if err := os.MkdirAll(lockDir, 0o755); err != nil {
			t.Fatal(err)
		}
		lock, err := os.OpenFile(filepath.Join(lockDir, id+".lock"), os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
			t.Fatalf("lock lab %s: %v", id, err)
		}
		locks[id] = lock
	}
	common := []string{"--lab", id, "--subnet", strconv.Itoa(subnet)}
	// A lab left over from a killed run is dirty: start clean.
	if out, err := exec.Command(script, append([]string{"down"}, common...)...).CombinedOutput(); err != nil {
		t.Fatalf("lab down: %v\n%s", err, out)
	}
	if out, err := exec.Command(script, append(up, common...)...).CombinedOutput(); err != nil {
		_ = exec.Command(script, append([]string{"down"}, common...)...).Run()
		t.Fatalf("lab up: %v\n%s", err, out)
	}
	out, err := exec.Command(script, append([]string{"list", "--json"}, common...)...).Output()
	if err != nil {
		t.Fatalf("lab list: %v", err)
	}
	l := &Lab{script: script}
	if err := json.Unmarshal(out, l); err != nil {
		t.Fatalf("lab list: %v\n%s", err, out)
	}
	// Hosts in boot order: lab2 before lab10.
	slices.SortFunc(l.Hosts, func(a, b Host) int {
		return cmp.Compare(hostIndex(a.Name), hostIndex(b.Name))
	})
	labs[id] = l
	return l
}

// Main runs the tests and then takes down every lab they brought up. Use it in TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(labtest.Main(m)) }
func Main(m *testing.M) int {
	code := m.Run()
	mu.Lock()
	defer mu.Unlock()
	script, err := Script()
	if err != nil {
		return code
	}
	for id, l := range labs {
		if out, err := exec.Command(cmp.Or(l.script, script), "down", "--lab", id).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "lab down %s: %v\n%s", id, err, out)
			code = 1
		}
		delete(labs, id)
	}
	for id, f := range locks {
		f.Close() // releases the flock
		delete(locks, id)
	}
	return code
}

// Host returns the host called name.
func (l *Lab) Host(t testing.TB, name string) Host {
	t.Helper()
	for _, h := range l.Hosts {
		if h.Name == name {
			return h
		}
	}
	t.Fatalf("lab %s has no host %q", l.ID, name)
	return Host{}
}

// SSH runs cmd as root on host with OpenSSH's own client, independent of the code under test, and returns its
// stdout. It fails the test when cmd fails.
func (l *Lab) SSH(t testing.TB, h Host, cmd string) string {
	t.Helper()
	c := exec.Command("ssh", "-i", l.Key, "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=yes",
		"-o", "UserKnownHostsFile="+l.KnownHosts, "-o", "BatchMode=yes", "root@"+h.IP, cmd)
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	if err := c.Run(); err != nil {
		t.Fatalf("ssh %s %q: %v\n%s", h.Name, cmd, err, stderr.String())
	}
	return strings.TrimSpace(stdout.String())
}

func hostIndex(name string) int { // lab3, vm3 → 3
	n, _ := strconv.Atoi(strings.TrimLeft(name, "abcdefghijklmnopqrstuvwxyz"))
	return n
}

// BuildAgent builds the wtctl that the installer puts on lab hosts (linux/amd64, static) and returns the
// directory holding it as wtctl-linux-amd64.
func BuildAgent(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-o", filepath.Join(dir, "wtctl-linux-amd64"), "github.com/wutong-paas/wutong-offline/cmd/wtctl")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the node agent: %v\n%s", err, out)
	}
	return dir
}

// ContainerdVersion is the containerd the lab tests build from source.
const ContainerdVersion = "v2.4.2"

// Containerd returns a static linux/amd64 containerd built from source through the Go module proxy, cached under
// /var/cache/wutong-test keyed by version (about a minute to build when missing).
func Containerd(t testing.TB) string {
	t.Helper()
	dir := filepath.Join("/var/cache/wutong-test", "containerd-"+ContainerdVersion+"-amd64")
	bin := filepath.Join(dir, "containerd")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	mod := t.TempDir()
	env := append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64", "GOFLAGS=-mod=mod")
	for _, args := range [][]string{
		{"mod", "init", "containerdbuild"},
		{"get", "github.com/containerd/containerd/v2@" + ContainerdVersion},
		{"build", "-trimpath", "-tags", "no_btrfs no_devmapper no_zfs",
			"-ldflags", "-s -w -X github.com/containerd/containerd/v2/version.Version=" + ContainerdVersion,
			"-o", filepath.Join(mod, "containerd"), "github.com/containerd/containerd/v2/cmd/containerd"},
	} {
		cmd := exec.Command("go", args...)
		cmd.Dir, cmd.Env = mod, env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build containerd %s: go %s: %v\n%s", ContainerdVersion, strings.Join(args, " "), err, out)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// Into place atomically (built on /tmp, cached on /var), so that a killed build never leaves a half binary.
	if err := copyFile(filepath.Join(mod, "containerd"), bin+".tmp"); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(bin+".tmp", bin); err != nil {
		t.Fatal(err)
	}
	return bin
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
