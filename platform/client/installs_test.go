package client

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wutong-paas/wutong-offline/platform/api"
)

// TestInstallRequests checks paths (escaped), queries and bodies against a fake server; the real server is driven by
// cmd/wtctl's TestAppDeployCommands.
func TestInstallRequests(t *testing.T) {
	var polls atomic.Int32
	mux := http.NewServeMux()
	reply := func(w http.ResponseWriter, code int, v any) {
		w.Header().Set("Content-Type", api.MediaJSON)
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(v)
	}
	mux.HandleFunc("POST /api/v1/teams/{team}/installs/{install}/upgrade", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("team") != "a b" || r.URL.EscapedPath() != "/api/v1/teams/a%20b/installs/x%2Fy/upgrade" {
			t.Errorf("path %s", r.URL.EscapedPath())
		}
		var in api.Upgrade
		json.NewDecoder(r.Body).Decode(&in)
		if in.DryRun {
			reply(w, 200, api.Plan{Install: r.PathValue("install"), ToVersion: in.Version, Accepted: true})
			return
		}
		reply(w, 202, api.Change{Install: api.Install{Name: r.PathValue("install"), State: api.StateDeploying, Revision: 2}, Revision: api.Revision{Number: 2}})
	})
	mux.HandleFunc("GET /api/v1/teams/t/installs/x/status", func(w http.ResponseWriter, r *http.Request) {
		n := polls.Add(1)
		st := api.InstallStatus{Install: api.Install{Name: "x", State: api.StateDeploying, Revision: 2}}
		switch {
		case n == 2:
			reply(w, 502, api.Problem{Status: 502, Title: "Bad gateway"}) // a hiccup is let pass
			return
		case n >= 4:
			st.Install.State = api.StateReady
		}
		reply(w, 200, st)
	})
	mux.HandleFunc("GET /api/v1/teams/t/installs/x/logs", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("component") != "web" || q.Get("pod") != "p1" || q.Get("follow") != "true" || q.Get("tail") != "5" {
			t.Errorf("logs query %s", r.URL.RawQuery)
		}
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte("line 1\n"))
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	mux.HandleFunc("DELETE /api/v1/teams/t/installs/x", func(w http.ResponseWriter, r *http.Request) {
		kept := []string{"data-kv-0"}
		if r.URL.Query().Get("deleteData") == "true" {
			kept = []string{}
		}
		reply(w, 200, api.Uninstalled{Install: "x", KeptVolumes: kept})
	})
	ts := httptest.NewServer(mux)
	defer ts.Close()
	c, err := New(Options{Server: ts.URL, Token: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if p, err := c.PlanUpgrade(ctx, "a b", "x/y", api.Upgrade{Version: "2.0.0"}); err != nil || p.ToVersion != "2.0.0" || !p.Accepted {
		t.Fatalf("plan: %+v %v", p, err)
	}
	if ch, err := c.Upgrade(ctx, "a b", "x/y", api.Upgrade{Version: "2.0.0", DryRun: true}); err != nil || ch.Revision.Number != 2 {
		t.Fatalf("upgrade: %+v %v", ch, err)
	}

	old := WaitInterval
	WaitInterval = 10 * time.Millisecond
	defer func() { WaitInterval = old }()
	seen := 0
	st, err := c.WaitInstall(ctx, "t", "x", 2, func(api.InstallStatus) { seen++ })
	if err != nil || st.Install.State != api.StateReady || seen != 3 {
		t.Fatalf("wait: %+v %v (saw %d)", st, err, seen)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := c.WaitInstall(short, "t", "x", 3, nil); err != context.DeadlineExceeded {
		t.Fatalf("wait for a later revision: %v", err)
	}

	var buf bytes.Buffer
	lctx, lcancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer lcancel()
	err = c.Logs(lctx, "t", "x", LogOptions{Component: "web", Pod: "p1", Follow: true, Tail: 5}, &buf)
	if err != context.DeadlineExceeded || buf.String() != "line 1\n" {
		t.Fatalf("logs: %q %v", buf.String(), err)
	}

	if un, err := c.Uninstall(ctx, "t", "x", false); err != nil || len(un.KeptVolumes) != 1 {
		t.Fatalf("uninstall: %+v %v", un, err)
	}
	if un, err := c.Uninstall(ctx, "t", "x", true); err != nil || len(un.KeptVolumes) != 0 {
		t.Fatalf("uninstall --delete-data: %+v %v", un, err)
	}
	if _, err := c.Status(ctx, "t", "nope"); !IsNotFound(err) {
		t.Fatalf("missing install: %v", err)
	}
}
