package main

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wutong-paas/wutong-offline/images/push"
	"github.com/wutong-paas/wutong-offline/platform/api"
	"github.com/wutong-paas/wutong-offline/platform/auth"
	"github.com/wutong-paas/wutong-offline/platform/client"
	"github.com/wutong-paas/wutong-offline/platform/deploy"
	"github.com/wutong-paas/wutong-offline/platform/kubetest"
	"github.com/wutong-paas/wutong-offline/platform/render"
	"github.com/wutong-paas/wutong-offline/platform/server"
	"github.com/wutong-paas/wutong-offline/platform/store"
	"github.com/wutong-paas/wutong-offline/platform/store/storetest"
)

// TestAppDeployCommands drives wtctl app install, status, upgrade (dry run and real), history, rollback, logs and
// uninstall against a real server (in-process, SQLite) deploying to a real control plane with kwok nodes.
func TestAppDeployCommands(t *testing.T) {
	// Syntax of the value flags is checked before anything else, even before login.
	for _, bad := range [][]string{
		{"--set", "web-LOG_LEVEL=debug"}, {"--set", "web.LOG-LEVEL=debug"}, {"--replicas", "web=many"},
		{"--replicas", "web"}, {"--domain", "web=shop.example.com"}, {"--domain", "web/http=Shop_Example"},
	} {
		_, errs, code := run(t, append([]string{"app", "install", "demo"}, bad...)...)
		if code != exitUsage || !strings.Contains(errs, bad[0]+" ") || !strings.Contains(errs, "such as") {
			t.Errorf("install %v: exit %d, want %d with a clear message\n%s", bad, code, exitUsage, errs)
		}
	}
	if _, errs, code := run(t, "app", "install", "demo", "--set", "web-LOG_LEVEL=debug"); !strings.Contains(errs, "COMPONENT.NAME=VALUE") || code != exitUsage {
		t.Fatalf("bad --set: exit %d\n%s", code, errs)
	}

	cp := kubetest.Start(t, kubetest.Options{Volumes: 8, NeverReady: render.LabelComponent + "=newcomer"})
	ctx := context.Background()
	dir := t.TempDir()
	st, err := store.Open(ctx, "sqlite:"+filepath.Join(dir, "store.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	srv, err := server.New(ctx, server.Options{DataDir: filepath.Join(dir, "data"), Store: st,
		Registry:      push.Options{Target: "127.0.0.1:1", InsecureHTTP: true},
		AdminPassword: "cli-Admin-pw-1", Hasher: auth.Hasher{Time: 1, MemoryKiB: 1024, Threads: 1},
		Deploy: deploy.Options{Clusters: []deploy.Cluster{{Name: "local", Config: cp.Config}}, ComponentTimeout: 20 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { ts.Close(); srv.Close() })
	team, err := st.TeamByName(ctx, "default")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"1.0.0", "2.0.0", "3.0.0"} {
		storetest.RecordAppFile(t, st, team.ID, filepath.Join("testdata", "demo-"+v+".yaml"))
	}
	old := client.WaitInterval
	client.WaitInterval = 250 * time.Millisecond
	t.Cleanup(func() { client.WaitInterval = old })
	t.Setenv("WUTONG_CONFIG", filepath.Join(dir, "home", "config.json"))
	t.Setenv("WTCTL_LANG", "en")
	mustRunStdin(t, "cli-Admin-pw-1\n", "app", "login", ts.URL, "--user", "admin", "--password-stdin")

	// install --wait, as JSON
	out, errs, code := run(t, "app", "install", "demo", "--version", "1.0.0", "--replicas", "web=1", "--set", "web.LOG_LEVEL=debug", "-o", "json")
	if code != 0 {
		t.Fatalf("install: exit %d\n%s\n%s", code, out, errs)
	}
	var res changeResult
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.Install.State != api.StateReady || res.Install.Version != "1.0.0" ||
		res.Revision.Number != 1 || res.Revision.Outcome != "succeeded" || res.Status == nil || len(res.Status.Components) != 4 {
		t.Fatalf("install -o json: %v\n%s", err, out)
	}
	if res.Revision.Values.Replicas["web"] != 1 || res.Revision.Values.Env["web"]["LOG_LEVEL"] != "debug" {
		t.Fatalf("install values: %+v", res.Revision.Values)
	}
	if _, errs, code := run(t, "app", "install", "demo", "--version", "1.0.0"); code == 0 || !strings.Contains(errs, "demo") {
		t.Fatalf("second install of the same name: exit %d\n%s", code, errs)
	}

	// status: one install, and the list
	out = mustRun(t, "app", "status", "demo")
	for _, want := range []string{"Install demo", "State: ready", "components ready 4/4", "COMPONENT", "web", "kv", "front", "old", "POD", "Running"} {
		if !strings.Contains(out, want) {
			t.Fatalf("status lacks %q:\n%s", want, out)
		}
	}
	if out := mustRun(t, "app", "status"); !strings.Contains(out, "INSTALL") || !strings.Contains(out, "demo") || !strings.Contains(out, "ready") {
		t.Fatalf("status list:\n%s", out)
	}

	// upgrade --dry-run: the per-component diff and the verdicts; nothing changes
	out, errs, code = run(t, "app", "upgrade", "demo", "--version", "2.0.0", "--dry-run")
	if code != 0 {
		t.Fatalf("dry run: exit %d\n%s\n%s", code, out, errs)
	}
	for _, want := range []string{"demo: 1.0.0 → 2.0.0", "component portal (renamed from front", "+ component extra", "- component old", "objects accepted", "Nothing was changed"} {
		if !strings.Contains(out, want) {
			t.Fatalf("dry run lacks %q:\n%s", want, out)
		}
	}
	if in, err := srvInstall(t, "demo"); err != nil || in.Version != "1.0.0" || in.Revision != 1 {
		t.Fatalf("the dry run changed the install: %+v %v", in, err)
	}

	// upgrade --wait
	out, errs, code = run(t, "app", "upgrade", "demo", "--version", "2.0.0")
	if code != 0 || !strings.Contains(out, "Install demo (team default) is ready: demo 2.0.0, revision 2") || !strings.Contains(errs, "components ready") {
		t.Fatalf("upgrade: exit %d\n%s\n%s", code, out, errs)
	}

	// history
	out = mustRun(t, "app", "history", "demo")
	if !strings.Contains(out, "REVISION") || !strings.Contains(out, "2 (deployed)") || !strings.Contains(out, "upgrade") || !strings.Contains(out, "install") ||
		strings.Count(out, "succeeded") != 2 {
		t.Fatalf("history:\n%s", out)
	}
	var revs []api.Revision
	if err := json.Unmarshal([]byte(mustRun(t, "app", "history", "demo", "-o", "json")), &revs); err != nil || len(revs) != 2 {
		t.Fatalf("history -o json: %v %+v", err, revs)
	}

	// rollback --wait to revision 1
	out, errs, code = run(t, "app", "rollback", "demo", "--revision", "1")
	if code != 0 || !strings.Contains(out, "is ready: demo 1.0.0, revision 3") || !strings.Contains(errs, "rollback to revision 1") {
		t.Fatalf("rollback: exit %d\n%s\n%s", code, out, errs)
	}
	if out := mustRun(t, "app", "status", "demo"); !strings.Contains(out, "old") || strings.Contains(out, "portal") {
		t.Fatalf("status after the rollback:\n%s", out)
	}

	// an upgrade whose new component never becomes ready fails and is rolled back: exit 1, saying so; meanwhile
	// another change is refused with a hint
	type result struct {
		out, errs string
		code      int
	}
	done := make(chan result, 1)
	go func() {
		out, errs, code := run(t, "app", "upgrade", "demo", "--version", "3.0.0")
		done <- result{out, errs, code}
	}()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if in, err := srvInstall(t, "demo"); err == nil && in.Revision == 4 {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("the upgrade to 3.0.0 did not start: %+v %v", in, err)
		}
	}
	if _, errs, code := run(t, "app", "upgrade", "demo", "--version", "2.0.0"); code == 0 || !strings.Contains(errs, "HTTP 409") || !strings.Contains(errs, "wtctl app status demo") {
		t.Fatalf("upgrade during another change: exit %d\n%s", code, errs)
	}
	r := <-done
	t.Logf("wtctl app upgrade demo --version 3.0.0:\n%s", r.errs)
	if r.code != exitError || !strings.Contains(r.errs, "revision 4 of install demo (upgrade to 3.0.0) failed and was rolled back") ||
		!strings.Contains(r.errs, "revision 5 put back revision 3") || !strings.Contains(r.errs, "wtctl app history demo") || !strings.Contains(r.errs, "newcomer") {
		t.Fatalf("failed upgrade: exit %d\n%s\n%s", r.code, r.out, r.errs)
	}
	if out := mustRun(t, "app", "history", "demo"); !strings.Contains(out, "auto-rollback (from 3)") || !strings.Contains(out, "revision 4 (failed): ") ||
		!strings.Contains(out, "5 (deployed)") {
		t.Fatalf("history after the failed upgrade:\n%s", out)
	}

	// logs of a component the install does not have
	if _, errs, code := run(t, "app", "logs", "demo", "nosuch"); code == 0 || !strings.Contains(errs, "nosuch") {
		t.Fatalf("logs of an unknown component: exit %d\n%s", code, errs)
	}

	// uninstall: --delete-data needs --yes without a terminal; without it the volumes are kept and listed
	if _, errs, code := run(t, "app", "uninstall", "demo", "--delete-data"); code != exitUsage || !strings.Contains(errs, "--yes") {
		t.Fatalf("uninstall --delete-data without --yes: exit %d\n%s", code, errs)
	}
	out = mustRun(t, "app", "uninstall", "demo", "--yes")
	if !strings.Contains(out, "Uninstalled demo") || !strings.Contains(out, "volumes are kept") || !strings.Contains(out, "kubectl -n ") {
		t.Fatalf("uninstall:\n%s", out)
	}
	if out := mustRun(t, "app", "status"); strings.Contains(out, "demo") {
		t.Fatalf("status after uninstall:\n%s", out)
	}
}

// srvInstall asks the server directly, as the logged-in user.
func srvInstall(t *testing.T, name string) (api.Install, error) {
	t.Helper()
	cl, _, err := appClient()
	if err != nil {
		return api.Install{}, err
	}
	return cl.Install(context.Background(), "default", name)
}
