// Package preflight tells a field engineer exactly what is wrong with each server before anything is changed.
// Gather reaches every host over SSH, puts the node agent there and collects its facts; Check runs the rules over
// those facts and the cluster spec. Every finding has a severity, a message and a remediation, in zh-CN or en.
package preflight

import (
	"fmt"
	"time"

	"github.com/wutong-paas/wutong-offline/bundle"
	"github.com/wutong-paas/wutong-offline/installer/cluster"
	"github.com/wutong-paas/wutong-offline/installer/facts"
	"github.com/wutong-paas/wutong-offline/internal/i18n"
)

// Severity says whether a finding stops the install.
type Severity string

// Severities.
const (
	Error   Severity = "error"   // the install would fail: fix it first
	Warning Severity = "warning" // the install goes on; the installer handles it or it is worth knowing
)

// Finding is one problem on one host.
type Finding struct {
	Rule        string   `json:"rule"`
	Severity    Severity `json:"severity"`
	Message     string   `json:"message"`
	Remediation string   `json:"remediation"`
}

// Node is what Gather learned about one host.
type Node struct {
	Host  cluster.Host
	Facts *facts.Facts  // nil when the host could not be reached or the agent failed
	Skew  time.Duration // node clock minus jump-host clock
	Err   error         // why Facts is nil
}

// Payload is what the bundle will put on the nodes, for the arch and disk rules.
type Payload struct {
	Arches []string         // arches the bundle carries
	Files  map[string]int64 // arch → bytes of its files (the arch's own plus those for all arches)
	Images int64            // bytes of the OCI layout: an upper bound for any one arch's images
}

// PayloadOf reads the payload sizes from a bundle manifest.
func PayloadOf(m *bundle.Manifest) *Payload {
	p := &Payload{Arches: m.Arches, Files: map[string]int64{}}
	size := map[string]int64{}
	for _, e := range m.Entries {
		size[e.Path] = e.Size
		if len(e.Path) > 4 && e.Path[:4] == "oci/" {
			p.Images += e.Size
		}
	}
	for _, f := range m.Files {
		if f.Arch == "all" {
			for _, a := range m.Arches {
				p.Files[a] += size[f.Path]
			}
			continue
		}
		p.Files[f.Arch] += size[f.Path]
	}
	return p
}

// Input is everything the rules look at.
type Input struct {
	Cluster *cluster.Cluster
	Nodes   []Node
	// Payload is nil when no bundle was given; the arch and disk rules then only say so.
	Payload *Payload
	Lang    i18n.Lang
	// Limits default to DefaultLimits.
	Limits *Limits
	// Owned lists, per host name, the ports held by services an earlier install started (the registry), which a
	// re-run must not count as taken.
	Owned map[string][]int
	// Ingress says the installer deploys the ingress controller, whose hostPorts (cluster.IngressPorts) take the
	// traffic to ports 80 and 443 of every node: a program listening there would silently lose it.
	Ingress bool
	// OwnedRuntimes lists, per host name, the runtimes (containerd) an earlier install put there, which a re-run
	// must not count as foreign.
	OwnedRuntimes map[string][]string
}

// Limits are the thresholds of the rules.
type Limits struct {
	MaxSkew   time.Duration // largest clock difference from the jump host
	DiskSlack float64       // free space needed per byte of payload
	DiskExtra int64         // plus this, per file system
	CPUs      map[cluster.Role]int
	Memory    map[cluster.Role]uint64
}

// DefaultLimits: kubeadm's own minimums for control planes (2 CPUs, 1700 MiB), 30 s of clock skew, and 1.2× the
// payload plus 2 GiB of disk.
func DefaultLimits() *Limits {
	return &Limits{
		MaxSkew:   30 * time.Second,
		DiskSlack: 1.2,
		DiskExtra: 2 << 30,
		CPUs:      map[cluster.Role]int{cluster.RoleControlPlane: 2, cluster.RoleWorker: 1, cluster.RoleRegistry: 1},
		Memory:    map[cluster.Role]uint64{cluster.RoleControlPlane: 1700 << 20, cluster.RoleWorker: 1 << 30, cluster.RoleRegistry: 512 << 20},
	}
}

// HostReport is the outcome for one host.
type HostReport struct {
	Name     string    `json:"name"`
	Address  string    `json:"address"`
	OS       string    `json:"os,omitempty"`
	Arch     string    `json:"arch,omitempty"`
	Kernel   string    `json:"kernel,omitempty"`
	Findings []Finding `json:"findings"`
}

// Report is the outcome of Check.
type Report struct {
	Hosts []HostReport `json:"hosts"`
	// CgroupV1 lists hosts on cgroup v1: the kubeadm phase must set failCgroupV1: false for them.
	CgroupV1 []string `json:"cgroupV1,omitempty"`
	// Notes are cluster-wide remarks, such as a missing bundle.
	Notes []string `json:"notes,omitempty"`
}

// Count returns the number of findings of severity s.
func (r *Report) Count(s Severity) int {
	n := 0
	for _, h := range r.Hosts {
		for _, f := range h.Findings {
			if f.Severity == s {
				n++
			}
		}
	}
	return n
}

// FailedError is returned by callers when a report has errors.
type FailedError struct{ Errors, Warnings, Hosts int }

func (e *FailedError) Error() string {
	return fmt.Sprintf("preflight found %d error(s) and %d warning(s) on %d host(s)", e.Errors, e.Warnings, e.Hosts)
}
