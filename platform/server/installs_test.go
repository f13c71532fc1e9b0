package server

import (
	"context"
	"testing"
	"time"

	"github.com/wutong-paas/wutong-offline/platform/api"
	"github.com/wutong-paas/wutong-offline/platform/app"
	"github.com/wutong-paas/wutong-offline/platform/deploy"
	"github.com/wutong-paas/wutong-offline/platform/kubetest"
	"github.com/wutong-paas/wutong-offline/platform/store"
	"github.com/wutong-paas/wutong-offline/platform/store/storetest"
)

// TestInstallAuthz: members deploy into their own team, viewers read status and history only, other teams get 403,
// and a server without a cluster says so (503) once the caller is authorised.
func TestInstallAuthz(t *testing.T) {
	cp := kubetest.Start(t, kubetest.Options{})
	st := storetest.Open(t, store.DialectSQLite)
	e := newEnv(t, st, func(o *Options) {
		o.Deploy = deploy.Options{Clusters: []deploy.Cluster{{Name: deploy.LocalCluster, Config: cp.Config}}, ComponentTimeout: 20 * time.Second}
	})
	admin := e.client("admin", adminPassword)
	for _, u := range []string{"alice", "bob", "victor"} {
		doJSON(t, e, admin, "POST", "/users", `{"name":"`+u+`","password":"`+u+`-password"}`, 201, nil)
	}
	doJSON(t, e, admin, "POST", "/teams", `{"name":"red"}`, 201, nil)
	doJSON(t, e, admin, "POST", "/teams", `{"name":"blue"}`, 201, nil)
	doJSON(t, e, admin, "PUT", "/teams/red/members/alice", `{"role":"member"}`, 200, nil)
	doJSON(t, e, admin, "PUT", "/teams/blue/members/bob", `{"role":"member"}`, 200, nil)
	doJSON(t, e, admin, "PUT", "/teams/red/members/victor", `{"role":"viewer"}`, 200, nil)
	hello, err := app.Parse([]byte("apiVersion: wutong.io/v1alpha1\nkind: App\nkey: hello\nversion: 1.0.0\ncomponents:\n  - {name: web, image: example.com/hello:1.0, ports: [{port: 8080}]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	red, err := st.TeamByName(context.Background(), "red")
	if err != nil {
		t.Fatal(err)
	}
	storetest.RecordApp(t, st, red.ID, hello)
	alice, bob, victor := e.client("alice", "alice-password"), e.client("bob", "bob-password"), e.client("victor", "victor-password")

	// A viewer may not deploy; a member of another team may not, not even name the app.
	doJSON(t, e, victor, "POST", "/teams/red/installs", `{"app":"hello"}`, 403, nil)
	doJSON(t, e, bob, "POST", "/teams/red/installs", `{"app":"hello"}`, 403, nil)
	doJSON(t, e, bob, "POST", "/teams/blue/installs", `{"app":"hello"}`, 404, nil)
	doJSON(t, e, alice, "POST", "/teams/red/installs", `{"app":"hello","name":"Bad_Name"}`, 422, nil)

	var ch api.Change
	doJSON(t, e, alice, "POST", "/teams/red/installs", `{"app":"hello"}`, 202, &ch)
	if ch.Install.Namespace != "wt-red" || ch.Revision.Number != 1 {
		t.Fatalf("install: %+v", ch)
	}
	var st1 api.InstallStatus
	for deadline := time.Now().Add(time.Minute); ; {
		doJSON(t, e, victor, "GET", "/teams/red/installs/hello/status", ``, 200, &st1)
		if st1.Install.State != api.StateDeploying {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still deploying: %+v", st1)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if st1.State != api.StateReady || len(st1.Components) != 1 || st1.Components[0].Ready != 1 {
		t.Fatalf("status: %+v", st1)
	}
	// The viewer reads history; the other team reads nothing of it.
	var revs []api.Revision
	doJSON(t, e, victor, "GET", "/teams/red/installs/hello/revisions", ``, 200, &revs)
	if len(revs) != 1 || revs[0].Outcome != "succeeded" || revs[0].Reason != "install" {
		t.Fatalf("history: %+v", revs)
	}
	doJSON(t, e, victor, "POST", "/teams/red/installs/hello/upgrade", `{}`, 403, nil)
	doJSON(t, e, victor, "DELETE", "/teams/red/installs/hello", ``, 403, nil)
	for _, path := range []string{"/teams/red/installs/hello/status", "/teams/red/installs/hello/revisions", "/teams/red/installs/hello"} {
		doJSON(t, e, bob, "GET", path, ``, 403, nil)
	}
	doJSON(t, e, bob, "POST", "/teams/red/installs/hello/rollback", `{}`, 403, nil)
	var mine []api.Install
	doJSON(t, e, bob, "GET", "/installs", ``, 200, &mine)
	if len(mine) != 0 {
		t.Fatalf("bob sees %+v", mine)
	}
	doJSON(t, e, alice, "GET", "/installs", ``, 200, &mine)
	if len(mine) != 1 || mine[0].Name != "hello" {
		t.Fatalf("alice sees %+v", mine)
	}
	// A dry-run upgrade to the same version plans no change and changes nothing.
	var plan api.Plan
	doJSON(t, e, alice, "POST", "/teams/red/installs/hello/upgrade", `{"dryRun":true}`, 200, &plan)
	if !plan.Accepted || len(plan.Verdicts) == 0 {
		t.Fatalf("plan: %+v", plan)
	}
	// Nothing to roll back to yet.
	doJSON(t, e, alice, "POST", "/teams/red/installs/hello/rollback", `{}`, 422, nil)
	var gone api.Uninstalled
	doJSON(t, e, alice, "DELETE", "/teams/red/installs/hello", ``, 200, &gone)
	doJSON(t, e, alice, "GET", "/teams/red/installs/hello", ``, 404, nil)
}

// TestInstallNoCluster: a server without a cluster answers deploy operations 503, after checking the caller.
func TestInstallNoCluster(t *testing.T) {
	st := storetest.Open(t, store.DialectSQLite)
	e := newEnv(t, st, nil)
	admin := e.client("admin", adminPassword)
	doJSON(t, e, admin, "POST", "/users", `{"name":"bob","password":"bob-password"}`, 201, nil)
	doJSON(t, e, admin, "POST", "/teams", `{"name":"red"}`, 201, nil)
	bob := e.client("bob", "bob-password")
	doJSON(t, e, bob, "POST", "/teams/red/installs", `{"app":"hello"}`, 403, nil)
	doJSON(t, e, admin, "POST", "/teams/red/installs", `{"app":"hello"}`, 503, nil)
	var none []api.Install
	doJSON(t, e, admin, "GET", "/teams/red/installs", ``, 200, &none)
	if len(none) != 0 {
		t.Fatalf("%+v", none)
	}
}
