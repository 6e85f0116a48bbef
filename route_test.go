package exactly_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/sink/postgres"
	"github.com/exactly/exactly/internal/testenv"
)

// TestRoutedNamesCannotReachTheLedgerOrAnotherSchema pins issue 16: Route
// expanded $1 from the (untrusted) topic name and validated only the
// template, so under ^shop\.public\.(.*)$ the topic
// shop.public.exactly_offsets upserted into the ledger (another pipeline's
// next_offset moved from 0 to 1,000,000) and shop.public.other_schema.users
// wrote "other_schema"."users". Both are now refused per the rule's
// on_error and never written.
func TestRoutedNamesCannotReachTheLedgerOrAnotherSchema(t *testing.T) {
	for _, onError := range []string{"dead_letter", "fail"} {
		t.Run(onError, func(t *testing.T) {
			dsn := testenv.PostgresSchema(t)
			other := testenv.PostgresSchema(t)
			otherSchema := other[strings.LastIndex(other, "search_path=")+len("search_path="):]
			victimPipe, pipeline := uniq("victim"), uniq("attacker")
			parse := func(pipe string) *exactly.Config {
				cfg, err := exactly.ParseConfig(strings.NewReader(fmt.Sprintf(`pipeline: %s
source: {brokers: [127.0.0.1:1]}
sink: {driver: postgres, dsn: '%s'}
tables:
  - topics: '^shop\.public\.(.*)$'
    table: $1
    key_from: record_key
    on_error: %s
`, pipe, dsn, onError)), "test.yaml")
				if err != nil {
					t.Fatal(err)
				}
				return cfg
			}
			ctx := context.Background()
			d := &postgres.Dialect{}
			victim := openSink(t, parse(victimPipe), d)
			if _, err := victim.SeedOffset(ctx, exactly.TP{Topic: "orders", Partition: 0}, 0); err != nil {
				t.Fatal(err)
			}
			if _, err := victim.DB().Exec(fmt.Sprintf(`CREATE TABLE %s.users (id BIGINT PRIMARY KEY, name TEXT)`, otherSchema)); err != nil {
				t.Fatal(err)
			}
			s := openSink(t, parse(pipeline), d)
			ledger, users := "shop.public.exactly_offsets", "shop.public."+otherSchema+".users"
			for _, topic := range []string{ledger, users} {
				if _, err := s.SeedOffset(ctx, exactly.TP{Topic: topic, Partition: 0}, 0); err != nil {
					t.Fatal(err)
				}
			}
			out := s.Commit(ctx, []*exactly.PartitionBatch{
				{Topic: ledger, From: 0, Records: []*exactly.Record{{Topic: ledger, Offset: 0,
					Key:   []byte(fmt.Sprintf(`{"pipeline":%q,"topic":"orders","partition":0}`, victimPipe)),
					Value: []byte(fmt.Sprintf(`{"pipeline":%q,"topic":"orders","partition":0,"next_offset":1000000,"writer":"w","updated_at":"2026-01-01T00:00:00Z"}`, victimPipe))}}},
				{Topic: users, From: 0, Records: []*exactly.Record{{Topic: users, Offset: 0,
					Key: []byte(`{"id":1}`), Value: []byte(`{"id":1,"name":"injected"}`)}}},
			})
			var next int64
			if err := victim.DB().QueryRow(`SELECT next_offset FROM exactly_offsets WHERE pipeline = $1 AND topic = 'orders'`, victimPipe).Scan(&next); err != nil {
				t.Fatal(err)
			}
			if next != 0 {
				t.Errorf("the victim pipeline's next_offset moved to %d: a topic wrote the ledger", next)
			}
			var n int
			if err := victim.DB().QueryRow(fmt.Sprintf(`SELECT COUNT(*) FROM %s.users`, otherSchema)).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != 0 {
				t.Errorf("%s.users has %d rows: a topic wrote another schema", otherSchema, n)
			}
			if len(out) != 2 {
				t.Fatalf("outcomes: %+v", out)
			}
			for _, o := range out {
				switch onError {
				case "dead_letter":
					if !o.Committed || len(o.Batch.DeadLetters) != 1 {
						t.Errorf("%s: got committed=%v dead letters %d err %v, want committed with 1 dead letter", o.Batch.Topic, o.Committed, len(o.Batch.DeadLetters), o.Err)
						continue
					}
					var re *exactly.RouteError
					if err := o.Batch.DeadLetters[0].Err; !errors.As(err, &re) {
						t.Errorf("%s: dead letter error %v, want a *RouteError", o.Batch.Topic, err)
					}
				case "fail":
					var re *exactly.RecordError
					if o.Committed && o.Batch.Halt == nil && !errors.As(o.Err, &re) {
						t.Errorf("%s: got committed=%v halt=%v err=%v, want the partition halted", o.Batch.Topic, o.Committed, o.Batch.Halt, o.Err)
					}
				}
			}
			if onError == "dead_letter" {
				if got := len(deadLetters(t, s, pipeline)); got != 2 {
					t.Errorf("dead letters: got %d, want 2", got)
				}
			}
		})
	}
}

