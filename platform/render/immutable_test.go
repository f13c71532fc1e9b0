package render

import (
	"slices"
	"strings"
	"testing"

	"github.com/wutong-paas/wutong-offline/platform/app"
)

// TestImmutableVolumeChanges renders the ledger (testdata/stateful.yaml, a stateful db with two volumes) with a
// stateless component that has a volume of its own, then changes the volumes one way at a time and checks which
// changes are named as ones the API server would refuse.
func TestImmutableVolumeChanges(t *testing.T) {
	base := func(t *testing.T) *app.App {
		a := loadApp(t, "testdata/stateful.yaml")
		i := slices.IndexFunc(a.Components, func(c app.Component) bool { return c.Name == "app" })
		a.Components[i].Volumes = []app.Volume{{Name: "uploads", MountPath: "/srv/uploads", Size: "2Gi"}}
		return a
	}
	comp := func(a *app.App, name string) *app.Component {
		return &a.Components[slices.IndexFunc(a.Components, func(c app.Component) bool { return c.Name == name })]
	}
	for _, tc := range []struct {
		name string
		edit func(a *app.App)
		want []string // VolumeChange.String(), in order
	}{
		{"nothing", func(a *app.App) {}, nil},
		{"image only", func(a *app.App) { comp(a, "db").Image = "example.com/ledger/db:16" }, nil},
		{"stateful volume grows", func(a *app.App) { comp(a, "db").Volumes[0].Size = "20Gi" },
			[]string{"component db, volume data (StatefulSet/db): size 10Gi -> 20Gi"}},
		{"stateful volume added and removed", func(a *app.App) {
			db := comp(a, "db")
			db.Volumes = []app.Volume{db.Volumes[0], {Name: "logs", MountPath: "/var/log/db", Size: "1Gi"}}
		}, []string{"component db, volume logs (StatefulSet/db): added", "component db, volume wal (StatefulSet/db): removed"}},
		{"stateful access mode", func(a *app.App) { comp(a, "db").Volumes[1].AccessMode = app.ReadWriteMany },
			[]string{`component db, volume wal (StatefulSet/db): accessModes ["ReadWriteOnce"] -> ["ReadWriteMany"]`}},
		{"claim grows: allowed where the storage class allows", func(a *app.App) { comp(a, "app").Volumes[0].Size = "4Gi" }, nil},
		{"claim shrinks", func(a *app.App) { comp(a, "app").Volumes[0].Size = "1Gi" },
			[]string{"component app, volume app-uploads (PersistentVolumeClaim/app-uploads): size 2Gi -> 1Gi (a claim never shrinks)"}},
		{"claim access mode", func(a *app.App) { comp(a, "app").Volumes[0].AccessMode = app.ReadWriteMany },
			[]string{`component app, volume app-uploads (PersistentVolumeClaim/app-uploads): accessModes ["ReadWriteOnce"] -> ["ReadWriteMany"]`}},
		{"claim removed and added: not a change of one object", func(a *app.App) {
			comp(a, "app").Volumes[0].Name = "files"
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := input(base(t))
			in.Revision = 1
			prev, err := Render(in)
			if err != nil {
				t.Fatal(err)
			}
			a := base(t)
			a.Version = "1.1.0"
			tc.edit(a)
			in = input(a)
			in.Revision = 2
			in.Workloads = Workloads(prev, a)
			next, err := Render(in)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, c := range ImmutableVolumeChanges(prev, next) {
				got = append(got, c.String())
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("changes:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
			}
			if ImmutableVolumeChanges(nil, next) != nil || ImmutableVolumeChanges(prev, nil) != nil {
				t.Error("a first install or an uninstall has changes")
			}
		})
	}
}
