package server

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/wutong-paas/wutong-offline/bundle"
	"github.com/wutong-paas/wutong-offline/platform/api"
	"github.com/wutong-paas/wutong-offline/platform/appkg"
	"github.com/wutong-paas/wutong-offline/platform/store"
	"github.com/wutong-paas/wutong-offline/platform/store/storetest"
)

func TestAuthn(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newEnv(t, st, nil)
		ctx := context.Background()

		// No token: 401 with a challenge and problem+json.
		resp, err := http.Get(e.url + api.Prefix + "/apps")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") == "" || resp.Header.Get("Content-Type") != api.MediaProblem ||
			!strings.Contains(string(body), "log in first") {
			t.Fatalf("no token: %d %q %s", resp.StatusCode, resp.Header, body)
		}
		// A made-up token: 401.
		req, _ := http.NewRequest("GET", e.url+api.Prefix+"/me", nil)
		req.Header.Set("Authorization", "Bearer wtp_made_up")
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Fatalf("made-up token: %d", resp.StatusCode)
		}

		// Wrong password and unknown user get the same answer.
		_, err1 := e.anon().Login(ctx, "admin", "wrong-password")
		_, err2 := e.anon().Login(ctx, "nobody", "wrong-password")
		if problemStatus(err1) != 401 || problemStatus(err2) != 401 || err1.Error() != err2.Error() {
			t.Fatalf("wrong logins: %v / %v", err1, err2)
		}

		// The right password gives a token that works, as a bearer token and as the cookie.
		c := e.client("admin", adminPassword)
		me, err := c.Me(ctx)
		if err != nil || me.Name != "admin" || !me.Admin || len(me.Teams) != 1 || me.Teams[0].Team != "default" {
			t.Fatalf("me: %+v %v", me, err)
		}
		lr, _ := http.Post(e.url+api.Prefix+"/login", api.MediaJSON, strings.NewReader(`{"username":"admin","password":"`+adminPassword+`"}`))
		var cookie *http.Cookie
		for _, ck := range lr.Cookies() {
			if ck.Name == api.SessionCookie {
				cookie = ck
			}
		}
		lr.Body.Close()
		if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode {
			t.Fatalf("session cookie: %+v", cookie)
		}
		req, _ = http.NewRequest("GET", e.url+api.Prefix+"/me", nil)
		req.AddCookie(cookie)
		resp, err = http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("cookie: %v %v", resp.StatusCode, err)
		}
		resp.Body.Close()

		// Logout revokes the token.
		if err := c.Logout(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Me(ctx); problemStatus(err) != 401 {
			t.Fatalf("after logout: %v", err)
		}

		// API tokens: the secret is shown once, listed without it, and revocable.
		c = e.client("admin", adminPassword)
		var tok api.Token
		doJSON(t, e, c, "POST", "/tokens", `{"name":"ci","ttlHours":24}`, 201, &tok)
		if !strings.HasPrefix(tok.Secret, "wtp_") || tok.ExpiresAt == nil {
			t.Fatalf("token: %+v", tok)
		}
		var toks []api.Token
		doJSONToken(t, e, tok.Secret, "GET", "/tokens", "", 200, &toks)
		for _, x := range toks {
			if x.Secret != "" {
				t.Fatal("token list shows a secret")
			}
		}
		doJSONToken(t, e, tok.Secret, "DELETE", "/tokens/"+itoa(tok.ID), "", 204, nil)
		doJSONToken(t, e, tok.Secret, "GET", "/me", "", 401, nil)

		// Secrets never reach the log.
		logs := e.logs.String()
		for _, secret := range []string{adminPassword, "wrong-password", tok.Secret} {
			if strings.Contains(logs, secret) {
				t.Fatalf("the log holds a secret:\n%s", logs)
			}
		}
	})
}

