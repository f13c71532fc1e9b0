// Package cluster is cluster.yaml: the typed description of a cluster to install (hosts and how to reach them over
// SSH, roles, Kubernetes network settings, the registry, the bundle), its parsing with line numbers, its defaults,
// and its validation, which reports every problem at once with the file, line, field path and how to fix it. It also
// converts a KubeKey config-sample.yaml into a cluster.yaml.
//
// Secrets (passwords, passphrases) are Secret values: a literal or an {env: NAME} reference, resolved when the file
// is parsed and never printed.
package cluster

import (
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// APIVersion and Kind identify a cluster.yaml.
const (
	APIVersion = "wutong.io/v1alpha1"
	Kind       = "Cluster"
)

// Built-in defaults, applied by Default.
const (
	DefaultUser             = "root"
	DefaultSSHPort          = 22
	DefaultSSHTimeout       = 30 * time.Second
	DefaultAPIServerPort    = 6443
	DefaultPodCIDR          = "10.244.0.0/16"
	DefaultServiceCIDR      = "10.96.0.0/12"
	DefaultDNSDomain        = "cluster.local"
	DefaultCNI              = "flannel"
	DefaultRegistryPort     = 5443
	DefaultRegistryDomain   = "registry.wutong.local"
	DefaultRegistryUsername = "admin"
	defaultWorkdirParent    = ".wutong"
)

// CNIs are the network plugins the installer can deploy from a bundle.
var CNIs = []string{"flannel", "calico"}

// Cluster is one cluster.yaml document. Parse fills it, applies the defaults and validates it; the zero values
// documented as defaults below are replaced by Default.
type Cluster struct {
	// APIVersion must be APIVersion and Kind must be Kind.
	APIVersion string   `yaml:"apiVersion"`
	Kind       string   `yaml:"kind"`
	Metadata   Metadata `yaml:"metadata"`
	Spec       Spec     `yaml:"spec"`

	file     string    // name given to Parse, for messages
	dir      string    // absolute directory that relative paths are relative to
	home     string    // $HOME, for ~ in paths
	warnings []Problem // see Warnings
}

// Metadata names the cluster.
type Metadata struct {
	// Name is a DNS-1123 label (lower-case letters, digits and '-'), e.g. prod. It names the default workdir.
	Name string `yaml:"name"`
}

// Spec is what to install, and where.
type Spec struct {
	// SSH holds the defaults every host inherits, and the optional jump host.
	SSH SSHDefaults `yaml:"ssh,omitempty"`
	// Hosts are the machines of the cluster; at least one must be a control plane.
	Hosts      []Host     `yaml:"hosts"`
	Kubernetes Kubernetes `yaml:"kubernetes,omitempty"`
	Registry   Registry   `yaml:"registry,omitempty"`
	// Bundle is the path of the bundle archive (NAME-VERSION.tar.zst). Commands that install need it; it may also
	// be given on their command line.
	Bundle   string   `yaml:"bundle,omitempty"`
	Platform Platform `yaml:"platform,omitempty"`
	Ingress  Ingress  `yaml:"ingress,omitempty"`
	// Firewall says what node preparation does about a running firewalld: open (add the cluster's ports to its
	// permanent rules), stop (stop and disable it) or leave (touch nothing). Default: open.
	Firewall string `yaml:"firewall,omitempty"`
	// Workdir holds the installer's journal, generated certificates and credentials.
	// Default: .wutong/<metadata.name>, next to cluster.yaml.
	Workdir string `yaml:"workdir,omitempty"`
}

// Login is how to log in to a machine over SSH. On a host, unset fields are inherited from spec.ssh; on the
// bastion, from spec.ssh too. Paths may start with ~ ($HOME); relative paths are relative to cluster.yaml.
//
// A login needs at least one method: privateKey, agent or password. When several are set (for example a key in
// spec.ssh and a password on one host) they are tried in that order: privateKey, agent, password.
type Login struct {
	// User is the login user. Default: root.
	User string `yaml:"user,omitempty"`
	// Port is the SSH port. Default: 22.
	Port int `yaml:"port,omitempty"`
	// Password logs in with a password.
	Password Secret `yaml:"password,omitempty"`
	// PrivateKey is the path of a private key file.
	PrivateKey string `yaml:"privateKey,omitempty"`
	// Passphrase decrypts PrivateKey.
	Passphrase Secret `yaml:"passphrase,omitempty"`
	// Agent uses the keys of the running ssh-agent ($SSH_AUTH_SOCK).
	Agent *bool `yaml:"agent,omitempty"`
}

// SSHOptions are the per-host SSH settings, also given as defaults in spec.ssh.
type SSHOptions struct {
	Login `yaml:",inline"`
	// Sudo runs the installer's commands as root through sudo, for a User that is not root.
	Sudo *bool `yaml:"sudo,omitempty"`
	// SudoPassword answers sudo's password prompt. Default: Password.
	SudoPassword Secret `yaml:"sudoPassword,omitempty"`
	// SudoNoPassword says sudoers grants NOPASSWD to User, so no sudo password is needed. Without it, sudo as a
	// user other than root needs SudoPassword or Password.
	SudoNoPassword *bool `yaml:"sudoNoPassword,omitempty"`
}

// SSHDefaults is spec.ssh.
type SSHDefaults struct {
	SSHOptions `yaml:",inline"`
	// Timeout bounds each SSH dial. Default: 30s.
	Timeout Duration `yaml:"timeout,omitempty"`
	// Bastion is a jump host: when set, every host is reached through it.
	Bastion *Bastion `yaml:"bastion,omitempty"`
}

// Bastion is a jump host. Its unset login fields are taken from spec.ssh.
type Bastion struct {
	// Address is the jump host's IP address or DNS name, as seen from where wtctl runs.
	Address string `yaml:"address"`
	Login   `yaml:",inline"`
}

// Role is what a host does in the cluster.
type Role string

// The roles. "master" is accepted in cluster.yaml as an alias of RoleControlPlane.
const (
	RoleControlPlane Role = "control-plane"
	RoleWorker       Role = "worker"
	RoleRegistry     Role = "registry"
)

// Host is one machine.
type Host struct {
	// Name is the Kubernetes node name: a lower-case DNS-1123 subdomain, unique in the cluster.
	Name string `yaml:"name"`
	// Address is where SSH connects (through the bastion, if any): an IP address or a DNS name.
	Address string `yaml:"address"`
	// InternalAddress is the node's IP address inside the cluster. Default: Address, when Address is an IP.
	InternalAddress string `yaml:"internalAddress,omitempty"`
	// SSHOptions override spec.ssh for this host.
	SSHOptions `yaml:",inline"`
	// Roles are any of control-plane, worker and registry. When no host has the registry role, Default gives it
	// to the first control plane (and says so in Warnings).
	Roles []Role `yaml:"roles,flow"`
	// Labels and Taints ("key[=value]:Effect") are set on the Kubernetes node.
	Labels map[string]string `yaml:"labels,omitempty"`
	Taints []string          `yaml:"taints,omitempty"`
	// Arch is an optional hint (amd64, arm64 or loong64); the installer detects the real one.
	Arch string `yaml:"arch,omitempty"`

	ssh *SSHConfig // effective settings, set by Parse
}

// Kubernetes is spec.kubernetes.
type Kubernetes struct {
	// Version is the Kubernetes version, vX.Y.Z. Default: the version the bundle carries.
	Version string `yaml:"version,omitempty"`
	// ControlPlaneEndpoint is the API server address as HOST[:PORT] (port default 6443), e.g. a load balancer.
	// Default: the first control plane's internalAddress:6443.
	ControlPlaneEndpoint string `yaml:"controlPlaneEndpoint,omitempty"`
	// PodCIDR and ServiceCIDR must not overlap each other or any host's internalAddress.
	// Defaults: 10.244.0.0/16 and 10.96.0.0/12.
	PodCIDR     string `yaml:"podCIDR,omitempty"`
	ServiceCIDR string `yaml:"serviceCIDR,omitempty"`
	// DNSDomain is the cluster's DNS domain. Default: cluster.local.
	DNSDomain string `yaml:"dnsDomain,omitempty"`
	// CNI is one of CNIs. Default: flannel.
	CNI string `yaml:"cni,omitempty"`
}

// Registry is spec.registry: the image registry the installer runs on the registry hosts.
type Registry struct {
	// Port is the registry's TLS port. Default: 5443.
	Port int `yaml:"port,omitempty"`
	// Domain is the registry's name, which nodes resolve to the registry hosts. Default: registry.wutong.local.
	Domain string `yaml:"domain,omitempty"`
	// Username and Password are the push credentials. Default username: admin. An empty Password means the
	// installer generates one at install time and keeps it in the workdir.
	Username string `yaml:"username,omitempty"`
	Password Secret `yaml:"password,omitempty"`
}

// Platform is spec.platform: options of the Wutong platform installed on top of Kubernetes.
type Platform struct {
	// Enabled installs the platform. Default: true; false installs Kubernetes and the registry only.
	Enabled *bool `yaml:"enabled,omitempty"`
	// NodePort is the port on every node where the platform's API and console answer. Default: 30080.
	NodePort int `yaml:"nodePort,omitempty"`
	// StorageSize is the size of the platform's data volume. Default: 10Gi.
	StorageSize string `yaml:"storageSize,omitempty"`
	// InsecureHTTP serves the platform over plain HTTP: passwords and session tokens then cross the network in
	// the clear and the session cookie is not Secure, so use it only behind a TLS proxy. Default: false, HTTPS
	// with a certificate from the cluster CA (WORKDIR/pki/ca.crt) for every node's addresses and names and the
	// platform's in-cluster service names.
	InsecureHTTP bool `yaml:"insecureHTTP,omitempty"`
}

// Platform defaults.
const (
	DefaultPlatformNodePort    = 30080
	DefaultPlatformStorageSize = "10Gi"
)

// IsEnabled reports whether the platform is installed.
func (p Platform) IsEnabled() bool { return p.Enabled == nil || *p.Enabled }

// Ingress is spec.ingress: the cluster's ingress controller, the bundle's Traefik (manifests/traefik.yaml), which
// serves Ingress objects of the class "traefik" (the default class) on ports 80 and 443 of every node.
type Ingress struct {
	// Enabled deploys the ingress controller when the bundle carries it. Default: true; false leaves ports 80
	// and 443 of the nodes alone.
	Enabled *bool `yaml:"enabled,omitempty"`
}

// IngressPorts are the node ports the ingress controller takes on every node.
var IngressPorts = []int{80, 443}

// IsEnabled reports whether the ingress controller is deployed.
func (i Ingress) IsEnabled() bool { return i.Enabled == nil || *i.Enabled }

// Endpoint is where and how to log in to one machine, with inheritance done, paths absolute and secrets resolved.
type Endpoint struct {
	Address    string
	Port       int
	User       string
	Password   Secret
	PrivateKey string // absolute path, or ""
	Passphrase Secret
	Agent      bool
}

// SSHConfig is the effective SSH configuration of one host: the host's settings over spec.ssh over the built-in
// defaults.
type SSHConfig struct {
	Endpoint
	Sudo bool
	// SudoPassword is the password for sudo's prompt: sudoPassword, else password.
	SudoPassword   Secret
	SudoNoPassword bool
	Timeout        time.Duration
	// Bastion is the jump host, or nil.
	Bastion *Endpoint
}

// SSH returns the host's effective SSH configuration. For a Host that did not come from Parse, it is the host's
// own settings over the built-in defaults.
func (h Host) SSH() SSHConfig {
	if h.ssh != nil {
		return *h.ssh
	}
	return effectiveSSH(h, SSHDefaults{}, nil)
}

// HasRole reports whether the host has role r.
func (h Host) HasRole(r Role) bool { return slices.Contains(h.Roles, r) }

// HasRole reports whether any host has role r.
func (c *Cluster) HasRole(r Role) bool { return len(c.hostsWith(r)) > 0 }

// ControlPlanes returns the control-plane hosts, in file order. The first is the one kubeadm init runs on.
func (c *Cluster) ControlPlanes() []Host { return c.hostsWith(RoleControlPlane) }

// Workers returns the worker hosts, in file order.
func (c *Cluster) Workers() []Host { return c.hostsWith(RoleWorker) }

// Registries returns the hosts that run the registry, in file order.
func (c *Cluster) Registries() []Host { return c.hostsWith(RoleRegistry) }

func (c *Cluster) hostsWith(r Role) []Host {
	var hs []Host
	for _, h := range c.Spec.Hosts {
		if h.HasRole(r) {
			hs = append(hs, h)
		}
	}
	return hs
}

// Warnings are the things worth knowing that do not stop an install, such as an even number of control planes
// or a default that was chosen for the user.
func (c *Cluster) Warnings() []Problem { return slices.Clone(c.warnings) }

// File is the name the cluster.yaml was parsed under.
func (c *Cluster) File() string { return c.file }

// Path resolves a path written in cluster.yaml: ~ is $HOME and a relative path is relative to cluster.yaml.
func (c *Cluster) Path(p string) string {
	switch {
	case p == "":
		return ""
	case p == "~" || strings.HasPrefix(p, "~/"):
		return filepath.Join(c.home, p[1:])
	case filepath.IsAbs(p):
		return filepath.Clean(p)
	}
	return filepath.Join(c.dir, p)
}

// BundlePath is spec.bundle resolved, or "" when not given.
func (c *Cluster) BundlePath() string { return c.Path(c.Spec.Bundle) }

// WorkdirPath is spec.workdir resolved.
func (c *Cluster) WorkdirPath() string { return c.Path(c.Spec.Workdir) }

// effectiveSSH merges a host's settings over the defaults. path resolves key paths (nil leaves them as written).
func effectiveSSH(h Host, d SSHDefaults, path func(string) string) SSHConfig {
	def := d.Login
	if def.User == "" {
		def.User = DefaultUser
	}
	if def.Port == 0 {
		def.Port = DefaultSSHPort
	}
	cfg := SSHConfig{
		Endpoint:       mergeLogin(h.Address, h.Login, def, path),
		Sudo:           pick(h.Sudo, d.Sudo),
		SudoPassword:   firstSecret(h.SudoPassword, d.SudoPassword, h.Password, d.Password),
		SudoNoPassword: pick(h.SudoNoPassword, d.SudoNoPassword),
		Timeout:        time.Duration(d.Timeout),
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultSSHTimeout
	}
	if b := d.Bastion; b != nil {
		e := mergeLogin(b.Address, b.Login, def, path)
		cfg.Bastion = &e
	}
	return cfg
}

func mergeLogin(addr string, l, def Login, path func(string) string) Endpoint {
	e := Endpoint{
		Address:    addr,
		Port:       l.Port,
		User:       l.User,
		Password:   firstSecret(l.Password, def.Password),
		PrivateKey: l.PrivateKey,
		Passphrase: firstSecret(l.Passphrase, def.Passphrase),
		Agent:      pick(l.Agent, def.Agent),
	}
	if e.Port == 0 {
		e.Port = def.Port
	}
	if e.User == "" {
		e.User = def.User
	}
	if e.PrivateKey == "" {
		e.PrivateKey = def.PrivateKey
	}
	if path != nil {
		e.PrivateKey = path(e.PrivateKey)
	}
	return e
}

func pick(v, def *bool) bool {
	if v != nil {
		return *v
	}
	return def != nil && *def
}

func firstSecret(ss ...Secret) Secret {
	for _, s := range ss {
		if !s.IsZero() {
			return s
		}
	}
	return Secret{}
}
