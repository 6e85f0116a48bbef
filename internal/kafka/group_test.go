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

// TestPackFillsFlightsOldestTableFirst: flights are filled in turn until
// they reach the target, oldest table first and a table's partitions
// together (one statement per table); a table goes on in the next flight
// when one is full; no more than n flights; what does not fit waits.
func TestPackFillsFlightsOldestTableFirst(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var ready []candidate
	add := func(table string, part int32, records int, age int) {
		ready = append(ready, candidate{tp: exactly.TP{Topic: "t." + table, Partition: part}, table: table,
			first: base.Add(-time.Duration(age) * time.Second), records: records, bytes: int64(records) * 100})
	}
	add("a", 0, 40, 1)
	add("b", 0, 30, 9) // the oldest: first
	add("b", 1, 30, 2) // with its table, though younger than big's
	add("big", 0, 60, 5)
	add("big", 1, 60, 4)
	add("big", 2, 60, 3)
	add("c", 0, 10, 0)
	flights := func(f [][]candidate) []string {
		var out []string
		for _, g := range f {
			var parts []string
			for _, c := range g {
				parts = append(parts, fmt.Sprintf("%s[%d]", c.table, c.tp.Partition))
			}
			out = append(out, strings.Join(parts, " "))
		}
		return out
	}
	got := flights(pack(ready, 2, 70, 1<<30, true))
	want := []string{"b[0] b[1] big[0]", "big[1] big[2]"}  // a and c wait
	if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) { // %q: flight boundaries count
		t.Errorf("flights %q, want %q", got, want)
	}
	got = flights(pack(ready, 8, 70, 1<<30, true))
	want = []string{"b[0] b[1] big[0]", "big[1] big[2]", "a[0] c[0]"}
	if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) { // %q: flight boundaries count
		t.Errorf("eight connections: flights %q, want %q", got, want)
	}
	got = flights(pack(ready, 8, 1000, 150*100, true))
	want = []string{"b[0] b[1] big[0] big[1]", "big[2] a[0] c[0]"}
	if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) { // %q: flight boundaries count
		t.Errorf("a byte target of 150 records: flights %q, want %q", got, want)
	}
	// Tables not shared between transactions (MySQL, SQL Server): big is
	// never split; it goes whole into the flight that took its first
	// partition (shared, it was split over two flights above).
	got = flights(pack(ready, 8, 70, 1<<30, false))
	want = []string{"b[0] b[1] big[0] big[1] big[2]", "a[0] c[0]"}
	if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) { // %q: flight boundaries count
		t.Errorf("tables not shared: flights %q, want %q", got, want)
	}
}

// sharedSQLite is SQLite declaring exactly.SharedTables, to run launch
// as it runs for PostgreSQL (SQLite itself serialises the writers).
type sharedSQLite struct{ sqlite.Dialect }

func (sharedSQLite) SharedTables() bool { return true }

// TestLaunchTakesWhatIsReadyAndWaitsUntilDue: a partition with a batch in
// flight is not launched again (its batches commit in order); the other
// partitions of its table are when the dialect shares tables between
// transactions, and wait otherwise; what goes is split over the free
// connections; nothing is launched before it is due.
func TestLaunchTakesWhatIsReadyAndWaitsUntilDue(t *testing.T) {
	// Shared: 160 records ready over 2 connections, 80 each: a+b+busy[1],
	// then c. Not shared: 110 records, 55 each: a+b, then c joins the
	// first flight, which has not reached 55 yet.
	t.Run("shared tables", func(t *testing.T) { testLaunch(t, &sharedSQLite{}, 50, 2) })
	t.Run("a table in one flight", func(t *testing.T) { testLaunch(t, &sqlite.Dialect{}, 0, 1) })
}

