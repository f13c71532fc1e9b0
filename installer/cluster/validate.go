package cluster

import (
	"fmt"
	"slices"
	"strings"

	"github.com/wutong-paas/wutong-offline/images"
	"github.com/wutong-paas/wutong-offline/internal/yamlnode"
)

// checker collects the problems and warnings of a decoded, defaulted cluster. Paths get their lines later.
type checker struct {
	lookup   func(string) (string, bool)
	given    func(path string) bool // whether the field is in the file, rather than defaulted
	broken   func(path string) bool // whether the field, or one below it, could not be read: skip conclusions
	home     string
	problems []Problem
	warnings []Problem
}

func (k *checker) errorf(path, format string, a ...any) {
	k.problems = append(k.problems, Problem{Path: path, Msg: fmt.Sprintf(format, a...)})
}

func (k *checker) warnf(path, format string, a ...any) {
	k.warnings = append(k.warnings, Problem{Path: path, Msg: fmt.Sprintf(format, a...)})
}

func (k *checker) validate(c *Cluster) {
	k.home = c.home
	k.warnings = append(k.warnings, c.warnings...)
	switch name := c.Metadata.Name; {
	case name == "":
		k.errorf("metadata.name", "is missing; name the cluster, e.g. name: prod")
	case !validLabel(name):
		k.errorf("metadata.name", "%q is not a valid name: use at most 63 lower-case letters, digits and '-', starting and ending with a letter or digit", name)
	}
	k.sshDefaults(c)
	k.hosts(c)
	k.kubernetes(c)
	k.registry(c)
	k.platform(c)
	switch c.Spec.Firewall {
	case "open", "stop", "leave":
	default:
		k.errorf("spec.firewall", "%q: use open (add the cluster's ports to firewalld), stop (stop firewalld) or leave", c.Spec.Firewall)
	}
	k.path("spec.bundle", c.Spec.Bundle)
	k.path("spec.workdir", c.Spec.Workdir)
	k.secrets(c)
}

func (k *checker) sshDefaults(c *Cluster) {
	d := c.Spec.SSH
	k.login("spec.ssh", d.Login)
	if d.Timeout <= 0 {
		k.errorf("spec.ssh.timeout", "%s is not a positive duration; write e.g. 30s", d.Timeout)
	}
	if !d.Passphrase.IsZero() && d.PrivateKey == "" && !slices.ContainsFunc(c.Spec.Hosts, func(h Host) bool { return h.PrivateKey != "" }) {
		k.errorf("spec.ssh.passphrase", "is set, but no privateKey is: set privateKey too, or remove the passphrase")
	}
	if b := d.Bastion; b != nil {
		k.address("spec.ssh.bastion.address", b.Address, "the jump host")
		k.login("spec.ssh.bastion", b.Login)
		if e := mergeLogin(b.Address, b.Login, d.Login, nil); !hasAuth(e) {
			k.errorf("spec.ssh.bastion", "the jump host has no way to log in: set password, privateKey or agent: true here or in spec.ssh")
		}
	}
}

// login checks the fields of one Login (spec.ssh, a host or the bastion).
func (k *checker) login(path string, l Login) {
	if l.Port < 0 || l.Port > 65535 {
		k.errorf(path+".port", "%d is not a port: use 1-65535 (default 22)", l.Port)
	}
	if l.User != "" && strings.ContainsAny(l.User, " \t\r\n:@/") {
		k.errorf(path+".user", "%q is not a user name: leave out spaces, ':', '@' and '/'", l.User)
	}
	k.path(path+".privateKey", l.PrivateKey)
}

// path checks a path written in cluster.yaml: ~ and ~/... are $HOME, ~user is not supported.
func (k *checker) path(at, p string) {
	switch {
	case strings.HasPrefix(p, "~") && p != "~" && !strings.HasPrefix(p, "~/"):
		k.errorf(at, "%q: only ~/ (your home) is expanded; write the full path", p)
	case strings.HasPrefix(p, "~") && k.home == "":
		k.errorf(at, "%q starts with ~, but HOME is not set; write the full path", p)
	}
}

