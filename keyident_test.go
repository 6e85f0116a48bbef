package exactly_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"path/filepath"
	"strings"
	"testing"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/decode"
	"github.com/exactly/exactly/internal/sink/mysql"
	"github.com/exactly/exactly/internal/sink/postgres"
	"github.com/exactly/exactly/internal/sink/sqlite"
	"github.com/exactly/exactly/internal/testenv"
)

// changesDecoder decodes a record's value as the name of a change, so
// that any Go value a decoder may produce ([]byte keys) reaches the sink.
type changesDecoder map[string]exactly.Change

func (d changesDecoder) Decode(r *exactly.Record) (exactly.Change, error) {
	ch, ok := d[string(r.Value)]
	if !ok {
		return ch, fmt.Errorf("no change %q", r.Value)
	}
	ch.Row, ch.Key = maps.Clone(ch.Row), maps.Clone(ch.Key)
	return ch, nil
}

type identityCase struct {
	name string
	d    exactly.Dialect
	dsn  func(t *testing.T) string
	ddl  string // CREATE TABLE %s (a …, b …, v …, PRIMARY KEY (a, b))
}

func identitySink(t *testing.T, c identityCase, dec exactly.Decoder, rule string) (*exactly.Sink, string) {
	t.Helper()
	table := uniq("ident")
	cfg, err := exactly.ParseConfig(strings.NewReader(fmt.Sprintf("pipeline: %s\nsource: {brokers: ['127.0.0.1:1']}\nsink: {driver: %s, dsn: '%s'}\ntables:\n  - {topics: t.x, table: %s, %s}\n",
		uniq("p"), c.d.Name(), c.dsn(t), table, rule)), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	newDec := decode.For(cfg)
	if dec != nil {
		newDec = func(*exactly.TableRule) (exactly.Decoder, error) { return dec, nil }
	}
	s, err := exactly.NewSink(context.Background(), cfg, c.d, newDec, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.DB().Exec(fmt.Sprintf(c.ddl, table)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.DB().Exec("DROP TABLE " + table) })
	return s, table
}

func countRows(t *testing.T, s *exactly.Sink, table string) int {
	t.Helper()
	var n int
	if err := s.DB().QueryRow("SELECT COUNT(*) FROM " + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Regression (issue 15.12): the collapse identity joined composite key
// values with NUL, so ("a\x00b", "c") and ("a", "b\x00c") were one key
// and one of the two rows was never written; and a []byte key printed
// like the text "[1 2]", so the bytes 1,2 and that text were one key.
func TestDistinctKeysStayDistinct(t *testing.T) {
	cases := []identityCase{
		{"sqlite", &sqlite.Dialect{}, func(t *testing.T) string { return filepath.Join(t.TempDir(), "sink.db") },
			"CREATE TABLE %s (a BLOB NOT NULL, b BLOB NOT NULL, v TEXT, PRIMARY KEY (a, b))"},
		{"mariadb", &mysql.Dialect{}, func(t *testing.T) string { return testenv.MySQLDatabase(t) },
			"CREATE TABLE %s (a VARBINARY(20) NOT NULL, b VARBINARY(20) NOT NULL, v TEXT, PRIMARY KEY (a, b))"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dec := changesDecoder{
				"nul1":  {Op: exactly.OpUpsert, Row: map[string]any{"a": "a\x00b", "b": "c", "v": "1"}},
				"nul2":  {Op: exactly.OpUpsert, Row: map[string]any{"a": "a", "b": "b\x00c", "v": "2"}},
				"bytes": {Op: exactly.OpUpsert, Row: map[string]any{"a": []byte{1, 2}, "b": "x", "v": "3"}},
				"text":  {Op: exactly.OpUpsert, Row: map[string]any{"a": "[1 2]", "b": "x", "v": "4"}},
			}
			s, table := identitySink(t, c, dec, "key: [a, b]")
			var recs []*exactly.Record
			for i, name := range []string{"nul1", "nul2", "bytes", "text"} {
				recs = append(recs, &exactly.Record{Topic: "t.x", Offset: int64(i), Value: []byte(name)})
			}
			b := commit(t, s, &exactly.PartitionBatch{Topic: "t.x", Records: recs})
			if n := countRows(t, s, table); n != 4 || b.Upserted != 4 || b.Skipped != 0 {
				t.Errorf("rows %d, upserted %d, skipped %d; want 4 distinct keys written", n, b.Upserted, b.Skipped)
			}
		})
	}
}

// Regression (issue 15.12): versions of mixed types compared as text, so
// inside a batch "10" was older than 9 and the change at version 9 won,
// where applying the records one by one keeps version 10 (the guard
// compares them as the bigint column holds them).
func TestVersionsCompareAsTheirColumn(t *testing.T) {
	cases := []identityCase{
		{"sqlite", &sqlite.Dialect{}, func(t *testing.T) string { return filepath.Join(t.TempDir(), "sink.db") },
			"CREATE TABLE %s (id INTEGER PRIMARY KEY, ver INTEGER, v TEXT)"},
		{"postgres", &postgres.Dialect{}, func(t *testing.T) string { return testenv.PostgresSchema(t) },
			"CREATE TABLE %s (id bigint PRIMARY KEY, ver bigint, v text)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, table := identitySink(t, c, nil, "key: [id], version: ver")
			commit(t, s, &exactly.PartitionBatch{Topic: "t.x", Records: records("t.x", 0,
				`{"id":1,"ver":"10","v":"newer"}`, `{"id":1,"ver":9,"v":"older"}`)})
			var v string
			if err := s.DB().QueryRow("SELECT v FROM " + table + " WHERE id = 1").Scan(&v); err != nil || v != "newer" {
				t.Errorf("row 1: v = %q (%v), want the change at version \"10\" (newer than 9)", v, err)
			}
		})
	}
}

// Regression (issue 15.12): a field renamed to the name of another field
// of the row wrote the column with one or the other at random; the
// renamed field wins now. Two fields renamed to one column are refused.
func TestRenameOntoAFieldIsDeterministic(t *testing.T) {
	c := identityCase{"sqlite", &sqlite.Dialect{}, func(t *testing.T) string { return filepath.Join(t.TempDir(), "sink.db") },
		"CREATE TABLE %s (id INTEGER PRIMARY KEY, price INTEGER)"}
	s, table := identitySink(t, c, nil, "key: [id], columns: {rename: {new_price: price}}")
	var vals []string
	for i := 0; i < 40; i++ {
		vals = append(vals, fmt.Sprintf(`{"id":%d,"price":1,"new_price":2}`, i))
	}
	commit(t, s, &exactly.PartitionBatch{Topic: "t.x", Records: records("t.x", 0, vals...)})
	var n int
	if err := s.DB().QueryRow("SELECT COUNT(*) FROM " + table + " WHERE price <> 2").Scan(&n); err != nil || n != 0 {
		t.Errorf("%d of 40 rows took price, not new_price (%v)", n, err)
	}
	_, err := exactly.ParseConfig(strings.NewReader("pipeline: p\nsource: {brokers: ['127.0.0.1:1']}\nsink: {driver: sqlite, dsn: x.db}\n"+
		"tables:\n  - {topics: t.x, table: x, key: [id], columns: {rename: {a: c, b: c}}}\n"), "test.yaml")
	if err == nil || !strings.Contains(err.Error(), "rename") {
		t.Errorf("two fields renamed to one column: %v, want a configuration error naming columns.rename", err)
	}
}
