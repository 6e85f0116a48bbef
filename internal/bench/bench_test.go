package bench_test

import (
	"context"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/bench"
	"github.com/exactly/exactly/internal/sink/postgres"
	"github.com/exactly/exactly/internal/sink/sqlite"
	"github.com/exactly/exactly/internal/testenv"
)

// TestBenchReportsEveryFigure runs both phases on a small workload against
// each sink and checks every figure is there and plausible: all rows
// present, throughput and baseline positive, latency percentiles ordered,
// every partition committed, peak RSS read; with the rows as plain JSON
// and as Debezium events.
func TestBenchReportsEveryFigure(t *testing.T) {
	sqliteDSN := func(t *testing.T) string { return filepath.Join(t.TempDir(), "b.db") }
	for _, c := range []struct {
		name   string
		d      exactly.Dialect
		dsn    func(t *testing.T) string
		format string
	}{
		{"sqlite", &sqlite.Dialect{}, sqliteDSN, ""},
		{"postgres", &postgres.Dialect{}, func(t *testing.T) string { return testenv.PostgresSchema(t) }, ""},
		{"sqlite_debezium", &sqlite.Dialect{}, sqliteDSN, bench.FormatDebezium},
	} {
		t.Run(c.name, func(t *testing.T) {
			res, err := bench.Run(context.Background(), bench.Options{Dialect: c.d, DSN: c.dsn(t),
				Topics: 3, Partitions: 2, Records: 3000, RecordBytes: 200, Format: c.format, Rate: 1500, Duration: 2 * time.Second,
				Interval: 200 * time.Millisecond, MaxRecords: 1000, MaxConns: 2})
			if err != nil {
				t.Fatal(err)
			}
			tp := res.Throughput
			if tp == nil || !tp.RowsChecked || tp.PipelineRecordsPerS <= 0 || tp.BaselineRecordsPerS <= 0 || tp.Ratio <= 0 {
				t.Errorf("throughput: %+v", tp)
			}
			l := res.Latency
			if l == nil || l.Records < 2000 || l.P50Ms <= 0 || l.P50Ms > l.P99Ms || l.P99Ms > l.MaxMs ||
				l.SteadyAfterS != 0.5 || l.SteadyP50Ms <= 0 || l.SteadyP50Ms > l.SteadyP99Ms || l.SteadyP99Ms > l.MaxMs {
				t.Errorf("latency: %+v", l)
			}
			if l != nil && l.PartitionsCommitted != 6 {
				t.Errorf("%d of 6 partitions committed in the latency phase", l.PartitionsCommitted)
			}
			if res.PeakRSSBytes <= 0 {
				t.Errorf("peak RSS not read: %d", res.PeakRSSBytes)
			}
		})
	}
}

// TestBenchRoundsReportTheMedian: with three rounds every round reads all
// the records again (each checks its rows), the headline is the round
// with the median ratio, and no round's ledger rows are left behind.
func TestBenchRoundsReportTheMedian(t *testing.T) {
	dsn := filepath.Join(t.TempDir(), "b.db")
	res, err := bench.Run(context.Background(), bench.Options{Dialect: &sqlite.Dialect{}, DSN: dsn,
		Topics: 2, Partitions: 2, Records: 2000, RecordBytes: 100,
		Interval: 100 * time.Millisecond, MaxRecords: 1000, MaxConns: 2, Rounds: 3})
	if err != nil {
		t.Fatal(err)
	}
	tp := res.Throughput
	if tp == nil || len(tp.Rounds) != 3 {
		t.Fatalf("throughput: %+v; want 3 rounds", tp)
	}
	ratios := []float64{tp.Rounds[0].Ratio, tp.Rounds[1].Ratio, tp.Rounds[2].Ratio}
	sort.Float64s(ratios)
	if tp.Ratio != ratios[1] || ratios[0] <= 0 {
		t.Errorf("headline ratio %v, rounds %v: want the median", tp.Ratio, tp.Rounds)
	}
	db, err := (&sqlite.Dialect{}).Open(context.Background(), exactly.SinkConfig{Driver: "sqlite", DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var left int
	if err := db.QueryRow("SELECT count(*) FROM exactly_batches WHERE pipeline LIKE 'bench-%'").Scan(&left); err != nil || left != 0 {
		t.Errorf("%d ledger rows left behind (%v)", left, err)
	}
}

// TestBenchLeavesAnotherRunsTablesAlone: a bench's tables are named by its
// run, so a second bench against the same database neither drops nor
// truncates the first's (one run's cleanup made the other fail with
// "table exactlybench_t000 does not exist").
func TestBenchLeavesAnotherRunsTablesAlone(t *testing.T) {
	dsn := filepath.Join(t.TempDir(), "b.db")
	opts := bench.Options{Dialect: &sqlite.Dialect{}, DSN: dsn, Topics: 2, Partitions: 1, Records: 200, RecordBytes: 100,
		Interval: 100 * time.Millisecond, MaxRecords: 1000, MaxConns: 1}
	kept := opts
	kept.Keep = true
	if _, err := bench.Run(context.Background(), kept); err != nil {
		t.Fatal(err)
	}
	db, err := (&sqlite.Dialect{}).Open(context.Background(), exactly.SinkConfig{Driver: "sqlite", DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows := func() (tables, records int) {
		t.Helper()
		rs, err := db.Query("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'exactlybench%'")
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for rs.Next() {
			var n string
			if err := rs.Scan(&n); err != nil {
				t.Fatal(err)
			}
			names = append(names, n)
		}
		rs.Close()
		for _, n := range names {
			var c int
			if err := db.QueryRow("SELECT count(*) FROM " + n).Scan(&c); err != nil {
				t.Fatal(err)
			}
			records += c
		}
		return len(names), records
	}
	tables, records := rows()
	if tables != 2 || records != 200 {
		t.Fatalf("the kept run left %d tables with %d rows; want 2 with 200", tables, records)
	}
	if _, err := bench.Run(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	if tables, records := rows(); tables != 2 || records != 200 {
		t.Errorf("after a second run: %d tables with %d rows; want the first run's 2 with 200", tables, records)
	}
}
