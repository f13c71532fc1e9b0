package storetest

import (
	"context"
	"fmt"
	"testing"

	"github.com/wutong-paas/wutong-offline/platform/app"
	"github.com/wutong-paas/wutong-offline/platform/store"
)

// RecordApp records a as an imported version of the team, as an import would, but with made-up image digests and
// no registry: for deployer tests on kwok, whose nodes never pull. It returns the stored version, model included.
func RecordApp(t testing.TB, st *store.Store, teamID int64, a *app.App) *store.Version {
	t.Helper()
	model, err := a.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	v := &store.Version{Version: a.Version, ContentDigest: app.Digest(model), Model: model}
	for i, im := range a.Images() {
		v.Images = append(v.Images, store.Image{Name: im, Target: "registry.wutong.local:5443/apps/" + a.Key + "/" + im,
			Digest: fmt.Sprintf("sha256:%064x", i+1)})
	}
	ctx := context.Background()
	if _, err := st.RecordVersion(ctx, teamID, store.App{Key: a.Key, Name: a.Name}, v); err != nil {
		t.Fatal(err)
	}
	got, err := st.Version(ctx, a.Key, a.Version)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// RecordAppFile is RecordApp of an app.yaml file.
func RecordAppFile(t testing.TB, st *store.Store, teamID int64, file string) *store.Version {
	t.Helper()
	a, err := app.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	return RecordApp(t, st, teamID, a)
}
