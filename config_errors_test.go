package exactly

import (
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
)

// configErrorCase is one way a configuration is refused: the input, the
// field the error must name and a part of the message it must carry.
type configErrorCase struct {
	name  string
	load  func(t *testing.T) error
	field string
	msg   string
}

// edit returns a case that parses validConfig with from replaced by to.
func edit(name, from, to, field, msg string) configErrorCase {
	return configErrorCase{name: name, field: field, msg: msg, load: func(t *testing.T) error {
		t.Helper()
		if !strings.Contains(validConfig, from) {
			t.Fatalf("validConfig has no %q", from)
		}
		_, err := ParseConfig(strings.NewReader(strings.Replace(validConfig, from, to, 1)), "pipe.yaml")
		return err
	}}
}

func configErrorCases() []configErrorCase {
	const brokers = "  brokers: [127.0.0.1:9092]\n"
	src := func(extra string) string { return brokers + extra }
	return []configErrorCase{
		{name: "missing file", field: "file", msg: "a readable YAML file (", load: func(t *testing.T) error {
			_, err := LoadConfig(filepath.Join(t.TempDir(), "nope.yaml"))
			return err
		}},
		{name: "unreadable input", field: "file", msg: "readable YAML (", load: func(t *testing.T) error {
			_, err := ParseConfig(iotest.ErrReader(errors.New("disk on fire")), "pipe.yaml")
			return err
		}},
		edit("unset environment variable", "postgres://x", "${EXACTLY_SURELY_UNSET_VAR}", "sink.dsn", "${EXACTLY_SURELY_UNSET_VAR} is not set"),
		edit("unknown field", "tables:", "tabels: []\ntables:", "tabels", "unknown field; did you mean tables?"),
		edit("yaml syntax", "tables:", " nope: [\ntables:", "yaml", "not valid YAML: "),
		edit("membership", brokers, src("  membership: sticky\n"), "source.membership", "static or dynamic"),
		edit("instance id of a dynamic member", brokers, src("  membership: dynamic\n  instance_id: pod-0\n"), "source.instance_id", "no instance_id with membership: dynamic"),
		edit("instance id with a newline", brokers, src("  instance_id: \"pod\\n0\"\n"), "source.instance_id", "at most 249 printable characters"),
		edit("on_stop", brokers, src("  on_stop: linger\n"), "source.on_stop", "leave (hand the partitions over at once) or stay"),
		edit("group protocol", brokers, src("  group_protocol: share\n"), "source.group_protocol", "classic or consumer (KIP-848, Kafka 4.0+)"),
		edit("bad duration", "tables:", "batch:\n  interval: soon\ntables:", "batch.interval", "a duration like 500ms"),
		edit("no pipeline", "pipeline: shop\n", "", "pipeline", "a pipeline name"),
		edit("no brokers", brokers, "  brokers: []\n", "source.brokers", "at least one broker address"),
		edit("bad start timestamp", brokers, src("  start_from: timestamp:yesterday\n"), "source.start_from", "timestamp:<RFC3339>, e.g."),
		edit("bad start", brokers, src("  start_from: yesterday\n"), "source.start_from", "earliest, latest, group or timestamp"),
		edit("bad driver", "driver: postgres", "driver: oracle", "sink.driver", "one of postgres, mysql, sqlserver, sqlite"),
		edit("no dsn", "dsn: postgres://x", "dsn: ''", "sink.dsn", "a data source name for the postgres sink"),
		edit("bad synchronous_commit", "dsn: postgres://x", "dsn: postgres://x\n  synchronous_commit: sometimes", "sink.synchronous_commit", "on, off, local"),
		edit("no connections", "dsn: postgres://x", "dsn: postgres://x\n  max_conns: 0", "sink.max_conns", "a positive number of connections"),
		edit("refused_share above 1", "dsn: postgres://x", "dsn: postgres://x\n  refused_share: 1.5", "sink.refused_share", "a share of a flight's rows above 0 and at most 1"),
		edit("negative refused_wait", "dsn: postgres://x", "dsn: postgres://x\n  refused_wait: -1s", "sink.refused_wait", "a duration of 0 or more"),
		edit("zero interval", "tables:", "batch:\n  interval: 0s\ntables:", "batch.interval", "a positive duration"),
		edit("zero max_records", "tables:", "batch:\n  max_records: 0\ntables:", "batch.max_records", "a positive number of records"),
		edit("zero max_bytes", "tables:", "batch:\n  max_bytes: -1\ntables:", "batch.max_bytes", "a positive number of bytes"),
		edit("no tables", validConfig[strings.Index(validConfig, "tables:"):], "tables: []\n", "tables", "at least one table rule"),
		edit("empty topics", "topics: audit.log", "topics: ''", "tables[1].topics", "a topic name or a regular expression"),
		edit("bad regex", `'^shop\.public\.(.*)$'`, `'^shop(('`, "tables[0].topics", "a valid regular expression"),
		edit("bad format", "mode: append", "mode: append\n    format: xml", "tables[1].format", "json, debezium or avro"),
		edit("negative retry_not_found", brokers, src("  schema_registry: {url: 'http://registry:8081', retry_not_found: -1s}\n"), "source.schema_registry.retry_not_found",
			"how long a schema id the registry answers 404 for is retried"),
		edit("avro without a registry", "mode: append", "mode: append\n    format: avro", "source.schema_registry.url", "the schema registry URL (http://host:port) that tables[1].format: avro"),
		edit("bad version column", "mode: append", "mode: append\n    version: 'a.b'", "tables[1].version", "a column name; source_lsn"),
		edit("cdc needs envelope", "mode: append", "mode: cdc", "tables[1].mode", "format debezium (or avro) for mode cdc"),
		edit("missing key", "    key: [id]\n", "", "tables[0].key", "the key columns, e.g. [id]"),
		edit("bad mode", "mode: append", "mode: merge", "tables[1].mode", "upsert, append or cdc"),
		edit("bad key_from", "mode: append", "mode: append\n    key_from: header", "tables[1].key_from", "record_key or value"),
		edit("bad on_error", "mode: append", "mode: append\n    on_error: ignore", "tables[1].on_error", "dead_letter or fail"),
		edit("two fields renamed to one column", "mode: append", "mode: append\n    columns: {rename: {a: c, b: c}}", "tables[1].columns.rename", "at most one field renamed to each column"),
		edit("bad evolve", "mode: append", "mode: append\n    evolve: everything", "tables[1].evolve", "add_columns or widen (or leave it out)"),
		edit("ledger table name", "table: 'app_$1'", "table: 'EXACTLY_offsets'", "tables[0].table", "a table name exactly may write: exactly_* tables"),
		edit("bad table name", "table: 'app_$1'", "table: 'app;drop'", "tables[0].table", "a table name, optionally schema-qualified"),
		edit("cert without key", brokers, src("  tls: {cert_file: c.pem}\n"), "source.tls.key_file", "the private key (PEM) of source.tls.cert_file"),
		edit("key without cert", brokers, src("  tls: {key_file: k.pem}\n"), "source.tls.cert_file", "the client certificate (PEM) that goes with"),
		edit("skip verify with a CA", brokers, src("  tls: {ca_file: ca.pem, insecure_skip_verify: true}\n"), "source.tls.insecure_skip_verify", "false when source.tls.ca_file is set"),
		edit("credentials without mechanism", brokers, src("  sasl: {username: u, password: p}\n"), "source.sasl.mechanism", "when a username or password is set"),
		edit("bad mechanism", brokers, src("  sasl: {mechanism: GSSAPI, username: u, password: p}\n"), "source.sasl.mechanism", "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"),
		edit("no username", brokers, src("  sasl: {mechanism: SCRAM-SHA-512, password: p}\n"), "source.sasl.username", "a user name for SASL SCRAM-SHA-512"),
		edit("no password", brokers, src("  sasl: {mechanism: PLAIN, username: u}\n"), "source.sasl.password", "a password for SASL PLAIN, e.g. ${KAFKA_PASSWORD}"),
	}
}