func TestLoginRateLimit(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newEnv(t, st, nil)
		for i := range 5 {
			if _, err := e.anon().Login(context.Background(), "admin", "guess-"+itoa(int64(i))); problemStatus(err) != 401 {
				t.Fatalf("guess %d: %v", i, err)
			}
		}
		resp, err := http.Post(e.url+api.Prefix+"/login", api.MediaJSON, strings.NewReader(`{"username":"admin","password":"`+adminPassword+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		var p api.Problem
		json.NewDecoder(resp.Body).Decode(&p)
		resp.Body.Close()
		if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" || p.RetryAfter <= 0 {
			t.Fatalf("after 5 failures even the right password must wait: %d %+v", resp.StatusCode, p)
		}
	})
}

// TestAuthz: roles and teams decide; another team's resources are 403.
func TestAuthz(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newEnv(t, st, nil)
		admin := e.client("admin", adminPassword)
		for _, u := range []string{"alice", "bob", "victor"} {
			doJSON(t, e, admin, "POST", "/users", `{"name":"`+u+`","password":"`+u+`-password"}`, 201, nil)
		}
		doJSON(t, e, admin, "POST", "/teams", `{"name":"red"}`, 201, nil)
		doJSON(t, e, admin, "POST", "/teams", `{"name":"blue"}`, 201, nil)
		doJSON(t, e, admin, "PUT", "/teams/red/members/alice", `{"role":"team-admin"}`, 200, nil)
		doJSON(t, e, admin, "PUT", "/teams/blue/members/bob", `{"role":"member"}`, 200, nil)
		doJSON(t, e, admin, "PUT", "/teams/red/members/victor", `{"role":"viewer"}`, 200, nil)
		doJSON(t, e, admin, "PUT", "/teams/red/members/bob", `{"role":"owner"}`, 422, nil)

		alice, bob, victor := e.client("alice", "alice-password"), e.client("bob", "bob-password"), e.client("victor", "victor-password")

		// Only admins manage users and teams.
		doJSON(t, e, alice, "POST", "/users", `{"name":"mallory"}`, 403, nil)
		doJSON(t, e, alice, "GET", "/users", ``, 403, nil)
		doJSON(t, e, bob, "POST", "/teams", `{"name":"green"}`, 403, nil)
		// A team-admin manages her team, not another.
		doJSON(t, e, alice, "PUT", "/teams/red/members/bob", `{"role":"viewer"}`, 200, nil)
		doJSON(t, e, alice, "PUT", "/teams/blue/members/alice", `{"role":"member"}`, 403, nil)
		doJSON(t, e, bob, "PUT", "/teams/blue/members/victor", `{"role":"member"}`, 403, nil)
		doJSON(t, e, bob, "GET", "/teams/nosuchteam", ``, 403, nil)

		// Bob imports into blue; red cannot see it.
		pkg := buildPackage(t, "shop", "1.0.0", "", e.key)
		if _, err := importWait(t, bob, pkg, "blue"); err != nil {
			t.Fatal(err)
		}
		doJSON(t, e, bob, "GET", "/apps/shop/versions", ``, 200, nil)
		doJSON(t, e, alice, "GET", "/apps/shop", ``, 403, nil)
		doJSON(t, e, alice, "GET", "/apps/shop/versions/1.0.0", ``, 403, nil)
		doJSON(t, e, alice, "GET", "/apps/shop/versions/1.0.0/package", ``, 403, nil)
		apps, err := alice.Apps(context.Background())
		if err != nil || len(apps) != 0 {
			t.Fatalf("alice sees %v %v", apps, err)
		}
		var ims []api.Import
		doJSON(t, e, alice, "GET", "/imports", ``, 200, &ims)
		if len(ims) != 0 {
			t.Fatalf("alice sees blue's imports: %+v", ims)
		}
		bobImports, _ := bob.Imports(context.Background())
		doJSON(t, e, alice, "GET", "/imports/"+bobImports[0].ID, ``, 403, nil)

		// A viewer reads but does not import; importing into another team is refused.
		if _, err := importWait(t, victor, pkg, "red"); problemStatus(err) != 403 {
			t.Fatalf("viewer import: %v", err)
		}
		if _, err := importWait(t, alice, pkg, "blue"); problemStatus(err) != 403 {
			t.Fatalf("import into a foreign team: %v", err)
		}
		// The same app key from another team is a conflict, not a takeover; the answer does not name the owner.
		if _, err := importWait(t, alice, pkg, "red"); problemStatus(err) != 409 || !strings.Contains(err.Error(), "another team") || strings.Contains(err.Error(), "blue") {
			t.Fatalf("app key of another team: %v", err)
		}
		// Admin sees everything.
		apps, _ = admin.Apps(context.Background())
		if len(apps) != 1 || apps[0].Team != "blue" {
			t.Fatalf("admin apps: %+v", apps)
		}
	})
}

