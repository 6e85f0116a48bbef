package exactly

import (
	"errors"
	"strings"
	"testing"
)

const validConfig = `pipeline: shop
source:
  brokers: [127.0.0.1:9092]
sink:
  driver: postgres
  dsn: postgres://x
tables:
  - topics: '^shop\.public\.(.*)$'
    table: 'app_$1'
    key: [id]
  - topics: audit.log
    mode: append
`

func TestParseConfigDefaultsAndRouting(t *testing.T) {
	c, err := ParseConfig(strings.NewReader(validConfig), "pipe.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.Source.Group, "shop"; got != want {
		t.Errorf("group default: got %q, want %q", got, want)
	}
	if got, want := c.Batch.MaxRecords, 50000; got != want {
		t.Errorf("max_records default: got %d, want %d", got, want)
	}
	for _, tc := range []struct{ topic, table string }{
		{"shop.public.orders", "app_orders"},
		{"audit.log", "log"},
	} {
		_, got, ok := c.Route(tc.topic)
		if !ok || got != tc.table {
			t.Errorf("Route(%q) = %q, %v; want %q", tc.topic, got, ok, tc.table)
		}
	}
	if _, _, ok := c.Route("shop.public"); ok {
		t.Error("Route matched a topic outside the anchored pattern")
	}
	if _, _, ok := c.Route("xaudit.log"); ok {
		t.Error("a literal topic name matched as a pattern")
	}
}

func TestConfigErrorsNameFileFieldAndExpectation(t *testing.T) {
	for _, tc := range []struct {
		name, from, to, field string
	}{
		{"no pipeline", "pipeline: shop\n", "", "pipeline"},
		{"bad driver", "driver: postgres", "driver: oracle", "sink.driver"},
		{"bad start", "brokers: [127.0.0.1:9092]", "brokers: [127.0.0.1:9092]\n  start_from: yesterday", "source.start_from"},
		{"bad mode", "mode: append", "mode: merge", "tables[1].mode"},
		{"missing key", "    key: [id]\n", "", "tables[0].key"},
		{"bad regex", `'^shop\.public\.(.*)$'`, `'^shop(('`, "tables[0].topics"},
		{"bad interval", "tables:", "batch:\n  interval: soon\ntables:", "batch.interval"},
		{"unknown field", "tables:", "tabels: []\ntables:", "tabels"},
		{"cdc needs envelope", "mode: append", "mode: cdc", "tables[1].mode"},
		{"avro needs a registry", "mode: append", "mode: append\n    format: avro", "source.schema_registry.url"},
		{"version is a column", "    key: [id]\n", "    key: [id]\n    version: source.lsn\n", "tables[0].version"},
		{"bad format", "mode: append", "mode: append\n    format: protobuf", "tables[1].format"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := strings.Replace(validConfig, tc.from, tc.to, 1)
			_, err := ParseConfig(strings.NewReader(src), "pipe.yaml")
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("got %v, want a *ConfigError", err)
			}
			if ce.Field != tc.field || ce.File != "pipe.yaml" || ce.Expected == "" && ce.Problem == "" {
				t.Errorf("got field %q file %q expected %q; want field %q", ce.Field, ce.File, ce.Expected, tc.field)
			}
			if !strings.HasPrefix(err.Error(), "pipe.yaml:") {
				t.Errorf("message %q does not start with the file name", err)
			}
		})
	}
}

func TestConfigExpandsEnvironment(t *testing.T) {
	t.Setenv("EXACTLY_TEST_DSN", "postgres://from-env")
	c, err := ParseConfig(strings.NewReader(strings.Replace(validConfig, "postgres://x", "${EXACTLY_TEST_DSN}", 1)), "f")
	if err != nil {
		t.Fatal(err)
	}
	if c.Sink.DSN != "postgres://from-env" {
		t.Errorf("dsn = %q", c.Sink.DSN)
	}
	_, err = ParseConfig(strings.NewReader(strings.Replace(validConfig, "postgres://x", "${EXACTLY_UNSET_VAR_X}", 1)), "f")
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Field != "sink.dsn" || !strings.Contains(err.Error(), "${EXACTLY_UNSET_VAR_X} is not set") {
		t.Errorf("unset variable: got %v", err)
	}
}

func TestRangeHashIsDeterministicAndSensitive(t *testing.T) {
	recs := []*Record{
		{Topic: "t", Partition: 1, Offset: 5, Key: []byte("k"), Value: []byte("v")},
		{Topic: "t", Partition: 1, Offset: 7, Key: nil, Value: nil},
	}
	a, b := HashRecords(recs), HashRecords(recs)
	if a != b || len(a) != len("blake3:")+64 {
		t.Fatalf("hash not deterministic: %s %s", a, b)
	}
	for i, mutate := range []func(r *Record){
		func(r *Record) { r.Offset++ },
		func(r *Record) { r.Value = []byte("w") },
		func(r *Record) { r.Key = []byte{} }, // empty is not null
		func(r *Record) { r.Partition = 2 },
	} {
		c := *recs[0]
		mutate(&c)
		if HashRecords([]*Record{&c, recs[1]}) == a {
			t.Errorf("mutation %d did not change the hash", i)
		}
	}
}
