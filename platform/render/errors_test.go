package render

import (
	"errors"
	"strings"
	"testing"

	"github.com/wutong-paas/wutong-offline/platform/app"
)

const header = "apiVersion: wutong.io/v1alpha1\nkind: App\nkey: demo\nversion: 1.0.0\n"

func parseApp(t *testing.T, body string) *app.App {
	t.Helper()
	a, err := app.Parse([]byte(header + body))
	if err != nil {
		t.Fatalf("%v\n%s", err, body)
	}
	return a
}

// TestRenderErrors checks that Render refuses what it cannot render, saying what, where and how to fix it.
func TestRenderErrors(t *testing.T) {
	shop := func(t *testing.T) *app.App { return loadApp(t, "../app/testdata/shop.yaml") }
	for _, tc := range []struct {
		name string
		in   func(t *testing.T) Input
		want []string // each in the error
	}{
		{"no app", func(t *testing.T) Input { in := input(shop(t)); in.App = nil; return in }, []string{"no app given"}},
		{"missing image", func(t *testing.T) Input {
			in := input(shop(t))
			delete(in.Images, "docker.io/library/redis:7.2")
			return in
		}, []string{"component redis", "docker.io/library/redis:7.2", "not in the cluster registry", "import the app package again"}},
		{"share a ReadWriteOnce volume", func(t *testing.T) Input {
			a := shop(t)
			a.Component("api").Volumes[0].AccessMode = app.ReadWriteOnce
			return input(a)
		}, []string{"volume uploads of api is ReadWriteOnce", "set accessMode: ReadWriteMany"}},
		{"share a stateful component's volume", func(t *testing.T) Input {
			return input(parseApp(t, `components:
  - {name: db, kind: stateful, image: example.com/db:1, volumes: [{name: data, mountPath: /data, size: 1Gi, accessMode: ReadWriteMany}]}
  - {name: backup, image: example.com/backup:1, volumes: [{name: data, from: db, mountPath: /backup}]}
`))
		}, []string{"component backup mounts volume data of db, which is stateful", "make db stateless", "declare the volume on backup"}},
		{"bad values", func(t *testing.T) Input {
			in := input(shop(t))
			in.Values = Values{
				Env:      map[string]map[string]string{"nope": {"A": "1"}, "api": {"1BAD": "x", "GOOD": "y"}},
				Replicas: map[string]int{"web": -1, "ghost": 2},
				Domains: map[string]string{"web/http": "Not A Host", "web/nope": "a.example.com", "api/http": "api.example.com",
					"noslash": "x.example.com", "postgres/tcp-5432": "db.example.com"},
			}
			return in
		}, []string{
			`env: "nope" is not a component of app shop`,
			`env[api]: "1BAD" is not a valid environment variable name`,
			`replicas[web]: -1 is negative`,
			`replicas: "ghost" is not a component`,
			`domains[web/http]: "Not A Host" is not a valid host name`,
			`domains[web/nope]: component web has no port "nope" (fix: use one of http)`,
			`domains[api/http]: port http of api is not an external http or grpc port`,
			`domains[noslash]: the key is not COMPONENT/PORT`,
			`domains[postgres/tcp-5432]: port tcp-5432 of postgres is not an external http or grpc port`,
		}},
		{"bad install", func(t *testing.T) Input {
			in := input(shop(t))
			in.Install, in.Namespace, in.Revision, in.Domain = "Bad_Name", "", 0, "-x-"
			return in
		}, []string{`install name "Bad_Name" is not a DNS label`, `namespace "" is not a valid namespace name`, "revision 0", `base domain "-x-"`}},
		{"two ports at the same place", func(t *testing.T) Input {
			in := input(parseApp(t, `components:
  - {name: a, image: example.com/a:1, ports: [{port: 80, protocol: http, expose: external}]}
  - {name: b, image: example.com/b:1, ports: [{port: 80, protocol: http, expose: external}]}
`))
			in.Domain = ""
			return in
		}, []string{"component b: port http-80 would be served without a host name at path /, as port a/http-80 already is", `domains: {"b/http-80": HOST}`}},
		{"workloads", func(t *testing.T) Input {
			in := input(shop(t))
			in.Workloads = map[string]string{"ghost": "x", "web": "api", "redis": "Bad"}
			return in
		}, []string{`workloads names component "ghost"`, `components api and web would share the workload "api"`, `workload name "Bad" is not a DNS label`}},
		{"long stateful name", func(t *testing.T) Input {
			name := "a" + strings.Repeat("b", 55)
			return input(parseApp(t, "components:\n  - {name: "+name+", kind: stateful, image: example.com/a:1}\n"))
		}, []string{"is longer than 52 characters", "give the component a shorter name"}},
		{"long service name", func(t *testing.T) Input {
			name := "a" + strings.Repeat("b", 55)
			return input(parseApp(t, "components:\n  - {name: "+name+", image: example.com/a:1, ports: [{port: 1, expose: external}]}\n"))
		}, []string{"-nodeport\" is longer than 63 characters"}},
		{"long generated host", func(t *testing.T) Input {
			name := "a" + strings.Repeat("b", 59)
			return input(parseApp(t, "components:\n  - {name: "+name+", image: example.com/a:1, ports: [{port: 1, protocol: http, expose: external}]}\n"))
		}, []string{"the generated host name", "has a part longer than 63 characters", "domains: {"}},
		{"invalid model", func(t *testing.T) Input {
			a := shop(t)
			a.Components[0].Image = ""
			return input(a)
		}, []string{"image: is missing"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Render(tc.in(t))
			if err == nil {
				t.Fatal("Render succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestValuesValidate(t *testing.T) {
	a := loadApp(t, "../app/testdata/shop.yaml")
	ok := Values{Env: map[string]map[string]string{"api": {"X": ""}}, Replicas: map[string]int{"web": 0},
		Domains: map[string]string{"web/http": "shop.example.org"}}
	if err := ok.Validate(a); err != nil {
		t.Errorf("valid values refused: %v", err)
	}
	if err := (Values{}).Validate(a); err != nil {
		t.Errorf("empty values refused: %v", err)
	}
	err := Values{Replicas: map[string]int{"web": -2}}.Validate(a)
	var ve *ValuesError
	if !errors.As(err, &ve) || len(ve.Problems) != 1 {
		t.Errorf("got %v", err)
	}
}
