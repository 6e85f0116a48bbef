package exactly_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/decode"
	"github.com/exactly/exactly/internal/sink/postgres"
	"github.com/exactly/exactly/internal/sink/sqlite"
	"github.com/exactly/exactly/internal/testenv"
)

// sinkCase opens sinks of one dialect on one database.
type sinkCase struct {
	name string
	open func(t *testing.T, table string) (cfg func(pipeline string) *exactly.Config, d exactly.Dialect)
}

func sinkCases() []sinkCase {
	return []sinkCase{
		{"sqlite", func(t *testing.T, table string) (func(string) *exactly.Config, exactly.Dialect) {
			dsn := filepath.Join(t.TempDir(), "sink.db")
			return configFor("sqlite", dsn, table), &sqlite.Dialect{}
		}},
		{"postgres", func(t *testing.T, table string) (func(string) *exactly.Config, exactly.Dialect) {
			dsn := testenv.PostgresSchema(t)
			return configFor("postgres", dsn, table), &postgres.Dialect{}
		}},
	}
}

func configFor(driver, dsn, table string) func(string) *exactly.Config {
	return func(pipeline string) *exactly.Config {
		c := fmt.Sprintf(`pipeline: %s
source: {brokers: [127.0.0.1:1]}
sink: {driver: %s, dsn: '%s'}
tables:
  - topics: t.items
    table: %s
    key: [id]
`, pipeline, driver, dsn, table)
		cfg, err := exactly.ParseConfig(strings.NewReader(c), "test.yaml")
		if err != nil {
			panic(err)
		}
		return cfg
	}
}

