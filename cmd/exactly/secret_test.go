package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// leakForms is every DSN form a sink accepts, each with a distinct password
// and pointing at a port nothing listens on (or, for the typo, failing to
// parse), plus SASL and schema registry passwords in the same file.
var leakForms = []struct{ name, driver, dsn, password string }{
	{"postgres URL", "postgres", "postgres://app:Pg-S3cret@127.0.0.1:1/shop?connect_timeout=2", "Pg-S3cret"},
	{"postgres key=value", "postgres", "host=127.0.0.1 port=1 user=app password=Kv-S3cret dbname=shop connect_timeout=2", "Kv-S3cret"},
	{"mysql URL", "mysql", "mysql://app:My-S3cret@127.0.0.1:1/shop", "My-S3cret"},
	{"mysql URL with a typo", "mysql", "mysql://app:Typo-S3cret@127.0.0.1:33o6/prod", "Typo-S3cret"},
	{"mysql driver form", "mysql", "app:Drv-S3cret@tcp(127.0.0.1:1)/shop", "Drv-S3cret"},
	{"sqlserver URL", "sqlserver", "sqlserver://sa:Ms-S3cret@127.0.0.1:1?database=shop&dial+timeout=2", "Ms-S3cret"},
	{"ADO", "sqlserver", "server=127.0.0.1;port=1;user id=sa;Password=Ado-S3cret;database=shop;dial timeout=2", "Ado-S3cret"},
	{"ODBC", "sqlserver", "odbc:server=127.0.0.1;port=1;uid=sa;PWD={Odbc;S3c}}ret};database=shop;dial timeout=2", "Odbc;S3c"},
	// A careless user's URL, the password not percent-encoded: the driver
	// reads part of it as the host or the database and quotes those parts
	// in its errors ("lookup Kx7w#Jm3v", "database=Pt5r@…"), and check
	// printed the DSN with only "Zq9x" masked (issue 16 review).
	{"postgres URL, @ # / not encoded", "postgres", "postgres://app:Zq9x@Kx7w#Jm3v/Pt5r@127.0.0.1:1/shop?connect_timeout=2", "Zq9x@Kx7w#Jm3v/Pt5r"},
	{"postgres URL, a space not encoded", "postgres", "postgres://app:Sp4c Pa55w0rd@127.0.0.1:1/shop?connect_timeout=2", "Sp4c Pa55w0rd"},
	{"mysql URL, @ / not encoded", "mysql", "mysql://app:My4x@Mz7w/Mq3v@127.0.0.1:1/shop", "My4x@Mz7w/Mq3v"},
	{"mysql driver form, a space", "mysql", "app:Drv4 Sp4ce@tcp(127.0.0.1:1)/shop", "Drv4 Sp4ce"},
	{"libpq key=value, a space not quoted", "postgres", "host=127.0.0.1 port=1 user=app password=Kv4x Sp4cePw dbname=shop connect_timeout=2", "Kv4x Sp4cePw"},
}

// pieces are the runs of 4 or more letters and digits of a password: a
// DSN the driver misreads quotes parts of it (as a host, a database).
func pieces(password string) []string {
	return regexp.MustCompile(`[A-Za-z0-9]{4,}`).FindAllString(password, -1)
}

// TestNoOutputPrintsASecret pins issue 16: check printed the MySQL driver
// form and ODBC/ADO passwords in clear, and a mistyped MySQL URL's
// *url.Error (which quotes the DSN) was logged at WARN for two minutes as
// a connection error. Every DSN form × every output path (check offline
// and --connect, status and verify in text and JSON, plan, run's logs at
// debug in text and JSON and its error, dedupe from a file, the
// environment and the command line): the captured output never holds the
// DSN password, the SASL password or the schema registry password.
func TestNoOutputPrintsASecret(t *testing.T) {
	defer func(p time.Duration) { startupPatience = p }(startupPatience)
	startupPatience = time.Second
	const sasl, registry = "Sasl-S3cret", "Reg-S3cret"
	for _, f := range leakForms {
		t.Run(f.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := filepath.Join(dir, "c.yaml")
			os.WriteFile(cfg, []byte(fmt.Sprintf(`pipeline: leak
source:
  brokers: [127.0.0.1:1]
  sasl: {mechanism: PLAIN, username: app, password: '%s'}
  schema_registry: {url: 'http://reg:%s@127.0.0.1:1', username: reg, password: '%s'}
sink:
  driver: %s
  dsn: ${EXACTLY_T_LEAK_DSN}
tables:
  - topics: '^shop\.(.*)$'
    table: $1
    key: [id]
`, sasl, registry, registry, f.driver)), 0o600)
			t.Setenv("EXACTLY_T_LEAK_DSN", f.dsn)
			dsnFile := filepath.Join(dir, "dsn")
			os.WriteFile(dsnFile, []byte(f.dsn+"\n"), 0o600)
			paths := [][]string{
				{"check", "-c", cfg},
				{"check", "--connect", "--timeout", "2s", "-c", cfg},
				{"status", "-c", cfg},
				{"status", "--json", "-c", cfg},
				{"verify", "-c", cfg},
				{"verify", "--json", "-c", cfg},
				{"plan", "-c", cfg},
				{"run", "--log-level", "debug", "-c", cfg},
				{"run", "--log-level", "debug", "--log-format", "json", "-c", cfg},
				{"dedupe", "--sink-file", dsnFile, "--driver", f.driver, "--table", "t", "--key", "id"},
				{"dedupe", "--driver", f.driver, "--table", "t", "--key", "id"}, // $EXACTLY_SINK_DSN
				{"dedupe", "--sink", f.dsn, "--driver", f.driver, "--table", "t", "--key", "id", "--json"},
				{"dedupe", "-c", cfg, "--table", "t", "--key", "id"},
			}
			t.Setenv(sinkEnv, f.dsn)
			for _, args := range paths {
				var out, errb bytes.Buffer
				start := time.Now()
				code := run(args, &out, &errb)
				all := out.String() + errb.String()
				if os.Getenv("EXACTLY_T_SHOW") != "" {
					t.Logf("%v → %d\n%s", args, code, all)
				}
				for _, s := range append([]string{f.password, sasl, registry}, pieces(f.password)...) {
					if strings.Contains(all, s) {
						t.Errorf("%s: %q printed in:\n%s", strings.Join(args[:1], " "), s, all)
					}
				}
				if strings.Contains(f.name, "typo") && args[0] != "check" && args[0] != "dedupe" {
					// A DSN that does not parse is a configuration
					// error: exit 2 at once, not two minutes (here
					// one second) of retrying a "connection error".
					if code != 2 || time.Since(start) > 900*time.Millisecond && args[0] == "run" {
						t.Errorf("%v: exit %d after %v, want 2 at once:\n%s", args, code, time.Since(start), all)
					}
				}
				if code == 0 && args[0] != "check" {
					t.Errorf("%v: exit 0 against a sink that is not there:\n%s", args, all)
				}
			}
		})
	}
}
