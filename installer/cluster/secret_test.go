package cluster

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestSecretRedaction(t *testing.T) {
	const literal, fromEnv = "hunter2-literal", "hunter2-from-env"
	src := `apiVersion: wutong.io/v1alpha1
kind: Cluster
metadata: {name: s}
spec:
  ssh:
    password: ` + literal + `
    sudoPassword: {env: WT_SUDO}
  hosts:
    - {name: a, address: 10.0.0.1, passphrase: {env: WT_SUDO}, privateKey: /k, roles: [control-plane]}
  registry:
    password: {env: WT_SUDO}
`
	c, err := Parse("s.yaml", []byte(src), ParseOptions{LookupEnv: lookup(map[string]string{"WT_SUDO": fromEnv, "HOME": "/h"})})
	if err != nil {
		t.Fatal(err)
	}
	ssh := c.Spec.Hosts[0].SSH()
	if ssh.Password.Reveal() != literal || ssh.SudoPassword.Reveal() != fromEnv || ssh.Passphrase.Reveal() != fromEnv {
		t.Fatalf("Reveal: %q %q %q", ssh.Password.Reveal(), ssh.SudoPassword.Reveal(), ssh.Passphrase.Reveal())
	}

	var outputs []string
	for _, v := range []any{c, *c, c.Spec, c.Spec.Hosts, ssh, &ssh, ssh.Password, &ssh.Password, ssh.SudoPassword} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X"} {
			outputs = append(outputs, fmt.Sprintf(verb, v))
		}
		j, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("json: %v", err)
		}
		outputs = append(outputs, string(j))
	}
	y, err := Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	outputs = append(outputs, string(y), ssh.Password.String(), ssh.Password.GoString())
	var logs bytes.Buffer
	slog.New(slog.NewTextHandler(&logs, nil)).Info("login", "ssh", ssh.Endpoint, "password", ssh.Password)
	outputs = append(outputs, logs.String())
	for _, o := range outputs {
		for _, secret := range []string{literal, fromEnv} {
			if strings.Contains(o, secret) || strings.Contains(o, fmt.Sprintf("%x", secret)) {
				t.Fatalf("secret leaked in %q", o)
			}
		}
	}
	joined := strings.Join(outputs, "\n")
	if !strings.Contains(joined, Redacted) || !strings.Contains(joined, "{env: WT_SUDO}") {
		t.Fatalf("want the redacted forms in the output, got:\n%s", joined[:min(len(joined), 2000)])
	}
	if !strings.Contains(string(y), `password: "<redacted>"`) || !strings.Contains(string(y), "sudoPassword: {env: WT_SUDO}") {
		t.Fatalf("Marshal:\n%s", y)
	}
	// A redacted file does not parse back as if "<redacted>" were the password.
	if _, err := Parse("s.yaml", y, ParseOptions{LookupEnv: lookup(map[string]string{"WT_SUDO": fromEnv, "HOME": "/h"})}); err == nil ||
		!strings.Contains(err.Error(), "spec.ssh.password: \"<redacted>\" is the placeholder") {
		t.Fatalf("re-parse of a redacted file: %v", err)
	}
}

func TestSecretBasics(t *testing.T) {
	if !Literal("").IsZero() || !(Secret{}).IsZero() || Literal("x").IsZero() || FromEnv("X").IsZero() {
		t.Error("IsZero")
	}
	if FromEnv("X").Reveal() != "" || FromEnv("X").Env() != "X" || Literal("x").Env() != "" {
		t.Error("Env/Reveal before resolution")
	}
	if s := fmt.Sprint(FromEnv("bad name")); s != `{env: "bad name"}` {
		t.Errorf("odd names are quoted: %s", s)
	}
	j, _ := json.Marshal(struct{ A, B, C Secret }{Literal("x"), FromEnv("E"), Secret{}})
	if string(j) != `{"A":"\u003credacted\u003e","B":{"env":"E"},"C":null}` {
		t.Errorf("json %s", j)
	}
}
