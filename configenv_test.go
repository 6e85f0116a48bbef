package exactly

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// secretConfig uses ${…} in every kind of place a secret goes: a plain
// scalar, a quoted one, inside a longer value, in a flow mapping and in a
// sequence.
const secretConfig = `pipeline: shop
source:
  brokers: [127.0.0.1:9092, "${EXACTLY_T_BROKER:-127.0.0.2:9092}"]
  sasl: {mechanism: PLAIN, username: app, password: '${EXACTLY_T_SECRET}'}
  schema_registry:
    url: http://registry:8081
    username: reg
    password: "${EXACTLY_T_SECRET}"
sink:
  driver: postgres
  dsn: postgres://app:${EXACTLY_T_SECRET}@db/shop
  max_conns: ${EXACTLY_T_CONNS:-3}
tables:
  - topics: t
    key: [id]
`

// TestSecretsWithYAMLSyntaxStaySecrets pins issue 16: ${ENV} was pasted
// into the YAML text before parsing, so "*Zq9" was an unknown anchor,
// "ab #cd" lost " #cd", "a, b: c" injected a key and a newline injected
// lines. Expanded inside parsed values, every secret parses to the same
// structure and arrives intact.
func TestSecretsWithYAMLSyntaxStaySecrets(t *testing.T) {
	t.Setenv("EXACTLY_T_SECRET", "plain")
	want, err := ParseConfig(strings.NewReader(secretConfig), "f")
	if err != nil {
		t.Fatal(err)
	}
	secrets := []string{
		"*Zq9", "&anchor", "!tag", "ab #cd", "#x", "%YAML", "a: b", "a, b: c", "{x}", "[y]", "}]", "a|b", "|", ">", ">-",
		"'", `"`, `it's "q"`, "line1\nline2", "\nsasl: {mechanism: x}\n", "- a", "? k", "~", "null", "true", "0x1F", "1e3",
		"2026-01-02", "@", "`", " lead", "trail ", "\t", "\\", "${NOT_EXPANDED_AGAIN}", "*&!#%:{}[],|>'\"\n?-@`~",
		"ünïcödé", "\x7f\x1b[0m",
	}
	for _, s := range secrets {
		t.Run(s, func(t *testing.T) {
			t.Setenv("EXACTLY_T_SECRET", s)
			got, err := ParseConfig(strings.NewReader(secretConfig), "f")
			if err != nil {
				t.Fatalf("secret %q: %v", s, err)
			}
			if got.Source.SASL.Password != s || got.Source.SchemaRegistry.Password != s || got.Sink.DSN != "postgres://app:"+s+"@db/shop" {
				t.Fatalf("secret %q not intact: sasl %q registry %q dsn %q", s, got.Source.SASL.Password, got.Source.SchemaRegistry.Password, got.Sink.DSN)
			}
			w := *want
			w.Source.SASL.Password, w.Source.SchemaRegistry.Password, w.Sink.DSN = s, s, got.Sink.DSN
			w.Tables, got.Tables = nil, nil // compiled patterns
			if !reflect.DeepEqual(&w, got) {
				t.Fatalf("secret %q changed the structure:\n got %+v\nwant %+v", s, got, &w)
			}
		})
	}
}

// FuzzEnvSecret: whatever a secret holds, the configuration has the same
// structure and the secret intact.
func FuzzEnvSecret(f *testing.F) {
	for _, s := range []string{"*&!#%:{}[],|>'\"\n", "a, b: c", "ab #cd", "null", "\n- x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if strings.ContainsRune(s, 0) || !strings.Contains(s, "") {
			return
		}
		os.Setenv("EXACTLY_T_SECRET", s)
		defer os.Unsetenv("EXACTLY_T_SECRET")
		got, err := ParseConfig(strings.NewReader(secretConfig), "f")
		if s == "" {
			var ce *ConfigError
			if err == nil || !errors.As(err, &ce) {
				t.Fatalf("empty password: got %v, want a ConfigError", err)
			}
			return
		}
		if err != nil {
			t.Fatalf("secret %q: %v", s, err)
		}
		if got.Source.SASL.Password != s || got.Sink.DSN != "postgres://app:"+s+"@db/shop" || len(got.Source.Brokers) != 2 || got.Sink.MaxConns != 3 {
			t.Fatalf("secret %q: got %+v", s, got)
		}
	})
}

