package sqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/sink/sqlite"
)

// BenchmarkApply10k: a 12,500-row upsert of ~200-byte rows (a flight of
// exactly bench) by Apply in one transaction, beside the bench baseline's
// way (one prepared single-row upsert, context without a Done channel).
//
//	go test -run '^$' -bench Apply10k -count 6 ./internal/sink/sqlite/
func BenchmarkApply10k(b *testing.B) {
	const n = 12500
	d := &sqlite.Dialect{}
	db, err := d.Open(context.Background(), exactly.SinkConfig{DSN: filepath.Join(b.TempDir(), "b.db")})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	rounds := map[string]int64{}
	table := func(b *testing.B, name string) *exactly.Table {
		if _, err := db.Exec("DROP TABLE IF EXISTS " + name); err != nil {
			b.Fatal(err)
		}
		rounds[b.Name()] = 0
		if _, err := db.Exec("CREATE TABLE " + name + " (id BIGINT PRIMARY KEY, name TEXT NOT NULL, amount BIGINT, payload TEXT)"); err != nil {
			b.Fatal(err)
		}
		tbl, err := d.Describe(context.Background(), db, name)
		if err != nil {
			b.Fatal(err)
		}
		return tbl
	}
	pad := strings.Repeat("p", 140)
	rows := func(b *testing.B) [][]any {
		round := rounds[b.Name()]
		out := make([][]any, n)
		for i := range out {
			id := round*n + int64(i)
			out[i] = []any{id, fmt.Sprintf("name-%d", id), id * 7, pad}
		}
		rounds[b.Name()]++
		return out
	}
	inTx := func(b *testing.B, ctx context.Context, fn func(tx *exactly.Tx) error) {
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
	cols := []string{"id", "name", "amount", "payload"}
	for _, per := range []int{1, 16, 64, 256} {
		b.Run(fmt.Sprintf("apply_rows=%d", per), func(b *testing.B) {
			defer sqlite.SetUpsertRows(per)()
			ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
			defer cancel()
			tbl := table(b, fmt.Sprintf("t_apply%d", per))
			cpu := cpuTime()
			for b.Loop() {
				w := &exactly.TableWrite{Table: tbl, Columns: cols, Keys: []string{"id"}, Upserts: rows(b)}
				inTx(b, ctx, func(tx *exactly.Tx) error { return d.Apply(ctx, tx, w) })
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "rows/s")
			b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
		})
	}
	b.Run("baseline", func(b *testing.B) {
		ctx := context.Background()
		table(b, "t_base")
		cpu := cpuTime()
		defer func() { b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op") }()
		for b.Loop() {
			rs := rows(b)
			inTx(b, ctx, func(tx *exactly.Tx) error {
				stmt, err := tx.PrepareContext(ctx, "INSERT INTO t_base (id, name, amount, payload) VALUES (?, ?, ?, ?)"+
					" ON CONFLICT (id) DO UPDATE SET name = excluded.name, amount = excluded.amount, payload = excluded.payload")
				if err != nil {
					return err
				}
				defer stmt.Close()
				for _, r := range rs {
					if _, err := stmt.ExecContext(ctx, r...); err != nil {
						return err
					}
				}
				return nil
			})
		}
		b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "rows/s")
	})
}

// cpuTime is the process's user and system CPU time so far: on a shared
// machine it moves far less with the load than the wall clock.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkTwoWriters: two goroutines each committing 2,000-row upserts
// in turn, waiting for the write lock in SQLite's busy handler (busy) or
// for a Go channel first (slot, what exactly.SingleWriter makes Sink do).
//
//	go test -run '^$' -bench TwoWriters -count 6 ./internal/sink/sqlite/
func BenchmarkTwoWriters(b *testing.B) {
	const n = 2000
	d := &sqlite.Dialect{}
	pad := strings.Repeat("p", 140)
	for _, mode := range []string{"busy", "slot"} {
		b.Run(mode, func(b *testing.B) {
			ctx := context.Background()
			db, err := d.Open(ctx, exactly.SinkConfig{DSN: filepath.Join(b.TempDir(), "b.db")})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			if _, err := db.Exec("CREATE TABLE t (id BIGINT PRIMARY KEY, name TEXT NOT NULL, amount BIGINT, payload TEXT)"); err != nil {
				b.Fatal(err)
			}
			tbl, err := d.Describe(ctx, db, "t")
			if err != nil {
				b.Fatal(err)
			}
			slot := make(chan struct{}, 1)
			var next atomic.Int64
			write := func() error {
				base := next.Add(n) - n
				rows := make([][]any, n)
				for i := range rows {
					id := base + int64(i)
					rows[i] = []any{id, fmt.Sprintf("name-%d", id), id * 7, pad}
				}
				time.Sleep(2 * time.Millisecond) // the flight's decode and plan
				conn, err := db.Conn(ctx)
				if err != nil {
					return err
				}
				defer conn.Close()
				if mode == "slot" {
					slot <- struct{}{}
					defer func() { <-slot }()
				}
				tx, err := conn.BeginTx(ctx, nil)
				if err != nil {
					return err
				}
				w := &exactly.TableWrite{Table: tbl, Columns: []string{"id", "name", "amount", "payload"}, Keys: []string{"id"}, Upserts: rows}
				if err := d.Apply(ctx, &exactly.Tx{Tx: tx, Conn: conn}, w); err != nil {
					tx.Rollback()
					return err
				}
				return tx.Commit()
			}
			b.ResetTimer()
			var wg sync.WaitGroup
			var left atomic.Int64
			left.Store(int64(b.N))
			for range 2 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for left.Add(-1) >= 0 {
						if err := write(); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
