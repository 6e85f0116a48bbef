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

func TestGroupKeepsTablesWholeAndBalances(t *testing.T) {
	cfg, err := exactly.ParseConfig(strings.NewReader(`pipeline: p
source: {brokers: [127.0.0.1:1]}
sink: {driver: sqlite, dsn: x.db, max_conns: 3}
tables:
  - topics: '^shop\.(a|b)$'
    table: ab
    key: [id]
  - topics: '^t\.(.*)$'
    table: '$1'
    key: [id]
`), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := &Source{cfg: cfg}
	var batches []*exactly.PartitionBatch
	add := func(topic string, part int32, n int) {
		batches = append(batches, &exactly.PartitionBatch{Topic: topic, Partition: part, Records: make([]*exactly.Record, n)})
	}
	add("shop.a", 0, 50) // shop.a and shop.b both go to table ab: one group
	add("shop.b", 0, 50)
	add("shop.b", 1, 10)
	for i := 0; i < 10; i++ {
		add(fmt.Sprintf("t.x%d", i), 0, 20)
		add(fmt.Sprintf("t.x%d", i), 1, 20)
	}
	groups := s.group(batches, cfg.Sink.MaxConns)
	if len(groups) != 3 {
		t.Fatalf("got %d groups, want 3 (sink.max_conns)", len(groups))
	}
	where := map[string]int{}
	total := 0
	for i, g := range groups {
		n := 0
		for _, b := range g {
			_, table, _ := cfg.Route(b.Topic)
			if j, ok := where[table]; ok && j != i {
				t.Errorf("table %s split over groups %d and %d", table, j, i)
			}
			where[table] = i
			n += len(b.Records)
		}
		total += n
		if n < 150 || n > 190 { // the best split of 110 + 10×40 is 190, 160, 160
			t.Errorf("group %d holds %d records; want a balanced share of 510", i, n)
		}
	}
	if total != 510 {
		t.Errorf("groups hold %d records, want 510", total)
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