func TestEveryUnsetVariableIsNamedWithItsField(t *testing.T) {
	os.Unsetenv("EXACTLY_T_SECRET")
	_, err := ParseConfig(strings.NewReader(secretConfig), "f")
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("got %v, want a ConfigError", err)
	}
	// One line per unset variable, each with its field.
	for _, want := range []string{"source.sasl.password: ${EXACTLY_T_SECRET} is not set", "source.schema_registry.password: ${EXACTLY_T_SECRET} is not set", "sink.dsn: ${EXACTLY_T_SECRET} is not set"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("got %q, want it to say %s", err, want)
		}
	}
	if strings.Contains(err.Error(), "EXACTLY_T_CONNS") || strings.Contains(err.Error(), "EXACTLY_T_BROKER") {
		t.Errorf("a variable with a default is reported unset: %q", err)
	}
}

func TestDefaultsEscapesAndNumbers(t *testing.T) {
	t.Setenv("EXACTLY_T_SECRET", "s3cret")
	t.Setenv("EXACTLY_T_CONNS", "7")
	t.Setenv("EXACTLY_T_BROKER", "")
	c, err := ParseConfig(strings.NewReader(strings.Replace(secretConfig, "username: app", "username: 'a$${LITERAL}'", 1)), "f")
	if err != nil {
		t.Fatal(err)
	}
	if c.Sink.MaxConns != 7 {
		t.Errorf("max_conns: got %d, want 7 from the environment", c.Sink.MaxConns)
	}
	if c.Source.Brokers[1] != "127.0.0.2:9092" {
		t.Errorf("an empty variable with a default: got %q, want the default", c.Source.Brokers[1])
	}
	if c.Source.SASL.Username != "a${LITERAL}" {
		t.Errorf("$${ escape: got %q", c.Source.SASL.Username)
	}
}

func TestSecretFiles(t *testing.T) {
	dir := t.TempDir()
	dsn := filepath.Join(dir, "dsn")
	pw := filepath.Join(dir, "pw")
	os.WriteFile(dsn, []byte("postgres://app:fr0m-file@db/shop\n"), 0o600)
	os.WriteFile(pw, []byte("a, b: c #d\n"), 0o600)
	y := strings.NewReplacer("dsn: postgres://app:${EXACTLY_T_SECRET}@db/shop", "dsn_file: "+dsn,
		"password: '${EXACTLY_T_SECRET}'", "password_file: "+pw, `password: "${EXACTLY_T_SECRET}"`, "password_file: "+pw).Replace(secretConfig)
	c, err := ParseConfig(strings.NewReader(y), "f")
	if err != nil {
		t.Fatal(err)
	}
	if c.Sink.DSN != "postgres://app:fr0m-file@db/shop" || c.Source.SASL.Password != "a, b: c #d" || c.Source.SchemaRegistry.Password != "a, b: c #d" {
		t.Errorf("got dsn %q sasl %q registry %q", c.Sink.DSN, c.Source.SASL.Password, c.Source.SchemaRegistry.Password)
	}
	_, err = ParseConfig(strings.NewReader(strings.Replace(y, "dsn_file: "+dsn, "dsn_file: "+filepath.Join(dir, "nope"), 1)), "f")
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Field != "sink.dsn_file" {
		t.Errorf("missing file: got %v", err)
	}
	_, err = ParseConfig(strings.NewReader(strings.Replace(y, "dsn_file: "+dsn, "dsn_file: "+dsn+"\n  dsn: x", 1)), "f")
	if !errors.As(err, &ce) || ce.Field != "sink.dsn_file" || !strings.Contains(err.Error(), "not both") {
		t.Errorf("dsn and dsn_file: got %v", err)
	}
}
