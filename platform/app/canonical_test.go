package app

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestCanonicalRoundTrip checks that Decode(Canonical) gives the same canonical bytes, that Decode's result is
// defaulted and valid, and that the bytes have no insignificant whitespace.
func TestCanonicalRoundTrip(t *testing.T) {
	for _, path := range examples(t) {
		a, err := Load(path)
		if err != nil {
			t.Fatal(err)
		}
		canon, err := a.Canonical()
		if err != nil {
			t.Fatal(err)
		}
		b, err := Decode(canon)
		if err != nil {
			t.Fatalf("%s: Decode: %v", path, err)
		}
		again, err := b.Canonical()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(canon, again) {
			t.Errorf("%s: not stable:\n%s\n%s", path, canon, again)
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, canon); err != nil || !bytes.Equal(compact.Bytes(), canon) {
			t.Errorf("%s: not compact JSON (%v): %s", path, err, canon)
		}
	}
}

// TestCanonicalIgnoresOrderAndDefaults checks that the order of components, config groups and sets, and whether
// defaults are written out, do not change the canonical form; and that a real change does.
func TestCanonicalIgnoresOrderAndDefaults(t *testing.T) {
	one := []byte(header + `arches: [arm64, amd64]
configGroups:
  - {name: b, items: [{key: B, value: "2"}], injectInto: [web, db]}
  - {name: a, items: [{key: A, value: "1"}]}
components:
  - name: web
    image: example.com/web:1
    dependsOn: [db, cache]
    ports: [{port: 80, protocol: http, expose: external}]
  - {name: db, image: example.com/db:1, resources: {limits: {memory: 1024Mi, cpu: "0.5"}}}
  - {name: cache, image: example.com/cache:1}
`)
	two := []byte(header + `name: demo
arches: [amd64, arm64]
components:
  - {name: cache, image: example.com/cache:1, kind: stateless, replicas: 1}
  - {name: db, image: example.com/db:1, resources: {limits: {memory: 1Gi, cpu: 500m}}}
  - name: web
    image: example.com/web:1
    dependsOn: [cache, db]
    ports: [{name: http-80, port: 80, protocol: http, expose: external, path: /}]
configGroups:
  - {name: a, items: [{key: A, value: "1"}]}
  - {name: b, items: [{key: B, value: "2"}], injectInto: [db, web]}
`)
	c1, c2 := canonicalOf(t, one), canonicalOf(t, two)
	if !bytes.Equal(c1, c2) {
		t.Errorf("same app, different canonical forms:\n%s\n%s", c1, c2)
	}
	if Digest(c1) != Digest(c2) {
		t.Error("same app, different digests")
	}
	changed := canonicalOf(t, bytes.Replace(one, []byte(`value: "2"`), []byte(`value: "3"`), 1))
	if bytes.Equal(c1, changed) || Digest(c1) == Digest(changed) {
		t.Error("a changed value gives the same canonical form")
	}
	// env order matters (later variables may refer to earlier ones), so it is kept.
	envA := canonicalOf(t, []byte(header+"components: [{name: w, image: example.com/w:1, env: [{name: A}, {name: B}]}]\n"))
	envB := canonicalOf(t, []byte(header+"components: [{name: w, image: example.com/w:1, env: [{name: B}, {name: A}]}]\n"))
	if bytes.Equal(envA, envB) {
		t.Error("env order is lost")
	}
}

func canonicalOf(t *testing.T, doc []byte) []byte {
	t.Helper()
	a, err := Parse(doc)
	if err != nil {
		t.Fatal(err)
	}
	c, err := a.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCanonicalOfInvalid(t *testing.T) {
	a := base()
	a.Key = ""
	_, err := a.Canonical()
	var ve *ValidationError
	if !errors.As(err, &ve) || ve.Problems[0].Path != "key" {
		t.Fatalf("want the validation error, got %v", err)
	}
}

func TestCanonicalDoesNotChangeTheApp(t *testing.T) {
	a := base()
	if _, err := a.Canonical(); err != nil {
		t.Fatal(err)
	}
	if a.Components[0].Name != "web" || a.Components[0].Replicas != nil || a.APIVersion != "" {
		t.Errorf("Canonical changed its receiver: %+v", a.Components[0])
	}
}

func TestDecodeRefuses(t *testing.T) {
	good := canonicalOf(t, []byte(header+"components: [{name: w, image: example.com/w:1}]\n"))
	cases := []struct{ name, data, want string }{
		{"not JSON", "app.yaml", "invalid character"},
		{"unknown field", strings.Replace(string(good), `"key"`, `"kee":"x","key"`, 1), `unknown field "kee"`},
		{"trailing data", string(good) + "{}", "data after"},
		{"wrong type", strings.Replace(string(good), `"replicas":1`, `"replicas":"1"`, 1), "cannot unmarshal"},
		{"invalid", strings.Replace(string(good), `"version":"1.0.0"`, `"version":"v1"`, 1), `version: "v1" is not a strict semantic version`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode([]byte(tc.data))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := Decode(good); err != nil {
		t.Fatal(err)
	}
}

func TestDigest(t *testing.T) {
	if got := Digest([]byte("abc")); got != "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Errorf("Digest(abc) = %s", got)
	}
	if !regexp.MustCompile(`^sha256:[0-9a-f]{64}$`).MatchString(Digest(nil)) {
		t.Error("Digest(nil)")
	}
}

func TestImagesEnvOrder(t *testing.T) {
	a, err := Load("testdata/shop.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"docker.io/library/postgres:16.4", "docker.io/library/redis:7.2", "example.com/shop/api:2.1.0",
		"example.com/shop/thumbnailer:2.1.0", "example.com/shop/web:2.1.0"}
	if got := a.Images(); !slices.Equal(got, want) {
		t.Errorf("Images() = %v", got)
	}
	a.Components = append(a.Components, Component{Name: "again", Image: "docker.io/library/redis:7.2"})
	if got := a.Images(); !slices.Equal(got, want) {
		t.Errorf("Images() with a repeat = %v", got)
	}

	var env []string
	for _, e := range a.Env("api") {
		env = append(env, e.Name+"="+e.Value)
	}
	wantEnv := []string{"SHOP_CURRENCY=CNY", "SMTP_HOST=smtp.example.com", "SMTP_PORT=587",
		"DB_HOST=postgres", "DB_PORT=5432", "DB_USER=shop", "DB_PASSWORD=change-me", "DB_NAME=shop", "REDIS_ADDR=redis:6379",
		"LOG_LEVEL=info", "SHOP_TIMEZONE=UTC"}
	if !slices.Equal(env, wantEnv) {
		t.Errorf("Env(api) =\n%v\nwant\n%v", env, wantEnv)
	}
	if a.Env("nope") != nil {
		t.Error("Env of an unknown component")
	}
	if got := a.StartOrder(); !slices.Equal(got, []string{"again", "postgres", "redis", "api", "thumbnailer", "web"}) {
		t.Errorf("StartOrder() = %v", got)
	}
}

// TestExample keeps the promises other packages' tests rely on: testdata/example/app.yaml parses without Load and
// names two images.
func TestExample(t *testing.T) {
	data, err := os.ReadFile("testdata/example/app.yaml")
	if err != nil {
		t.Fatal(err)
	}
	a, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if got := a.Images(); !slices.Equal(got, []string{"example.com/demo/api:1.0", "example.com/demo/web:1.0"}) {
		t.Errorf("Images() = %v", got)
	}
	if a.Key != "demo" || a.Version != "1.0.0" {
		t.Errorf("key %q version %q", a.Key, a.Version)
	}
}
