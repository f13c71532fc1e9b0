package cluster

import (
	"cmp"
	"fmt"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml"

	"github.com/wutong-paas/wutong-offline/internal/yamlnode"
)

// kkFile is the part of a KubeKey config-sample.yaml (kubekey.kubesphere.io/v1alpha2, kind Cluster) that FromKubeKey
// reads. Everything else is reported as dropped. Numbers are read as strings: KubeKey files write ports both ways.
type kkFile struct {
	APIVersion string     `yaml:"apiVersion"`
	Kind       string     `yaml:"kind"`
	Metadata   kkMetadata `yaml:"metadata"`
	Spec       kkSpec     `yaml:"spec"`
}

type kkMetadata struct {
	Name string `yaml:"name"`
}

type kkSpec struct {
	Hosts                []kkHost            `yaml:"hosts"`
	RoleGroups           map[string][]string `yaml:"roleGroups"`
	ControlPlaneEndpoint kkEndpoint          `yaml:"controlPlaneEndpoint"`
	Kubernetes           kkKubernetes        `yaml:"kubernetes"`
	Network              kkNetwork           `yaml:"network"`
	Registry             map[string]any      `yaml:"registry"`
}

type kkHost struct {
	Name            string            `yaml:"name"`
	Address         string            `yaml:"address"`
	InternalAddress string            `yaml:"internalAddress"`
	Port            string            `yaml:"port"`
	User            string            `yaml:"user"`
	Password        string            `yaml:"password"`
	PrivateKey      string            `yaml:"privateKey"`
	PrivateKeyPath  string            `yaml:"privateKeyPath"`
	Arch            string            `yaml:"arch"`
	Timeout         string            `yaml:"timeout"`
	Labels          map[string]string `yaml:"labels"`
}

type kkEndpoint struct {
	InternalLoadbalancer string `yaml:"internalLoadbalancer"`
	Domain               string `yaml:"domain"`
	ExternalDNS          bool   `yaml:"externalDNS"`
	Address              string `yaml:"address"`
	Port                 string `yaml:"port"`
}

type kkKubernetes struct {
	Version     string `yaml:"version"`
	ClusterName string `yaml:"clusterName"`
	DNSDomain   string `yaml:"dnsDomain"`
}

type kkNetwork struct {
	Plugin          string `yaml:"plugin"`
	KubePodsCIDR    string `yaml:"kubePodsCIDR"`
	KubeServiceCIDR string `yaml:"kubeServiceCIDR"`
}

// kkDefaultLBDomain is the control-plane domain KubeKey writes into every sample.
const kkDefaultLBDomain = "lb.kubesphere.local"

// FromKubeKey converts a KubeKey config-sample.yaml into a cluster.yaml; name is the file it came from, for
// messages. The notes say what the user must do (export the variables that now hold the SSH passwords) and what
// was dropped or changed; they never contain a secret. A file that is not a KubeKey cluster config, or whose role
// groups name unknown hosts, gives a *ValidationError.
//
// Passwords are never copied: each becomes an {env: NAME} reference, WT_SSH_PASSWORD when every host that has a
// password has the same one, else WT_SSH_PASSWORD_<HOST> per host. Hosts in no role group (KubeKey ignores them)
// and etcd-only hosts (wtctl runs etcd on the control planes) are left out.
func FromKubeKey(name string, data []byte) (*Cluster, []string, error) {
	d := newDecoder()
	d.lenient = true
	docs, ok := d.parse(data)
	if !ok {
		return nil, nil, d.fail(name)
	}
	var kk kkFile
	d.walk(docs[0], kkFileType, "")
	if d.budget >= 0 && len(d.problems) == 0 {
		if err := safely(func() error { return yaml.NodeToValue(docs[0], &kk) }); err != nil {
			d.problems = append(d.problems, problemFromYAML(err))
		}
	}
	if len(d.problems) == 0 {
		switch {
		case !strings.HasPrefix(kk.APIVersion, "kubekey.kubesphere.io/"):
			d.problems = append(d.problems, Problem{Path: "apiVersion", Msg: fmt.Sprintf("found %q: this is not a KubeKey config (apiVersion kubekey.kubesphere.io/v1alpha2)", kk.APIVersion)})
		case kk.Kind != "Cluster":
			d.problems = append(d.problems, Problem{Path: "kind", Msg: fmt.Sprintf("found %q, expected \"Cluster\"", kk.Kind)})
		case len(kk.Spec.Hosts) == 0:
			d.problems = append(d.problems, Problem{Path: "spec.hosts", Msg: "lists no hosts"})
		}
	}
	if len(d.problems) > 0 {
		return nil, nil, d.fail(name)
	}
	conv := &kkConverter{d: d, kk: &kk, source: filepath.Base(name)}
	c := conv.convert()
	if len(d.problems) > 0 {
		return nil, nil, d.fail(name)
	}
	if len(docs) > 1 {
		conv.notef("%d more YAML document(s) after the cluster (e.g. KubeSphere's ClusterConfiguration) were ignored", len(docs)-1)
	}
	if len(d.unknown) > 0 {
		conv.notef("dropped, as wtctl has no such setting: %s", strings.Join(d.unknown, ", "))
	}
	conv.checkResult(c)
	// What the user must do comes first.
	slices.SortStableFunc(conv.notes, func(a, b string) int {
		return cmp.Compare(notExport(a), notExport(b))
	})
	return c, conv.notes, nil
}

