package exactly_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/sink/postgres"
	"github.com/exactly/exactly/internal/sink/sqlite"
	"github.com/exactly/exactly/internal/testenv"
)

// cdcCase is a sink for Debezium-shaped records and how it reads a
// customers row back as text.
type cdcCase struct {
	name  string
	dsn   func(t *testing.T) string
	d     exactly.Dialect
	query string // one text column per row, ordered by id; %s is the table
	want  []string
}

func cdcCases() []cdcCase {
	return []cdcCase{
		{"postgres", func(t *testing.T) string { return testenv.PostgresSchema(t) }, &postgres.Dialect{},
			`SELECT concat_ws('|', id, name, price, born, to_char(created, 'YYYY-MM-DD HH24:MI:SS.US'),
				to_char(updated AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.MS'), active, coalesce(note, '-'), coalesce(email, '-'), source_lsn)
			 FROM %s ORDER BY id`,
			[]string{
				"1|Ada L.|-1.50|2022-01-08|2023-11-14 22:13:20.123456|2023-11-14 21:13:20.500|f|-|-|300",
				"4|Di|123.45|2022-01-08|2023-11-14 22:13:20.123456|2023-11-14 21:13:20.500|t|hi|di@example.com|600",
			}},
		// SQLite keeps times as the dialect's UTC text and NUMERIC as a
		// number (-1.50 reads back as -1.5): its own storage, not a loss
		// in decoding.
		{"sqlite", func(t *testing.T) string { return filepath.Join(t.TempDir(), "sink.db") }, &sqlite.Dialect{},
			`SELECT id || '|' || name || '|' || CAST(price AS TEXT) || '|' || date(born) || '|' || created || '|' || updated || '|' ||
				active || '|' || coalesce(note, '-') || '|' || coalesce(email, '-') || '|' || source_lsn FROM %s ORDER BY id`,
			[]string{
				"1|Ada L.|-1.5|2022-01-08|2023-11-14T22:13:20.123456Z|2023-11-14T21:13:20.5Z|0|-|-|300",
				"4|Di|123.45|2022-01-08|2023-11-14T22:13:20.123456Z|2023-11-14T21:13:20.5Z|1|hi|di@example.com|600",
			}},
	}
}

// dbzRow is a customers row as Debezium's JSON converter writes it.
func dbzRow(id int, name string, price []byte, active bool, note any, email any) map[string]any {
	r := map[string]any{"id": id, "name": name, "price": base64.StdEncoding.EncodeToString(price), "born": 19000,
		"created": int64(1700000000123456), "updated": "2023-11-14T22:13:20.5+01:00", "active": active, "note": note}
	if email != nil {
		r["email"] = email
	}
	return r
}

// dbzEvent is a Debezium change event with the schema/payload wrapper, for
// a PostgreSQL table customers; withEmail is the schema after a nullable
// column was added upstream.
func dbzEvent(op string, before, after map[string]any, lsn int64, withEmail bool) []byte {
	f := func(typ, field string, optional bool, name string, params map[string]string) map[string]any {
		m := map[string]any{"type": typ, "field": field, "optional": optional}
		if name != "" {
			m["name"] = name
		}
		if params != nil {
			m["parameters"] = params
		}
		return m
	}
	row := []any{f("int32", "id", false, "", nil), f("string", "name", false, "", nil),
		f("bytes", "price", true, "org.apache.kafka.connect.data.Decimal", map[string]string{"scale": "2", "connect.decimal.precision": "10"}),
		f("int32", "born", true, "io.debezium.time.Date", nil), f("int64", "created", true, "io.debezium.time.MicroTimestamp", nil),
		f("string", "updated", true, "io.debezium.time.ZonedTimestamp", nil), f("boolean", "active", true, "", nil),
		f("string", "note", true, "", nil)}
	if withEmail {
		row = append(row, f("string", "email", true, "", nil))
	}
	var snapshot any = "false"
	if op == "r" {
		snapshot = "true"
	}
	ev := map[string]any{
		"schema": map[string]any{"type": "struct", "name": "dbserver1.inventory.customers.Envelope", "fields": []any{
			map[string]any{"type": "struct", "field": "before", "optional": true, "fields": row},
			map[string]any{"type": "struct", "field": "after", "optional": true, "fields": row},
			map[string]any{"type": "struct", "field": "source", "fields": []any{f("string", "connector", false, "", nil),
				f("int64", "ts_ms", false, "", nil), f("string", "snapshot", true, "io.debezium.data.Enum", nil), f("int64", "lsn", true, "", nil)}},
			f("string", "op", false, "", nil), f("int64", "ts_ms", true, "", nil)}},
		"payload": map[string]any{"before": before, "after": after, "op": op, "ts_ms": 1700000000000 + lsn,
			"source": map[string]any{"connector": "postgresql", "ts_ms": 1700000000000, "snapshot": snapshot, "lsn": lsn}},
	}
	b, err := json.Marshal(ev)
	if err != nil {
		panic(err)
	}
	return b
}