// TestEveryConfigErrorNamesFileFieldAndExpectation runs every way a
// configuration can be refused and checks the error names the file, the
// field, and says what is expected.
func TestEveryConfigErrorNamesFileFieldAndExpectation(t *testing.T) {
	for _, tc := range configErrorCases() {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.load(t)
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("got %v, want a *ConfigError", err)
			}
			if ce.Field != tc.field {
				t.Errorf("field %q, want %q (%v)", ce.Field, tc.field, err)
			}
			if ce.File == "" || !strings.HasPrefix(err.Error(), ce.File+":") {
				t.Errorf("message %q does not start with the file name", err)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("message %q does not say %q", err, tc.msg)
			}
		})
	}
}

// TestConfigErrorSuiteCoversEveryMessage reads config.go and fails when an
// error message there is not produced by any case above: a new Validate
// error path must come with its test.
func TestConfigErrorSuiteCoversEveryMessage(t *testing.T) {
	var produced []string
	for _, tc := range configErrorCases() {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.load(t); err != nil {
				produced = append(produced, err.Error())
			}
		})
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "config.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var expected []struct {
		text string
		pos  token.Position
	}
	leading := func(e ast.Expr) string {
		for {
			switch x := e.(type) {
			case *ast.BasicLit:
				if s, err := strconv.Unquote(x.Value); err == nil {
					return s
				}
				return ""
			case *ast.BinaryExpr:
				e = x.X
			default:
				return ""
			}
		}
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch x := n.(type) {
		case *ast.CallExpr:
			if id, ok := x.Fun.(*ast.Ident); ok && id.Name == "bad" && len(x.Args) == 3 {
				if s := leading(x.Args[2]); s != "" {
					expected = append(expected, struct {
						text string
						pos  token.Position
					}{s, fset.Position(x.Pos())})
				}
			}
		case *ast.CompositeLit:
			if id, ok := x.Type.(*ast.Ident); ok && id.Name == "ConfigError" {
				for _, el := range x.Elts {
					if kv, ok := el.(*ast.KeyValueExpr); ok && kv.Key.(*ast.Ident).Name == "Expected" {
						if s := leading(kv.Value); s != "" {
							expected = append(expected, struct {
								text string
								pos  token.Position
							}{s, fset.Position(x.Pos())})
						}
					}
				}
			}
		}
		return true
	})
	t.Logf("%d error messages in config.go, %d produced by the cases", len(expected), len(produced))
	if len(expected) < 30 {
		t.Fatalf("found only %d error messages in config.go: the scan is broken", len(expected))
	}
	for _, e := range expected {
		covered := false
		for _, p := range produced {
			covered = covered || strings.Contains(p, e.text)
		}
		if !covered {
			t.Errorf("%s: no test case produces the error %q: add one to configErrorCases", e.pos, e.text)
		}
	}
}

