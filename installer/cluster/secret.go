package cluster

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"time"
)

// Redacted is what a literal secret prints as, everywhere: fmt, logs, JSON and YAML. Parse rejects it as a value,
// so a redacted file written back by Marshal can never be mistaken for the real secret.
const Redacted = "<redacted>"

// Secret is a password or passphrase. In cluster.yaml it is either a literal string or a reference to an
// environment variable, {env: NAME}, resolved by Parse. A Secret never shows its value: fmt (all verbs), slog,
// JSON and YAML print Redacted for a literal and {env: NAME} for a reference. Reveal returns the value. An empty
// string is the same as leaving the field out (so a host cannot blank out a password it inherits from spec.ssh).
//
// The value sits behind a pointer so that even a reflection-based dump of a struct holding a Secret in an
// unexported field prints an address, not the value.
type Secret struct {
	env   string  // variable name, for {env: NAME}
	value *string // the literal, or the variable's value once resolved; nil when unset or unresolved
}

// Literal returns a Secret holding v. An empty v gives the unset Secret.
func Literal(v string) Secret {
	if v == "" {
		return Secret{}
	}
	return Secret{value: &v}
}

// FromEnv returns a Secret read from the environment variable name when the cluster.yaml is parsed.
func FromEnv(name string) Secret { return Secret{env: name} }

// IsZero reports whether the secret is unset.
func (s Secret) IsZero() bool { return s.env == "" && s.value == nil }

// Env is the environment variable the secret comes from, or "" for a literal.
func (s Secret) Env() string { return s.env }

// Reveal returns the secret's value: the literal, or the variable's value after Parse resolved it ("" before).
func (s Secret) Reveal() string {
	if s.value == nil {
		return ""
	}
	return *s.value
}

// String is the redacted form: "", Redacted or {env: NAME}.
func (s Secret) String() string {
	switch {
	case s.env != "":
		return "{env: " + quoteEnv(s.env) + "}"
	case s.value != nil:
		return Redacted
	}
	return ""
}

// GoString is String, so that %#v stays redacted.
func (s Secret) GoString() string { return s.String() }

// Format prints the redacted form for every verb, so %v, %+v, %#v, %s, %q and %x cannot leak the value.
func (s Secret) Format(f fmt.State, verb rune) {
	fmt.Fprintf(f, fmt.FormatString(f, verb), s.String())
}

// LogValue keeps the secret out of slog output.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalJSON writes "<redacted>" for a literal, {"env": NAME} for a reference, and null when unset.
func (s Secret) MarshalJSON() ([]byte, error) {
	switch {
	case s.env != "":
		return json.Marshal(map[string]string{"env": s.env})
	case s.value != nil:
		return json.Marshal(Redacted)
	}
	return []byte("null"), nil
}

// MarshalYAML writes {env: NAME} for a reference and "<redacted>" for a literal: the real value is never written.
func (s Secret) MarshalYAML() ([]byte, error) {
	switch {
	case s.env != "":
		return []byte(s.String()), nil
	case s.value != nil:
		return []byte(strconv.Quote(Redacted)), nil
	}
	return []byte(`""`), nil
}

// UnmarshalYAML reads a literal string or {env: NAME}. Parse has already checked the shape, with line numbers.
func (s *Secret) UnmarshalYAML(unmarshal func(any) error) error {
	var v any
	if err := unmarshal(&v); err != nil {
		return err
	}
	switch v := v.(type) {
	case nil:
		*s = Secret{}
	case string:
		*s = Literal(v)
	case map[string]any:
		name, _ := v["env"].(string)
		*s = FromEnv(name)
	default:
		return fmt.Errorf("want a string or {env: NAME}, got %T", v)
	}
	return nil
}

// resolve reads a reference through lookup. It returns a message for a problem, or "".
func (s *Secret) resolve(lookup func(string) (string, bool)) string {
	switch {
	case s.env == "" && s.value != nil && *s.value == Redacted:
		return fmt.Sprintf("%q is the placeholder wtctl writes in place of a secret; put the real value here or, better, {env: NAME}", Redacted)
	case s.env == "":
		return ""
	case !envName.MatchString(s.env):
		return fmt.Sprintf("%q is not a valid environment variable name: use letters, digits and _, not starting with a digit", s.env)
	}
	v, ok := lookup(s.env)
	switch {
	case !ok:
		return fmt.Sprintf("environment variable %s is not set: export it before running wtctl (read -rs %s && export %s keeps it out of the shell history)", s.env, s.env, s.env)
	case v == "":
		return fmt.Sprintf("environment variable %s is set but empty: export the secret's value", s.env)
	}
	s.value = &v
	return ""
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func quoteEnv(name string) string {
	if envName.MatchString(name) {
		return name
	}
	return strconv.Quote(name)
}

// Duration is a time.Duration written as "30s" or "2m" in cluster.yaml.
type Duration time.Duration

// String is the duration as time.Duration prints it.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalYAML writes the duration as a string such as 30s (whole seconds are written in seconds: 90s, not 1m30s).
func (d Duration) MarshalYAML() ([]byte, error) {
	if t := time.Duration(d); t%time.Second == 0 {
		return []byte(strconv.FormatInt(int64(t/time.Second), 10) + "s"), nil
	}
	return []byte(d.String()), nil
}

// UnmarshalYAML reads a duration string. Parse has already checked it, with line numbers.
func (d *Duration) UnmarshalYAML(unmarshal func(any) error) error {
	var s string
	if err := unmarshal(&s); err != nil {
		return err
	}
	if s == "" {
		*d = 0
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}