func notExport(note string) int {
	if strings.HasPrefix(note, "export ") {
		return 0
	}
	return 1
}

var kkFileType = reflect.TypeFor[kkFile]()

// kkConverter holds the state of one conversion.
type kkConverter struct {
	d      *decoder
	kk     *kkFile
	source string          // base name of the KubeKey file, for notes
	etcd   map[string]bool // hosts of roleGroups.etcd
	notes  []string
}

func (k *kkConverter) etcdOnly(host string) bool { return k.etcd[host] }

func (k *kkConverter) notef(format string, a ...any) {
	k.notes = append(k.notes, fmt.Sprintf(format, a...))
}

func (k *kkConverter) convert() *Cluster {
	s := &k.kk.Spec
	c := &Cluster{APIVersion: APIVersion, Kind: Kind, Metadata: Metadata{Name: k.clusterName()}}
	roles := k.roles()
	byName := map[string]kkHost{}
	for _, h := range s.Hosts {
		byName[h.Name] = h
	}
	for i, kh := range s.Hosts {
		rs := roles[kh.Name]
		if len(rs) == 0 {
			continue
		}
		h := Host{Name: kh.Name, Address: kh.Address, Roles: rs, Arch: kh.Arch, Labels: kh.Labels}
		internal, _, dual := strings.Cut(kh.InternalAddress, ",")
		if dual {
			k.notef("host %s: internalAddress %q is dual-stack; only %s was kept", kh.Name, kh.InternalAddress, internal)
		}
		if h.Address == "" {
			h.Address = internal
		}
		if internal != h.Address {
			h.InternalAddress = internal
		}
		h.User = cmp.Or(kh.User, DefaultUser)
		h.Port = DefaultSSHPort
		if kh.Port != "" {
			p, err := strconv.Atoi(kh.Port)
			if err != nil {
				k.d.problems = append(k.d.problems, Problem{Path: fmt.Sprintf("spec.hosts[%d].port", i), Msg: fmt.Sprintf("%q is not a port", kh.Port)})
			}
			h.Port = p
		}
		h.PrivateKey = kh.PrivateKeyPath
		if kh.PrivateKey != "" {
			k.notef("host %s: its private key is written inline in %s and was not copied: save it to a file (chmod 600) and set privateKey: PATH on the host", kh.Name, k.source)
		}
		if kh.Password == "" && kh.PrivateKeyPath == "" && kh.PrivateKey == "" {
			h.PrivateKey = "~/.ssh/id_rsa"
			k.notef("host %s: no password or key was given, so, as KubeKey does, it logs in with ~/.ssh/id_rsa", kh.Name)
		}
		c.Spec.Hosts = append(c.Spec.Hosts, h)
	}
	for _, kh := range s.Hosts {
		if len(roles[kh.Name]) == 0 && !k.etcdOnly(kh.Name) {
			k.notef("host %s is in no role group (KubeKey ignores such hosts), so it was left out", kh.Name)
		}
	}
	k.passwords(c, byName)
	k.hoist(c)
	k.timeouts(c, byName)
	k.kubernetes(c)
	if len(s.Registry) > 0 {
		var set []string
		for _, key := range yamlnode.SortedKeys(s.Registry) {
			if v := s.Registry[key]; v != nil && v != "" && !isEmptyList(v) {
				set = append(set, key)
			}
		}
		if len(set) > 0 {
			k.notef("spec.registry (%s) was dropped: wtctl runs its own registry, filled from the bundle, on the hosts with the registry role", strings.Join(set, ", "))
		}
	}
	k.notef("set spec.bundle to the bundle archive (wutong-VERSION.tar.zst) before installing")
	return c
}

func isEmptyList(v any) bool {
	switch v := v.(type) {
	case []any:
		return len(v) == 0
	case map[string]any:
		return len(v) == 0
	}
	return false
}

