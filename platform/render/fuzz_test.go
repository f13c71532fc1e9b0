package render

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/wutong-paas/wutong-offline/platform/app"
)

// FuzzRender renders every app that app.Parse accepts (seeded with the example apps of both packages), installed
// with or without a base domain and with replicas from the fuzz data. Render may never panic; when it succeeds, its
// manifest must survive Canonical and Decode byte for byte, and Compare with itself must be empty.
func FuzzRender(f *testing.F) {
	var seeds []string
	for _, pattern := range []string{"testdata/*.yaml", "../app/testdata/*.yaml"} {
		m, _ := filepath.Glob(pattern)
		seeds = append(seeds, m...)
	}
	for i, p := range seeds {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, i%2 == 0, uint8(i))
	}
	base, err := app.Load("../app/testdata/shop.yaml")
	if err != nil {
		f.Fatal(err)
	}
	baseJSON, err := base.Canonical()
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7}, true, uint8(3))
	f.Fuzz(func(t *testing.T, data []byte, domain bool, replicas uint8) {
		a, err := app.Parse(data)
		if err != nil {
			// Not an app.yaml: take the bytes as edits of the shop instead (Render refuses what turns invalid).
			if a, err = app.Decode(baseJSON); err != nil {
				t.Fatal(err)
			}
			mutate(a, data)
		}
		in := Input{App: a, Install: "fz", Namespace: "ns", Revision: 1, Images: testImages(a)}
		if domain {
			in.Domain = "example.com"
		}
		if len(a.Components) > 0 && replicas%3 == 0 {
			in.Values.Replicas = map[string]int{a.Components[0].Name: int(replicas)}
		}
		m, err := Render(in)
		if err != nil {
			_ = err.Error()
			return
		}
		canon, err := m.Canonical()
		if err != nil {
			t.Fatalf("Canonical: %v", err)
		}
		d, err := Decode(canon)
		if err != nil {
			t.Fatalf("Decode(Canonical): %v\n%s", err, canon)
		}
		again, err := d.Canonical()
		if err != nil {
			t.Fatalf("Canonical of decoded: %v", err)
		}
		if !bytes.Equal(canon, again) {
			t.Fatalf("Decode(Canonical) re-encodes differently")
		}
		if ch := Compare(m, d); !ch.Empty() {
			t.Fatalf("a manifest differs from itself:\n%s", ch)
		}
		_ = Compare(nil, m).String()
	})
}

// mutate edits a by the bytes of data, two at a time: an operation and its argument.
func mutate(a *app.App, data []byte) {
	names := make([]string, len(a.Components))
	for i, c := range a.Components {
		names[i] = c.Name
	}
	for i := 0; i+1 < len(data); i += 2 {
		op, arg := data[i], int(data[i+1])
		c := &a.Components[arg%len(a.Components)]
		switch op % 8 {
		case 0:
			c.Kind = []string{app.KindStateless, app.KindStateful}[arg%2]
		case 1:
			n := arg % 5
			c.Replicas = &n
		case 2:
			if len(c.Ports) > 0 {
				p := &c.Ports[arg%len(c.Ports)]
				p.Expose = []string{app.ExposeInternal, app.ExposeExternal}[arg%2]
				p.Protocol = []string{app.ProtocolTCP, app.ProtocolUDP, app.ProtocolHTTP, app.ProtocolGRPC}[arg/2%4]
				p.Domain, p.Path = "", ""
			}
		case 3:
			c.DependsOn = append(c.DependsOn, names[arg/3%len(names)])
		case 4:
			c.Ports = append(c.Ports, app.Port{Port: 1000 + arg, Protocol: app.ProtocolHTTP, Expose: app.ExposeExternal})
		case 5:
			if len(c.Volumes) > 0 {
				c.Volumes[arg%len(c.Volumes)].AccessMode = []string{app.ReadWriteOnce, app.ReadWriteMany, ""}[arg%3]
			}
		case 6:
			c.Arches = []string{"amd64", "arm64", "loong64"}[:arg%4]
		case 7:
			if len(a.ConfigGroups) > 0 {
				g := &a.ConfigGroups[arg%len(a.ConfigGroups)]
				g.Secret = !g.Secret
				g.InjectInto = []string{names[arg%len(names)]}
			}
		}
	}
}
