package cluster

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// sharedPasswordEnv holds the SSH password when every host had the same one.
const sharedPasswordEnv = "WT_SSH_PASSWORD"

// passwords replaces every KubeKey password with an {env: NAME} reference and says which variables to export.
func (k *kkConverter) passwords(c *Cluster, byName map[string]kkHost) {
	owners := map[string][]string{} // password → host names; the password itself is never shown
	var with []int
	for i, h := range c.Spec.Hosts {
		if pw := byName[h.Name].Password; pw != "" {
			owners[pw] = append(owners[pw], h.Name)
			with = append(with, i)
		}
	}
	tip := "(read -rs NAME && export NAME keeps a password out of the shell history)"
	switch len(owners) {
	case 0:
		return
	case 1:
		var names []string
		for _, i := range with {
			c.Spec.Hosts[i].Password = FromEnv(sharedPasswordEnv)
			names = append(names, c.Spec.Hosts[i].Name)
		}
		k.notef("export %s: the SSH password %s gave %s %s", sharedPasswordEnv, k.source, strings.Join(names, ", "), tip)
		return
	}
	used := map[string]bool{}
	for _, i := range with {
		h := &c.Spec.Hosts[i]
		v := sharedPasswordEnv + "_" + envSuffix(h.Name)
		for n := 2; used[v]; n++ {
			v = fmt.Sprintf("%s_%s_%d", sharedPasswordEnv, envSuffix(h.Name), n)
		}
		used[v] = true
		h.Password = FromEnv(v)
		k.notef("export %s: the SSH password of %s in %s", v, h.Name, k.source)
	}
	k.notef("the hosts had %d different passwords, so each has its own variable %s", len(owners), tip)
}

var notEnvChar = regexp.MustCompile(`[^A-Z0-9]+`)

// envSuffix turns a host name into the tail of a variable name: node-1.example → NODE_1_EXAMPLE.
func envSuffix(host string) string {
	return strings.Trim(notEnvChar.ReplaceAllString(strings.ToUpper(host), "_"), "_")
}

// hoist moves login settings to spec.ssh, so the file says them once: the user and port most hosts have (hosts
// with another keep theirs), and the key and password only when every host has the same one (elsewhere a host
// would inherit a login method it did not have).
func (k *kkConverter) hoist(c *Cluster) {
	hs := c.Spec.Hosts
	d := &c.Spec.SSH
	if u := mostCommon(hs, func(h *Host) string { return h.User }, false); u != "" {
		d.User = u
		for i := range hs {
			if hs[i].User == u {
				hs[i].User = ""
			}
		}
	}
	if p := mostCommon(hs, func(h *Host) string { return strconv.Itoa(h.Port) }, false); p != "" {
		d.Port, _ = strconv.Atoi(p)
		for i := range hs {
			if hs[i].Port == d.Port {
				hs[i].Port = 0
			}
		}
	}
	if key := mostCommon(hs, func(h *Host) string { return h.PrivateKey }, true); key != "" {
		d.PrivateKey = key
		for i := range hs {
			hs[i].PrivateKey = ""
		}
	}
	if env := mostCommon(hs, func(h *Host) string { return h.Password.Env() }, true); env != "" {
		d.Password = FromEnv(env)
		for i := range hs {
			hs[i].Password = Secret{}
		}
	}
}

// mostCommon is the most common non-empty value of get over hosts (the first one on a tie), or "" when there is
// none or, with all, when not every host has it.
func mostCommon(hosts []Host, get func(*Host) string, all bool) string {
	count := map[string]int{}
	best := ""
	for i := range hosts {
		v := get(&hosts[i])
		if v == "" {
			continue
		}
		count[v]++
		if count[v] > count[best] {
			best = v
		}
	}
	if all && count[best] != len(hosts) {
		return ""
	}
	return best
}

// timeouts carries KubeKey's per-host SSH timeouts (seconds, default 30) into spec.ssh.timeout.
func (k *kkConverter) timeouts(c *Cluster, byName map[string]kkHost) {
	const kkDefault = 30
	longest, differ := 0, false
	for i, h := range c.Spec.Hosts {
		t := kkDefault
		if s := byName[h.Name].Timeout; s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n <= 0 {
				k.notef("host %s: timeout %q is not a number of seconds; it was ignored", h.Name, s)
				continue
			}
			t = n
		}
		if i > 0 && t != longest {
			differ = true
		}
		longest = max(longest, t)
	}
	if longest != kkDefault {
		c.Spec.SSH.Timeout = Duration(time.Duration(longest) * time.Second)
	}
	if differ {
		k.notef("the hosts had different SSH timeouts; spec.ssh.timeout is the longest, %ds", longest)
	}
}

