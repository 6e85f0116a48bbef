package postgres_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/decode"
	"github.com/exactly/exactly/internal/sink/postgres"
	"github.com/exactly/exactly/internal/testenv"
)

func newSink(t testing.TB, dsn string, ddl string) *exactly.Sink {
	t.Helper()
	cfg, err := exactly.ParseConfig(strings.NewReader(fmt.Sprintf(`pipeline: p
source: {brokers: [127.0.0.1:1]}
sink: {driver: postgres, dsn: '%s'}
tables:
  - topics: '^t\.(.*)$'
    table: '$1'
    key: [id]
    version: v
`, dsn)), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s, err := exactly.NewSink(context.Background(), cfg, &postgres.Dialect{}, decode.For(cfg), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.DB().Exec(ddl); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestUnnestAndCopyPathsAgree writes the same changes (inserts, updates,
// deletes, a version guard that refuses an older update, NULLs and text
// that needs escaping) once through INSERT … unnest and once through COPY
// into the staging table, and requires identical tables.
func TestUnnestAndCopyPathsAgree(t *testing.T) {
	dsn := testenv.PostgresSchema(t)
	got := map[string]string{}
	for _, path := range []struct {
		name      string
		threshold int
	}{{"unnest", 1 << 30}, {"copy", 1}} {
		restore := postgres.SetCopyThreshold(path.threshold)
		table := "items_" + path.name
		s := newSink(t, dsn, "CREATE TABLE "+table+" (id bigint PRIMARY KEY, name text, amount numeric(12,2), v bigint)")
		tp := exactly.TP{Topic: "t." + table, Partition: 0}
		if _, err := s.SeedOffset(context.Background(), tp, 0); err != nil {
			t.Fatal(err)
		}
		var off int64
		batch := func(vals ...string) *exactly.PartitionBatch {
			b := &exactly.PartitionBatch{Topic: tp.Topic, Partition: 0, From: off}
			for i := 0; i < len(vals); i += 2 {
				r := &exactly.Record{Topic: tp.Topic, Offset: off, Key: []byte(vals[i])}
				if vals[i+1] != "" {
					r.Value = []byte(vals[i+1])
				}
				b.Records = append(b.Records, r)
				off++
			}
			return b
		}
		var first []string
		for i := 1; i <= 50; i++ {
			first = append(first, fmt.Sprint(i), fmt.Sprintf(`{"id":%d,"name":"n%d \"q\" \\ ,{}","amount":%d.25,"v":5}`, i, i, i))
		}
		second := []string{
			"1", `{"id":1,"name":null,"amount":null,"v":6}`, // newer: applied
			"2", `{"id":2,"name":"old","amount":1,"v":4}`, // older: refused by the guard
			"3", ``, // tombstone: deleted
			"51", `{"id":51,"name":"new","amount":0.5,"v":1}`,
		}
		for _, b := range []*exactly.PartitionBatch{batch(first...), batch(second...)} {
			out := s.Commit(context.Background(), []*exactly.PartitionBatch{b})
			if !out[0].Committed {
				t.Fatalf("%s: %+v", path.name, out[0])
			}
		}
		rows, err := s.DB().Query("SELECT id, coalesce(name, 'NULL'), coalesce(amount::text, 'NULL'), v FROM " + table + " ORDER BY id")
		if err != nil {
			t.Fatal(err)
		}
		var sb strings.Builder
		for rows.Next() {
			var id, v int64
			var name, amount string
			if err := rows.Scan(&id, &name, &amount, &v); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&sb, "%d|%s|%s|%d\n", id, name, amount, v)
		}
		rows.Close()
		got[path.name] = sb.String()
		restore()
	}
	if got["unnest"] != got["copy"] {
		t.Fatalf("paths disagree:\nunnest:\n%s\ncopy:\n%s", got["unnest"], got["copy"])
	}
	for _, want := range []string{"1|NULL|NULL|6\n", "2|n2 \"q\" \\ ,{}|2.25|5\n", "51|new|0.50|1\n"} {
		if !strings.Contains(got["copy"], want) {
			t.Errorf("table lacks %q:\n%s", want, got["copy"])
		}
	}
	if strings.Contains(got["copy"], "\n3|") || strings.Count(got["copy"], "\n") != 50 {
		t.Errorf("want 50 rows without id 3:\n%s", got["copy"])
	}
}