func dbzKey(id int) []byte {
	return []byte(fmt.Sprintf(`{"schema":{"type":"struct","fields":[{"type":"int32","optional":false,"field":"id"}],"name":"dbserver1.inventory.customers.Key"},"payload":{"id":%d}}`, id))
}

func cdcSink(t *testing.T, c cdcCase, version string) (*exactly.Sink, string, string) {
	t.Helper()
	table, pipeline := uniq("customers"), uniq("p")
	v := ""
	if version != "" {
		v = "\n    version: " + version
	}
	cfg, err := exactly.ParseConfig(strings.NewReader(fmt.Sprintf(`pipeline: %s
source: {brokers: [127.0.0.1:1]}
sink: {driver: %s, dsn: '%s'}
tables:
  - topics: 'dbserver1\.inventory\.customers'
    table: %s
    format: debezium
    key: [id]%s
`, pipeline, c.d.Name(), c.dsn(t), table, v)), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := openSink(t, cfg, c.d)
	// The table already has email: adding columns is create/evolve's job.
	if _, err := s.DB().Exec(`CREATE TABLE ` + table + ` (id BIGINT PRIMARY KEY, name TEXT NOT NULL, price NUMERIC(10,2), born DATE,
		created TIMESTAMP, updated TIMESTAMP WITH TIME ZONE, active BOOLEAN, note TEXT, email TEXT, source_lsn BIGINT)`); err != nil {
		t.Fatal(err)
	}
	for p := int32(0); p < 2; p++ {
		if _, err := s.SeedOffset(context.Background(), exactly.TP{Topic: "dbserver1.inventory.customers", Partition: p}, 0); err != nil {
			t.Fatal(err)
		}
	}
	return s, table, pipeline
}

func textRows(t *testing.T, s *exactly.Sink, query string) []string {
	t.Helper()
	rs, err := s.DB().Query(query)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	var out []string
	for rs.Next() {
		var v string
		if err := rs.Scan(&v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestDebeziumEventsEndInTheExactTableState feeds snapshot reads, creates,
// updates, a delete and its tombstone, a create after a column was added
// upstream, and late out-of-order events from another partition, with the
// version guard on source.lsn.
func TestDebeziumEventsEndInTheExactTableState(t *testing.T) {
	for _, c := range cdcCases() {
		t.Run(c.name, func(t *testing.T) {
			s, table, pipeline := cdcSink(t, c, "source_lsn")
			dec := []byte{0x30, 0x39} // 123.45
			ada := dbzRow(1, "Ada", dec, true, nil, nil)
			ada2 := dbzRow(1, "Ada L.", []byte{0xff, 0x6a}, false, nil, nil) // -1.50
			bob := dbzRow(2, "Bob", dec, true, "x", nil)
			di := dbzRow(4, "Di", dec, true, "hi", "di@example.com")
			topic := "dbserver1.inventory.customers"
			rec := func(p int32, off int64, id int, v []byte) *exactly.Record {
				return &exactly.Record{Topic: topic, Partition: p, Offset: off, Key: dbzKey(id), Value: v}
			}
			p0 := []*exactly.Record{
				rec(0, 0, 1, dbzEvent("r", nil, ada, 100, false)), // snapshot
				rec(0, 1, 2, dbzEvent("r", nil, bob, 110, false)),
				rec(0, 2, 2, dbzEvent("u", bob, dbzRow(2, "Bob", dec, false, "y", nil), 200, false)),
				rec(0, 3, 1, dbzEvent("u", ada, ada2, 300, false)),
				rec(0, 4, 2, dbzEvent("d", bob, nil, 400, false)),
				rec(0, 5, 2, nil), // the tombstone after the delete
				rec(0, 7, 4, dbzEvent("c", nil, di, 600, true)), // after ALTER TABLE … ADD email upstream
			}
			out := s.Commit(context.Background(), []*exactly.PartitionBatch{{Topic: topic, Partition: 0, From: 0, Records: p0}})
			if !out[0].Committed || out[0].Err != nil {
				t.Fatalf("batch 1: %+v", out[0])
			}
			// Late, out-of-order events (a re-snapshot, a stale update and a
			// stale delete) must not roll anything back.
			late := []*exactly.Record{
				rec(1, 0, 1, dbzEvent("r", nil, ada, 100, false)),
				rec(1, 1, 1, dbzEvent("u", ada, dbzRow(1, "stale", dec, true, nil, nil), 250, false)),
				rec(1, 2, 4, dbzEvent("d", di, nil, 550, true)),
				rec(1, 3, 4, dbzEvent("u", di, dbzRow(4, "older", dec, true, "hi", "x"), 590, true)),
			}
			out = s.Commit(context.Background(), []*exactly.PartitionBatch{{Topic: topic, Partition: 1, From: 0, Records: late}})
			if !out[0].Committed || out[0].Err != nil {
				t.Fatalf("batch 2: %+v", out[0])
			}
			if got := textRows(t, s, fmt.Sprintf(c.query, table)); strings.Join(got, "\n") != strings.Join(c.want, "\n") {
				t.Errorf("table:\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(c.want, "\n     "))
			}
			// Batch 1: 7 records; ids 1, 2 collapse (skipped 3 + the tombstone), 1 upsert of id 1, 1 delete of id 2, 1 upsert of id 4.
			if got, want := ledgerCounts(t, s, pipeline, 0), "to=8 records=7 upserted=2 deleted=1 skipped=4 dead=0"; got != want {
				t.Errorf("ledger p0: got %s, want %s", got, want)
			}
			if dl := deadLetters(t, s, pipeline); len(dl) != 0 {
				t.Errorf("dead letters: %+v", dl)
			}
		})
	}
}

// TestVersionGuardNeverRollsARowBack: on both dialects, an older change
// never replaces or deletes a newer row, across batches, inside a batch and
// through exactly replay. The limitation it pins: a delete leaves no row to
// hold its version, so an older upsert arriving after the delete brings the
// row back (keep deletes soft, or replay only ranges that end at
// next_offset, when that matters).
func TestVersionGuardNeverRollsARowBack(t *testing.T) {
	for _, c := range refusingCases() {
		t.Run(c.name, func(t *testing.T) {
			table, pipeline := uniq("items"), uniq("p")
			cfg, err := exactly.ParseConfig(strings.NewReader(fmt.Sprintf(`pipeline: %s
source: {brokers: [127.0.0.1:1]}
sink: {driver: %s, dsn: '%s'}
tables:
  - topics: t.items
    table: %s
    format: debezium
    key: [id]
    version: v
`, pipeline, c.d.Name(), c.dsn(t), table)), "test.yaml")
			if err != nil {
				t.Fatal(err)
			}
			s := openSink(t, cfg, c.d)
			if _, err := s.DB().Exec("CREATE TABLE " + table + " (id BIGINT PRIMARY KEY, name TEXT NOT NULL, v BIGINT)"); err != nil {
				t.Fatal(err)
			}
			if _, err := s.SeedOffset(context.Background(), exactly.TP{Topic: "t.items", Partition: 0}, 0); err != nil {
				t.Fatal(err)
			}
			up := func(id, v int, name string) string {
				return fmt.Sprintf(`{"op":"u","after":{"id":%d,"name":%q,"v":%d}}`, id, name, v)
			}
			del := func(id, v int) string { return fmt.Sprintf(`{"op":"d","before":{"id":%d,"name":"x","v":%d}}`, id, v) }
			var all []*exactly.Record
			next := int64(0)
			commit := func(values ...string) {
				t.Helper()
				var recs []*exactly.Record
				for _, v := range values {
					recs = append(recs, &exactly.Record{Topic: "t.items", Offset: next, Value: []byte(v)})
					next++
				}
				all = append(all, recs...)
				out := s.Commit(context.Background(), []*exactly.PartitionBatch{{Topic: "t.items", From: recs[0].Offset, Records: recs}})
				if !out[0].Committed || out[0].Err != nil {
					t.Fatalf("commit: %+v", out[0])
				}
			}
			state := func() string {
				t.Helper()
				return strings.Join(textRows(t, s, "SELECT CAST(id AS TEXT) || ':' || name || ':' || CAST(v AS TEXT) FROM "+table+" ORDER BY id"), " ")
			}
			commit(up(1, 5, "five"), up(2, 1, "one"), up(3, 1, "one"))
			commit(up(1, 3, "three"))                  // older: ignored
			commit(up(2, 10, "ten"), up(2, 9, "nine")) // in one batch, out of order: 10 wins
			commit(del(3, 0))                          // a delete older than the row: ignored
			commit(up(1, 6, "six"), del(2, 8))         // newer applies; older delete ignored
			if got, want := state(), "1:six:6 2:ten:10 3:one:1"; got != want {
				t.Fatalf("after out-of-order changes: got %s, want %s", got, want)
			}
			// Replaying the first batch (exactly replay) rolls nothing back.
			if err := s.Replay(context.Background(), &exactly.PartitionBatch{Topic: "t.items", From: 0, Records: all[:3]}, next); err != nil {
				t.Fatal(err)
			}
			if got, want := state(), "1:six:6 2:ten:10 3:one:1"; got != want {
				t.Errorf("after replay: got %s, want %s", got, want)
			}
			commit(del(2, 11)) // newer: deletes
			commit(up(2, 10, "ten, late"))
			if got, want := state(), "1:six:6 2:ten, late:10 3:one:1"; got != want {
				t.Errorf("the documented limitation changed: got %s, want %s", got, want)
			}
			// A change without a version is not "older": inside a batch it
			// supersedes, as the SQL guard lets it through across batches.
			commit(up(4, 5, "four"), `{"op":"d","before":{"id":4,"name":"x"}}`)
			if got, want := state(), "1:six:6 2:ten, late:10 3:one:1"; got != want {
				t.Errorf("a delete without a version lost to an older versioned upsert: got %s, want %s", got, want)
			}
		})
	}
}

// TestDebeziumTombstoneDeletesOnACompactedTopic pins issue 15.7: a
// tombstone was skipped, but once log compaction has removed a key's d
// event the tombstone is the only trace of the delete left; a pipeline
// that was behind (or stopped) kept the row forever. A tombstone deletes by
// the record key, and, having no version, passes the version guard.
func TestDebeziumTombstoneDeletesOnACompactedTopic(t *testing.T) {
	for _, c := range cdcCases() {
		t.Run(c.name, func(t *testing.T) {
			s, table, pipeline := cdcSink(t, c, "source_lsn")
			dec := []byte{0x30, 0x39}
			topic := "dbserver1.inventory.customers"
			rec := func(off int64, id int, v []byte) *exactly.Record {
				return &exactly.Record{Topic: topic, Partition: 0, Offset: off, Key: dbzKey(id), Value: v}
			}
			out := s.Commit(context.Background(), []*exactly.PartitionBatch{{Topic: topic, Partition: 0, From: 0, Records: []*exactly.Record{
				rec(0, 1, dbzEvent("r", nil, dbzRow(1, "Ada", dec, true, nil, nil), 100, false)),
				rec(1, 2, dbzEvent("r", nil, dbzRow(2, "Bob", dec, true, nil, nil), 110, false)),
			}}})
			if !out[0].Committed || out[0].Err != nil {
				t.Fatalf("batch 1: %+v", out[0])
			}
			// Offsets 2..6 (Bob's u and d among them) were compacted away
			// while the pipeline was stopped: only the tombstone is left.
			out = s.Commit(context.Background(), []*exactly.PartitionBatch{{Topic: topic, Partition: 0, From: 2, Records: []*exactly.Record{
				rec(7, 2, nil),
			}}})
			if !out[0].Committed || out[0].Err != nil {
				t.Fatalf("batch 2: %+v", out[0])
			}
			if got := textRows(t, s, "SELECT CAST(id AS TEXT) FROM "+table+" ORDER BY id"); strings.Join(got, ",") != "1" {
				t.Errorf("ids left: %v, want [1] (the tombstone deletes id 2)", got)
			}
			if got, want := ledgerCounts(t, s, pipeline, 0), "to=8 records=1 upserted=0 deleted=1 skipped=0 dead=0"; got != want {
				t.Errorf("ledger: got %s, want %s", got, want)
			}
		})
	}
}
