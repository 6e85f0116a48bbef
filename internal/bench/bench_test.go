package bench_test

import (
	"context"
	"path/filepath"
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
// every partition committed, peak RSS read.
func TestBenchReportsEveryFigure(t *testing.T) {
	for _, c := range []struct {
		name string
		d    exactly.Dialect
		dsn  func(t *testing.T) string
	}{
		{"sqlite", &sqlite.Dialect{}, func(t *testing.T) string { return filepath.Join(t.TempDir(), "b.db") }},
		{"postgres", &postgres.Dialect{}, func(t *testing.T) string { return testenv.PostgresSchema(t) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			res, err := bench.Run(context.Background(), bench.Options{Dialect: c.d, DSN: c.dsn(t),
				Topics: 3, Partitions: 2, Records: 3000, RecordBytes: 200, Rate: 1500, Duration: 2 * time.Second,
				Interval: 200 * time.Millisecond, MaxRecords: 1000, MaxConns: 2})
			if err != nil {
				t.Fatal(err)
			}
			tp := res.Throughput
			if tp == nil || !tp.RowsChecked || tp.PipelineRecordsPerS <= 0 || tp.BaselineRecordsPerS <= 0 || tp.Ratio <= 0 {
				t.Errorf("throughput: %+v", tp)
			}
			l := res.Latency
			if l == nil || l.Records < 2000 || l.P50Ms <= 0 || l.P50Ms > l.P99Ms || l.P99Ms > l.MaxMs {
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