func openSink(t *testing.T, cfg *exactly.Config, d exactly.Dialect) *exactly.Sink {
	t.Helper()
	s, err := exactly.NewSink(context.Background(), cfg, d, decode.For(cfg), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func uniq(prefix string) string { return fmt.Sprintf("%s_%d", prefix, time.Now().UnixNano()%1e12) }

func rec(off int64, key, value string) *exactly.Record {
	r := &exactly.Record{Topic: "t.items", Partition: 0, Offset: off, Key: []byte(key)}
	if value != "" {
		r.Value = []byte(value)
	}
	return r
}

func rows(t *testing.T, db *sql.DB, table string) map[int64]string {
	t.Helper()
	rs, err := db.Query("SELECT id, name FROM " + table)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	out := map[int64]string{}
	for rs.Next() {
		var id int64
		var name string
		if err := rs.Scan(&id, &name); err != nil {
			t.Fatal(err)
		}
		if _, dup := out[id]; dup {
			t.Fatalf("id %d present twice", id)
		}
		out[id] = name
	}
	return out
}

func setup(t *testing.T, c sinkCase) (*exactly.Sink, func(string) *exactly.Config, exactly.Dialect, string, string) {
	table := uniq("items")
	cfgFor, d := c.open(t, table)
	pipeline := uniq("p")
	s := openSink(t, cfgFor(pipeline), d)
	if _, err := s.DB().Exec("CREATE TABLE " + table + " (id BIGINT PRIMARY KEY, name TEXT NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.DB().Exec("DROP TABLE " + table) })
	if _, err := s.SeedOffset(context.Background(), exactly.TP{Topic: "t.items", Partition: 0}, 0); err != nil {
		t.Fatal(err)
	}
	return s, cfgFor, d, table, pipeline
}

func TestCommitAppliesRowsLedgerAndOffsetTogether(t *testing.T) {
	for _, c := range sinkCases() {
		t.Run(c.name, func(t *testing.T) {
			s, _, d, table, pipeline := setup(t, c)
			b := &exactly.PartitionBatch{Topic: "t.items", Partition: 0, From: 0, Records: []*exactly.Record{
				rec(0, `{"id":1}`, `{"id":1,"name":"a"}`),
				rec(1, `{"id":2}`, `{"id":2,"name":"b"}`),
				rec(2, `{"id":1}`, `{"id":1,"name":"a2"}`), // supersedes offset 0
				rec(3, `{"id":2}`, ``),                     // tombstone deletes 2
				rec(5, `{"id":3}`, `{"id":3,"name":"c"}`),  // sparse offsets are normal
				rec(6, `{"id":4}`, `not json`),             // a dead letter, not a failure
			}}
			out := s.Commit(context.Background(), []*exactly.PartitionBatch{b})
			if len(out) != 1 || !out[0].Committed || out[0].Err != nil {
				t.Fatalf("outcome: %+v", out)
			}
			if got, want := fmt.Sprint(rows(t, s.DB(), table)), fmt.Sprint(map[int64]string{1: "a2", 3: "c"}); got != want {
				t.Errorf("table: got %s, want %s", got, want)
			}
			off, err := s.LoadOffsets(context.Background(), []exactly.TP{{Topic: "t.items", Partition: 0}})
			if err != nil || off[exactly.TP{Topic: "t.items", Partition: 0}] != 7 {
				t.Errorf("next_offset: got %v %v, want 7", off, err)
			}
			var from, to, min, max, records, upserted, deleted, skipped, dead int64
			var hash, status string
			err = s.DB().QueryRow(exactly.Rebind(d, `SELECT from_offset, to_offset, min_offset, max_offset, records, upserted, deleted, skipped, dead_lettered, hash, status
				FROM exactly_batches WHERE pipeline = ?`), pipeline).Scan(&from, &to, &min, &max, &records, &upserted, &deleted, &skipped, &dead, &hash, &status)
			if err != nil {
				t.Fatal(err)
			}
			got := fmt.Sprintln(from, to, min, max, records, upserted, deleted, skipped, dead, status)
			if want := "0 7 0 6 6 2 1 2 1 committed\n"; got != want {
				t.Errorf("ledger row: got %s, want %s", got, want)
			}
			if hash != exactly.HashRecords(b.Records) {
				t.Errorf("ledger hash %s differs from the records' hash", hash)
			}
			var dlOffset int64
			var dlErr string
			if err := s.DB().QueryRow(exactly.Rebind(d, `SELECT "offset", error FROM exactly_dead_letters WHERE pipeline = ?`), pipeline).Scan(&dlOffset, &dlErr); err != nil {
				t.Fatal(err)
			}
			if dlOffset != 6 || !strings.Contains(dlErr, "t.items[0]@6") {
				t.Errorf("dead letter: offset %d error %q", dlOffset, dlErr)
			}
		})
	}
}

func TestStaleWriterIsFenced(t *testing.T) {
	for _, c := range sinkCases() {
		t.Run(c.name, func(t *testing.T) {
			a, cfgFor, d, table, pipeline := setup(t, c)
			b := openSink(t, cfgFor(pipeline), d) // a second instance of the same pipeline
			batch := func(name string) *exactly.PartitionBatch {
				return &exactly.PartitionBatch{Topic: "t.items", Partition: 0, From: 0, Records: []*exactly.Record{
					rec(0, `{"id":1}`, `{"id":1,"name":"`+name+`"}`),
					rec(1, `{"id":2}`, `{"id":2,"name":"`+name+`"}`),
				}}
			}
			if out := a.Commit(context.Background(), []*exactly.PartitionBatch{batch("first")}); !out[0].Committed {
				t.Fatalf("first writer: %+v", out[0])
			}
			// The second writer still believes the partition starts at 0.
			out := b.Commit(context.Background(), []*exactly.PartitionBatch{batch("zombie")})
			var fe *exactly.FencedError
			if out[0].Committed || !errors.As(out[0].Err, &fe) {
				t.Fatalf("stale writer: got %+v, want a FencedError", out[0])
			}
			if fe.Want != 0 || fe.Stored != 2 {
				t.Errorf("fence: want 0 stored 2, got %+v", fe)
			}
			if got := rows(t, a.DB(), table); got[1] != "first" || got[2] != "first" {
				t.Errorf("the fenced batch changed the table: %v", got)
			}
			var n int
			a.DB().QueryRow(exactly.Rebind(d, "SELECT COUNT(*) FROM exactly_batches WHERE pipeline = ? AND status = 'committed'"), pipeline).Scan(&n)
			if n != 1 {
				t.Errorf("committed ledger rows: got %d, want 1", n)
			}
			// The stale attempt stays in the audit trail: a failed row
			// saying who was fenced and where the partition stood.
			var errText, writer string
			if err := a.DB().QueryRow(exactly.Rebind(d, "SELECT error, writer FROM exactly_batches WHERE pipeline = ? AND status = 'failed'"), pipeline).Scan(&errText, &writer); err != nil {
				t.Fatalf("the fenced batch left no failed ledger row: %v", err)
			}
			if !strings.HasPrefix(errText, "fenced: t.items[0] batch starts at 0 but exactly_offsets.next_offset is 2") || writer != b.Writer() {
				t.Errorf("failed row: error %q writer %q", errText, writer)
			}
		})
	}
}

func TestLedgerRowsChain(t *testing.T) {
	for _, c := range sinkCases() {
		t.Run(c.name, func(t *testing.T) {
			s, _, d, _, pipeline := setup(t, c)
			from := int64(0)
			for i := 0; i < 4; i++ {
				var recs []*exactly.Record
				for j := 0; j < 3; j++ {
					off := from + int64(j)*2 // sparse, like transaction markers
					recs = append(recs, rec(off, fmt.Sprintf(`{"id":%d}`, off), fmt.Sprintf(`{"id":%d,"name":"n"}`, off)))
				}
				out := s.Commit(context.Background(), []*exactly.PartitionBatch{{Topic: "t.items", Partition: 0, From: from, Records: recs}})
				if !out[0].Committed {
					t.Fatalf("batch %d: %+v", i, out[0])
				}
				from = out[0].Batch.To
			}
			rs, err := s.DB().Query(exactly.Rebind(d, "SELECT from_offset, to_offset FROM exactly_batches WHERE pipeline = ? ORDER BY from_offset"), pipeline)
			if err != nil {
				t.Fatal(err)
			}
			defer rs.Close()
			prev, n := int64(0), 0
			for rs.Next() {
				var f, to int64
				rs.Scan(&f, &to)
				if f != prev {
					t.Errorf("batch %d starts at %d, previous ended at %d", n, f, prev)
				}
				prev, n = to, n+1
			}
			if n != 4 || prev != from {
				t.Errorf("got %d batches ending at %d, want 4 ending at %d", n, prev, from)
			}
		})
	}
}
