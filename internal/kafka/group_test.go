package kafka

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/decode"
	"github.com/exactly/exactly/internal/sink/sqlite"
)

// TestPackFillsFlightsOldestTableFirst: flights are filled in turn up to
// the target, oldest table first; a table's partitions stay in one flight
// (a big table gives its oldest partitions and the rest wait); no more
// than n flights; what does not fit is left for the next free connection.
func TestPackFillsFlightsOldestTableFirst(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var ready []candidate
	add := func(table string, part int32, records int, age int) {
		ready = append(ready, candidate{tp: exactly.TP{Topic: "t." + table, Partition: part}, table: table,
			first: base.Add(-time.Duration(age) * time.Second), records: records, bytes: int64(records) * 100})
	}
	add("a", 0, 40, 1)
	add("b", 0, 30, 9) // the oldest: first
	add("b", 1, 30, 2)
	add("big", 0, 60, 5)
	add("big", 1, 60, 4) // would overflow its flight: waits
	add("big", 2, 60, 3)
	add("c", 0, 10, 0)
	add("d", 0, 40, 0) // would make a fourth flight: waits
	flights := pack(ready, 3, 70, 1<<30)
	var got []string
	for _, f := range flights {
		var parts []string
		for _, c := range f {
			parts = append(parts, fmt.Sprintf("%s[%d]", c.table, c.tp.Partition))
		}
		got = append(got, strings.Join(parts, " "))
	}
	want := []string{"b[0] b[1]", "big[0]", "a[0] c[0]"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("flights %q, want %q", got, want)
	}
	if n := len(pack(ready, 1, 1000, 1<<30)); n != 1 {
		t.Errorf("one free connection: %d flights", n)
	}
	if f := pack(ready, 8, 1000, 150*100); len(f) != 2 || len(f[0]) != 3 || f[0][2].table != "big" || len(f[1]) != 3 {
		t.Errorf("a byte target of 150 records: flights %v; want b[0] b[1] big[0], then a[0] c[0] d[0]", f)
	}
}

// TestLaunchLeavesBusyTablesAndWaitsUntilDue: a table with a batch in
// flight is in no other flight (its partitions commit in order, and two
// transactions never lock its keys), the other due tables are launched,
// split over the free connections, and nothing is launched before it is
// due.
func TestLaunchLeavesBusyTablesAndWaitsUntilDue(t *testing.T) {
	dir := t.TempDir()
	cfg, err := exactly.ParseConfig(strings.NewReader(`pipeline: p
source: {brokers: [127.0.0.1:1]}
sink: {driver: sqlite, dsn: '`+dir+`/s.db', max_conns: 4}
batch: {interval: 1s, max_records: 400}
tables:
  - {topics: '^t\.(.*)$', table: '$1', key: [id], create: true}
`), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	sink, err := exactly.NewSink(context.Background(), cfg, &sqlite.Dialect{}, decode.New, log)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	s := &Source{cfg: cfg, sink: sink, log: log, parts: map[exactly.TP]*partition{}}
	now := time.Now()
	add := func(topic string, part int32, n int, inflight bool, arrived time.Time) {
		p := &partition{table: strings.TrimPrefix(topic, "t."), inflight: inflight, first: arrived}
		for i := 0; i < n; i++ {
			p.recs = append(p.recs, &exactly.Record{Topic: topic, Partition: part, Offset: int64(i),
				Value: []byte(fmt.Sprintf(`{"id":%d}`, i))})
		}
		tp := exactly.TP{Topic: topic, Partition: part}
		s.parts[tp] = p
		if _, err := sink.SeedOffset(context.Background(), tp, 0); err != nil {
			t.Fatal(err)
		}
	}
	// 30 records, the oldest arrived half an interval ago: not due.
	add("t.a", 0, 10, false, now.Add(-500*time.Millisecond))
	add("t.b", 0, 20, false, now)
	if fl := s.launch(now, 3); len(fl) != 0 {
		t.Fatalf("launched %d flights before anything was due", len(fl))
	}
	add("t.busy", 0, 0, true, time.Time{}) // in flight
	add("t.busy", 1, 50, false, now)       // its other partition waits
	add("t.c", 0, 80, false, now)          // 10+20+80 = 110 ≥ 400/4: due by size
	flights := s.launch(now, 2)
	if len(flights) != 2 {
		t.Fatalf("launched %d flights, want 2 (the free connections)", len(flights))
	}
	seen := map[string]int{}
	for _, fl := range flights {
		<-fl.done
		for _, o := range fl.outcomes {
			if !o.Committed {
				t.Errorf("%s[%d]: not committed: %v", o.Batch.Topic, o.Batch.Partition, o.Err)
			}
			seen[o.Batch.Topic] += len(o.Batch.Records)
		}
	}
	if want := map[string]int{"t.a": 10, "t.b": 20, "t.c": 80}; fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Errorf("flights carried %v, want %v (nothing of the busy table)", seen, want)
	}
	if p := s.parts[exactly.TP{Topic: "t.busy", Partition: 1}]; len(p.recs) != 50 || p.inflight {
		t.Errorf("the busy table's waiting partition: %d records buffered, in flight %v; want 50, false", len(p.recs), p.inflight)
	}
}
