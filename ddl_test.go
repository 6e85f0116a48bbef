package exactly_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/decode"
	"github.com/exactly/exactly/internal/sink/mysql"
	"github.com/exactly/exactly/internal/sink/postgres"
	"github.com/exactly/exactly/internal/sink/sqlite"
	"github.com/exactly/exactly/internal/testenv"
)

// ddlCase is one real database for the create/evolve tests.
type ddlCase struct {
	name   string
	driver string
	dsn    func(t *testing.T) string
	d      exactly.Dialect
	// types are the column types Describe reports for the schema test's
	// columns id, price, born, at, seen_at, ok, name, tags.
	types string
	// asText is the SQL casting a column to text, for reading values back.
	asText string
}

func (c ddlCase) text(col string) string {
	if c.asText == "" {
		return "CAST(" + col + " AS TEXT)"
	}
	return fmt.Sprintf(c.asText, col)
}

func ddlCases() []ddlCase {
	return []ddlCase{
		{"sqlite", "sqlite", func(t *testing.T) string { return filepath.Join(t.TempDir(), "sink.db") }, &sqlite.Dialect{},
			"id INTEGER NOT NULL, price TEXT NOT NULL, born DATE, at TIMESTAMP, seen_at TIMESTAMPTZ, ok BOOLEAN, name TEXT, tags JSON", ""},
		{"postgres", "postgres", func(t *testing.T) string { return testenv.PostgresSchema(t) }, &postgres.Dialect{},
			"id integer NOT NULL, price numeric(10,2) NOT NULL, born date, at timestamp without time zone, seen_at timestamp with time zone, ok boolean, name text, tags jsonb", ""},
		{"mariadb", "mysql", func(t *testing.T) string { return testenv.MySQLDatabase(t) }, &mysql.Dialect{},
			"id int(11) NOT NULL, price decimal(10,2) NOT NULL, born date, at datetime(6), seen_at datetime(6), ok tinyint(1), name longtext, tags longtext", "CAST(%s AS CHAR)"},
	}
}

