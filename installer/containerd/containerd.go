// Package containerd is the node's container runtime as the installer sets it up: containerd's configuration (the
// systemd cgroup driver, the sandbox image, certs.d for the local registry), its systemd unit, and a health check
// through containerd's own Go client.
package containerd

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/containerd/containerd/v2/client"
)

// Paths on the node.
const (
	Socket     = "/run/containerd/containerd.sock"
	ConfigPath = "/etc/containerd/config.toml"
	CertsDir   = "/etc/containerd/certs.d"
	Unit       = "containerd.service"
)

// Options shape the configuration.
type Options struct {
	// SandboxImage is the pause image, by its upstream name (certs.d sends the pull to the local registry).
	// Default registry.k8s.io/pause:3.10.
	SandboxImage string
	// SystemdCgroup selects the systemd cgroup driver, as kubelet's cgroupDriver: systemd needs. Default true.
	SystemdCgroup *bool
}

// ConfigTOML renders /etc/containerd/config.toml (containerd 2.x, config version 3).
func ConfigTOML(o Options) []byte {
	if o.SandboxImage == "" {
		o.SandboxImage = "registry.k8s.io/pause:3.10"
	}
	systemd := o.SystemdCgroup == nil || *o.SystemdCgroup
	return []byte(fmt.Sprintf(`# Written by wtctl (wutong-offline).
version = 3
root = "/var/lib/containerd"
state = "/run/containerd"

[grpc]
  address = %q

[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"

[plugins."io.containerd.cri.v1.images".pinned_images]
  sandbox = %q

[plugins."io.containerd.cri.v1.images".registry]
  config_path = %q

[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
  SystemdCgroup = %t

[plugins."io.containerd.cri.v1.runtime".cni]
  bin_dirs = ["/opt/cni/bin"]
  conf_dir = "/etc/cni/net.d"
`, Socket, o.SandboxImage, CertsDir, systemd))
}

// UnitFile is containerd's systemd unit, as upstream ships it, with the binary in /usr/local/bin.
func UnitFile() []byte {
	return []byte(`# Written by wtctl (wutong-offline).
[Unit]
Description=containerd container runtime
Documentation=https://containerd.io
After=network.target local-fs.target

[Service]
ExecStartPre=-/sbin/modprobe overlay
ExecStart=/usr/local/bin/containerd
Type=notify
Delegate=yes
KillMode=process
Restart=always
RestartSec=5
LimitNPROC=infinity
LimitCORE=infinity
TasksMax=infinity
OOMScoreAdjust=-999

[Install]
WantedBy=multi-user.target
`)
}

// Status is what the health check saw.
type Status struct {
	Version  string `json:"version"`
	Revision string `json:"revision,omitempty"`
	Serving  bool   `json:"serving"`
}

// Check asks containerd at address (default Socket) for its version and whether it is serving.
func Check(ctx context.Context, address string) (*Status, error) {
	if address == "" {
		address = Socket
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := client.New(address, client.WithTimeout(5*time.Second))
	if err != nil {
		return nil, fmt.Errorf("connect to containerd at %s: %w", address, err)
	}
	defer c.Close()
	v, err := c.Version(ctx)
	if err != nil {
		return nil, fmt.Errorf("containerd version: %w", err)
	}
	serving, err := c.IsServing(ctx)
	if err != nil {
		return nil, fmt.Errorf("containerd health: %w", err)
	}
	return &Status{Version: strings.TrimPrefix(v.Version, "v"), Revision: v.Revision, Serving: serving}, nil
}
