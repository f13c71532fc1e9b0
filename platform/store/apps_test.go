package store_test

import (
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/wutong-paas/wutong-offline/platform/store"
	"github.com/wutong-paas/wutong-offline/platform/store/storetest"
)

// version returns a version of app key whose content digest is derived from content.
func version(key, v, content string, images ...store.Image) *store.Version {
	return &store.Version{
		AppKey: key, Version: v, ContentDigest: "sha256:" + content, PackageDigest: "sha256:pkg-" + content,
		Signer: "ops-key", Size: int64(len(content)) * 1000, Model: []byte(`{"key":"` + key + `","v":"` + content + `"}`),
		Images: images, ImportID: "imp-" + content,
	}
}

func img(name string) store.Image {
	return store.Image{Name: name, Target: "registry.local/apps/" + name, Digest: "sha256:" + strings.Repeat("a", 8) + name}
}

func TestRecordVersionAndRead(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ops, dev := mkTeam(t, s, "ops"), mkTeam(t, s, "dev")
		bob := mkUser(t, s, "bob")

		v1 := version("demo", "1.2.0", "c1", img("nginx:1.27"), img("redis:7"))
		v1.CreatedBy = bob.ID
		created, err := s.RecordVersion(ctx, ops.ID, store.App{Key: "demo", Name: "Demo", Description: "first"}, v1)
		must(t, err)
		if !created || v1.ID == 0 || v1.AppID == 0 {
			t.Fatalf("RecordVersion = %v, version %+v", created, v1)
		}
		recent(t, "CreatedAt", v1.CreatedAt)
		// A higher version renames the app; a lower one does not.
		v2 := version("demo", "1.10.0", "c2", img("nginx:1.28"))
		_, err = s.RecordVersion(ctx, ops.ID, store.App{Key: "demo", Name: "Demo Two", Description: "second"}, v2)
		must(t, err)
		v0 := version("", "1.2.0-rc.1", "c0")
		_, err = s.RecordVersion(ctx, ops.ID, store.App{Key: "demo", Name: "Old", Description: "old"}, v0)
		must(t, err)
		if v0.AppKey != "demo" || v0.AppID != v1.AppID {
			t.Errorf("RecordVersion set AppKey %q, AppID %d; want demo, %d", v0.AppKey, v0.AppID, v1.AppID)
		}
		other := version("blog", "0.1.0", "b1")
		_, err = s.RecordVersion(ctx, dev.ID, store.App{Key: "blog", Name: "Blog"}, other)
		must(t, err)

		app, err := s.AppByKey(ctx, "demo")
		must(t, err)
		if app.ID != v1.AppID || app.Name != "Demo Two" || app.Description != "second" || app.TeamID != ops.ID ||
			app.TeamName != "ops" || app.LatestVersion != "1.10.0" {
			t.Errorf("AppByKey = %+v", app)
		}
		if app.UpdatedAt.Before(app.CreatedAt) || !app.UpdatedAt.Equal(v0.CreatedAt) {
			t.Errorf("app CreatedAt %v, UpdatedAt %v; want UpdatedAt = last record %v", app.CreatedAt, app.UpdatedAt, v0.CreatedAt)
		}
		_, err = s.AppByKey(ctx, "nope")
		wantNotFound(t, err, `app "nope"`)

		keys := func(apps []store.App) (out []string) {
			for _, a := range apps {
				out = append(out, a.Key+"@"+a.LatestVersion+"/"+a.TeamName)
			}
			return out
		}
		for _, tt := range []struct {
			teams []int64
			want  []string
		}{
			{nil, []string{"blog@0.1.0/dev", "demo@1.10.0/ops"}},
			{[]int64{ops.ID}, []string{"demo@1.10.0/ops"}},
			{[]int64{ops.ID, dev.ID}, []string{"blog@0.1.0/dev", "demo@1.10.0/ops"}},
			{[]int64{}, nil},
		} {
			apps, err := s.Apps(ctx, tt.teams)
			must(t, err)
			if got := keys(apps); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Apps(%v) = %v, want %v", tt.teams, got, tt.want)
			}
		}

		list, err := s.Versions(ctx, app.ID)
		must(t, err)
		var order []string
		for _, v := range list {
			order = append(order, v.Version)
			if v.Model != nil {
				t.Errorf("Versions returned the model of %s", v.Version)
			}
		}
		if want := []string{"1.10.0", "1.2.0", "1.2.0-rc.1"}; !reflect.DeepEqual(order, want) {
			t.Errorf("Versions order = %v, want %v", order, want)
		}
		want1 := *v1
		want1.Model = nil
		if !reflect.DeepEqual(list[1], want1) {
			t.Errorf("Versions[1] = %+v\nwant %+v", list[1], want1)
		}
		if len(list[2].Images) != 0 || list[2].Images == nil {
			t.Errorf("a version without images lists %#v, want an empty slice", list[2].Images)
		}

		got, err := s.Version(ctx, "demo", "1.2.0")
		must(t, err)
		if !reflect.DeepEqual(got, v1) {
			t.Errorf("Version = %+v\nwant %+v", got, v1)
		}
		_, err = s.Version(ctx, "demo", "9.9.9")
		wantNotFound(t, err, `version 9.9.9 of app "demo"`)
		_, err = s.Version(ctx, "nope", "1.2.0")
		wantNotFound(t, err, "nope")
		none, err := s.Versions(ctx, 999)
		must(t, err)
		if len(none) != 0 {
			t.Errorf("Versions of a missing app = %+v", none)
		}
	})
}