func testLaunch(t *testing.T, d exactly.Dialect, busyGoes, wantFlights int) {
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
	sink, err := exactly.NewSink(context.Background(), cfg, d, decode.For(cfg), log)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	s := &Source{cfg: cfg, sink: sink, log: log, opt: newOptions(nil), parts: map[exactly.TP]*partition{},
		limit: newFlightLimit(cfg.Sink.MaxConns, true, nil)} // the flights this test counts assume max_conns slots
	now := time.Now()
	add := func(topic string, part int32, n int, inflight bool, arrived time.Time) {
		p := &partition{table: strings.TrimPrefix(topic, "t."), inflight: inflight, first: arrived}
		for i := 0; i < n; i++ {
			p.recs = append(p.recs, &exactly.Record{Topic: topic, Partition: part, Offset: int64(i),
				Value: []byte(fmt.Sprintf(`{"id":%d}`, i))})
			p.bytes += int64(len(p.recs[i].Value))
		}
		tp := exactly.TP{Topic: topic, Partition: part}
		s.parts[tp] = p
		if _, err := sink.SeedOffset(context.Background(), tp, 0); err != nil {
			t.Fatal(err)
		}
	}
	// 30 records (more than a quarter share), the oldest arrived a fifth
	// of an interval ago: not due (see TestDueAt).
	add("t.a", 0, 10, false, now.Add(-200*time.Millisecond))
	add("t.b", 0, 20, false, now)
	if fl := s.launch(now, 3); len(fl) != 0 {
		t.Fatalf("launched %d flights before anything was due", len(fl))
	}
	add("t.busy", 0, 5, true, now)   // in flight, 5 more records wait
	add("t.busy", 1, 50, false, now) // its other partition: see busyGoes
	add("t.c", 0, 80, false, now)    // 10+20+50+80 ≥ 400/4: due by size
	flights := s.launch(now, 2)
	if len(flights) != wantFlights {
		t.Fatalf("launched %d flights, want %d", len(flights), wantFlights)
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
	want := map[string]int{"t.a": 10, "t.b": 20, "t.c": 80}
	if busyGoes > 0 {
		want["t.busy"] = busyGoes
	}
	if fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Errorf("flights carried %v, want %v", seen, want)
	}
	if p := s.parts[exactly.TP{Topic: "t.busy", Partition: 0}]; len(p.recs) != 5 {
		t.Errorf("the partition in flight: %d records buffered, want its 5 left waiting", len(p.recs))
	}
}

// A flight's share of batch.max_records is max_records / max_conns
// whatever the adaptive limit is now: at a limit of 2 of 4 the share was
// max_records / 2, so records waited for twice as many before their batch
// fell due, and flights were twice as big (800 tables at 25,000 records/s:
// p99 1.4 s, 0.9 s with the share of max_conns).
func TestFlightShareIsMaxConnsShare(t *testing.T) {
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
	sink, err := exactly.NewSink(context.Background(), cfg, &sqlite.Dialect{}, decode.For(cfg), log)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	s := &Source{cfg: cfg, sink: sink, log: log, opt: newOptions(nil), parts: map[exactly.TP]*partition{},
		limit: newFlightLimit(cfg.Sink.MaxConns, false, nil)}
	s.limit.cur = 2 // the adaptive limit come down to 2 of 4
	if got := s.slots(); got != 2 {
		t.Fatalf("the adaptive limit is %d, this test wants 2 of 4", got)
	}
	now := time.Now()
	tp := exactly.TP{Topic: "t.a", Partition: 0}
	p := &partition{table: "a", first: now}
	for i := range 120 { // ≥ 400/4, < 400/2; not due by time
		p.recs = append(p.recs, &exactly.Record{Topic: tp.Topic, Offset: int64(i), Value: fmt.Appendf(nil, `{"id":%d}`, i)})
	}
	s.parts[tp] = p
	if _, err := sink.SeedOffset(context.Background(), tp, 0); err != nil {
		t.Fatal(err)
	}
	flights := s.launch(now, 2)
	if len(flights) == 0 {
		t.Fatal("120 records ready, a share of max_records/max_conns = 100: nothing launched")
	}
	for _, fl := range flights {
		<-fl.done
	}
}

