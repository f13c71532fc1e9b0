package store_test

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/wutong-paas/wutong-offline/platform/store"
	"github.com/wutong-paas/wutong-offline/platform/store/storetest"
)

func TestImports(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ops, dev := mkTeam(t, s, "ops"), mkTeam(t, s, "dev")
		bob := mkUser(t, s, "bob")
		t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
		a := &store.Import{ID: "imp-a", TeamID: ops.ID, UserID: bob.ID, FileName: "a.wtapp", Size: 100, CreatedAt: t0}
		must(t, s.CreateImport(ctx, a))
		if a.State != store.ImportUploading {
			t.Errorf("State = %q, want %q by default", a.State, store.ImportUploading)
		}
		b := &store.Import{ID: "imp-b", TeamID: dev.ID, UserID: bob.ID, FileName: "b.wtapp", Size: 5,
			State: store.ImportVerifying, CreatedAt: t0.Add(time.Second)}
		must(t, s.CreateImport(ctx, b))
		c := &store.Import{ID: "imp-c", TeamID: ops.ID, UserID: bob.ID, FileName: "c.wtapp"} // created now: newest
		must(t, s.CreateImport(ctx, c))
		recent(t, "CreatedAt", c.CreatedAt)

		wantConflict(t, s.CreateImport(ctx, &store.Import{ID: "imp-a", TeamID: ops.ID, UserID: bob.ID}), "import", "imp-a", "in use")
		wantNotFound(t, s.CreateImport(ctx, &store.Import{ID: "imp-x", TeamID: 999, UserID: bob.ID}), "team 999")
		if err := s.CreateImport(ctx, &store.Import{ID: "imp-y", TeamID: ops.ID, UserID: bob.ID, State: "lost"}); err == nil {
			t.Error("CreateImport with state lost succeeded")
		}
		if err := s.CreateImport(ctx, &store.Import{TeamID: ops.ID, UserID: bob.ID}); err == nil {
			t.Error("CreateImport without an ID succeeded")
		}

		got, err := s.Import(ctx, "imp-a")
		must(t, err)
		if !reflect.DeepEqual(got, a) {
			t.Errorf("Import = %+v, want %+v", got, a)
		}
		_, err = s.Import(ctx, "nope")
		wantNotFound(t, err, `import "nope"`)

		a.State, a.Received, a.Error, a.AppKey, a.Version = store.ImportFailed, 100, "bad signature", "demo", "1.0.0"
		a.FileName = "ignored.wtapp" // not updatable
		must(t, s.UpdateImport(ctx, a))
		if !a.UpdatedAt.After(t0) {
			t.Errorf("UpdatedAt = %v, want it stamped now", a.UpdatedAt)
		}
		a.FileName = "a.wtapp"
		got, err = s.Import(ctx, "imp-a")
		must(t, err)
		if !reflect.DeepEqual(got, a) {
			t.Errorf("after UpdateImport: %+v, want %+v", got, a)
		}
		wantNotFound(t, s.UpdateImport(ctx, &store.Import{ID: "nope", State: store.ImportDone}), `import "nope"`)
		if err := s.UpdateImport(ctx, &store.Import{ID: "imp-a", State: "lost"}); err == nil {
			t.Error("UpdateImport to state lost succeeded")
		}

		ids := func(list []store.Import) (out []string) {
			for _, im := range list {
				out = append(out, im.ID)
			}
			return out
		}
		for _, tt := range []struct {
			teams []int64
			limit int
			want  []string
		}{
			{nil, 0, []string{"imp-c", "imp-b", "imp-a"}},
			{nil, 2, []string{"imp-c", "imp-b"}},
			{[]int64{ops.ID}, 0, []string{"imp-c", "imp-a"}},
			{[]int64{ops.ID}, 1, []string{"imp-c"}},
			{[]int64{dev.ID, ops.ID}, -1, []string{"imp-c", "imp-b", "imp-a"}},
			{[]int64{}, 0, nil},
			{[]int64{999}, 0, nil},
		} {
			list, err := s.Imports(ctx, tt.teams, tt.limit)
			must(t, err)
			if got := ids(list); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Imports(%v, %d) = %v, want %v", tt.teams, tt.limit, got, tt.want)
			}
		}
		// a failed, b verifying, c uploading: only b and c are unfinished, oldest first.
		list, err := s.UnfinishedImports(ctx)
		must(t, err)
		if got := ids(list); !reflect.DeepEqual(got, []string{"imp-b", "imp-c"}) {
			t.Errorf("UnfinishedImports = %v, want [imp-b imp-c]", got)
		}

		// Pruning keeps a team's newest failed imports, and touches nothing else.
		for i := range 5 {
			f := &store.Import{ID: fmt.Sprintf("fail-%d", i), TeamID: ops.ID, UserID: bob.ID, State: store.ImportFailed,
				CreatedAt: t0.Add(time.Duration(10+i) * time.Second)}
			must(t, s.CreateImport(ctx, f))
		}
		n, err := s.PruneFailedImports(ctx, ops.ID, 2)
		must(t, err)
		if n != 4 { // fail-0, fail-1, fail-2 and imp-a (failed above, the oldest)
			t.Errorf("PruneFailedImports deleted %d, want 4", n)
		}
		list, err = s.Imports(ctx, nil, 0)
		must(t, err)
		if got := ids(list); !reflect.DeepEqual(got, []string{"imp-c", "fail-4", "fail-3", "imp-b"}) {
			t.Errorf("after pruning: %v", got)
		}
	})
}
