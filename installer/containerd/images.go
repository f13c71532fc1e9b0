package containerd

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"
	"github.com/containerd/platforms"

	"github.com/wutong-paas/wutong-offline/images"
)

// Namespace is where kubelet's images live (the CRI plugin's namespace).
const Namespace = "k8s.io"

// Import loads every image of the OCI layout at dir (as the payload puts it on a node: this arch's blobs only) into
// containerd's namespace ns for linux/arch, so that the control plane can start even when the registry is down.
// Images keep their upstream names (the layout's ref.name annotations). It streams the layout: memory stays small
// whatever the images weigh. Importing an image that is already there changes nothing.
func Import(ctx context.Context, address, dir, ns, arch string) ([]string, error) {
	c, err := connect(address)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	ctx = namespaces.WithNamespace(ctx, ns)
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(tarLayout(ctx, pw, dir)) }()
	imgs, err := c.Import(ctx, pr,
		client.WithImportPlatform(platforms.Only(platforms.MustParse("linux/"+arch))),
		client.WithSkipMissing(),
		client.WithImageLabels(map[string]string{"io.cri-containerd.image": "managed"}),
	)
	pr.CloseWithError(err)
	if err != nil {
		return nil, fmt.Errorf("import %s into containerd: %w", dir, err)
	}
	var names []string
	for _, img := range imgs {
		names = append(names, img.Name)
	}
	slices.Sort(names)
	return names, nil
}

// List returns the image names in containerd's namespace ns.
func List(ctx context.Context, address, ns string) ([]string, error) {
	c, err := connect(address)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	imgs, err := c.ImageService().List(namespaces.WithNamespace(ctx, ns))
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	names := []string{}
	for _, img := range imgs {
		names = append(names, img.Name)
	}
	slices.Sort(names)
	return names, nil
}

// tarLayout writes the OCI layout at dir as a tar stream: oci-layout, index.json, then every blob present.
func tarLayout(ctx context.Context, w io.Writer, dir string) error {
	tw := tar.NewWriter(w)
	add := func(rel string) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		f, err := os.Open(filepath.Join(dir, filepath.FromSlash(rel)))
		if err != nil {
			return err
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return err
		}
		if !st.Mode().IsRegular() {
			return fmt.Errorf("%s: not a regular file", rel)
		}
		if err := tw.WriteHeader(&tar.Header{Name: rel, Mode: 0o644, Size: st.Size(), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err = io.Copy(tw, f)
		return err
	}
	for _, rel := range []string{"oci-layout", "index.json"} {
		if err := add(rel); err != nil {
			return fmt.Errorf("read OCI layout %s: %w", dir, err)
		}
	}
	err := filepath.WalkDir(filepath.Join(dir, "blobs"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		return add(filepath.ToSlash(rel))
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("read OCI layout %s: %w", dir, err)
	}
	return tw.Close()
}

// Alias gives each image of names a second name in the local registry at host (images.LocalRef: the name the
// cluster's manifests use when kubeadm's imageRepository points at that registry), pointing at the same content.
// kubelet then finds those images already present and pulls nothing, even while the registry is down. An alias
// that already points at the image is left as is. It returns the alias names.
func Alias(ctx context.Context, address, ns, host string, names []string) ([]string, error) {
	c, err := connect(address)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	ctx = namespaces.WithNamespace(ctx, ns)
	is := c.ImageService()
	var out []string
	for _, n := range names {
		local, err := images.LocalRef(n, host)
		if err != nil {
			return out, fmt.Errorf("alias %s: %w", n, err)
		}
		if local == n {
			continue
		}
		img, err := is.Get(ctx, n)
		if err != nil {
			return out, fmt.Errorf("alias %s: %w", n, err)
		}
		alias := img
		alias.Name = local
		if cur, err := is.Get(ctx, local); err == nil {
			if cur.Target.Digest != img.Target.Digest {
				if _, err := is.Update(ctx, alias, "target", "labels"); err != nil {
					return out, fmt.Errorf("alias %s as %s: %w", n, local, err)
				}
			}
		} else if !errdefs.IsNotFound(err) {
			return out, fmt.Errorf("alias %s as %s: %w", n, local, err)
		} else if _, err := is.Create(ctx, alias); err != nil && !errdefs.IsAlreadyExists(err) {
			return out, fmt.Errorf("alias %s as %s: %w", n, local, err)
		}
		out = append(out, local)
	}
	return out, nil
}

// connect reaches containerd at address (Socket when empty).
func connect(address string) (*client.Client, error) {
	if address == "" {
		address = Socket
	}
	c, err := client.New(address)
	if err != nil {
		return nil, fmt.Errorf("connect to containerd at %s: %w", address, err)
	}
	return c, nil
}