// TestACutPartitionLaunchesItsCutAndKeepsTheRest: a partition whose
// batches are cut (a flight of it ran out of time) sends only its cut;
// the rest stays buffered, in order, and goes in its next batch, and the
// partition stays paused while the rest still holds its share.
func TestACutPartitionLaunchesItsCutAndKeepsTheRest(t *testing.T) {
	dir := t.TempDir()
	cfg, err := exactly.ParseConfig(strings.NewReader(`pipeline: p
source: {brokers: [127.0.0.1:1]}
sink: {driver: sqlite, dsn: '`+dir+`/s.db', max_conns: 4}
batch: {interval: 1s, max_records: 100}
tables:
  - {topics: '^t\.(.*)$', table: '$1', key: [id], create: true}
`), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	sink, err := exactly.NewSink(context.Background(), cfg, &sqlite.Dialect{}, decode.For(cfg), log)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	s := &Source{cfg: cfg, sink: sink, log: log, opt: newOptions(nil), parts: map[exactly.TP]*partition{},
		limit: newFlightLimit(cfg.Sink.MaxConns, true, nil)}
	now := time.Now()
	tp := exactly.TP{Topic: "t.a", Partition: 0}
	p := &partition{table: "a", first: now.Add(-time.Hour), paused: true, cut: 30}
	for i := range 300 { // the partition's share is 200 (batchCaps: 2 × 100 / 1)
		p.recs = append(p.recs, &exactly.Record{Topic: tp.Topic, Offset: int64(i), Value: fmt.Appendf(nil, `{"id":%d}`, i)})
		p.bytes += int64(len(p.recs[i].Value))
	}
	s.parts[tp] = p
	if _, err := sink.SeedOffset(context.Background(), tp, 0); err != nil {
		t.Fatal(err)
	}
	for round := range 2 {
		flights := s.launch(now, 4)
		if len(flights) != 1 {
			t.Fatalf("round %d: %d flights, want 1", round, len(flights))
		}
		<-flights[0].done
		o := flights[0].outcomes[0]
		from := int64(30 * round)
		if !o.Committed || o.Batch.From != from || o.Batch.To != from+30 || len(o.Batch.Records) != 30 || o.Batch.Records[0].Offset != from {
			t.Fatalf("round %d: batch %d..%d of %d records, committed %v (%v); want its cut, 30 records from %d",
				round, o.Batch.From, o.Batch.To, len(o.Batch.Records), o.Committed, o.Err, from)
		}
		rest := 300 - 30*(round+1)
		var bytes int64
		for _, r := range p.recs {
			bytes += int64(len(r.Value))
		}
		if len(p.recs) != rest || p.recs[0].Offset != from+30 || p.bytes != bytes || !p.paused || s.Held() != rest+30 {
			t.Fatalf("round %d: %d records buffered from %d, %d bytes (counted %d), paused %v, held %d; want the %d after the batch, still paused",
				round, len(p.recs), p.recs[0].Offset, p.bytes, bytes, p.paused, s.Held(), rest)
		}
		p.inflight, p.next = false, o.Batch.To // as finish does
	}
}

// TestLaunchAQuarterShareAfterAQuarterInterval: a quarter of a flight's
// share goes once its oldest record has waited a quarter of
// batch.interval, not only at a full share or after the whole interval
// (800 tables at 25,000 records/s: a share took half a second to fill,
// while connections were free). Less than a quarter share still waits for
// the interval.
func TestLaunchAQuarterShareAfterAQuarterInterval(t *testing.T) {
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
	sink, err := exactly.NewSink(context.Background(), cfg, &sqlite.Dialect{}, decode.For(cfg), log)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	s := &Source{cfg: cfg, sink: sink, log: log, opt: newOptions(nil), parts: map[exactly.TP]*partition{},
		limit: newFlightLimit(cfg.Sink.MaxConns, true, nil)}
	arrived := time.Now()
	tp := exactly.TP{Topic: "t.a", Partition: 0}
	p := &partition{table: "a", first: arrived}
	s.parts[tp] = p
	if _, err := sink.SeedOffset(context.Background(), tp, 0); err != nil {
		t.Fatal(err)
	}
	add := func(n int) {
		for range n {
			i := len(p.recs)
			p.recs = append(p.recs, &exactly.Record{Topic: tp.Topic, Offset: int64(i), Value: fmt.Appendf(nil, `{"id":%d}`, i)})
		}
	}
	add(24) // a share is 400/4 = 100; a quarter of it 25
	if fl := s.launch(arrived.Add(900*time.Millisecond), 4); len(fl) != 0 {
		t.Fatalf("24 records, less than a quarter share, launched after 0.9 of the interval")
	}
	add(1)
	if fl := s.launch(arrived.Add(240*time.Millisecond), 4); len(fl) != 0 {
		t.Fatalf("a quarter share launched before a quarter interval")
	}
	flights := s.launch(arrived.Add(250*time.Millisecond), 4)
	if len(flights) == 0 {
		t.Fatal("a quarter share, its oldest record a quarter interval old, free connections: nothing launched")
	}
	n := 0
	for _, fl := range flights {
		<-fl.done
		n += int(fl.committed())
	}
	if n != 25 {
		t.Errorf("committed %d records, want the 25 waiting", n)
	}
}
