package pipeline

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/wutong-paas/wutong-offline/images/registry"
	"github.com/wutong-paas/wutong-offline/installer/cluster"
	"github.com/wutong-paas/wutong-offline/installer/engine"
	"github.com/wutong-paas/wutong-offline/installer/payload"
	"github.com/wutong-paas/wutong-offline/installer/preflight"
	"github.com/wutong-paas/wutong-offline/installer/remote"
)

// Where the registry lives on a registry host, and where every node finds the cluster CA.
const (
	CAPath          = "/etc/wutong/pki/ca.crt"
	registryCert    = "/etc/wutong/pki/registry.crt"
	registryKey     = "/etc/wutong/pki/registry.key"
	registryAuth    = "/etc/wutong/registry/htpasswd"
	registryRoot    = "/var/lib/wutong/registry"
	registryUnit    = "wutong-registry.service"
	registryUser    = "admin"
	registryPassLen = 24
)

// credentials are the cluster's PKI and registry login, kept in the workdir so that every run uses the same ones.
type credentials struct {
	caPEM, certPEM, keyPEM, htpasswd []byte
	user, password                   string
}

// credentials creates (once) and loads the cluster CA, the registry's server certificate and its htpasswd, under
// WORKDIR/pki and WORKDIR/registry. Secrets are 0600 in a 0700 directory.
func (in *Install) credentials(workdir string) (*credentials, error) {
	ca, err := in.clusterCA(workdir)
	if err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	c := in.Cluster
	hosts := []string{c.Spec.Registry.Domain}
	for _, h := range c.Registries() {
		hosts = addHosts(hosts, h.InternalAddress, h.Name, h.Address)
	}
	certPEM, keyPEM, err := serverCert(ca, filepath.Join(workdir, PKIDir), "registry", hosts)
	if err != nil {
		return nil, err
	}
	cr := &credentials{caPEM: ca.CertPEM, certPEM: certPEM, keyPEM: keyPEM, user: c.Spec.Registry.Username}
	if cr.user == "" {
		cr.user = registryUser
	}
	regDir := filepath.Join(workdir, "registry")
	if err := os.MkdirAll(regDir, 0o700); err != nil {
		return nil, err
	}
	cr.password = c.Spec.Registry.Password.Reveal()
	passFile := filepath.Join(regDir, "password")
	if cr.password == "" {
		b, err := os.ReadFile(passFile)
		if errors.Is(err, fs.ErrNotExist) {
			raw := make([]byte, registryPassLen/2)
			rand.Read(raw)
			b = []byte(hex.EncodeToString(raw))
			err = os.WriteFile(passFile, b, 0o600)
		}
		if err != nil {
			return nil, fmt.Errorf("registry password: %w", err)
		}
		cr.password = strings.TrimSpace(string(b))
	}
	// bcrypt hashes differ each time: keep the file, and write a new one only when the login changed.
	auth, login := filepath.Join(regDir, "htpasswd"), filepath.Join(regDir, "htpasswd.for")
	sum := sha256.Sum256([]byte(cr.password))
	want := cr.user + ":" + hex.EncodeToString(sum[:])
	if got, _ := os.ReadFile(login); string(got) != want {
		os.Remove(auth)
		if err := registry.WriteHtpasswd(auth, cr.user, cr.password); err != nil {
			return nil, err
		}
		if err := os.WriteFile(login, []byte(want), 0o600); err != nil {
			return nil, err
		}
	}
	if cr.htpasswd, err = os.ReadFile(auth); err != nil {
		return nil, err
	}
	return cr, nil
}

// registryUnitFile is the systemd unit that runs the registry, outside Kubernetes so that it outlives cluster
// trouble.
func registryUnitFile(port int) []byte {
	return []byte(`[Unit]
Description=Wutong offline image registry
After=network-online.target
Wants=network-online.target

[Service]
ExecStart=` + preflight.AgentPath + ` registry serve --root ` + registryRoot + ` --addr :` + strconv.Itoa(port) + ` --tls-cert ` + registryCert + ` --tls-key ` + registryKey + ` --htpasswd ` + registryAuth + ` --anonymous-pull
Restart=always
RestartSec=2
LimitNOFILE=65536

[Install]
WantedBy=multi-user.target
`)
}

