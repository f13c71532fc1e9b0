package cluster

import (
	"fmt"
	"net"
	"path"
	"strconv"
)

// Default fills in the defaults documented on the fields, and normalizes what has two spellings (the role
// "master" becomes control-plane). It only fills what is empty, so it is idempotent, and it is safe on a cluster
// that is not valid yet. Parse calls it before validating.
//
// When no host has the registry role, the first control plane gets it, and a warning says so: a registry host is
// needed (the nodes pull every image from it), and the first control plane is up before any other host.
func (c *Cluster) Default() {
	s := &c.Spec
	ssh := &s.SSH
	if ssh.User == "" {
		ssh.User = DefaultUser
	}
	if ssh.Port == 0 {
		ssh.Port = DefaultSSHPort
	}
	if ssh.Timeout == 0 {
		ssh.Timeout = Duration(DefaultSSHTimeout)
	}
	for i := range s.Hosts {
		h := &s.Hosts[i]
		if h.InternalAddress == "" && isIP(h.Address) {
			h.InternalAddress = h.Address
		}
		for j, r := range h.Roles {
			if r == "master" {
				h.Roles[j] = RoleControlPlane
			}
		}
	}
	if !c.HasRole(RoleRegistry) {
		for i := range s.Hosts {
			h := &s.Hosts[i]
			if h.HasRole(RoleControlPlane) {
				h.Roles = append(h.Roles, RoleRegistry)
				c.warnings = append(c.warnings, Problem{Path: fmt.Sprintf("spec.hosts[%d].roles", i), Msg: fmt.Sprintf(
					"no host has the registry role, so %s, the first control plane, runs the registry; give the role to another host to choose it", h.Name)})
				break
			}
		}
	}
	k := &s.Kubernetes
	if k.PodCIDR == "" {
		k.PodCIDR = DefaultPodCIDR
	}
	if k.ServiceCIDR == "" {
		k.ServiceCIDR = DefaultServiceCIDR
	}
	if k.DNSDomain == "" {
		k.DNSDomain = DefaultDNSDomain
	}
	if k.CNI == "" {
		k.CNI = DefaultCNI
	}
	if c.Spec.Firewall == "" {
		c.Spec.Firewall = "open"
	}
	switch {
	case k.ControlPlaneEndpoint == "":
		for _, h := range c.ControlPlanes() {
			if isIP(h.InternalAddress) {
				k.ControlPlaneEndpoint = net.JoinHostPort(h.InternalAddress, strconv.Itoa(DefaultAPIServerPort))
			}
			break
		}
	case !hasPort(k.ControlPlaneEndpoint):
		k.ControlPlaneEndpoint = net.JoinHostPort(k.ControlPlaneEndpoint, strconv.Itoa(DefaultAPIServerPort))
	}
	r := &s.Registry
	if r.Port == 0 {
		r.Port = DefaultRegistryPort
	}
	if r.Domain == "" {
		r.Domain = DefaultRegistryDomain
	}
	if r.Username == "" {
		r.Username = DefaultRegistryUsername
	}
	if s.Platform.Enabled == nil {
		enabled := true
		s.Platform.Enabled = &enabled
	}
	if s.Ingress.Enabled == nil {
		enabled := true
		s.Ingress.Enabled = &enabled
	}
	if s.Platform.NodePort == 0 {
		s.Platform.NodePort = DefaultPlatformNodePort
	}
	if s.Platform.StorageSize == "" {
		s.Platform.StorageSize = DefaultPlatformStorageSize
	}
	if s.Workdir == "" && validLabel(c.Metadata.Name) {
		s.Workdir = path.Join(defaultWorkdirParent, c.Metadata.Name)
	}
}

// hasPort reports whether hostport ends in a port: "h:6443" or "[::1]:6443", not "h" or "::1".
func hasPort(hostport string) bool {
	_, _, err := net.SplitHostPort(hostport)
	return err == nil
}