// TestExampleConfigsAreValid keeps the documented examples loadable.
func TestExampleConfigsAreValid(t *testing.T) {
	t.Setenv("KAFKA_PASSWORD", "x")
	t.Setenv("AZURE_SQL_PASSWORD", "y")
	files, err := filepath.Glob("examples/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	for _, f := range files {
		c, err := LoadConfig(f)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if f == filepath.Join("examples", "debezium-azuresql.yaml") {
			for topic, want := range map[string]string{
				"erp.sales.dbo.orders":      "dbo.orders",
				"erp.stock.dbo.bins":        "dbo.bins",
				"erp.finance.dbo.invoices":  "finance.invoices",
				"erp.sales.dbo.order_audit": "dbo.order_audit",
			} {
				if _, got, ok := c.Route(topic); !ok || got != want {
					t.Errorf("%s: %s → %q (%v), want %s", f, topic, got, ok, want)
				}
			}
			if _, _, ok := c.Route("erp.hr.dbo.salaries"); ok {
				t.Errorf("%s: a topic of another schema was routed", f)
			}
			if c.Source.SASL.Password != "x" || !strings.Contains(c.Sink.DSN, ":y@") {
				t.Errorf("%s: secrets not taken from the environment", f)
			}
		}
	}
}

// TestYAMLIndentErrorNamesTheBreakingLine: a key indented one space off
// makes the YAML library say "line N: did not find expected key" with N
// the line its mapping starts on (source:, six lines up), not the line
// that breaks it; the error now names the line the operator must fix.
func TestYAMLIndentErrorNamesTheBreakingLine(t *testing.T) {
	y := "pipeline: p\nsource:\n  brokers: [a:1]\n  group: g\n  sasl:\n    mechanism: PLAIN\n    username: u\n   password: x\nsink: {driver: sqlite, dsn: x.db}\ntables: []\n"
	_, err := ParseConfig(strings.NewReader(y), "p.yaml")
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Line != 8 || !strings.HasPrefix(err.Error(), "p.yaml:8: not valid YAML: did not find expected key") {
		t.Errorf("got %v, want p.yaml:8 (the line indented wrongly)", err)
	}
}
