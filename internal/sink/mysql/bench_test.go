package mysql_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/sink/mysql"
	"github.com/exactly/exactly/internal/testenv"
)

const benchRows = 10000

// BenchmarkUpsert10k compares the write path with the alternatives, on
// the same server in the same run: a 10,000-row batch of ~200-byte rows
// applied in one transaction, half the keys existing (mixed) or none
// (inserts_only). exactly is this dialect's Apply (chunked multi-row
// INSERT … ON DUPLICATE KEY UPDATE, parameters interpolated);
// exactly_prepared the same with interpolateParams=false (a prepare and a
// close per chunk); load_data is LOAD DATA LOCAL INFILE into a temporary
// table, then one INSERT … SELECT … ON DUPLICATE KEY UPDATE; plain_insert
// is a multi-row INSERT into an empty table, no upsert at all;
// exactly_stmt=N keeps each statement under N bytes instead of 2 MiB.
//
//	go test -run '^$' -bench Upsert10k -benchtime 10x ./internal/sink/mysql/
func BenchmarkUpsert10k(b *testing.B) {
	base := testenv.MySQLDatabase(b)
	ctx := context.Background()
	d := &mysql.Dialect{}
	pad := strings.Repeat("p", 140) // ~200-byte rows, like exactly bench
	rows := make([][]any, benchRows)
	for i := range rows {
		id := int64(i * 2) // even ids exist before each run, odd ids are new
		rows[i] = []any{id, fmt.Sprintf("customer %d with a name of ordinary length ✓ %s", id, pad), int64(i % 1000), time.Unix(1700000000+id, 0).UTC()}
	}
	cols := []string{"id", "name", "qty", "updated_at"}
	setup := func(b *testing.B, db *sql.DB, table string) {
		b.Helper()
		for _, s := range []string{
			"DROP TABLE IF EXISTS " + table,
			"CREATE TABLE " + table + " (id BIGINT PRIMARY KEY, name VARCHAR(300) NOT NULL, qty BIGINT, updated_at DATETIME(6)) DEFAULT CHARSET=utf8mb4",
		} {
			if _, err := db.Exec(s); err != nil {
				b.Fatal(err)
			}
		}
	}
	prefill := func(b *testing.B, db *sql.DB, table string, empty bool) {
		b.Helper()
		if _, err := db.Exec("TRUNCATE TABLE " + table); err != nil {
			b.Fatal(err)
		}
		if empty {
			return
		}
		if _, err := db.Exec("INSERT INTO " + table + " (id, name, qty) SELECT seq, 'old', 0 FROM seq_0_to_19999 WHERE seq % 4 = 0"); err != nil {
			b.Fatal(err)
		}
	}
	inTx := func(b *testing.B, db *sql.DB, fn func(tx *exactly.Tx) error) {
		b.Helper()
		conn, err := db.Conn(ctx)
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close()
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			b.Fatal(err)
		}
		if err := fn(&exactly.Tx{Tx: tx, Conn: conn}); err != nil {
			tx.Rollback()
			b.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	open := func(b *testing.B, dsn string) *sql.DB {
		db, err := d.Open(ctx, exactly.SinkConfig{Driver: "mysql", DSN: dsn})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { db.Close() })
		return db
	}
	report := func(b *testing.B) {
		b.ReportMetric(float64(benchRows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	}

	for _, v := range []struct {
		name, dsn string
		empty     bool
		stmt      int
	}{{"exactly", base, false, 0}, {"exactly_prepared", base + "?interpolateParams=false", false, 0}, {"exactly_inserts_only", base, true, 0},
		{"exactly_stmt=64k", base, false, 64 << 10}, {"exactly_stmt=256k", base, false, 256 << 10}, {"exactly_stmt=1m", base, false, 1 << 20},
		{"exactly_inserts_only_stmt=256k", base, true, 256 << 10}} {
		b.Run(v.name, func(b *testing.B) {
			if v.stmt > 0 {
				defer mysql.SetMaxStatementBytes(v.stmt)()
			}
			db := open(b, v.dsn)
			setup(b, db, "bench_upsert")
			t, err := d.Describe(ctx, db, "bench_upsert")
			if err != nil {
				b.Fatal(err)
			}
			w := &exactly.TableWrite{Table: t, Keys: []string{"id"}, Columns: cols, Upserts: rows}
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				prefill(b, db, "bench_upsert", v.empty)
				b.StartTimer()
				inTx(b, db, func(tx *exactly.Tx) error { return d.Apply(ctx, tx, w) })
			}
			report(b)
		})
	}

	for _, empty := range []bool{false, true} {
		name := "load_data"
		if empty {
			name += "_inserts_only"
		}
		b.Run(name, func(b *testing.B) {
			db := open(b, base)
			setup(b, db, "bench_load")
			var tsv strings.Builder
			for _, r := range rows {
				fmt.Fprintf(&tsv, "%d\t%s\t%d\t%s\n", r[0], r[1], r[2], r[3].(time.Time).Format("2006-01-02 15:04:05.000000"))
			}
			data := tsv.String()
			gomysql.RegisterReaderHandler("exactly_bench", func() io.Reader { return strings.NewReader(data) })
			defer gomysql.DeregisterReaderHandler("exactly_bench")
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				prefill(b, db, "bench_load", empty)
				b.StartTimer()
				inTx(b, db, func(tx *exactly.Tx) error {
					for _, s := range []string{
						"CREATE TEMPORARY TABLE IF NOT EXISTS bench_stage (id BIGINT, name VARCHAR(300), qty BIGINT, updated_at DATETIME(6)) DEFAULT CHARSET=utf8mb4",
						"DELETE FROM bench_stage",
						"LOAD DATA LOCAL INFILE 'Reader::exactly_bench' INTO TABLE bench_stage CHARACTER SET utf8mb4 FIELDS TERMINATED BY '\\t' LINES TERMINATED BY '\\n' (id, name, qty, updated_at)",
						"INSERT INTO bench_load (id, name, qty, updated_at) SELECT id, name, qty, updated_at FROM bench_stage ON DUPLICATE KEY UPDATE name = VALUES(name), qty = VALUES(qty), updated_at = VALUES(updated_at)",
					} {
						if _, err := tx.ExecContext(ctx, s); err != nil {
							return fmt.Errorf("%s: %w", s[:30], err)
						}
					}
					return nil
				})
			}
			report(b)
		})
	}

	b.Run("plain_insert", func(b *testing.B) {
		db := open(b, base)
		setup(b, db, "bench_plain")
		t, err := d.Describe(ctx, db, "bench_plain")
		if err != nil {
			b.Fatal(err)
		}
		w := &exactly.TableWrite{Table: t, Append: true, Columns: cols, Upserts: rows}
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			if _, err := db.Exec("TRUNCATE TABLE bench_plain"); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			inTx(b, db, func(tx *exactly.Tx) error { return d.Apply(ctx, tx, w) })
		}
		report(b)
	})
}