// address checks an SSH address: an IP address or a DNS name, without a port.
func (k *checker) address(path, addr, what string) bool {
	switch {
	case addr == "":
		k.errorf(path, "is missing; give the IP address or DNS name of %s", what)
	case hasPort(addr) && !isIP(addr):
		k.errorf(path, "%q includes a port; put the port in port: instead", addr)
	case !isIP(addr) && !validHostname(addr):
		k.errorf(path, "%q is neither an IP address nor a DNS name", addr)
	default:
		return true
	}
	return false
}

func (k *checker) hosts(c *Cluster) {
	hosts := c.Spec.Hosts
	if len(hosts) == 0 {
		k.errorf("spec.hosts", "list at least one host, e.g. - {name: node1, address: 10.0.0.11, roles: [control-plane, worker]}")
		return
	}
	names := map[string]int{}
	addrs := map[string]int{}
	internal := map[string]int{}
	who := func(i int) string { return fmt.Sprintf("spec.hosts[%d] (%s)", i, hosts[i].Name) }
	for i, h := range hosts {
		p := fmt.Sprintf("spec.hosts[%d]", i)
		switch j, dup := names[h.Name]; {
		case h.Name == "":
			k.errorf(p+".name", "is missing; give each host a name, e.g. node1 (it becomes the Kubernetes node name)")
		case !validSubdomain(h.Name):
			k.errorf(p+".name", "%q is not a valid host name: use lower-case letters, digits, '-' and '.', starting and ending with a letter or digit (it becomes the Kubernetes node name)", h.Name)
		case dup:
			k.errorf(p+".name", "%q is also the name of spec.hosts[%d]; every host needs its own name", h.Name, j)
		default:
			names[h.Name] = i
		}
		eff := effectiveSSH(h, c.Spec.SSH, nil)
		addrDup := false
		if k.address(p+".address", h.Address, "the host") {
			key := strings.ToLower(h.Address) + fmt.Sprintf("#%d", eff.Port)
			if j, dup := addrs[key]; dup {
				addrDup = true
				k.errorf(p+".address", "%q is also used by %s; every host needs its own address (or, behind port forwarding, its own port)", h.Address, who(j))
			} else {
				addrs[key] = i
			}
		}
		switch j, dup := internal[h.InternalAddress]; {
		case addrDup && h.InternalAddress == h.Address:
			// Taken from the duplicate address: already reported.
		case h.InternalAddress == "" && validHostname(h.Address):
			k.errorf(p+".internalAddress", "is missing; address %q is a DNS name, so give the node's IP address inside the cluster here", h.Address)
		case h.InternalAddress == "":
		case !isIP(h.InternalAddress):
			k.errorf(p+".internalAddress", "%q is not an IP address; give the node's IP address inside the cluster", h.InternalAddress)
		case dup:
			k.errorf(p+".internalAddress", "%q is also used by %s; every host needs its own internal address", h.InternalAddress, who(j))
		default:
			internal[h.InternalAddress] = i
		}
		k.login(p, h.Login)
		switch {
		case !hasAuth(eff.Endpoint) && !k.isBroken("spec.ssh", p):
			k.errorf(p, "%s has no way to log in: set password, privateKey or agent: true on the host or in spec.ssh", nameOr(h, i))
		case !eff.Sudo && eff.User != "root":
			k.errorf(p, "%s logs in as %q without sudo, but installing needs root: set sudo: true (with sudoPassword or password), or log in as root", nameOr(h, i), eff.User)
		case eff.Sudo && eff.User != "root" && eff.SudoPassword.IsZero() && !eff.SudoNoPassword:
			k.errorf(p, "%s logs in as %q and uses sudo, but has no password for sudo: set sudoPassword (or password), or sudoNoPassword: true if sudoers grants NOPASSWD", nameOr(h, i), eff.User)
		}
		if !h.Passphrase.IsZero() && eff.PrivateKey == "" {
			k.errorf(p+".passphrase", "is set, but this host has no privateKey: set privateKey too, or remove the passphrase")
		}
		k.roles(p+".roles", h.Roles)
		for _, key := range yamlnode.SortedKeys(h.Labels) {
			at := yamlnode.KeyPath(p+".labels", key)
			if msg := checkLabel(key, h.Labels[key]); msg != "" {
				k.errorf(at, "%s", msg)
			}
		}
		for j, t := range h.Taints {
			if msg := checkTaint(t); msg != "" {
				k.errorf(fmt.Sprintf("%s.taints[%d]", p, j), "%s", msg)
			}
		}
		if h.Arch != "" && !images.ValidArch(h.Arch) {
			hint := "use one of " + strings.Join(images.Arches, ", ")
			if a, ok := unameArch[h.Arch]; ok {
				hint = fmt.Sprintf("that is uname's name; write %s", a)
			}
			k.errorf(p+".arch", "unknown arch %q: %s", h.Arch, hint)
		}
	}
	switch n := len(c.ControlPlanes()); {
	case n == 0 && k.isBroken("spec.hosts"):
	case n == 0:
		k.errorf("spec.hosts", "no host has the control-plane role; give it to one host (or three, for high availability)")
	case n%2 == 0:
		k.warnf("spec.hosts", "there are %d control planes: etcd needs a majority, so %d tolerate no more failures than %d; use an odd number", n, n, n-1)
	}
}