// TestRouteRefusesNames is the table of names Resolve refuses after $1 is
// expanded from the topic.
func TestRouteRefusesNames(t *testing.T) {
	cfg, err := exactly.ParseConfig(strings.NewReader(`pipeline: p
source: {brokers: [127.0.0.1:1]}
sink: {driver: postgres, dsn: 'postgres://x@h/db', allowed_schemas: [public, staging]}
tables:
  - topics: '^shop\.public\.(.*)$'
    table: $1
    key_from: record_key
  - topics: '^stage\.(.*)$'
    table: staging.$1
    key_from: record_key
  - topics: '^any\.(.*)$'
    table: $1
    key_from: record_key
  - topics: '^default\..*$'
    key_from: record_key
  - topics: '^cdc\.([^.]*)\.([^.]*)$'
    table: $1.$2
    key_from: record_key
`), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ topic, table, refused string }{
		{"shop.public.users", "users", ""},
		{"shop.public.exactly_offsets", "", "exactly_"},
		{"shop.public.EXACTLY_Batches", "", "exactly_"},
		{"shop.public.Exactly_dead_letters", "", "exactly_"},
		{"shop.public.other.users", "", "schema"},
		{"shop.public.public.users", "", "schema"},
		{"shop.public.", "", "empty"},
		{"stage.orders", "staging.orders", ""},
		{"stage.a.b", "", "parts"},
		{"stage.exactly_offsets", "", "exactly_"},
		{"any.x", "x", ""},
		{"default.exactly_offsets", "", "exactly_"},
		{"default.users", "users", ""},
		{"cdc.public.users", "public.users", ""},
		{"cdc.secret.users", "", "allowed_schemas"},
		{"cdc.public.exactly_offsets", "", "exactly_"},
		{"shop.public.pg_authid", "", "pg_"},
		{"shop.public.PG_Class", "", "pg_"},
		{"default.pg_description", "", "pg_"},
		{"stage.pg_things", "staging.pg_things", ""},
	} {
		rule, table, err := cfg.Resolve(c.topic)
		if rule == nil {
			t.Errorf("%s: no rule", c.topic)
			continue
		}
		switch {
		case c.refused == "" && (err != nil || table != c.table):
			t.Errorf("%s: got %q, %v; want %q", c.topic, table, err, c.table)
		case c.refused != "" && (err == nil || !strings.Contains(err.Error(), c.refused)):
			t.Errorf("%s: got %q, %v; want refused (%s)", c.topic, table, err, c.refused)
		}
	}
}