// kubernetes converts the version, network and control-plane endpoint.
func (k *kkConverter) kubernetes(c *Cluster) {
	s := &k.kk.Spec
	kc := &c.Spec.Kubernetes
	if v := s.Kubernetes.Version; v != "" {
		base, flavor, _ := strings.Cut(v, "-")
		kc.Version = base
		if flavor != "" {
			k.notef("kubernetes.version %q: wtctl installs upstream Kubernetes with kubeadm, so only %s was kept", v, base)
		}
		k.notef("spec.kubernetes.version is %s: the bundle must carry that version; delete the line to install the bundle's own", base)
	}
	if dn := s.Kubernetes.DNSDomain; dn != "" && dn != DefaultDNSDomain {
		kc.DNSDomain = dn
	}
	if cn := s.Kubernetes.ClusterName; cn != "" && cn != DefaultDNSDomain && cn != kc.DNSDomain {
		k.notef("kubernetes.clusterName %q was dropped: the DNS domain is spec.kubernetes.dnsDomain", cn)
	}
	switch p := strings.ToLower(s.Network.Plugin); {
	case p == "":
	case slices.Contains(CNIs, p):
		kc.CNI = p
	default:
		k.notef("network.plugin %q is not one wtctl installs (%s); the cluster gets %s", s.Network.Plugin, strings.Join(CNIs, ", "), DefaultCNI)
	}
	kc.PodCIDR = k.firstCIDR("kubePodsCIDR", s.Network.KubePodsCIDR)
	kc.ServiceCIDR = k.firstCIDR("kubeServiceCIDR", s.Network.KubeServiceCIDR)

	ep := s.ControlPlaneEndpoint
	port := cmp.Or(ep.Port, strconv.Itoa(DefaultAPIServerPort))
	switch {
	case ep.Address != "" && ep.Address != "127.0.0.1":
		kc.ControlPlaneEndpoint = net.JoinHostPort(ep.Address, port)
	case ep.ExternalDNS && ep.Domain != "":
		kc.ControlPlaneEndpoint = net.JoinHostPort(ep.Domain, port)
	default:
		if ep.Domain != "" && ep.Domain != kkDefaultLBDomain {
			k.notef("controlPlaneEndpoint.domain %q was dropped: without an address, the API server endpoint is the first control plane", ep.Domain)
		}
		if len(c.ControlPlanes()) > 1 {
			k.notef("with %d control planes, point spec.kubernetes.controlPlaneEndpoint at a load balancer for high availability (it defaults to the first control plane)", len(c.ControlPlanes()))
		}
	}
	if ep.InternalLoadbalancer != "" {
		k.notef("controlPlaneEndpoint.internalLoadbalancer %q was dropped: wtctl does not run a load balancer", ep.InternalLoadbalancer)
	}
}

// firstCIDR keeps the IPv4 part of a dual-stack KubeKey CIDR.
func (k *kkConverter) firstCIDR(field, v string) string {
	first, _, dual := strings.Cut(v, ",")
	if dual {
		k.notef("network.%s %q is dual-stack; only %s was kept", field, v, first)
	}
	return first
}

// checkResult validates the converted cluster as Parse would, with every referenced variable taken as set, and
// turns what it finds into notes: a KubeKey file can hold what cluster.yaml does not accept (upper-case host names,
// overlapping ranges...), and the user fixes it in the written file.
func (k *kkConverter) checkResult(c *Cluster) {
	data, err := Marshal(c)
	if err != nil {
		k.notef("the converted file could not be checked: %v", err)
		return
	}
	set := func(string) (string, bool) { return "set", true }
	parsed, err := Parse("cluster.yaml", data, ParseOptions{LookupEnv: set, Dir: "."})
	var ve *ValidationError
	switch {
	case errors.As(err, &ve):
		for _, p := range ve.Problems {
			k.notef("fix before installing: %s: %s", p.Path, p.Msg)
		}
	case err != nil:
		k.notef("the converted file could not be checked: %v", err)
	default:
		for _, w := range parsed.Warnings() {
			k.notef("warning: %s: %s", w.Path, w.Msg)
		}
	}
}
