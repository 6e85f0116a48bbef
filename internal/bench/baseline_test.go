package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/sink/mysql"
	"github.com/exactly/exactly/internal/sink/postgres"
	"github.com/exactly/exactly/internal/sink/sqlite"
	"github.com/exactly/exactly/internal/sink/sqlserver"
	"github.com/exactly/exactly/internal/testenv"
)

// TestBaselinesLoadEveryRow: each database's baseline loads every record's
// row, as the pipeline does, and a second load (all updates) leaves one
// row per record with the values of the records.
func TestBaselinesLoadEveryRow(t *testing.T) {
	for _, c := range []struct {
		d   exactly.Dialect
		dsn func(t *testing.T) string
	}{
		{&sqlite.Dialect{}, func(t *testing.T) string { return filepath.Join(t.TempDir(), "b.db") }},
		{&postgres.Dialect{}, func(t *testing.T) string { return testenv.PostgresSchema(t) }},
		{&mysql.Dialect{}, func(t *testing.T) string { return testenv.MySQLDatabase(t) }},
		{&sqlserver.Dialect{}, func(t *testing.T) string { return testenv.SQLServerDatabase(t) }},
	} {
		t.Run(c.d.Name(), func(t *testing.T) {
			ctx := context.Background()
			o := Options{Dialect: c.d, Topics: 2, Records: 301, RecordBytes: 120}
			db, err := c.d.Open(ctx, exactly.SinkConfig{Driver: c.d.Name(), DSN: c.dsn(t)})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			tables := []string{"bench_base_0", "bench_base_1"}
			if err := createTables(ctx, db, c.d.Name(), tables); err != nil {
				t.Fatal(err)
			}
			for round := 1; round <= 2; round++ {
				if _, secs, err := baseline(ctx, o, db, tables); err != nil || secs <= 0 {
					t.Fatalf("round %d: %v (%v s)", round, err, secs)
				}
				if ok, err := checkRows(ctx, db, tables, o.Records); err != nil || !ok {
					t.Fatalf("round %d: not one row per record (%v)", round, err)
				}
			}
			for _, id := range []int64{0, 1, 300} {
				want := makeRow(id, o.RecordBytes)
				var got row
				q := fmt.Sprintf("SELECT id, name, amount, payload FROM %s WHERE id = %d", tables[id%2], id)
				if err := db.QueryRowContext(ctx, q).Scan(&got.id, &got.name, &got.amount, &got.payload); err != nil {
					t.Fatal(err)
				}
				if got != want {
					t.Errorf("row %d: got %+v, want %+v", id, got, want)
				}
			}
		})
	}
}