// clusterName makes metadata.name a DNS label.
func (k *kkConverter) clusterName() string {
	n := strings.Trim(regexp.MustCompile(`[^a-z0-9-]+`).ReplaceAllString(strings.ToLower(k.kk.Metadata.Name), "-"), "-")
	if len(n) > 63 {
		n = strings.TrimRight(n[:63], "-")
	}
	if n == "" {
		n = "imported"
	}
	if n != k.kk.Metadata.Name {
		k.notef("metadata.name %q became %q (a DNS label)", k.kk.Metadata.Name, n)
	}
	return n
}

var hostRange = regexp.MustCompile(`^(.*)\[(\d+):(\d+)\](.*)$`)

// maxRange bounds one node[a:b] entry.
const maxRange = 10000

// roles maps each host name to its roles, from roleGroups, expanding node[1:10] ranges.
func (k *kkConverter) roles() map[string][]Role {
	s := &k.kk.Spec
	known := map[string]bool{}
	for _, h := range s.Hosts {
		known[h.Name] = true
	}
	out := map[string][]Role{}
	etcd := map[string]bool{}
	for _, group := range yamlnode.SortedKeys(s.RoleGroups) {
		var role Role
		switch group {
		case "master", "control-plane":
			role = RoleControlPlane
		case "worker":
			role = RoleWorker
		case "registry":
			role = RoleRegistry
		case "etcd":
		default:
			k.notef("roleGroups.%s was dropped: wtctl's roles are control-plane, worker and registry", group)
			continue
		}
		for j, entry := range s.RoleGroups[group] {
			at := fmt.Sprintf("spec.roleGroups.%s[%d]", group, j)
			names, msg := expandRange(entry)
			if msg != "" {
				k.d.problems = append(k.d.problems, Problem{Path: at, Msg: msg})
				continue
			}
			for _, n := range names {
				switch {
				case !known[n]:
					k.d.problems = append(k.d.problems, Problem{Path: at, Msg: fmt.Sprintf("%s is in role group %s but not in spec.hosts", n, group)})
				case group == "etcd":
					etcd[n] = true
				case !slices.Contains(out[n], role):
					out[n] = append(out[n], role)
				}
			}
		}
	}
	for n, rs := range out {
		slices.SortFunc(rs, func(a, b Role) int { return slices.Index(roleNames, string(a)) - slices.Index(roleNames, string(b)) })
		out[n] = rs
	}
	if len(etcd) > 0 {
		var cps, odd []string
		for _, h := range s.Hosts {
			if slices.Contains(out[h.Name], RoleControlPlane) {
				cps = append(cps, h.Name)
			}
			if etcd[h.Name] != slices.Contains(out[h.Name], RoleControlPlane) {
				odd = append(odd, h.Name)
			}
		}
		msg := fmt.Sprintf("roleGroups.etcd was dropped: wtctl runs etcd on the control planes (%s)", strings.Join(cps, ", "))
		if len(odd) > 0 {
			msg += fmt.Sprintf("; the etcd group differed from the control planes on %s", strings.Join(odd, ", "))
		}
		k.notes = append(k.notes, msg)
	}
	k.etcd = etcd
	if !slices.ContainsFunc(s.Hosts, func(h kkHost) bool { return slices.Contains(out[h.Name], RoleRegistry) }) {
		for _, h := range s.Hosts {
			if slices.Contains(out[h.Name], RoleControlPlane) {
				out[h.Name] = append(out[h.Name], RoleRegistry)
				k.notef("host %s, the first control plane, got the registry role (the registry serves every image to the nodes)", h.Name)
				break
			}
		}
	}
	return out
}

// expandRange expands KubeKey's node[1:3] into node1, node2, node3 (node[01:03] keeps the zero padding).
func expandRange(entry string) ([]string, string) {
	m := hostRange.FindStringSubmatch(entry)
	if m == nil || strings.ContainsAny(m[1]+m[4], "[]") {
		if strings.ContainsAny(entry, "[]") {
			return nil, fmt.Sprintf("%q is not a host name or a range such as node[1:10]", entry)
		}
		return []string{entry}, ""
	}
	from, err1 := strconv.Atoi(m[2])
	to, err2 := strconv.Atoi(m[3])
	switch {
	case err1 != nil || err2 != nil || from > to:
		return nil, fmt.Sprintf("%q: the range must go from a lower to a higher number", entry)
	case to-from >= maxRange:
		return nil, fmt.Sprintf("%q: a range may name at most %d hosts", entry, maxRange)
	}
	width := 0
	if len(m[2]) > 1 && m[2][0] == '0' {
		width = len(m[2])
	}
	var names []string
	for i := from; i <= to; i++ {
		names = append(names, fmt.Sprintf("%s%0*d%s", m[1], width, i, m[4]))
	}
	return names, ""
}