func ddlConfig(t *testing.T, c ddlCase, rule string) *exactly.Config {
	t.Helper()
	y := fmt.Sprintf("pipeline: %s\nsource: {brokers: [127.0.0.1:1]}\nsink: {driver: %s, dsn: '%s'}\ntables:\n%s",
		uniq("p"), c.driver, c.dsn(t), rule)
	cfg, err := exactly.ParseConfig(strings.NewReader(y), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func ddlSink(t *testing.T, c ddlCase, cfg *exactly.Config) *exactly.Sink {
	t.Helper()
	s, err := exactly.NewSink(context.Background(), cfg, c.d, decode.For(cfg), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func describe(t *testing.T, s *exactly.Sink, table string) string {
	t.Helper()
	tb, err := s.Dialect().Describe(context.Background(), s.DB(), table)
	if err != nil || tb == nil {
		t.Fatalf("describing %s: %v %v", table, tb, err)
	}
	var parts []string
	for _, c := range tb.Columns {
		p := c.Name + " " + c.Type
		if !c.Nullable {
			p += " NOT NULL"
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, ", ") + " key " + strings.Join(tb.Key, ",")
}

func commit(t *testing.T, s *exactly.Sink, b *exactly.PartitionBatch) *exactly.PartitionBatch {
	t.Helper()
	if _, err := s.SeedOffset(context.Background(), exactly.TP{Topic: b.Topic, Partition: b.Partition}, b.From); err != nil {
		t.Fatal(err)
	}
	out := s.Commit(context.Background(), []*exactly.PartitionBatch{b})
	if len(out) != 1 || !out[0].Committed || out[0].Err != nil {
		t.Fatalf("outcome: %+v", out[0])
	}
	return out[0].Batch
}

func records(topic string, from int64, values ...string) []*exactly.Record {
	var out []*exactly.Record
	for i, v := range values {
		out = append(out, &exactly.Record{Topic: topic, Offset: from + int64(i), Value: []byte(v)})
	}
	return out
}

// dbzField is one field of a Debezium after image's Connect schema.
type dbzField struct {
	field, typ, name string
	params           map[string]string
	optional         bool
}

var dbzFields = []dbzField{
	{"id", "int32", "", nil, false},
	{"price", "bytes", "org.apache.kafka.connect.data.Decimal", map[string]string{"scale": "2", "connect.decimal.precision": "10"}, false},
	{"born", "int32", "io.debezium.time.Date", nil, true},
	{"at", "int64", "io.debezium.time.MicroTimestamp", nil, true},
	{"seen_at", "string", "io.debezium.time.ZonedTimestamp", nil, true},
	{"ok", "boolean", "", nil, true},
	{"name", "string", "", nil, true},
	{"tags", "string", "io.debezium.data.Json", nil, true},
}

// dbzRecord builds a Debezium change event with its schema (the JSON
// converter with schemas.enable) and a key struct, as Debezium writes it.
func dbzRecord(topic string, off int64, fields []dbzField, op string, after map[string]any) *exactly.Record {
	var fs []map[string]any
	for _, f := range fields {
		m := map[string]any{"field": f.field, "type": f.typ, "optional": f.optional}
		if f.name != "" {
			m["name"] = f.name
		}
		if f.params != nil {
			m["parameters"] = f.params
		}
		fs = append(fs, m)
	}
	image := map[string]any{"type": "struct", "optional": true, "name": "db.public.orders.Value", "fields": fs}
	schema := map[string]any{"type": "struct", "name": "db.public.orders.Envelope", "fields": []any{
		withField(image, "before"), withField(image, "after"),
		map[string]any{"field": "op", "type": "string", "optional": false},
		map[string]any{"field": "ts_ms", "type": "int64", "optional": true},
	}}
	value, _ := json.Marshal(map[string]any{"schema": schema, "payload": map[string]any{"before": nil, "after": after, "op": op, "ts_ms": 1700000000000 + off}})
	key, _ := json.Marshal(map[string]any{
		"schema":  map[string]any{"type": "struct", "name": "db.public.orders.Key", "fields": []any{map[string]any{"field": "id", "type": "int32", "optional": false}}},
		"payload": map[string]any{"id": after["id"]},
	})
	return &exactly.Record{Topic: topic, Offset: off, Key: key, Value: value}
}

func withField(m map[string]any, name string) map[string]any {
	out := map[string]any{"field": name}
	for k, v := range m {
		out[k] = v
	}
	return out
}

func days(y int, m time.Month, d int) int64 {
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400
}

// TestCreateTableFromDebeziumSchema: a table created from Debezium
// change events takes its column types from the Connect schema — the
// decimal's precision and scale, dates, microsecond timestamps, zoned
// timestamps, booleans, text, JSON — its key from key:, and NOT NULL
// from the schema's optional flags. A column the source adds later comes
// with the type its schema states, nullable, and the values land in their
// rows.
func TestCreateTableFromDebeziumSchema(t *testing.T) {
	for _, c := range ddlCases() {
		t.Run(c.name, func(t *testing.T) {
			table := uniq("orders")
			cfg := ddlConfig(t, c, "  - {topics: db.public.orders, table: "+table+", format: debezium, key: [id], create: true, evolve: add_columns}\n")
			s := ddlSink(t, c, cfg)
			const topic = "db.public.orders"
			b := commit(t, s, &exactly.PartitionBatch{Topic: topic, Records: []*exactly.Record{
				dbzRecord(topic, 0, dbzFields, "r", map[string]any{"id": 1, "price": "BM4=", // 1230, scale 2
					"born": days(1990, 5, 17), "at": time.Date(2024, 1, 2, 3, 4, 5, 123456000, time.UTC).UnixMicro(),
					"seen_at": "2024-01-02T03:04:05Z", "ok": true, "name": "Zoë", "tags": `{"a":1}`}),
				dbzRecord(topic, 1, dbzFields, "c", map[string]any{"id": 2, "price": "+w==", // -5, scale 2
					"born": nil, "at": nil, "seen_at": nil, "ok": false, "name": nil, "tags": nil}),
			}})
			if got, want := describe(t, s, table), c.types+" key id"; got != want {
				t.Errorf("created table:\n got %s\nwant %s", got, want)
			}
			if len(b.Notes) != 1 || !strings.Contains(b.Notes[0], "created table "+table) {
				t.Errorf("batch notes: %q", b.Notes)
			}
			var notes string
			if err := s.DB().QueryRow(exactly.Rebind(s.Dialect(), "SELECT notes FROM exactly_batches WHERE pipeline = ?"), cfg.Pipeline).Scan(&notes); err != nil || !strings.Contains(notes, "created table") {
				t.Errorf("ledger notes: %q %v", notes, err)
			}
			var price, name string
			var born, at sql.NullString
			var ok bool
			q := fmt.Sprintf("SELECT %s, %s, %s, ok, name FROM %s WHERE id = 1", c.text("price"), c.text("born"), c.text("at"), table)
			if err := s.DB().QueryRow(q).Scan(&price, &born, &at, &ok, &name); err != nil {
				t.Fatal(err)
			}
			// Exact decimal text; the date and the microseconds survive.
			if price != "12.30" || !strings.HasPrefix(born.String, "1990-05-17") || !strings.Contains(at.String, "03:04:05.123456") || !ok || name != "Zoë" {
				t.Errorf("row 1: price %q born %q at %q ok %v name %q", price, born.String, at.String, ok, name)
			}
			if err := s.DB().QueryRow(fmt.Sprintf("SELECT %s, ok FROM %s WHERE id = 2", c.text("price"), table)).Scan(&price, &ok); err != nil || price != "-0.05" || ok {
				t.Errorf("row 2: price %q ok %v err %v", price, ok, err)
			}

			// The source table gains a column: its schema says decimal(8,3).
			evolved := append(dbzFields[:len(dbzFields):len(dbzFields)],
				dbzField{"discount", "bytes", "org.apache.kafka.connect.data.Decimal", map[string]string{"scale": "3", "connect.decimal.precision": "8"}, true})
			b = commit(t, s, &exactly.PartitionBatch{Topic: topic, From: 2, Records: []*exactly.Record{
				dbzRecord(topic, 2, evolved, "u", map[string]any{"id": 1, "price": "BM4=", "ok": true, "name": "Zoë", "discount": "MDk="}), // 12.345
				dbzRecord(topic, 3, dbzFields, "c", map[string]any{"id": 3, "price": "BM4=", "ok": true, "name": "old schema"}),
			}})
			if len(b.Notes) != 1 || !strings.Contains(b.Notes[0], "added column discount") {
				t.Errorf("evolving batch notes: %q", b.Notes)
			}
			wantType := map[string]string{"sqlite": "discount TEXT", "postgres": "discount numeric(8,3)"}[c.name]
			if got := describe(t, s, table); !strings.Contains(got, wantType+" key") {
				t.Errorf("evolved table %s lacks %q", got, wantType)
			}
			got := map[int64]string{}
			rs, err := s.DB().Query(fmt.Sprintf("SELECT id, %s FROM %s", c.text("discount"), table))
			if err != nil {
				t.Fatal(err)
			}
			for rs.Next() {
				var id int64
				var d sql.NullString
				rs.Scan(&id, &d)
				got[id] = nullStr(d)
			}
			rs.Close()
			if want := map[int64]string{1: "12.345", 2: "NULL", 3: "NULL"}; fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("discount per row: got %v, want %v", got, want)
			}
		})
	}
}

// TestEvolveAddsNullableColumnMidStream: a field appears in the third
// batch; it becomes a nullable column before that batch, old rows keep
// NULL, rows of the same batch with and without the field land where they
// belong, and the ledger row and its notes say so.
func TestEvolveAddsNullableColumnMidStream(t *testing.T) {
	for _, c := range ddlCases() {
		t.Run(c.name, func(t *testing.T) {
			table := uniq("people")
			cfg := ddlConfig(t, c, "  - {topics: t.people, table: "+table+", key: [id], create: true, evolve: add_columns}\n")
			s := ddlSink(t, c, cfg)
			b1 := commit(t, s, &exactly.PartitionBatch{Topic: "t.people", Records: records("t.people", 0,
				`{"id":1,"name":"a"}`, `{"id":2,"name":"b","score":1.5}`)})
			if got, want := describe(t, s, table), map[string]string{
				"sqlite":   "id INTEGER NOT NULL, name TEXT, score TEXT key id",
				"postgres": "id bigint NOT NULL, name text, score numeric key id",
				"mariadb":  "id bigint(20) NOT NULL, name longtext, score decimal(65,30) key id",
			}[c.name]; got != want {
				t.Errorf("inferred table:\n got %s\nwant %s", got, want)
			}
			if len(b1.Notes) != 1 {
				t.Errorf("first batch notes: %q", b1.Notes)
			}
			b2 := commit(t, s, &exactly.PartitionBatch{Topic: "t.people", From: 2, Records: records("t.people", 2,
				`{"id":3,"name":"c"}`)})
			if len(b2.Notes) != 0 {
				t.Errorf("a batch without new fields has notes: %q", b2.Notes)
			}
			b3 := commit(t, s, &exactly.PartitionBatch{Topic: "t.people", From: 3, Records: records("t.people", 3,
				`{"id":4,"name":"d","email":"d@x","vip":true}`,
				`{"id":1,"name":"a2"}`,
				`{"id":5,"name":"e","email":null}`,
				`{"id":2,"name":"b2","email":"b@x","vip":false}`)})
			if len(b3.Notes) != 1 || !strings.Contains(b3.Notes[0], "added column email") || !strings.Contains(b3.Notes[0], "added column vip") {
				t.Errorf("evolving batch notes: %q", b3.Notes)
			}
			if got := describe(t, s, table); !strings.Contains(got, ", email ") || strings.Contains(got, "email text NOT NULL") {
				t.Errorf("evolved table: %s", got)
			}
			got := map[int64]string{}
			rs, err := s.DB().Query(fmt.Sprintf("SELECT id, name, email, vip FROM %s", table))
			if err != nil {
				t.Fatal(err)
			}
			for rs.Next() {
				var id int64
				var name string
				var email sql.NullString
				var vip sql.NullBool
				if err := rs.Scan(&id, &name, &email, &vip); err != nil {
					t.Fatal(err)
				}
				got[id] = fmt.Sprintf("%s/%s/%s", name, nullStr(email), nullBool(vip))
			}
			rs.Close()
			want := map[int64]string{1: "a2/NULL/NULL", 2: "b2/b@x/false", 3: "c/NULL/NULL", 4: "d/d@x/true", 5: "e/NULL/NULL"}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("rows:\n got %v\nwant %v", got, want)
			}
			var notes sql.NullString
			s.DB().QueryRow(exactly.Rebind(s.Dialect(), "SELECT notes FROM exactly_batches WHERE pipeline = ? AND from_offset = 3"), cfg.Pipeline).Scan(&notes)
			if !strings.Contains(notes.String, "added column email") {
				t.Errorf("ledger notes of the evolving batch: %q", notes.String)
			}
		})
	}
}

func nullStr(s sql.NullString) string {
	if !s.Valid {
		return "NULL"
	}
	return s.String
}

func nullBool(b sql.NullBool) string {
	if !b.Valid {
		return "NULL"
	}
	return fmt.Sprint(b.Bool)
}

// TestTypeConflictIsDeadLettered: evolve never changes a column's type; a
// value that cannot go into the existing column is a dead letter naming
// the field, the value and the column, and the rest of the batch applies.
func TestTypeConflictIsDeadLettered(t *testing.T) {
	for _, c := range ddlCases() {
		t.Run(c.name, func(t *testing.T) {
			table := uniq("stock")
			cfg := ddlConfig(t, c, "  - {topics: t.stock, table: "+table+", key: [id], create: true, evolve: add_columns}\n")
			s := ddlSink(t, c, cfg)
			commit(t, s, &exactly.PartitionBatch{Topic: "t.stock", Records: records("t.stock", 0, `{"id":1,"qty":5}`)})
			b := commit(t, s, &exactly.PartitionBatch{Topic: "t.stock", From: 1, Records: records("t.stock", 1,
				`{"id":2,"qty":"lots"}`, `{"id":3,"qty":7}`, `{"id":4,"qty":{"n":1}}`)})
			if len(b.DeadLetters) != 2 {
				t.Fatalf("dead letters: %+v", b.DeadLetters)
			}
			if msg := b.DeadLetters[0].Err.Error(); !strings.Contains(msg, `field "qty" holds text "lots"`) || !strings.Contains(msg, "never changes") {
				t.Errorf("dead letter error: %s", msg)
			}
			var n int
			s.DB().QueryRow(fmt.Sprintf("SELECT COUNT(*) FROM %s", table)).Scan(&n)
			if n != 2 {
				t.Errorf("rows: got %d, want 2 (ids 1 and 3)", n)
			}
			var dl int
			s.DB().QueryRow(exactly.Rebind(s.Dialect(), "SELECT COUNT(*) FROM exactly_dead_letters WHERE pipeline = ? AND error LIKE '%type conflict%'"), cfg.Pipeline).Scan(&dl)
			if dl != 2 {
				t.Errorf("dead letters in the table: got %d, want 2", dl)
			}
		})
	}
}

// TestColumnMapping: include/exclude select fields, rename maps a field
// to a column (key columns included), unknown fields are ignored without
// evolve.
func TestColumnMapping(t *testing.T) {
	for _, c := range ddlCases() {
		t.Run(c.name, func(t *testing.T) {
			table := uniq("users")
			cfg := ddlConfig(t, c, "  - topics: t.users\n    table: "+table+"\n    key: [user_id]\n    create: true\n"+
				"    columns: {exclude: [password], rename: {id: user_id, name: full_name}}\n")
			s := ddlSink(t, c, cfg)
			commit(t, s, &exactly.PartitionBatch{Topic: "t.users", Records: []*exactly.Record{
				{Topic: "t.users", Offset: 0, Key: []byte(`{"id":1}`), Value: []byte(`{"id":1,"name":"Ann","password":"x"}`)},
				{Topic: "t.users", Offset: 1, Key: []byte(`{"id":2}`), Value: []byte(`{"id":2,"name":"Bob","password":"y"}`)},
			}})
			if got := describe(t, s, table); strings.Contains(got, "password") || !strings.Contains(got, "full_name") || !strings.HasSuffix(got, "key user_id") {
				t.Errorf("table: %s", got)
			}
			// Later records carry an unknown field: ignored, evolve is off.
			commit(t, s, &exactly.PartitionBatch{Topic: "t.users", From: 2, Records: []*exactly.Record{
				{Topic: "t.users", Offset: 2, Key: []byte(`{"id":1}`), Value: []byte(`{"id":1,"name":"Ann B","password":"z","extra":1}`)},
				{Topic: "t.users", Offset: 3, Key: []byte(`{"id":2}`)}, // tombstone: delete by the renamed key
			}})
			got := map[int64]string{}
			rs, err := s.DB().Query(fmt.Sprintf("SELECT user_id, full_name FROM %s", table))
			if err != nil {
				t.Fatal(err)
			}
			for rs.Next() {
				var id int64
				var n string
				rs.Scan(&id, &n)
				got[id] = n
			}
			rs.Close()
			if fmt.Sprint(got) != fmt.Sprint(map[int64]string{1: "Ann B"}) {
				t.Errorf("rows: %v", got)
			}
		})
	}
	t.Run("include", func(t *testing.T) {
		c := ddlCases()[0]
		table := uniq("narrow")
		cfg := ddlConfig(t, c, "  - {topics: t.n, table: "+table+", key: [id], create: true, evolve: add_columns, columns: {include: [a]}}\n")
		s := ddlSink(t, c, cfg)
		commit(t, s, &exactly.PartitionBatch{Topic: "t.n", Records: records("t.n", 0, `{"id":1,"a":"x","b":"y"}`)})
		if got, want := describe(t, s, table), "id INTEGER NOT NULL, a TEXT key id"; got != want {
			t.Errorf("include keeps the key and the included fields only: got %s, want %s", got, want)
		}
	})
}

// TestExistingLedgerGainsNotesColumn: a ledger made before the notes
// column existed keeps its rows and gains the column when a sink opens it.
func TestExistingLedgerGainsNotesColumn(t *testing.T) {
	for _, c := range ddlCases() {
		t.Run(c.name, func(t *testing.T) {
			cfg := ddlConfig(t, c, "  - {topics: t.x, key: [id]}\n")
			db, err := c.d.Open(context.Background(), cfg.Sink)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			for _, stmt := range c.d.LedgerDDL() {
				if _, err := db.Exec(stmt); err != nil {
					t.Fatal(err)
				}
			}
			if tb, _ := c.d.Describe(context.Background(), db, "exactly_batches"); tb.Column("notes") != nil {
				t.Skip("this dialect's ledger DDL already has notes")
			}
			if _, err := db.Exec(exactly.Rebind(c.d, `INSERT INTO exactly_batches (batch_id, pipeline, topic, `+c.d.Quote("partition")+`, from_offset, to_offset,
				records, upserted, deleted, skipped, dead_lettered, hash, status, writer, started_at) VALUES ('old', ?, 't.x', 0, 0, 1, 1, 1, 0, 0, 0, 'h', 'committed', 'w', ?)`),
				cfg.Pipeline, time.Now().UTC()); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 2; i++ { // the second open finds the column in place
				s := ddlSink(t, c, cfg)
				var n int
				if err := s.DB().QueryRow(exactly.Rebind(c.d, "SELECT COUNT(*) FROM exactly_batches WHERE pipeline = ? AND notes IS NULL"), cfg.Pipeline).Scan(&n); err != nil || n != 1 {
					t.Errorf("open %d: old ledger row with notes column: %d %v", i, n, err)
				}
			}
		})
	}
}

// TestConcurrentCreateAndEvolve: two instances (two pipelines) create
// and evolve the same table at the same moment; both batches commit, the
// table has every column once, and every row is there.
func TestConcurrentCreateAndEvolve(t *testing.T) {
	for _, c := range ddlCases() {
		t.Run(c.name, func(t *testing.T) { concurrentCreateAndEvolve(t, c) })
	}
}

func concurrentCreateAndEvolve(t *testing.T, c ddlCase) {
	dsn := c.dsn(t)
	table := uniq("shared")
	open := func() *exactly.Sink {
		y := fmt.Sprintf("pipeline: %s\nsource: {brokers: [127.0.0.1:1]}\nsink: {driver: %s, dsn: '%s'}\ntables:\n  - {topics: t.s, table: %s, key: [id], create: true, evolve: add_columns}\n", uniq("p"), c.driver, dsn, table)
		cfg, err := exactly.ParseConfig(strings.NewReader(y), "test.yaml")
		if err != nil {
			t.Fatal(err)
		}
		return ddlSink(t, c, cfg)
	}
	a, b := open(), open()
	for round, field := range []string{"", "extra"} {
		errs := make(chan error, 2)
		for i, s := range []*exactly.Sink{a, b} {
			go func() {
				v := fmt.Sprintf(`{"id":%d,"name":"n"}`, round*10+i)
				if field != "" {
					v = fmt.Sprintf(`{"id":%d,"name":"n","%s":%d}`, round*10+i, field, i)
				}
				from := int64(round)
				if _, err := s.SeedOffset(context.Background(), exactly.TP{Topic: "t.s"}, from); err != nil {
					errs <- err
					return
				}
				out := s.Commit(context.Background(), []*exactly.PartitionBatch{{Topic: "t.s", From: from, Records: records("t.s", from, v)}})
				errs <- out[0].Err
			}()
		}
		for range 2 {
			if err := <-errs; err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
	}
	if got, want := describe(t, a, table), map[string]string{
		"sqlite":   "id INTEGER NOT NULL, name TEXT, extra INTEGER key id",
		"postgres": "id bigint NOT NULL, name text, extra bigint key id",
		"mariadb":  "id bigint(20) NOT NULL, name longtext, extra bigint(20) key id",
	}[c.name]; got != want {
		t.Errorf("table: got %s, want %s", got, want)
	}
	var n int
	a.DB().QueryRow("SELECT COUNT(*) FROM " + table).Scan(&n)
	if n != 4 {
		t.Errorf("rows: got %d, want 4", n)
	}
}

// BenchmarkCommitSchemaManaged measures what create/evolve (the new-field
// scan and the type-conflict check, on every cycle) add to a commit of
// 5,000 JSON records: compare rule=plain (the baseline, same run) with
// rule=create+evolve.
func BenchmarkCommitSchemaManaged(b *testing.B) {
	for _, rule := range []string{"plain", "create+evolve"} {
		b.Run("rule="+rule, func(b *testing.B) {
			c := ddlCases()[0]
			dir := b.TempDir()
			extra := ""
			if rule != "plain" {
				extra = ", create: true, evolve: add_columns"
			}
			y := fmt.Sprintf("pipeline: bench\nsource: {brokers: [127.0.0.1:1]}\nsink: {driver: sqlite, dsn: '%s'}\ntables:\n  - {topics: t.b, table: b, key: [id]%s}\n",
				filepath.Join(dir, "b.db"), extra)
			cfg, err := exactly.ParseConfig(strings.NewReader(y), "bench.yaml")
			if err != nil {
				b.Fatal(err)
			}
			s, err := exactly.NewSink(context.Background(), cfg, c.d, decode.For(cfg), slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			if _, err := s.DB().Exec("CREATE TABLE IF NOT EXISTS b (id INTEGER PRIMARY KEY, name TEXT, qty INTEGER, price TEXT, ok BOOLEAN, at TEXT)"); err != nil {
				b.Fatal(err)
			}
			if _, err := s.SeedOffset(context.Background(), exactly.TP{Topic: "t.b"}, 0); err != nil {
				b.Fatal(err)
			}
			const n = 5000
			from := int64(0)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				recs := make([]*exactly.Record, n)
				for j := range recs {
					recs[j] = &exactly.Record{Topic: "t.b", Offset: from + int64(j), Value: []byte(fmt.Sprintf(
						`{"id":%d,"name":"name %d","qty":%d,"price":"%d.25","ok":true,"at":"2026-01-02T03:04:05Z"}`, j, j, j, j))}
				}
				out := s.Commit(context.Background(), []*exactly.PartitionBatch{{Topic: "t.b", From: from, Records: recs}})
				if !out[0].Committed {
					b.Fatal(out[0].Err)
				}
				from += n
			}
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// TestKeyFromEndToEnd: where the row's key comes from, through decode,
// collapse and write. The record key is {"id":99} (or a scalar) while
// the value says id 1.
func TestKeyFromEndToEnd(t *testing.T) {
	for _, tc := range []struct {
		keyFrom, key string
		want         string
	}{
		{"", `{"id":99}`, "[99]"},           // a JSON object record key decides
		{"", `user-7`, "[1]"},               // a scalar record key is only a hint: the value decides
		{"value", `{"id":99}`, "[1]"},       // the value decides
		{"record_key", `{"id":99}`, "[99]"}, // the record key decides
		{"record_key", `99`, "[99]"},        // in any form
	} {
		c := ddlCases()[0]
		table := uniq("k")
		kf := ""
		if tc.keyFrom != "" {
			kf = ", key_from: " + tc.keyFrom
		}
		s := ddlSink(t, c, ddlConfig(t, c, "  - {topics: t.k, table: "+table+", key: [id], create: true"+kf+"}\n"))
		commit(t, s, &exactly.PartitionBatch{Topic: "t.k", Records: []*exactly.Record{
			{Topic: "t.k", Offset: 0, Key: []byte(tc.key), Value: []byte(`{"id":1,"name":"x"}`)}}})
		var ids []int64
		rs, err := s.DB().Query("SELECT id FROM " + table)
		if err != nil {
			t.Fatal(err)
		}
		for rs.Next() {
			var id int64
			rs.Scan(&id)
			ids = append(ids, id)
		}
		rs.Close()
		if fmt.Sprint(ids) != tc.want {
			t.Errorf("key_from %q, record key %s: rows %v, want %s", tc.keyFrom, tc.key, ids, tc.want)
		}
	}
}

// TestPlanShowsWidening: exactly plan works out evolve: widen's DDL from
// its sample as a run would: a table whose key was 1 then "abc" is
// created with a text key (the order of the values, not the batch, made
// it text), an existing bigint column given "many" is widened, and a
// value no widening fits (text for a decimal) is listed among the dead
// letters.
func TestPlanShowsWidening(t *testing.T) {
	for _, c := range ddlCases() {
		t.Run(c.name, func(t *testing.T) {
			table := uniq("plw")
			cfg := ddlConfig(t, c, "  - {topics: t.plw, table: "+table+", key: [id], create: true, evolve: widen}\n")
			s := ddlSink(t, c, cfg)
			ctx := context.Background()
			p, err := s.PlanTable(ctx, "t.plw", records("t.plw", 0, `{"id":1,"n":2}`, `{"id":"abc","n":3}`))
			if err != nil {
				t.Fatal(err)
			}
			ddl := strings.Join(p.Change.Statements(s.Dialect()), "; ")
			if text := c.d.ColumnType(exactly.Type{Kind: exactly.KindText}, true); !strings.Contains(ddl, "id") || !strings.Contains(ddl, text) {
				t.Errorf("create from 1 then \"abc\": %s, want id %s", ddl, text)
			}
			commit(t, s, &exactly.PartitionBatch{Topic: "t.plw", Records: records("t.plw", 0, `{"id":1,"n":2,"m":1.5}`)})
			p, err = s.PlanTable(ctx, "t.plw", records("t.plw", 1, `{"id":2,"n":"many"}`, `{"id":3,"m":"x"}`))
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Change.Widen) != 1 || p.Change.Widen[0].Name != "n" || p.Change.Widen[0].Type.Kind != exactly.KindText {
				t.Errorf("widen: %+v, want n to text", p.Change.Widen)
			}
			if c.name == "sqlite" { // SQLite keeps decimals as TEXT: "x" fits
				if len(p.DeadLetters) != 0 {
					t.Errorf("dead letters: %q, want none", p.DeadLetters)
				}
			} else if len(p.DeadLetters) != 1 || !strings.Contains(p.DeadLetters[0], `field "m" holds text "x"`) {
				t.Errorf("dead letters: %q, want m's text in a decimal column", p.DeadLetters)
			}
		})
	}
}

// TestPlanNamesADecodeFailureOnce: exactly plan listed a record its
// decoder refused as "b3b[0]@0: b3b[0]@0: not a Debezium change event",
// the decoder's error naming the record already.
func TestPlanNamesADecodeFailureOnce(t *testing.T) {
	c := ddlCases()[0]
	s := ddlSink(t, c, ddlConfig(t, c, "  - {topics: t.pld, table: pld, key: [id], create: true}\n"))
	p, err := s.PlanTable(context.Background(), "t.pld", records("t.pld", 0, `not json`, `{"id":1}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.DeadLetters) != 1 || strings.Count(p.DeadLetters[0], "t.pld[0]@0") != 1 {
		t.Errorf("dead letters %q, want one naming t.pld[0]@0 once", p.DeadLetters)
	}
}