func TestRecordVersionConflicts(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ops, dev := mkTeam(t, s, "ops"), mkTeam(t, s, "dev")
		app := store.App{Key: "demo", Name: "Demo"}
		_, err := s.RecordVersion(ctx, ops.ID, app, version("demo", "1.0.0", "c1", img("nginx")))
		must(t, err)

		// The same version with the same content again: a no-op.
		again := version("demo", "1.0.0", "c1", img("nginx"))
		created, err := s.RecordVersion(ctx, ops.ID, app, again)
		must(t, err)
		if created || again.ID != 0 {
			t.Errorf("re-recording the same content: created %v, ID %d; want a no-op", created, again.ID)
		}
		// The same version with other content: refused.
		created, err = s.RecordVersion(ctx, ops.ID, app, version("demo", "1.0.0", "c2"))
		if created {
			t.Error("other content under the same version was created")
		}
		wantConflict(t, err, "version", "demo@1.0.0", "new version number")
		// Another team's app key: refused, even for the very same content, without naming the owner (the caller may
		// not be allowed to see it).
		for _, content := range []string{"c1", "c3"} {
			_, err = s.RecordVersion(ctx, dev.ID, app, version("demo", "1.0.0", content))
			wantConflict(t, err, "app", "demo", "another team")
			if strings.Contains(err.Error(), "ops") {
				t.Errorf("conflict names the owning team: %v", err)
			}
		}
		_, err = s.RecordVersion(ctx, dev.ID, app, version("demo", "2.0.0", "c4"))
		wantConflict(t, err, "app", "demo", "another team")
		_, err = s.RecordVersion(ctx, 999, store.App{Key: "lost"}, version("lost", "1.0.0", "l1"))
		wantNotFound(t, err, "team 999")

		for name, tc := range map[string]struct {
			app store.App
			v   *store.Version
		}{
			"empty key":       {store.App{}, version("", "1.0.0", "x")},
			"key mismatch":    {app, version("other", "1.0.0", "x")},
			"no digest":       {app, &store.Version{Version: "1.0.0"}},
			"not semver":      {app, version("demo", "latest", "x")},
			"missing creator": {app, func() *store.Version { v := version("demo", "3.0.0", "x"); v.CreatedBy = 999; return v }()},
		} {
			if created, err := s.RecordVersion(ctx, ops.ID, tc.app, tc.v); err == nil || created {
				t.Errorf("%s: RecordVersion = %v, %v; want an error", name, created, err)
			}
		}
		list, err := s.Versions(ctx, mustApp(t, s, "demo").ID)
		must(t, err)
		if len(list) != 1 || list[0].ContentDigest != "sha256:c1" {
			t.Errorf("after the refusals the versions are %+v, want only 1.0.0 with c1", list)
		}
	})
}

func mustApp(t *testing.T, s *store.Store, key string) *store.App {
	t.Helper()
	a, err := s.AppByKey(ctx, key)
	must(t, err)
	return a
}

// A failing image insert must leave nothing behind: not the version, not the app it created.
func TestRecordVersionAtomic(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ops := mkTeam(t, s, "ops")
		_, err := s.RecordVersion(ctx, ops.ID, store.App{Key: "demo"}, version("demo", "1.0.0", "c1", img("nginx"), img("nginx")))
		if err == nil || !strings.Contains(err.Error(), `image "nginx" is listed twice`) {
			t.Fatalf("err = %v, want the duplicate image named", err)
		}
		for _, table := range []string{"apps", "versions", "version_images"} {
			n, err := store.CountRowsForTest(ctx, s, table)
			must(t, err)
			if n != 0 {
				t.Errorf("%s has %d rows after a failed RecordVersion, want 0", table, n)
			}
		}
		_, err = s.AppByKey(ctx, "demo")
		wantNotFound(t, err, "demo")
		// And the store is usable afterwards.
		created, err := s.RecordVersion(ctx, ops.ID, store.App{Key: "demo"}, version("demo", "1.0.0", "c1", img("nginx")))
		must(t, err)
		if !created {
			t.Error("RecordVersion after the failure did not create")
		}
	})
}

// Concurrent calls recording the same version create it once: when the app is new (they meet at creating the app)
// and when it exists (they meet at the version's uniqueness constraint).
func TestRecordVersionConcurrent(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ops := mkTeam(t, s, "ops")
		for round, v := range []string{"1.0.0", "1.1.0"} {
			const n = 8
			var wg sync.WaitGroup
			var mu sync.Mutex
			createdCount := 0
			var errs []error
			start := make(chan struct{})
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					created, err := s.RecordVersion(ctx, ops.ID, store.App{Key: "demo", Name: fmt.Sprint("Demo ", i)},
						version("demo", v, "c"+v, img("nginx"), img("redis")))
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						errs = append(errs, err)
					}
					if created {
						createdCount++
					}
				}()
			}
			close(start)
			wg.Wait()
			if len(errs) != 0 {
				t.Fatalf("round %d: concurrent RecordVersion errors: %v", round, errs)
			}
			if createdCount != 1 {
				t.Errorf("round %d: %d calls created version %s, want exactly 1", round, createdCount, v)
			}
			for table, want := range map[string]int{"apps": 1, "versions": round + 1, "version_images": 2 * (round + 1)} {
				got, err := store.CountRowsForTest(ctx, s, table)
				must(t, err)
				if got != want {
					t.Errorf("round %d: %s has %d rows, want %d", round, table, got, want)
				}
			}
		}
	})
}
