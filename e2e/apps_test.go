//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wutong-paas/wutong-offline/bundle"
	"github.com/wutong-paas/wutong-offline/images"
	"github.com/wutong-paas/wutong-offline/installer/labtest"
	"github.com/wutong-paas/wutong-offline/platform/api"
	"github.com/wutong-paas/wutong-offline/platform/appkg"
	"github.com/wutong-paas/wutong-offline/platform/client"
)

// appYAML is the e2e app: a web component reached through the cluster's ingress controller, and a key-value store
// with a volume that web reaches through the connection info it is given. WEB_TAG picks web's image.
const appYAML = `apiVersion: wutong.io/v1alpha1
kind: App
key: e2e-kv
version: VERSION
components:
  - name: web
    image: example.com/e2e/web:WEB_TAG
    ports: [{port: 8080, protocol: http, expose: external, domain: kv.e2e.test}]
    probes:
      readiness: {http: {port: 8080, path: /healthz}, periodSeconds: 2}
    dependsOn: [kv]
  - name: kv
    kind: stateful
    image: example.com/e2e/kv:1.0
    ports: [{port: 6379}]
    connectionInfo: [{name: KV_ADDR, value: "kv:6379"}]
    volumes: [{name: data, mountPath: /data, size: 1Gi}]
    probes:
      readiness: {http: {port: 6379, path: /healthz}, periodSeconds: 2}
`