var unameArch = map[string]string{"x86_64": "amd64", "aarch64": "arm64", "loongarch64": "loong64"}

// roleNames are the valid roles, for messages and suggestions.
var roleNames = []string{string(RoleControlPlane), string(RoleWorker), string(RoleRegistry)}

func (k *checker) roles(path string, roles []Role) {
	if len(roles) == 0 {
		k.errorf(path, "give the host at least one role: control-plane, worker or registry")
		return
	}
	for i, r := range roles {
		at := fmt.Sprintf("%s[%d]", path, i)
		switch {
		case r == "etcd":
			k.errorf(at, "etcd is not a role of its own: etcd runs on every control-plane host (stacked); remove it and give the host control-plane")
		case !slices.Contains(roleNames, string(r)):
			hint := ""
			if s := closestOf(string(r), roleNames); s != "" {
				hint = fmt.Sprintf("did you mean %q? ", s)
			}
			k.errorf(at, "unknown role %q: %sthe roles are control-plane (alias master), worker and registry", r, hint)
		case slices.Contains(roles[:i], r):
			alias := ""
			if r == RoleControlPlane {
				alias = " (master is another name for it)"
			}
			k.errorf(at, "%q is listed twice%s", r, alias)
		}
	}
}

// isBroken reports whether any of paths could not be read, so that conclusions drawn from them would be noise.
func (k *checker) isBroken(paths ...string) bool {
	return k.broken != nil && slices.ContainsFunc(paths, k.broken)
}

func hasAuth(e Endpoint) bool { return e.PrivateKey != "" || e.Agent || !e.Password.IsZero() }

func nameOr(h Host, i int) string {
	if h.Name != "" {
		return h.Name
	}
	return fmt.Sprintf("host %d", i+1)
}

// secrets resolves every {env: NAME}, reporting unset variables where they are referenced.
func (k *checker) secrets(c *Cluster) {
	s := &c.Spec
	check := func(path string, sec *Secret) {
		if msg := sec.resolve(k.lookup); msg != "" {
			k.errorf(path, "%s", msg)
		}
	}
	options := func(path string, o *SSHOptions) {
		check(path+".password", &o.Password)
		check(path+".passphrase", &o.Passphrase)
		check(path+".sudoPassword", &o.SudoPassword)
	}
	options("spec.ssh", &s.SSH.SSHOptions)
	if b := s.SSH.Bastion; b != nil {
		check("spec.ssh.bastion.password", &b.Password)
		check("spec.ssh.bastion.passphrase", &b.Passphrase)
	}
	for i := range s.Hosts {
		options(fmt.Sprintf("spec.hosts[%d]", i), &s.Hosts[i].SSHOptions)
	}
	check("spec.registry.password", &s.Registry.Password)
}
