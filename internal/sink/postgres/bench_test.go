package postgres_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/sink/postgres"
	"github.com/exactly/exactly/internal/testenv"
)

// BenchmarkWritePath upserts batches of n rows of ~200 bytes through the
// unnest statement and through COPY into the staging table, each in its
// own transaction, to find the cross-over that sets copyThreshold.
// Report: ns/op per batch and rows/s.
func BenchmarkWritePath(b *testing.B) {
	dsn := testenv.PostgresSchema(b)
	d := &postgres.Dialect{}
	ctx := context.Background()
	db, err := d.Open(ctx, exactly.SinkConfig{Driver: "postgres", DSN: dsn})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("CREATE TABLE w (id bigint PRIMARY KEY, name text NOT NULL, amount bigint, payload text)"); err != nil {
		b.Fatal(err)
	}
	table, err := d.Describe(ctx, db, "w")
	if err != nil {
		b.Fatal(err)
	}
	pad := strings.Repeat("p", 150)
	for _, n := range []int{30, 300, 1000, 3000, 10000} {
		for _, path := range []struct {
			name      string
			threshold int
		}{{"unnest", 1 << 30}, {"copy", 1}} {
			b.Run(fmt.Sprintf("%s/rows=%d", path.name, n), func(b *testing.B) {
				restore := postgres.SetCopyThreshold(path.threshold)
				defer restore()
				w := &exactly.TableWrite{Table: table, Keys: []string{"id"}, Columns: []string{"id", "name", "amount", "payload"}}
				for i := 0; i < n; i++ {
					w.Upserts = append(w.Upserts, []any{int64(i), fmt.Sprintf("name-%d", i), int64(i * 7), pad})
				}
				conn, err := db.Conn(ctx)
				if err != nil {
					b.Fatal(err)
				}
				defer conn.Close()
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					tx, err := conn.BeginTx(ctx, nil)
					if err != nil {
						b.Fatal(err)
					}
					etx := &exactly.Tx{Tx: tx, Conn: conn}
					stmts, err := d.Statements(ctx, etx, w)
					if err == nil {
						_, err = d.ExecPipeline(ctx, etx, stmts)
					}
					if err != nil {
						b.Fatal(err)
					}
					if err := tx.Commit(); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "rows/s")
			})
		}
	}
}