// checkApps runs the app lifecycle on the VM cluster through the platform's API: import three versions of a
// two-component app built from Go, install it and write data through its ingress, upgrade (the data stays), upgrade
// to a version that never becomes ready (rolled back automatically), read a component's logs, and uninstall (the
// volume stays).
func checkApps(t *testing.T, l *labtest.Lab, cp labtest.Host, c *client.Client, releaseKey string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 45*time.Minute)
	defer cancel()
	dir := t.TempDir()
	kubectl := "kubectl --kubeconfig /etc/kubernetes/admin.conf "
	platformLogs := func() string {
		return l.SSH(t, cp, kubectl+"-n wutong-system logs deploy/wutong --tail=40; "+kubectl+"-n wt-default get pods,pvc,ingress -o wide; "+
			kubectl+"-n wt-default get events --sort-by=.lastTimestamp | tail -20")
	}

	// The images: web and kv from Go, the web image in three versions (the third's readiness check fails).
	for _, b := range []string{"web", "kv"} {
		run(t, "env", "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64", "go", "build", "-trimpath", "-o", filepath.Join(dir, b+"-amd64"), "./e2e/apps/"+b)
	}
	layout, err := images.CreateLayout(filepath.Join(dir, "layout"))
	if err != nil {
		t.Fatal(err)
	}
	for _, im := range []struct {
		name, bin string
		env       []string
	}{
		{"example.com/e2e/kv:1.0", "kv", nil},
		{"example.com/e2e/web:1.0", "web", []string{"VERSION=1.0.0"}},
		{"example.com/e2e/web:2.0", "web", []string{"VERSION=2.0.0"}},
		{"example.com/e2e/web:3.0", "web", []string{"VERSION=3.0.0", "NOT_READY=1"}},
	} {
		idx, err := images.Resolve(ctx, images.Source{Binaries: &images.BinariesSource{Path: filepath.Join(dir, im.bin+"-{arch}"),
			Target: "/usr/local/bin/" + im.bin, Env: im.env}}, []string{"amd64"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := layout.Append(ctx, im.name, idx, nil); err != nil {
			t.Fatal(err)
		}
	}
	priv, err := bundle.LoadPrivateKey(releaseKey)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []struct{ version, tag string }{{"1.0.0", "1.0"}, {"2.0.0", "2.0"}, {"3.0.0", "3.0"}} {
		vdir := filepath.Join(dir, v.version)
		os.MkdirAll(vdir, 0o755)
		appFile := filepath.Join(vdir, "app.yaml")
		os.WriteFile(appFile, []byte(strings.NewReplacer("VERSION", v.version, "WEB_TAG", v.tag).Replace(appYAML)), 0o644)
		info, err := appkg.Build(ctx, appkg.BuildOptions{AppFile: appFile, OutDir: vdir, Layouts: []string{string(layout)}, Key: priv, Arches: []string{"amd64"}})
		if err != nil {
			t.Fatal(err)
		}
		im, err := c.StartImport(ctx, info.Path, client.ImportOptions{})
		if err == nil {
			im, err = c.WaitImport(ctx, im.ID, time.Second, nil)
		}
		if err != nil || im.State != api.ImportDone {
			t.Fatalf("import %s: %+v %v\n%s", v.version, im, err, platformLogs())
		}
	}

	// Install 1.0.0 and write through the ingress (Traefik on the nodes' port 80, by host name).
	const team, name = "default", "e2e-kv"
	wait := func(what string, rev int) api.InstallStatus {
		t.Helper()
		st, err := c.WaitInstall(ctx, team, name, rev, nil)
		if err != nil {
			t.Fatalf("%s: %v\n%s", what, err, platformLogs())
		}
		return st
	}
	ch, err := c.CreateInstall(ctx, team, api.NewInstall{App: name, Version: "1.0.0"})
	if err != nil {
		t.Fatalf("install: %v\n%s", err, platformLogs())
	}
	if st := wait("install", ch.Revision.Number); st.Install.State != api.StateReady {
		t.Fatalf("install ended %s: %s\n%s", st.Install.State, st.Install.Message, platformLogs())
	}
	web := func(method, path, body string) (int, string) {
		req, _ := http.NewRequestWithContext(ctx, method, "http://"+cp.IP+path, strings.NewReader(body))
		req.Host = "kv.e2e.test"
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(b))
	}
	expect := func(method, path, body string, code int, want string) {
		t.Helper()
		var got string
		var status int
		for deadline := time.Now().Add(3 * time.Minute); time.Now().Before(deadline); time.Sleep(2 * time.Second) {
			if status, got = web(method, path, body); status == code && (want == "" || got == want) {
				return
			}
		}
		t.Fatalf("%s %s through the ingress: %d %q, want %d %q\n%s", method, path, status, got, code, want, platformLogs())
	}
	expect("GET", "/", "", 200, "web 1.0.0")
	expect("PUT", "/data/greeting", "kept across versions", 200, "")
	expect("GET", "/data/greeting", "", 200, "kept across versions")

	// 2.0.0: the data is still there.
	ch, err = c.Upgrade(ctx, team, name, api.Upgrade{Version: "2.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	if st := wait("upgrade to 2.0.0", ch.Revision.Number); st.Install.State != api.StateReady || st.Install.Version != "2.0.0" {
		t.Fatalf("upgrade ended %s %s: %s", st.Install.State, st.Install.Version, st.Install.Message)
	}
	expect("GET", "/", "", 200, "web 2.0.0")
	expect("GET", "/data/greeting", "", 200, "kept across versions")

	// 3.0.0 never becomes ready: it is rolled back to 2.0.0 automatically, and says why.
	ch, err = c.Upgrade(ctx, team, name, api.Upgrade{Version: "3.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	st := wait("upgrade to 3.0.0", ch.Revision.Number)
	if st.Install.State != api.StateRolledBack || st.Install.Version != "2.0.0" {
		t.Fatalf("the failing upgrade ended %s %s: %s\n%s", st.Install.State, st.Install.Version, st.Install.Message, platformLogs())
	}
	revs, err := c.Revisions(ctx, team, name)
	if err != nil {
		t.Fatal(err)
	}
	if len(revs) != 4 || revs[0].Reason != "auto-rollback" || revs[1].Outcome != "failed" || !strings.Contains(revs[1].Message, "not ready") {
		t.Fatalf("history after the failed upgrade: %+v", revs)
	}
	t.Logf("the failed upgrade's message: %s", revs[1].Message)
	expect("GET", "/", "", 200, "web 2.0.0")
	expect("GET", "/data/greeting", "", 200, "kept across versions")

	// The logs of kv, from the kubelet, through the platform.
	var logs bytes.Buffer
	if err := c.Logs(ctx, team, name, client.LogOptions{Component: "kv", Tail: 100}, &logs); err != nil || !strings.Contains(logs.String(), "stored greeting") {
		t.Errorf("kv's logs: %v\n%s", err, logs.String())
	}

	// Uninstall keeps the volume.
	gone, err := c.Uninstall(ctx, team, name, false)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(gone.KeptVolumes) != "[data-kv-0]" {
		t.Errorf("kept volumes: %v", gone.KeptVolumes)
	}
	if out := l.SSH(t, cp, kubectl+"-n wt-default get pvc data-kv-0 -o jsonpath='{.status.phase}'"); out != "Bound" {
		t.Errorf("the volume after uninstall: %q", out)
	}
	t.Logf("apps: installed, upgraded, rolled back automatically and uninstalled %s", name)
}
