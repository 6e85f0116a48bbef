package kafka_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/decode"
	"github.com/exactly/exactly/internal/kafka"
	"github.com/exactly/exactly/internal/sink/postgres"
	"github.com/exactly/exactly/internal/sink/sqlite"
	"github.com/exactly/exactly/internal/testenv"
)

const (
	cdcTopic    = "shop.public.items"
	appendTopic = "shop.public.events"
)

// badInput is a pipeline fed ~1% malformed records: a Debezium topic
// (upserts and deletes by key) and an append topic (every good record one
// row, so a record applied twice shows).
type badInput struct {
	brokers []string
	d       exactly.Dialect
	dsn     string
	items   string // table names
	events  string

	produced map[exactly.TP]int64
	bad      map[exactly.TP]map[int64]string // offset → what is wrong with it
	want     map[int64]string                // items: id → "name:qty"
	events_  map[string]bool                 // events: "p:o" of every good record
}

func newBadInput(t *testing.T, d exactly.Dialect, dsn string) *badInput {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, cdcTopic, appendTopic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	e := &badInput{brokers: c.ListenAddrs(), d: d, dsn: dsn, items: fmt.Sprintf("items_%d", time.Now().UnixNano()%1e9),
		produced: map[exactly.TP]int64{}, bad: map[exactly.TP]map[int64]string{}, want: map[int64]string{}, events_: map[string]bool{}}
	e.events = strings.Replace(e.items, "items", "events", 1)
	return e
}