// TestTableTemplatesNamingTheLedgerAreRefused: a literal table that is
// the ledger, or a schema outside sink.allowed_schemas, is a
// configuration error, not a run-time refusal.
func TestTableTemplatesNamingTheLedgerAreRefused(t *testing.T) {
	for _, c := range []struct{ sink, table, want string }{
		{"", "exactly_offsets", "exactly_"},
		{"", "public.EXACTLY_BATCHES", "exactly_"},
		{", allowed_schemas: [public]", "other.users", "allowed_schemas"},
	} {
		_, err := exactly.ParseConfig(strings.NewReader(fmt.Sprintf(`pipeline: p
source: {brokers: [127.0.0.1:1]}
sink: {driver: postgres, dsn: 'postgres://x@h/db'%s}
tables:
  - topics: t
    table: %s
    key: [id]
`, c.sink, c.table)), "test.yaml")
		var ce *exactly.ConfigError
		if !errors.As(err, &ce) || ce.Field != "tables[0].table" || !strings.Contains(err.Error(), c.want) {
			t.Errorf("table %s: got %v, want a ConfigError on tables[0].table naming %s", c.table, err, c.want)
		}
	}
}

// TestRoutedNamesCannotReachPgCatalog: PostgreSQL searches pg_catalog
// before the connection's search_path, so an unqualified routed name
// that is a system catalog's (shop.pg_description under ^shop\.(.*)$ →
// $1) wrote pg_catalog.pg_description — another schema, whatever
// search_path and sink.allowed_schemas said. With a superuser sink an
// append rule could have written pg_authid (a new superuser role). Found
// by the issue 16 review: a row landed in pg_catalog.pg_description.
func TestRoutedNamesCannotReachPgCatalog(t *testing.T) {
	dsn := testenv.PostgresSchema(t)
	schema := dsn[strings.LastIndex(dsn, "search_path=")+len("search_path="):]
	pipeline := uniq("pgcat")
	cfg, err := exactly.ParseConfig(strings.NewReader(fmt.Sprintf(`pipeline: %s
source: {brokers: [127.0.0.1:1]}
sink: {driver: postgres, dsn: '%s', allowed_schemas: [%s]}
tables:
  - topics: '^shop\.(.*)$'
    table: $1
    mode: append
`, pipeline, dsn, schema)), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s := openSink(t, cfg, &postgres.Dialect{})
	const objoid = 999999917 // no object has it: the row would be harmless
	t.Cleanup(func() { s.DB().Exec(`DELETE FROM pg_catalog.pg_description WHERE objoid = $1`, objoid) })
	topic := "shop.pg_description"
	if _, err := s.SeedOffset(ctx, exactly.TP{Topic: topic, Partition: 0}, 0); err != nil {
		t.Fatal(err)
	}
	out := s.Commit(ctx, []*exactly.PartitionBatch{{Topic: topic, From: 0, Records: []*exactly.Record{{Topic: topic, Offset: 0,
		Value: []byte(fmt.Sprintf(`{"objoid":%d,"classoid":1259,"objsubid":0,"description":"written by a topic"}`, objoid))}}}})
	var n int
	if err := s.DB().QueryRow(`SELECT COUNT(*) FROM pg_catalog.pg_description WHERE objoid = $1`, objoid).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("pg_catalog.pg_description has %d row(s) from topic %s: a topic wrote a system catalog", n, topic)
	}
	if len(out) != 1 || !out[0].Committed || len(out[0].Batch.DeadLetters) != 1 {
		t.Fatalf("outcome: %+v, want committed with 1 dead letter", out)
	}
	var re *exactly.RouteError
	if err := out[0].Batch.DeadLetters[0].Err; !errors.As(err, &re) || !strings.Contains(err.Error(), "pg_") {
		t.Errorf("dead letter error %v, want a *RouteError about pg_* names", err)
	}
}