// registryPhase runs the registry on the registry hosts: certificate, login, storage seeded straight from the
// payload's OCI layout, and a systemd unit, restarted only when its configuration changed.
type registryPhase struct{ in *Install }

func (registryPhase) Title() string { return "registry" }

func (p registryPhase) Run(ctx context.Context, env *engine.Env) error {
	cr, err := p.in.credentials(env.Workdir())
	if err != nil {
		return err
	}
	port := p.in.Cluster.Spec.Registry.Port
	unit := registryUnitFile(port)
	return env.EachHost(ctx, p.in.narrow(engine.WithRole(cluster.RoleRegistry)), func(ctx context.Context, n *engine.Node) error {
		changed := false
		for _, f := range []struct {
			path string
			data []byte
			mode fs.FileMode
		}{{CAPath, cr.caPEM, 0o644}, {registryCert, cr.certPEM, 0o644}, {registryKey, cr.keyPEM, 0o600}, {registryAuth, cr.htpasswd, 0o600}} {
			c, err := n.PutFile(ctx, f.path, f.data, f.mode)
			if err != nil {
				return err
			}
			changed = changed || c
		}
		inputs := struct {
			Layout string // the payload's index.json decides what the storage must hold
		}{Layout: indexDigest(p.in)}
		if inputs.Layout == "" {
			n.Logf("the bundle carries no images: the registry starts empty")
		} else if err := n.Step(ctx, "registry-seed", inputs, func(ctx context.Context) error {
			_, err := n.Exec(ctx, "seed the registry from "+payload.NodeRoot+"/oci", remote.Cmd{Sudo: true,
				Line: preflight.AgentPath + " registry seed --from " + payload.NodeRoot + "/oci --root " + registryRoot})
			return err
		}, engine.Simulate()); err != nil {
			return err
		}
		uc, err := n.Unit(ctx, registryUnit, unit)
		if err != nil {
			return err
		}
		return runService(ctx, n, registryUnit, "the registry", changed || uc)
	})
}

// reachablePhase gives every node the cluster CA and checks, from each node, that the registry answers over TLS at
// its cluster name.
type reachablePhase struct{ in *Install }

func (reachablePhase) Title() string { return "registry check" }

func (p reachablePhase) Run(ctx context.Context, env *engine.Env) error {
	cr, err := p.in.credentials(env.Workdir())
	if err != nil {
		return err
	}
	reg := p.in.Cluster.Spec.Registry
	url := "https://" + reg.Domain + ":" + strconv.Itoa(reg.Port) + "/healthz"
	return env.EachHost(ctx, p.in.narrow(nil), func(ctx context.Context, n *engine.Node) error {
		if _, err := n.PutFile(ctx, CAPath, cr.caPEM, 0o644); err != nil {
			return err
		}
		if n.DryRun() {
			return nil
		}
		err := waitFor(ctx, func(ctx context.Context) error {
			_, err := n.Query(ctx, remote.Cmd{Line: preflight.AgentPath + " node probe --ca " + CAPath + " " + url})
			return err
		})
		if err == nil || ctx.Err() != nil {
			return err
		}
		return engine.WithHint(fmt.Errorf("registry not reachable from %s at %s: %w", n.Name(), url, err),
			"check the registry host (systemctl status "+registryUnit+"), that /etc/hosts maps "+reg.Domain+", and that no firewall blocks port "+strconv.Itoa(reg.Port),
			"请检查镜像仓库主机（systemctl status "+registryUnit+"）、/etc/hosts 中 "+reg.Domain+" 的解析，以及防火墙是否放行端口 "+strconv.Itoa(reg.Port))
	})
}

// indexDigest identifies the payload's OCI layout by the sha256 of its index.json entry.
func indexDigest(in *Install) string {
	for _, e := range in.Manifest.Entries {
		if e.Path == "oci/index.json" {
			return e.SHA256
		}
	}
	return ""
}
