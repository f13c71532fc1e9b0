package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wutong-paas/wutong-offline/bundle"
	"github.com/wutong-paas/wutong-offline/platform/api"
	"github.com/wutong-paas/wutong-offline/platform/kubetest"
	"github.com/wutong-paas/wutong-offline/platform/store"
	"github.com/wutong-paas/wutong-offline/platform/store/storetest"
)

// TestDeployKilled kills the server for real (SIGKILL) right after it accepted an upgrade, while the upgrade is
// being applied and health-gated, then starts it again on the same data: it resumes the revision and finishes it,
// and no revision is left pending. A second upgrade sent while the first is pending is refused with 409.
func TestDeployKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills wutong serve subprocesses")
	}
	cp := kubetest.Start(t, kubetest.Options{Volumes: 8})
	ctx := context.Background()
	dir := t.TempDir()
	dataDir := filepath.Join(dir, "data")
	keyFile := filepath.Join(dir, "signer.pub")
	if _, err := bundle.GenerateKey(filepath.Join(dir, "signer.key"), keyFile); err != nil {
		t.Fatal(err)
	}
	// The versions are recorded straight into the server's store (their images are never pulled by kwok).
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	dsn := "sqlite:" + filepath.Join(dataDir, "wutong.db")
	st, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	team := store.Team{Name: "ops"}
	if err := st.CreateTeam(ctx, &team); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"1.0.0", "2.0.0"} {
		storetest.RecordAppFile(t, st, team.ID, filepath.Join("testdata", "demo-"+v+".yaml"))
	}
	st.Close()

	extra := []string{"--kubeconfig", cp.Kubeconfig, "--component-timeout", "30s"}
	srv := startServer(t, dataDir, dsn, "127.0.0.1:1", keyFile, extra...)
	c := login(t, srv.url)
	base := srv.url + api.Prefix + "/teams/ops/installs"
	var ch api.Change
	call(t, c.Token(), "POST", base, api.NewInstall{App: "demo", Version: "1.0.0"}, http.StatusAccepted, &ch)
	waitState(t, c.Token(), base+"/demo", 1, api.StateReady)

	call(t, c.Token(), "POST", base+"/demo/upgrade", api.Upgrade{Version: "2.0.0"}, http.StatusAccepted, &ch)
	if ch.Revision.Number != 2 || ch.Install.State != api.StateDeploying {
		t.Fatalf("upgrade answer: %+v", ch)
	}
	var prob api.Problem
	call(t, c.Token(), "POST", base+"/demo/upgrade", api.Upgrade{Version: "2.0.0"}, http.StatusConflict, &prob)
	srv.kill()

	st, err = store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	pend, err := st.PendingRevisions(ctx)
	st.Close()
	if err != nil || len(pend) != 1 || pend[0].Number != 2 {
		t.Fatalf("after the kill: pending %+v, %v (want revision 2)", pend, err)
	}

	srv = startServer(t, dataDir, dsn, "127.0.0.1:1", keyFile, extra...)
	c = login(t, srv.url)
	base = srv.url + api.Prefix + "/teams/ops/installs"
	status := waitState(t, c.Token(), base+"/demo", 2, api.StateReady)
	if status.Install.Version != "2.0.0" || status.Install.Deployed != 2 {
		t.Fatalf("after the restart: %+v", status.Install)
	}
	for _, comp := range status.Components {
		if comp.Ready != comp.Desired {
			t.Errorf("component %s: %d/%d ready", comp.Name, comp.Ready, comp.Desired)
		}
	}
	var revs []api.Revision
	call(t, c.Token(), "GET", base+"/demo/revisions", nil, http.StatusOK, &revs)
	for _, r := range revs {
		if r.Outcome == "pending" {
			t.Errorf("revision %d is still pending", r.Number)
		}
	}
	if len(revs) != 2 || revs[0].Outcome != "succeeded" {
		t.Errorf("history: %+v", revs)
	}
}

// call sends a JSON request and decodes the answer, which must have status want.
func call(t *testing.T, token, method, url string, body any, want int, out any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, rd)
	req.Header.Set("Authorization", "Bearer "+token)
	if body != nil {
		req.Header.Set("Content-Type", api.MediaJSON)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %d %s, want %d", method, url, resp.StatusCode, data, want)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, url, err, data)
		}
	}
}

// waitState polls the install's status until its revision `number` has ended in state.
func waitState(t *testing.T, token, url string, number int, state string) api.InstallStatus {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var st api.InstallStatus
		call(t, token, "GET", url+"/status", nil, http.StatusOK, &st)
		if st.Install.Revision >= number && st.Install.State != api.StateDeploying {
			if st.Install.State != state {
				t.Fatalf("install ended %s (%s), want %s", st.Install.State, st.Install.Message, state)
			}
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("install still %s after 2 min: %+v", st.Install.State, st.Install)
		}
		time.Sleep(300 * time.Millisecond)
	}
}