// TestRoutedNamesLongerThanTheDatabaseTakesAreRefused: a topic name may
// have 249 characters. PostgreSQL cut a longer table name to 63 bytes
// silently (two topics differing after that wrote one table, and the log
// said it created the long name); MySQL refused a name over 64
// characters at CREATE TABLE and the partition retried forever instead
// of dead-lettering (issue 16 review, seen live on MariaDB).
func TestRoutedNamesLongerThanTheDatabaseTakesAreRefused(t *testing.T) {
	for _, c := range []struct {
		driver string
		limit  int
	}{{"postgres", 63}, {"mysql", 64}, {"sqlserver", 128}, {"sqlite", 0}} {
		cfg, err := exactly.ParseConfig(strings.NewReader(fmt.Sprintf(`pipeline: p
source: {brokers: [127.0.0.1:1]}
sink: {driver: %s, dsn: 'x'}
tables:
  - topics: '^shop\.(.*)$'
    table: t_$1
    key: [id]
`, c.driver)), "test.yaml")
		if err != nil {
			t.Fatal(err)
		}
		long := strings.Repeat("a", 247)
		if _, table, err := cfg.Resolve("shop." + long); c.limit > 0 && err == nil {
			t.Errorf("%s: a %d-character name was routed (%s…), want refused", c.driver, len(table), table[:20])
		} else if c.limit == 0 && err != nil {
			t.Errorf("%s: %v, want no limit", c.driver, err)
		}
		if c.limit == 0 {
			continue
		}
		fits := strings.Repeat("a", c.limit-2) // t_ + this is the limit
		if _, table, err := cfg.Resolve("shop." + fits); err != nil || len(table) != c.limit {
			t.Errorf("%s: a name of %d characters: %v", c.driver, c.limit, err)
		}
		if _, _, err := cfg.Resolve("shop." + fits + "b"); err == nil || !strings.Contains(err.Error(), "longer than") {
			t.Errorf("%s: a name of %d characters: %v, want refused as too long", c.driver, c.limit+1, err)
		}
	}
}

// TestSchemasFromTheTopicAreNeverSystemSchemas: under a template whose
// schema part comes from the topic ($1.$2) and no sink.allowed_schemas,
// a topic cdc.pg_catalog.pg_authid or cdc.mysql.user named a system
// schema: with a superuser sink, the database's own users (issue 16
// review). A template naming such a schema literally is the operator's
// choice and stays allowed.
func TestSchemasFromTheTopicAreNeverSystemSchemas(t *testing.T) {
	for _, driver := range []string{"postgres", "mysql", "sqlserver"} {
		cfg, err := exactly.ParseConfig(strings.NewReader(fmt.Sprintf(`pipeline: p
source: {brokers: [127.0.0.1:1]}
sink: {driver: %s, dsn: 'x'}
tables:
  - topics: '^cdc\.([^.]*)\.([^.]*)$'
    table: $1.$2
    key: [id]
  - topics: '^lit\.([^.]*)$'
    table: information_schema.$1
    key: [id]
`, driver)), "test.yaml")
		if err != nil {
			t.Fatal(err)
		}
		for _, topic := range []string{"cdc.pg_catalog.pg_authid", "cdc.PG_CATALOG.pg_class", "cdc.pg_toast.x", "cdc.information_schema.tables",
			"cdc.INFORMATION_SCHEMA.x", "cdc.mysql.user", "cdc.sys.objects", "cdc.performance_schema.setup_actors"} {
			if _, table, err := cfg.Resolve(topic); err == nil || !strings.Contains(err.Error(), "system schema") {
				t.Errorf("%s: %s → %q, %v; want refused (system schema)", driver, topic, table, err)
			}
		}
		if _, table, err := cfg.Resolve("cdc.sales.orders"); err != nil || table != "sales.orders" {
			t.Errorf("%s: cdc.sales.orders → %q, %v", driver, table, err)
		}
		if _, table, err := cfg.Resolve("lit.columns"); err != nil || table != "information_schema.columns" {
			t.Errorf("%s: a literal schema in the template: %q, %v", driver, table, err)
		}
	}
}
