//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/wutong-paas/wutong-offline/bundle"
	"github.com/wutong-paas/wutong-offline/bundle/build"
	"github.com/wutong-paas/wutong-offline/images"
	"github.com/wutong-paas/wutong-offline/images/imagestest"
	"github.com/wutong-paas/wutong-offline/installer/labtest"
	"github.com/wutong-paas/wutong-offline/platform/api"
	"github.com/wutong-paas/wutong-offline/platform/appkg"
	"github.com/wutong-paas/wutong-offline/platform/client"
)

// platformImage is the name the e2e bundle carries the platform under.
const platformImage = "ghcr.io/wutong-paas/wutong:e2e"

// buildBundle builds the from-source bundle of out/bundle.yaml plus the platform image, made from a wutong binary
// built now, and signs it with key. It returns the archive.
func buildBundle(t *testing.T, out, tmp, key string) string {
	t.Helper()
	wutong := filepath.Join(tmp, "wutong-amd64")
	run(t, "go", "build", "-trimpath", "-o", wutong, "./cmd/wutong")
	data, err := os.ReadFile(filepath.Join(out, "bundle.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	item := "images:\n  - name: " + platformImage + "\n    arches: [amd64]\n    binaries:\n      path: " +
		filepath.Join(tmp, "wutong-{arch}") + "\n      target: /usr/local/bin/wutong\n      entrypoint: [/usr/local/bin/wutong]\n"
	text := strings.Replace(string(data), "\nimages:\n", "\n"+item, 1)
	if text == string(data) {
		t.Fatalf("%s/bundle.yaml has no images: list", out)
	}
	// Parsed as if it were out/bundle.yaml, so its relative paths still resolve there.
	spec, err := build.ParseSpec([]byte(text), filepath.Join(out, "bundle.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	priv, err := bundle.LoadPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	res, err := build.Build(context.Background(), build.Options{Spec: spec, OutDir: tmp, Key: priv, Force: true})
	if err != nil {
		t.Fatal(err)
	}
	return res.Archive
}

// checkPlatform logs in to the platform the install deployed, over HTTPS trusting the cluster CA from the workdir,
// checks that its session cookie is Secure and that plain HTTP does not log in, imports a small signed package
// through the API, and checks that its image landed in the cluster registry.
func checkPlatform(t *testing.T, l *labtest.Lab, cp labtest.Host, installLog, workdir, releaseKey string) {
	t.Helper()
	url := "https://" + cp.IP + ":30080"
	caFile := filepath.Join(workdir, "pki", "ca.crt")
	if !strings.Contains(installLog, "Wutong platform: "+url) {
		t.Errorf("the summary does not give the platform's URL %s:\n%s", url, installLog)
	}
	if login := "wtctl app login " + url + " --user admin --ca-cert " + caFile; !strings.Contains(installLog, login) {
		t.Errorf("the summary does not give the login command %q:\n%s", login, installLog)
	}
	ca, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		t.Fatalf("no certificate in %s", caFile)
	}
	kubectl := "kubectl --kubeconfig /etc/kubernetes/admin.conf "
	password := strings.TrimSpace(l.SSH(t, cp, kubectl+"-n wutong-system get secret wutong-admin -o jsonpath='{.data.password}' | base64 -d"))
	if len(password) < 16 {
		t.Fatalf("admin password from the secret: %q", password)
	}
	c, err := client.New(client.Options{Server: url, CACert: caFile})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Minute)
	defer cancel()
	if _, err := c.Login(ctx, "admin", password); err != nil {
		t.Fatalf("log in to the platform over HTTPS: %v\n%s", err, l.SSH(t, cp, kubectl+"-n wutong-system logs deploy/wutong --tail=50"))
	}

	// The session cookie of a login is Secure (and HttpOnly), asked trusting the cluster CA only.
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	body, _ := json.Marshal(api.Login{Username: "admin", Password: password})
	req, err := http.NewRequestWithContext(ctx, "POST", url+api.Prefix+"/login", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", api.MediaJSON)
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatalf("log in over HTTPS with the cluster CA only: %v", err)
	}
	resp.Body.Close()
	var session *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == api.SessionCookie {
			session = ck
		}
	}
	switch {
	case resp.StatusCode != http.StatusOK:
		t.Errorf("login over HTTPS: %s", resp.Status)
	case session == nil:
		t.Errorf("the login set no %s cookie: %v", api.SessionCookie, resp.Header.Values("Set-Cookie"))
	case !session.Secure || !session.HttpOnly:
		t.Errorf("session cookie %q: Secure %v HttpOnly %v, want both", session.Raw, session.Secure, session.HttpOnly)
	}

	// Plain HTTP on the same port does not log in: the HTTPS server answers 400, or the connection fails.
	plain, err := client.New(client.Options{Server: "http://" + cp.IP + ":30080"})
	if err != nil {
		t.Fatal(err)
	}
	if s, err := plain.Login(ctx, "admin", password); err == nil {
		t.Errorf("plain http:// on port 30080 logged in (token %t): the platform must serve HTTPS only", s.Token != "")
	} else {
		t.Logf("plain HTTP refused: %v", err)
	}

	// A small package, signed with the release key (the platform trusts the bundle's signer).
	dir := t.TempDir()
	layout, err := images.CreateLayout(filepath.Join(dir, "layout"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := layout.Append(ctx, "example.com/e2e/hello:1.0", imagestest.RandomIndex(t, []string{"amd64"}, 1, 1, 1<<20), nil); err != nil {
		t.Fatal(err)
	}
	appFile := filepath.Join(dir, "app.yaml")
	os.WriteFile(appFile, []byte("apiVersion: wutong.io/v1alpha1\nkind: App\nkey: hello\nversion: 1.0.0\ncomponents:\n  - name: hello\n    image: example.com/e2e/hello:1.0\n"), 0o644)
	priv, err := bundle.LoadPrivateKey(releaseKey)
	if err != nil {
		t.Fatal(err)
	}
	info, err := appkg.Build(ctx, appkg.BuildOptions{AppFile: appFile, OutDir: dir, Layouts: []string{string(layout)}, Key: priv, Arches: []string{"amd64"}})
	if err != nil {
		t.Fatal(err)
	}
	im, err := c.StartImport(ctx, info.Path, client.ImportOptions{})
	if err != nil {
		t.Fatalf("import through the API: %v", err)
	}
	if im, err = c.WaitImport(ctx, im.ID, time.Second, nil); err != nil || im.State != api.ImportDone {
		t.Fatalf("import: %+v %v\n%s", im, err, l.SSH(t, cp, kubectl+"-n wutong-system logs deploy/wutong --tail=50"))
	}
	vs, err := c.Versions(ctx, "hello")
	if err != nil || len(vs) != 1 || len(vs[0].Images) != 1 || vs[0].Images[0].Digest != info.Images[0].Digest {
		t.Fatalf("versions: %+v %v", vs, err)
	}
	// The image is in the cluster registry, by digest (asked by the registry host's address, which its certificate
	// names, trusting the cluster CA from the workdir).
	target := vs[0].Images[0].Target
	repo := strings.Replace(target[:strings.LastIndex(target, ":")], "registry.wutong.local:5443", cp.IP+":5443", 1)
	ref, err := name.ParseReference(repo + "@" + vs[0].Images[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := remote.Head(ref, remote.WithTransport(tr), remote.WithContext(ctx)); err != nil {
		t.Fatalf("the imported image is not in the cluster registry: %v", err)
	}
	t.Logf("platform: imported %s %s, image %s", im.App, im.Version, target)

	checkApps(t, l, cp, c, releaseKey)
}
