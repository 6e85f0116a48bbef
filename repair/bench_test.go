package repair_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/exactly/exactly/repair"
)

// BenchmarkDedupe times ApplyDedupe on a table of 100,000 rows where every
// tenth key was written twice (the reprocessed micro-batch), against a
// baseline measured in the same run on the same database: copying the
// table once with INSERT … SELECT. The ratio is what the dedupe's window
// ranking, backup, delete and re-insert cost over moving the rows once.
//
//	go test -run '^$' -bench Dedupe -benchtime 3x ./repair/
func BenchmarkDedupe(b *testing.B) {
	const rows = 100_000
	for _, driver := range []string{"sqlite", "postgres"} {
		b.Run(driver, func(b *testing.B) {
			var base, full time.Duration
			for i := 0; i < b.N; i++ {
				db, d := open(b, driver)
				if _, err := db.Exec("CREATE TABLE events (id bigint, seq bigint, payload text)"); err != nil {
					b.Fatal(err)
				}
				tx, _ := db.Begin()
				var sb strings.Builder
				n := 0
				flush := func() {
					if sb.Len() > 0 {
						if _, err := tx.Exec("INSERT INTO events VALUES " + strings.TrimSuffix(sb.String(), ",")); err != nil {
							b.Fatal(err)
						}
						sb.Reset()
					}
				}
				for id := 0; n < rows; id++ {
					copies := 1
					if id%10 == 0 {
						copies = 2
					}
					for c := 0; c < copies && n < rows; c++ {
						fmt.Fprintf(&sb, "(%d,%d,'payload-%d-%d'),", id, c, id, c)
						n++
						if n%1000 == 0 {
							flush()
						}
					}
				}
				flush()
				if err := tx.Commit(); err != nil {
					b.Fatal(err)
				}
				if _, err := db.Exec(d.CreateTableLike("events_copy", "events")); err != nil {
					b.Fatal(err)
				}
				start := time.Now()
				if _, err := db.Exec("INSERT INTO events_copy SELECT * FROM events"); err != nil {
					b.Fatal(err)
				}
				base += time.Since(start)
				start = time.Now()
				res, err := repair.ApplyDedupe(context.Background(), db, d, repair.Dedupe{Table: "events", Key: []string{"id"}, OrderBy: "seq"})
				if err != nil {
					b.Fatal(err)
				}
				full += time.Since(start)
				if res.Removed == 0 || res.Removed != res.Kept {
					b.Fatalf("removed %d kept %d", res.Removed, res.Kept)
				}
			}
			b.ReportMetric(float64(rows*b.N)/full.Seconds(), "dedupe-rows/s")
			b.ReportMetric(float64(rows*b.N)/base.Seconds(), "copy-rows/s")
			b.ReportMetric(full.Seconds()/base.Seconds(), "dedupe/copy")
		})
	}
}