func (e *badInput) config(t *testing.T) *exactly.Config {
	t.Helper()
	cfg, err := exactly.ParseConfig(strings.NewReader(fmt.Sprintf(`pipeline: bad-input
source: {brokers: [%s], group: bad-input}
sink: {driver: %s, dsn: '%s'}
batch: {interval: 50ms, max_records: 700}
tables:
  - {topics: '%s', table: %s, format: debezium, key: [id]}
  - {topics: '%s', table: %s, mode: append}
`, strings.Join(e.brokers, ", "), e.d.Name(), e.dsn, strings.ReplaceAll(cdcTopic, ".", `\.`), e.items, appendTopic, e.events)), "bad.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func (e *badInput) createTables(t *testing.T, db *sql.DB) {
	t.Helper()
	strict := ""
	if e.d.Name() == "sqlite" {
		strict = " STRICT" // SQLite otherwise stores 'abc' in an INTEGER column
	}
	for _, q := range []string{
		"CREATE TABLE " + e.items + " (id INTEGER PRIMARY KEY, name TEXT NOT NULL, qty INTEGER CHECK (qty >= 0))" + strict,
		"CREATE TABLE " + e.events + " (p INTEGER NOT NULL, o INTEGER NOT NULL, v INTEGER CHECK (v >= 0))" + strict,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
}

// produce writes n records to each partition of both topics; about 1% are
// malformed in one of several ways, the rest are good.
func (e *badInput) produce(t *testing.T, rng *rand.Rand, n int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for p := int32(0); p < 3; p++ {
		for _, topic := range []string{cdcTopic, appendTopic} {
			tp := exactly.TP{Topic: topic, Partition: p}
			if e.bad[tp] == nil {
				e.bad[tp] = map[int64]string{}
			}
			for i := 0; i < n; i++ {
				o := e.produced[tp]
				e.produced[tp]++
				id := int64(p)*1000 + rng.Int63n(60) // keys never span partitions: their order is defined
				var key, value string
				why := ""
				if rng.Intn(100) == 0 {
					why = []string{"undecodable", "key missing", "type mismatch", "constraint", "unknown op"}[rng.Intn(5)]
				}
				if topic == cdcTopic {
					key = fmt.Sprintf(`{"id":%d}`, id)
					name := fmt.Sprintf("p%d-o%d", p, o)
					switch why {
					case "undecodable":
						value = `{"op":"u","after":{"id":` // cut short
					case "key missing":
						key, value = "", fmt.Sprintf(`{"op":"u","after":{"name":%q,"qty":1}}`, name)
					// A change the database refuses gets a key of its own: a
					// change superseded inside its batch is never written, so
					// the database never judges it (see the README).
					case "type mismatch":
						key = fmt.Sprintf(`{"id":%d}`, 5000+int64(p)*1000+o)
						value = fmt.Sprintf(`{"op":"u","after":{"id":%d,"name":%q,"qty":"abc"}}`, 5000+int64(p)*1000+o, name)
					case "constraint":
						key = fmt.Sprintf(`{"id":%d}`, 5000+int64(p)*1000+o)
						value = fmt.Sprintf(`{"op":"u","after":{"id":%d,"name":%q,"qty":-1}}`, 5000+int64(p)*1000+o, name)
					case "unknown op":
						value = fmt.Sprintf(`{"op":"x","after":{"id":%d}}`, id)
					default:
						if rng.Intn(10) == 0 {
							value = fmt.Sprintf(`{"op":"d","before":{"id":%d}}`, id)
							delete(e.want, id)
						} else {
							value = fmt.Sprintf(`{"op":"u","after":{"id":%d,"name":%q,"qty":%d}}`, id, name, o)
							e.want[id] = fmt.Sprintf("%s:%d", name, o)
						}
					}
				} else {
					switch why {
					case "undecodable", "key missing", "unknown op":
						why = "undecodable"
						value = `{"p":` + fmt.Sprint(p)
					case "type mismatch":
						value = fmt.Sprintf(`{"p":%d,"o":%d,"v":"abc"}`, p, o)
					case "constraint":
						value = fmt.Sprintf(`{"p":%d,"o":%d,"v":-1}`, p, o)
					default:
						value = fmt.Sprintf(`{"p":%d,"o":%d,"v":%d}`, p, o, i)
						e.events_[fmt.Sprintf("%d:%d", p, o)] = true
					}
				}
				if why != "" {
					e.bad[tp][o] = why
				}
				r := &kgo.Record{Topic: topic, Partition: p, Value: []byte(value)}
				if key != "" {
					r.Key = []byte(key)
				}
				recs = append(recs, r)
			}
		}
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// run runs the pipeline in-process until the ledger reaches every produced
// offset (or, with until, until it says so), then stops it.
func (e *badInput) run(t *testing.T, cfg *exactly.Config, onCommit func([]exactly.Outcome), until func(map[exactly.TP]int64) bool) *exactly.Sink {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	sink, err := exactly.NewSink(context.Background(), cfg, e.d, decode.For(cfg), log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sink.Close() })
	src, err := kafka.NewSource(cfg, sink, log, kafka.OnCommit(onCommit))
	if err != nil {
		t.Fatal(err)
	}
	defer runSource(t, src)()
	var tps []exactly.TP
	for tp := range e.produced {
		tps = append(tps, tp)
	}
	if until == nil {
		until = func(got map[exactly.TP]int64) bool {
			for _, tp := range tps {
				if got[tp] != e.produced[tp] {
					return false
				}
			}
			return true
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		got, err := sink.LoadOffsets(context.Background(), tps)
		if err == nil && until(got) {
			return sink
		}
		if time.Now().After(deadline) {
			t.Fatalf("pipeline did not get there: offsets %v %v, produced %v", got, err, e.produced)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func (e *badInput) check(t *testing.T, sink *exactly.Sink) {
	t.Helper()
	db := sink.DB()
	// The CDC table: each key holds its last good change.
	got := map[int64]string{}
	rs, err := db.Query("SELECT id, name, qty FROM " + e.items)
	if err != nil {
		t.Fatal(err)
	}
	for rs.Next() {
		var id, qty int64
		var name string
		if err := rs.Scan(&id, &name, &qty); err != nil {
			t.Fatal(err)
		}
		got[id] = fmt.Sprintf("%s:%d", name, qty)
	}
	rs.Close()
	if fmt.Sprint(got) != fmt.Sprint(e.want) {
		t.Errorf("table %s:\n got %v\nwant %v", e.items, got, e.want)
	}
	// The append table: every good record exactly once, nothing else.
	rs, err = db.Query("SELECT p, o, COUNT(*) FROM " + e.events + " GROUP BY p, o")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for rs.Next() {
		var p, o, n int64
		if err := rs.Scan(&p, &o, &n); err != nil {
			t.Fatal(err)
		}
		k := fmt.Sprintf("%d:%d", p, o)
		if n != 1 || !e.events_[k] {
			t.Errorf("events: record %s applied %d times (good: %v)", k, n, e.events_[k])
		}
		seen[k] = true
	}
	rs.Close()
	for k := range e.events_ {
		if !seen[k] {
			t.Errorf("events: good record %s lost", k)
		}
	}
	// Every bad record is a dead letter with its coordinates and error,
	// and nothing else is.
	rs, err = db.Query(`SELECT topic, "partition", "offset", error FROM exactly_dead_letters WHERE pipeline = 'bad-input'`)
	if err != nil {
		t.Fatal(err)
	}
	dead := map[exactly.TP]map[int64]string{}
	for rs.Next() {
		var tp exactly.TP
		var o int64
		var msg string
		if err := rs.Scan(&tp.Topic, &tp.Partition, &o, &msg); err != nil {
			t.Fatal(err)
		}
		if dead[tp] == nil {
			dead[tp] = map[int64]string{}
		}
		if _, dup := dead[tp][o]; dup {
			t.Errorf("dead letter %s@%d written twice", tp, o)
		}
		dead[tp][o] = msg
	}
	rs.Close()
	nbad := 0
	// A type mismatch is refused by the database ("writing table") or, where
	// the dialect checks values against the column before the collapse
	// (PostgreSQL), before the write ("value refused").
	reason := map[string][]string{"undecodable": {"JSON"}, "key missing": {"key missing"},
		"type mismatch": {"writing table", "value refused"}, "constraint": {"writing table"},
		"unknown op": {"unknown Debezium op"}}
	containsAny := func(msg string, subs []string) bool {
		for _, s := range subs {
			if strings.Contains(msg, s) {
				return true
			}
		}
		return false
	}
	for tp, offs := range e.bad {
		nbad += len(offs)
		for o, why := range offs {
			msg, ok := dead[tp][o]
			coord := fmt.Sprintf("%s[%d]@%d: ", tp.Topic, tp.Partition, o)
			if !ok || !strings.HasPrefix(msg, coord) || !containsAny(msg, reason[why]) {
				t.Errorf("%s@%d (%s): dead letter %q, want %q… containing %q", tp, o, why, msg, coord, reason[why])
			}
			delete(dead[tp], o)
		}
	}
	for tp, offs := range dead {
		for o, msg := range offs {
			t.Errorf("good record %s@%d dead-lettered: %s", tp, o, msg)
		}
	}
	// The ledger accounts for every record: applied, skipped or dead.
	var records, accounted, deadCount int64
	err = db.QueryRow(`SELECT COALESCE(SUM(records), 0), COALESCE(SUM(upserted + deleted + skipped + dead_lettered), 0), COALESCE(SUM(dead_lettered), 0)
		FROM exactly_batches WHERE pipeline = 'bad-input' AND status = 'committed'`).Scan(&records, &accounted, &deadCount)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, n := range e.produced {
		total += n
	}
	if records != total || accounted != total || deadCount != int64(nbad) {
		t.Errorf("ledger: records %d, accounted %d, dead_lettered %d; want %d, %d, %d", records, accounted, deadCount, total, total, nbad)
	}
	if nbad == 0 {
		t.Error("the workload produced no bad record")
	}
	t.Logf("%d records, %d bad (%.1f%%), %d keys left, %d events", total, nbad, 100*float64(nbad)/float64(total), len(e.want), len(e.events_))
}

// TestMalformedRecordsAreDeadLetteredAndEveryGoodOneAppliedOnce runs the
// real pipeline (kfake broker, Source, Sink) over ~1% malformed records —
// undecodable, key missing, type mismatches and constraint violations the
// database refuses, unknown ops — stopped and restarted half way.
func TestMalformedRecordsAreDeadLetteredAndEveryGoodOneAppliedOnce(t *testing.T) {
	for _, c := range []struct {
		name string
		d    exactly.Dialect
		dsn  func(t *testing.T) string
	}{
		{"sqlite", &sqlite.Dialect{}, func(t *testing.T) string { return filepath.Join(t.TempDir(), "sink.db") }},
		{"postgres", &postgres.Dialect{}, func(t *testing.T) string { return testenv.PostgresSchema(t) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newBadInput(t, c.d, c.dsn(t))
			cfg := e.config(t)
			rng := rand.New(rand.NewSource(5))
			e.produce(t, rng, 400)
			setup, err := exactly.NewSink(context.Background(), cfg, e.d, decode.For(cfg), slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				t.Fatal(err)
			}
			e.createTables(t, setup.DB())
			setup.Close()
			e.run(t, cfg, nil, nil)
			e.produce(t, rng, 400) // and a restart
			sink := e.run(t, cfg, nil, nil)
			e.check(t, sink)
		})
	}
}

// TestOnErrorFailHaltsAtARefusedRowAndResumesAfterRestart: with on_error:
// fail, a row the database refuses stops its partition at that offset (the
// records before it are committed, the other partitions go on); after the
// table is fixed, a restart resumes exactly there.
func TestOnErrorFailHaltsAtARefusedRowAndResumesAfterRestart(t *testing.T) {
	e := newBadInput(t, &sqlite.Dialect{}, filepath.Join(t.TempDir(), "sink.db"))
	cfg, err := exactly.ParseConfig(strings.NewReader(fmt.Sprintf(`pipeline: bad-input
source: {brokers: [%s], group: halt}
sink: {driver: sqlite, dsn: '%s'}
batch: {interval: 50ms}
tables:
  - {topics: '%s', table: %s, format: debezium, key: [id], on_error: fail}
`, strings.Join(e.brokers, ", "), e.dsn, cdcTopic, e.items)), "halt.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	var recs []*kgo.Record
	for p := int32(0); p < 3; p++ {
		for o := 0; o < 10; o++ {
			qty := o
			if p == 1 && o == 4 {
				qty = -4 // refused by the CHECK constraint
			}
			recs = append(recs, &kgo.Record{Topic: cdcTopic, Partition: p, Key: []byte(fmt.Sprintf(`{"id":%d}`, int(p)*100+o)),
				Value: []byte(fmt.Sprintf(`{"op":"c","after":{"id":%d,"name":"n","qty":%d}}`, int(p)*100+o, qty))})
		}
		e.produced[exactly.TP{Topic: cdcTopic, Partition: p}] = 10
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	setup, err := exactly.NewSink(context.Background(), cfg, e.d, decode.For(cfg), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	e.createTables(t, setup.DB())
	setup.Close()

	var mu sync.Mutex
	var halts []*exactly.RecordError
	onCommit := func(out []exactly.Outcome) {
		for _, o := range out {
			var re *exactly.RecordError
			if errors.As(o.Err, &re) {
				mu.Lock()
				halts = append(halts, re)
				mu.Unlock()
			}
		}
	}
	p1 := exactly.TP{Topic: cdcTopic, Partition: 1}
	var since time.Time
	sink := e.run(t, cfg, onCommit, func(got map[exactly.TP]int64) bool {
		mu.Lock()
		defer mu.Unlock()
		if got[p1] > 4 {
			t.Fatalf("partition 1 went past the refused record: next_offset %d", got[p1])
		}
		there := got[exactly.TP{Topic: cdcTopic, Partition: 0}] == 10 && got[exactly.TP{Topic: cdcTopic, Partition: 2}] == 10 &&
			got[p1] == 4 && len(halts) > 0
		if !there {
			since = time.Time{}
			return false
		}
		if since.IsZero() {
			since = time.Now()
		}
		// Halted means halted: it stays there while the pipeline runs.
		return time.Since(since) > 300*time.Millisecond
	})
	mu.Lock()
	re := halts[0]
	mu.Unlock()
	if re.Topic != cdcTopic || re.Partition != 1 || re.Offset != 4 || !strings.Contains(re.Error(), "writing table "+e.items) {
		t.Errorf("halt: got %v, want %s[1]@4 naming the table", re, cdcTopic)
	}
	var n int
	sink.DB().QueryRow("SELECT COUNT(*) FROM exactly_dead_letters").Scan(&n)
	if n != 0 {
		t.Errorf("on_error: fail wrote %d dead letters", n)
	}
	// Fix the table (SQLite cannot drop a CHECK: rebuild it), restart.
	for _, q := range []string{
		"CREATE TABLE fixed (id INTEGER PRIMARY KEY, name TEXT NOT NULL, qty INTEGER) STRICT",
		"INSERT INTO fixed SELECT * FROM " + e.items,
		"DROP TABLE " + e.items,
		"ALTER TABLE fixed RENAME TO " + e.items,
	} {
		if _, err := sink.DB().Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	sink = e.run(t, cfg, nil, nil)
	var ids []int
	rs, err := sink.DB().Query("SELECT id FROM " + e.items + " ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	for rs.Next() {
		var id int
		rs.Scan(&id)
		ids = append(ids, id)
	}
	var want []int
	for p := 0; p < 3; p++ {
		for o := 0; o < 10; o++ {
			want = append(want, p*100+o)
		}
	}
	sort.Ints(want)
	if fmt.Sprint(ids) != fmt.Sprint(want) {
		t.Errorf("after the fix and a restart: ids %v, want %v", ids, want)
	}
}
