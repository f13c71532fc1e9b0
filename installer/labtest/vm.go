package labtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The VM tier (scripts/vm): Debian 12 virtual machines under qemu, for tests that need a real kernel of their own
// (kubelet: cgroups, kernel modules, iptables). Each VM boots in about a minute under TCG (seconds with KVM); the
// image (scripts/vm/image.sh) takes a few minutes to build once. A VM lab is a Lab like any other: the same JSON,
// the same key and known_hosts handling, SSH and Main work unchanged.

// VMOptions for UpVMs.
type VMOptions struct {
	ID     string // lab id, 1-5 lower-case letters or digits; distinct per test package and from nspawn labs
	Subnet int    // K in 10.99.K.0/24; distinct per test package
	N      int    // VMs; default 1
	CPUs   int    // vCPUs per VM; default 2
	// CPUList, when set, gives each VM its own vCPUs in order (the last repeats), overriding CPUs: on a small
	// machine under emulation a worker with 1 vCPU leaves more to the control plane.
	CPUList   []int
	MemoryMiB int    // memory per VM; default 3072
	Disk      string // root disk size, such as 40G; default the image's (20G)
}

// VMScript is the path of scripts/vm/vm.
func VMScript() (string, error) {
	return repoPath("scripts", "vm", "vm")
}

// VMPrerequisites returns why VM labs cannot run here, or "". scripts/vm/deps.sh installs what is missing.
func VMPrerequisites() string {
	if os.Geteuid() != 0 {
		return "the VM lab needs root"
	}
	for _, c := range []string{"qemu-system-x86_64", "qemu-img", "mkfs.ext4", "debootstrap", "ssh-keygen", "ip", "openssl"} {
		if _, err := exec.LookPath(c); err != nil {
			return c + " is missing (run scripts/vm/deps.sh)"
		}
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		return "/dev/net/tun is missing: the VMs' taps need it"
	}
	return ""
}

// UpVMs returns the VM lab with o.ID, bringing it up fresh on first use in this test binary (building the image
// first when it is missing). Main takes it down, as it does nspawn labs. It skips or fails as Up does (WUTONG_LAB,
// WUTONG_LAB_REQUIRED).
func UpVMs(t testing.TB, o VMOptions) *Lab {
	t.Helper()
	if os.Getenv("WUTONG_LAB") == "off" {
		t.Skip("lab tests are off (WUTONG_LAB=off, as in make cross-test)")
	}
	if why := VMPrerequisites(); why != "" {
		skipOrFail(t, why)
	}
	script, err := VMScript()
	if err != nil {
		t.Fatal(err)
	}
	// Built here rather than inside `vm up`, so that a failed build says so.
	if out, err := exec.Command(filepath.Join(filepath.Dir(script), "image.sh")).CombinedOutput(); err != nil {
		t.Fatalf("vm image: %v\n%s", err, out)
	}
	args := []string{"up", strconv.Itoa(max(o.N, 1))}
	if len(o.CPUList) > 0 {
		var cs []string
		for _, c := range o.CPUList {
			cs = append(cs, strconv.Itoa(c))
		}
		args = append(args, "--cpus", strings.Join(cs, ","))
	} else if o.CPUs > 0 {
		args = append(args, "--cpus", strconv.Itoa(o.CPUs))
	}
	if o.MemoryMiB > 0 {
		args = append(args, "--mem", strconv.Itoa(o.MemoryMiB))
	}
	if o.Disk != "" {
		args = append(args, "--disk", o.Disk)
	}
	return bringUp(t, script, o.ID, o.Subnet, args)
}