// TestImport: a signed package lands in the registry and the market; re-imports and bad packages behave.
func TestImport(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newEnv(t, st, nil)
		ctx := context.Background()
		c := e.client("admin", adminPassword)
		pkg := buildPackage(t, "shop", "1.0.0", "", e.key)
		info, err := appkg.Verify(ctx, pkg, bundle.ReadOptions{Keys: nil, InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		im, err := importWait(t, c, pkg, "")
		if err != nil {
			t.Fatal(err)
		}
		if im.State != api.ImportDone || im.App != "shop" || im.Version != "1.0.0" || im.Unchanged || im.Received != fileSize(t, pkg) {
			t.Fatalf("import: %+v", im)
		}
		apps, err := c.Apps(ctx)
		if err != nil || len(apps) != 1 || apps[0].Key != "shop" || apps[0].LatestVersion != "1.0.0" || apps[0].Name != "Demo shop" {
			t.Fatalf("apps: %+v %v", apps, err)
		}
		v, err := c.Version(ctx, "shop", "1.0.0")
		if err != nil || v.ContentDigest != info.ContentDigest || v.PackageDigest != info.PackageDigest || len(v.Images) != 2 || v.Model == nil {
			t.Fatalf("version: %+v %v", v, err)
		}
		// Every image is in the registry under apps/<key>/…, by the package's digest.
		for _, img := range v.Images {
			if !strings.HasPrefix(img.Target, e.registry+"/apps/shop/example.com/shop/") {
				t.Fatalf("target %s", img.Target)
			}
			want := ""
			for _, bi := range info.Images {
				if bi.Name == img.Name {
					want = bi.Digest
				}
			}
			ref, _ := name.ParseReference(img.Target)
			desc, err := remote.Head(ref)
			if err != nil || desc.Digest.String() != want || img.Digest != want {
				t.Fatalf("registry has %s at %v (err %v), package has %s", img.Target, desc, err, want)
			}
		}

		// The same package again: nothing changes.
		again, err := importWait(t, c, pkg, "")
		if err != nil || !again.Unchanged || again.State != api.ImportDone {
			t.Fatalf("re-import: %+v %v", again, err)
		}
		// The same version with other content: refused, naming the fix.
		other := buildPackage(t, "shop", "1.0.0", " (changed)", e.key)
		if _, err := importWait(t, c, other, ""); problemStatus(err) != 409 || !strings.Contains(err.Error(), "new version number") {
			t.Fatalf("changed content, same version: %v", err)
		}
		// A new version is fine, and becomes the latest.
		if _, err := importWait(t, c, buildPackage(t, "shop", "1.1.0", "", e.key), ""); err != nil {
			t.Fatal(err)
		}
		vs, _ := c.Versions(ctx, "shop")
		if len(vs) != 2 || vs[0].Version != "1.1.0" {
			t.Fatalf("versions: %+v", vs)
		}

		// Export gives back a package with the same content and image digests, signed by nobody we trust: checked
		// with integrity only.
		out := filepath.Join(t.TempDir(), "shop.wtapp")
		f, _ := os.Create(out)
		if _, err := c.Export(ctx, "shop", "1.0.0", f); err != nil {
			t.Fatal(err)
		}
		f.Close()
		back, err := appkg.Verify(ctx, out, bundle.ReadOptions{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		if back.ContentDigest != info.ContentDigest || len(back.Images) != len(info.Images) {
			t.Fatalf("export: %s vs %s", back.ContentDigest, info.ContentDigest)
		}
		for i := range info.Images {
			if back.Images[i].Name != info.Images[i].Name || back.Images[i].Digest != info.Images[i].Digest {
				t.Fatalf("export image %d: %+v vs %+v", i, back.Images[i], info.Images[i])
			}
		}
		// Metrics count what happened.
		resp, err := http.Get(e.url + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		m, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !contains(string(m), `wutong_imports_total{result="done"} 2`, `wutong_imports_total{result="unchanged"} 1`,
			`wutong_imports_total{result="failed"} 1`, `wutong_http_requests_total{code="200",operation="login"} 1`, "go_goroutines") {
			t.Fatalf("metrics:\n%s", m)
		}
	})
}

// TestImportRefused: bad packages are refused before anything is stored or pushed.
func TestImportRefused(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newEnv(t, st, func(o *Options) { o.MaxUploadBytes = 1 << 20 })
		ctx := context.Background()
		c := e.client("admin", adminPassword)

		unsigned := buildPackage(t, "shop", "1.0.0", "", nil)
		_, other := genKey(t)
		untrusted := buildPackage(t, "shop", "1.0.0", "", other)
		corrupt := corruptCopy(t, buildPackage(t, "shop", "1.0.0", "", e.key))
		for _, c2 := range []struct {
			name, path string
			status     int
			says       string
		}{
			{"unsigned", unsigned, 422, "unsigned"},
			{"untrusted", untrusted, 422, "not trusted"},
			{"corrupted", corrupt, 422, "damaged"},
		} {
			_, err := importWait(t, c, c2.path, "")
			if problemStatus(err) != c2.status || !strings.Contains(strings.ToLower(err.Error()), c2.says) {
				t.Errorf("%s: %v", c2.name, err)
			}
		}
		apps, _ := c.Apps(ctx)
		if len(apps) != 0 {
			t.Fatalf("a refused package left an app: %+v", apps)
		}
		ims, _ := c.Imports(ctx)
		for _, im := range ims {
			if im.State != api.ImportFailed || im.Error == "" {
				t.Fatalf("refused import recorded as %+v", im)
			}
		}
		if n := countDir(t, filepath.Join(e.srv.opts.DataDir, "imports")); n != 0 {
			t.Fatalf("%d staging directories left", n)
		}
		// Oversized: refused by its declared length, with the limit in the message.
		big := filepath.Join(t.TempDir(), "big.wtapp")
		os.WriteFile(big, make([]byte, 2<<20), 0o644)
		if _, err := importWait(t, c, big, ""); problemStatus(err) != 413 || !strings.Contains(err.Error(), "limit") {
			t.Fatalf("oversized: %v", err)
		}
	})
}

func TestOpenAPIMatchesRoutes(t *testing.T) {
	var doc struct {
		Paths map[string]map[string]struct {
			OperationID string `json:"operationId"`
			RequestBody *struct {
				Content map[string]any `json:"content"`
			} `json:"requestBody"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatal(err)
	}
	documented, bodies := map[string]string{}, map[string]string{}
	for p, ops := range doc.Paths {
		for m, op := range ops {
			k := strings.ToUpper(m) + " " + p
			documented[k] = op.OperationID
			if op.RequestBody != nil {
				for mt := range op.RequestBody.Content {
					bodies[k] += mt
				}
			}
		}
	}
	s := &Server{}
	for _, r := range s.routeTable() {
		k := r.method + " " + r.pattern
		if documented[k] != r.name {
			t.Errorf("route %s (%s) is documented as %q", k, r.name, documented[k])
		}
		// The media type the server insists on is the one the document gives (none: the operation takes no body).
		if bodies[k] != r.accepts {
			t.Errorf("route %s accepts %q, but openapi.json documents a request body of %q", k, r.accepts, bodies[k])
		}
		delete(documented, k)
	}
	for k := range documented {
		t.Errorf("openapi.json documents %s, which is not served", k)
	}
}
