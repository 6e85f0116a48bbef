package exactly_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/sink/postgres"
	"github.com/exactly/exactly/internal/sink/sqlite"
	"github.com/exactly/exactly/internal/testenv"
)

// refusingCase is a sink whose table refuses some rows: a type mismatch
// ('abc' into an integer column), a CHECK and a NOT NULL violation.
type refusingCase struct {
	name  string
	dsn   func(t *testing.T) string
	d     exactly.Dialect
	table string // CREATE TABLE %s (…)
}

func refusingCases() []refusingCase {
	return []refusingCase{
		{"sqlite", func(t *testing.T) string { return filepath.Join(t.TempDir(), "sink.db") }, &sqlite.Dialect{},
			// STRICT: SQLite otherwise stores 'abc' in an INTEGER column.
			"CREATE TABLE %s (id INTEGER PRIMARY KEY, name TEXT NOT NULL, qty INTEGER CHECK (qty >= 0)) STRICT"},
		{"postgres", func(t *testing.T) string { return testenv.PostgresSchema(t) }, &postgres.Dialect{},
			"CREATE TABLE %s (id BIGINT PRIMARY KEY, name TEXT NOT NULL, qty BIGINT CHECK (qty >= 0))"},
	}
}

func refusingSink(t *testing.T, c refusingCase, onError string) (*exactly.Sink, string, string) {
	t.Helper()
	table, pipeline := uniq("items"), uniq("p")
	cfg, err := exactly.ParseConfig(strings.NewReader(fmt.Sprintf(`pipeline: %s
source: {brokers: [127.0.0.1:1]}
sink: {driver: %s, dsn: '%s'}
tables:
  - topics: 't\.items'
    table: %s
    key: [id]
    on_error: %s
`, pipeline, c.d.Name(), c.dsn(t), table, onError)), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := openSink(t, cfg, c.d)
	if _, err := s.DB().Exec(fmt.Sprintf(c.table, table)); err != nil {
		t.Fatal(err)
	}
	for p := int32(0); p < 2; p++ {
		if _, err := s.SeedOffset(context.Background(), exactly.TP{Topic: "t.items", Partition: p}, 0); err != nil {
			t.Fatal(err)
		}
	}
	return s, table, pipeline
}

func qtyRows(t *testing.T, db *sql.DB, table string) string {
	t.Helper()
	rs, err := db.Query("SELECT id, name, qty FROM " + table + " ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	var out []string
	for rs.Next() {
		var id int64
		var name string
		var qty sql.NullInt64
		if err := rs.Scan(&id, &name, &qty); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%d:%s:%v", id, name, qty.Int64))
	}
	return strings.Join(out, " ")
}

type deadRow struct {
	partition int32
	offset    int64
	err       string
	value     string
}

func deadLetters(t *testing.T, s *exactly.Sink, pipeline string) []deadRow {
	t.Helper()
	rs, err := s.DB().Query(exactly.Rebind(s.Dialect(), `SELECT "partition", "offset", error, record_value FROM exactly_dead_letters WHERE pipeline = ? ORDER BY "partition", "offset"`), pipeline)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	var out []deadRow
	for rs.Next() {
		var d deadRow
		var v []byte
		if err := rs.Scan(&d.partition, &d.offset, &d.err, &v); err != nil {
			t.Fatal(err)
		}
		d.value = string(v)
		out = append(out, d)
	}
	return out
}

func ledgerCounts(t *testing.T, s *exactly.Sink, pipeline string, partition int32) string {
	t.Helper()
	var to, records, upserted, deleted, skipped, dead int64
	var status string
	err := s.DB().QueryRow(exactly.Rebind(s.Dialect(), `SELECT to_offset, records, upserted, deleted, skipped, dead_lettered, status FROM exactly_batches
		WHERE pipeline = ? AND "partition" = ? AND status = 'committed' ORDER BY from_offset DESC LIMIT 1`), pipeline, partition).
		Scan(&to, &records, &upserted, &deleted, &skipped, &dead, &status)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("to=%d records=%d upserted=%d deleted=%d skipped=%d dead=%d", to, records, upserted, deleted, skipped, dead)
}

func TestRowsTheDatabaseRefusesAreDeadLetteredAndTheRestApplied(t *testing.T) {
	for _, c := range refusingCases() {
		t.Run(c.name, func(t *testing.T) {
			s, table, pipeline := refusingSink(t, c, "dead_letter")
			item := func(p int32, off int64, id int, v string) *exactly.Record {
				return &exactly.Record{Topic: "t.items", Partition: p, Offset: off,
					Key: []byte(fmt.Sprintf(`{"id":%d}`, id)), Value: []byte(v)}
			}
			var p0, p1 []*exactly.Record
			for i := 0; i < 40; i++ {
				p0 = append(p0, item(0, int64(i), i, fmt.Sprintf(`{"id":%d,"name":"n%d","qty":%d}`, i, i, i)))
			}
			p0[7] = item(0, 7, 7, `{"id":7,"name":"n7","qty":"abc"}`)   // type mismatch
			p0[21] = item(0, 21, 21, `{"id":21,"name":"n21","qty":-1}`) // CHECK
			p0[22] = item(0, 22, 22, `{"id":22,"qty":3}`)               // NOT NULL (name missing)
			// Partition 1 updates key 5 twice: the later change is refused,
			// so the earlier one is what the row must hold (one by one,
			// that is what applying them would give).
			p1 = append(p1, item(1, 0, 5, `{"id":5,"name":"p1-first","qty":50}`), item(1, 1, 5, `{"id":5,"name":"p1-bad","qty":-5}`),
				item(1, 2, 100, `{"id":100,"name":"n100","qty":1}`))
			out := s.Commit(context.Background(), []*exactly.PartitionBatch{
				{Topic: "t.items", Partition: 0, From: 0, Records: p0},
				{Topic: "t.items", Partition: 1, From: 0, Records: p1},
			})
			for _, o := range out {
				if !o.Committed || o.Err != nil {
					t.Fatalf("outcome %s[%d]: %+v", o.Batch.Topic, o.Batch.Partition, o)
				}
			}
			var want []string
			for i := 0; i < 40; i++ {
				switch i {
				case 7, 21, 22:
				case 5:
					want = append(want, "5:p1-first:50")
				default:
					want = append(want, fmt.Sprintf("%d:n%d:%d", i, i, i))
				}
			}
			want = append(want, "100:n100:1")
			sort.Slice(want, func(i, j int) bool {
				var a, b int
				fmt.Sscanf(want[i], "%d", &a)
				fmt.Sscanf(want[j], "%d", &b)
				return a < b
			})
			if got := qtyRows(t, s.DB(), table); got != strings.Join(want, " ") {
				t.Errorf("table:\n got %s\nwant %s", got, strings.Join(want, " "))
			}
			dl := deadLetters(t, s, pipeline)
			if len(dl) != 4 {
				t.Fatalf("dead letters: got %+v, want 4", dl)
			}
			for i, w := range []struct {
				p   int32
				off int64
			}{{0, 7}, {0, 21}, {0, 22}, {1, 1}} {
				d := dl[i]
				coord := fmt.Sprintf("t.items[%d]@%d", w.p, w.off)
				// The database's refusal, or the dialect's Go check of the
				// same value before the batch is collapsed (ValueChecker).
				checked := strings.HasPrefix(d.err, coord+": table "+table+": value refused")
				if d.partition != w.p || d.offset != w.off || !strings.HasPrefix(d.err, coord+": writing table "+table) && !checked {
					t.Errorf("dead letter %d: got %+v, want %s: writing table %s: …", i, d, coord, table)
				}
				if strings.Count(d.err, coord) != 1 {
					t.Errorf("dead letter %d: coordinates repeated in %q", i, d.err)
				}
			}
			if !strings.Contains(dl[0].value, `"abc"`) {
				t.Errorf("dead letter value: got %q, want the record's value", dl[0].value)
			}
			// Partition 0: 36 applied, key 5 superseded by partition 1 (the
			// batches collapse in topic/partition order), 3 refused.
			// Partition 1: key 5's first change (in place of the refused
			// second one) and key 100.
			if got, want := ledgerCounts(t, s, pipeline, 0), "to=40 records=40 upserted=36 deleted=0 skipped=1 dead=3"; got != want {
				t.Errorf("ledger p0: got %s, want %s", got, want)
			}
			if got, want := ledgerCounts(t, s, pipeline, 1), "to=3 records=3 upserted=2 deleted=0 skipped=0 dead=1"; got != want {
				t.Errorf("ledger p1: got %s, want %s", got, want)
			}
		})
	}
}

func TestOnErrorFailStopsAtTheRefusedRowAndResumesThereOnceFixed(t *testing.T) {
	for _, c := range refusingCases() {
		t.Run(c.name, func(t *testing.T) {
			s, table, pipeline := refusingSink(t, c, "fail")
			recs := func(from int64) []*exactly.Record {
				var rs []*exactly.Record
				for i := from; i < 6; i++ {
					v := fmt.Sprintf(`{"id":%d,"name":"n%d","qty":%d}`, i, i, i)
					if i == 3 {
						v = `{"id":3,"name":"n3","qty":-3}`
					}
					rs = append(rs, &exactly.Record{Topic: "t.items", Partition: 0, Offset: i, Key: []byte(fmt.Sprint(i)), Value: []byte(v)})
				}
				return rs
			}
			out := s.Commit(context.Background(), []*exactly.PartitionBatch{{Topic: "t.items", Partition: 0, From: 0, Records: recs(0)}})
			var re *exactly.RecordError
			if len(out) != 1 || !out[0].Committed || !errors.As(out[0].Err, &re) || re.Offset != 3 {
				t.Fatalf("outcome: %+v, want committed up to a halt at offset 3", out)
			}
			if !strings.Contains(re.Error(), "t.items[0]@3: writing table "+table) {
				t.Errorf("halt error %q does not name the record and the table", re)
			}
			if got, want := qtyRows(t, s.DB(), table), "0:n0:0 1:n1:1 2:n2:2"; got != want {
				t.Errorf("table: got %s, want %s", got, want)
			}
			next := func() int64 {
				off, err := s.LoadOffsets(context.Background(), []exactly.TP{{Topic: "t.items", Partition: 0}})
				if err != nil {
					t.Fatal(err)
				}
				return off[exactly.TP{Topic: "t.items", Partition: 0}]
			}
			if got := next(); got != 3 {
				t.Fatalf("next_offset: got %d, want 3 (the refused record)", got)
			}
			if dl := deadLetters(t, s, pipeline); len(dl) != 0 {
				t.Errorf("on_error: fail wrote dead letters: %+v", dl)
			}
			// Still refused: nothing before it, so nothing commits.
			out = s.Commit(context.Background(), []*exactly.PartitionBatch{{Topic: "t.items", Partition: 0, From: 3, Records: recs(3)}})
			if out[0].Committed || !errors.As(out[0].Err, &re) || re.Offset != 3 {
				t.Fatalf("second run: %+v, want a halt at 3 with nothing committed", out[0])
			}
			// Fixed: the constraint is relaxed; the same records now apply.
			fix := []string{"ALTER TABLE " + table + " DROP CONSTRAINT " + table + "_qty_check"}
			if c.name == "sqlite" { // SQLite cannot drop a CHECK: rebuild the table
				fix = []string{
					"CREATE TABLE " + table + "_new (id INTEGER PRIMARY KEY, name TEXT NOT NULL, qty INTEGER) STRICT",
					"INSERT INTO " + table + "_new SELECT * FROM " + table,
					"DROP TABLE " + table,
					"ALTER TABLE " + table + "_new RENAME TO " + table,
				}
			}
			for _, q := range fix {
				if _, err := s.DB().Exec(q); err != nil {
					t.Fatal(err)
				}
			}
			out = s.Commit(context.Background(), []*exactly.PartitionBatch{{Topic: "t.items", Partition: 0, From: 3, Records: recs(3)}})
			if !out[0].Committed || out[0].Err != nil {
				t.Fatalf("after the fix: %+v", out[0])
			}
			if got, want := qtyRows(t, s.DB(), table), "0:n0:0 1:n1:1 2:n2:2 3:n3:-3 4:n4:4 5:n5:5"; got != want {
				t.Errorf("table after the fix: got %s, want %s", got, want)
			}
			if got := next(); got != 6 {
				t.Errorf("next_offset after the fix: got %d, want 6", got)
			}
		})
	}
}

// Regression: dead letters found while planning (a missing key) were
// appended again by every attempt of the transaction, so a retry after a
// fenced partition wrote them twice and counted them twice.
func TestKeyMissingDeadLetterIsWrittenOnceAcrossRetries(t *testing.T) {
	for _, c := range refusingCases() {
		t.Run(c.name, func(t *testing.T) {
			s, _, pipeline := refusingSink(t, c, "dead_letter")
			// Another writer moved partition 0 on: its batch is fenced and
			// the transaction retried without it.
			if out := s.Commit(context.Background(), []*exactly.PartitionBatch{{Topic: "t.items", Partition: 0, From: 0,
				Records: []*exactly.Record{{Topic: "t.items", Offset: 0, Key: []byte("1"), Value: []byte(`{"id":1,"name":"a","qty":1}`)}}}}); !out[0].Committed {
				t.Fatal(out[0].Err)
			}
			out := s.Commit(context.Background(), []*exactly.PartitionBatch{
				{Topic: "t.items", Partition: 0, From: 0, Records: []*exactly.Record{{Topic: "t.items", Offset: 0, Key: []byte("1"), Value: []byte(`{"id":1,"name":"zombie","qty":1}`)}}},
				{Topic: "t.items", Partition: 1, From: 0, Records: []*exactly.Record{
					{Topic: "t.items", Partition: 1, Offset: 0, Value: []byte(`{"name":"no key","qty":1}`)},
					{Topic: "t.items", Partition: 1, Offset: 1, Key: []byte("2"), Value: []byte(`{"id":2,"name":"b","qty":2}`)},
				}},
			})
			var fe *exactly.FencedError
			if !errors.As(out[0].Err, &fe) || !out[1].Committed {
				t.Fatalf("outcomes: %+v / %+v", out[0], out[1])
			}
			if dl := deadLetters(t, s, pipeline); len(dl) != 1 || dl[0].partition != 1 || dl[0].offset != 0 || !strings.Contains(dl[0].err, "key missing") {
				t.Errorf("dead letters: got %+v, want one for t.items[1]@0 (key missing)", dl)
			}
			if got, want := ledgerCounts(t, s, pipeline, 1), "to=2 records=2 upserted=1 deleted=0 skipped=0 dead=1"; got != want {
				t.Errorf("ledger p1: got %s, want %s", got, want)
			}
		})
	}
}
