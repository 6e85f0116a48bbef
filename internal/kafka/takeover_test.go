package kafka_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/decode"
	"github.com/exactly/exactly/internal/kafka"
	"github.com/exactly/exactly/internal/sink/sqlite"
)

const topic = "t.events"

// takeover is a broker with a two-partition topic and a SQLite sink whose
// append table (created by the pipeline) shows every applied record as
// one row: a record applied twice is two rows.
type takeover struct {
	brokers []string
	dsn     string
	next    [2]int64 // records produced per partition
	base    time.Time
}

func newTakeover(t *testing.T) *takeover {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return &takeover{brokers: c.ListenAddrs(), dsn: filepath.Join(t.TempDir(), "sink.db"),
		base: time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)}
}

// produce writes n records to each partition; record i of a partition has
// timestamp base + i minutes.
func (e *takeover) produce(t *testing.T, n int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for p := int32(0); p < 2; p++ {
		for i := 0; i < n; i++ {
			o := e.next[p]
			e.next[p]++
			recs = append(recs, &kgo.Record{Topic: topic, Partition: p, Timestamp: e.base.Add(time.Duration(o) * time.Minute),
				Value: []byte(fmt.Sprintf(`{"p":%d,"o":%d}`, p, o))})
		}
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func (e *takeover) config(t *testing.T, startFrom, group string) *exactly.Config {
	t.Helper()
	y := fmt.Sprintf(`pipeline: takeover
source: {brokers: [%s], group: %s, start_from: '%s'}
sink: {driver: sqlite, dsn: '%s'}
batch: {interval: 50ms}
tables:
  - {topics: %s, table: events, mode: append, create: true}
`, strings.Join(e.brokers, ", "), group, startFrom, e.dsn, topic)
	cfg, err := exactly.ParseConfig(strings.NewReader(y), "takeover.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// run runs the pipeline until the ledger has reached every produced
// offset, then stops it. whileRunning, when set, runs once the offsets
// rows exist.
func (e *takeover) run(t *testing.T, cfg *exactly.Config, whileRunning func()) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	sink, err := exactly.NewSink(context.Background(), cfg, &sqlite.Dialect{}, decode.New, log)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	src, err := kafka.NewSource(cfg, sink, log)
	if err != nil {
		t.Fatal(err)
	}
	defer runSource(t, src)()
	tps := []exactly.TP{{Topic: topic, Partition: 0}, {Topic: topic, Partition: 1}}
	deadline := time.Now().Add(20 * time.Second)
	wait := func(ok func(map[exactly.TP]int64) bool) {
		for {
			got, err := sink.LoadOffsets(context.Background(), tps)
			if err == nil && ok(got) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("pipeline did not get there: offsets %v %v, produced %v", got, err, e.next)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if whileRunning != nil {
		wait(func(m map[exactly.TP]int64) bool { return len(m) == 2 })
		whileRunning()
	}
	wait(func(m map[exactly.TP]int64) bool { return m[tps[0]] == e.next[0] && m[tps[1]] == e.next[1] })
}

// runSource runs src until the returned stop is called; stop fails the
// test if Run returned an error.
func runSource(t *testing.T, src *kafka.Source) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

// applied returns, per partition, the offsets present in the table, and
// fails on any record applied twice.
func (e *takeover) applied(t *testing.T) [2][]int64 {
	t.Helper()
	sink, err := exactly.NewSink(context.Background(), e.config(t, "earliest", "x"), &sqlite.Dialect{}, decode.New, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	rs, err := sink.DB().Query("SELECT p, o, COUNT(*) FROM events GROUP BY p, o ORDER BY p, o")
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	var out [2][]int64
	for rs.Next() {
		var p, o, n int64
		if err := rs.Scan(&p, &o, &n); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Errorf("record %d of partition %d applied %d times", o, p, n)
		}
		out[p] = append(out[p], o)
	}
	return out
}

// span is the offsets from..to-1.
func span(from, to int64) []int64 {
	var out []int64
	for o := from; o < to; o++ {
		out = append(out, o)
	}
	return out
}

func expect(t *testing.T, got [2][]int64, from [2]int64, to [2]int64) {
	t.Helper()
	for p := 0; p < 2; p++ {
		if fmt.Sprint(got[p]) != fmt.Sprint(span(from[p], to[p])) {
			t.Errorf("partition %d: applied %v, want exactly once each of %d..%d", p, got[p], from[p], to[p]-1)
		}
	}
}

func TestStartFromEarliest(t *testing.T) {
	e := newTakeover(t)
	e.produce(t, 10)
	e.run(t, e.config(t, "earliest", "g-earliest"), nil)
	expect(t, e.applied(t), [2]int64{0, 0}, e.next)
}

func TestStartFromLatest(t *testing.T) {
	e := newTakeover(t)
	e.produce(t, 10) // before the takeover: never applied
	e.run(t, e.config(t, "latest", "g-latest"), func() { e.produce(t, 7) })
	expect(t, e.applied(t), [2]int64{10, 10}, e.next)
}

// TestStartFromTimestamp: records stamped before the timestamp are not
// applied, every record from the first one at or after it is, once.
func TestStartFromTimestamp(t *testing.T) {
	e := newTakeover(t)
	e.produce(t, 20)
	at := e.base.Add(12 * time.Minute) // offset 12 of each partition
	e.run(t, e.config(t, "timestamp:"+at.Format(time.RFC3339), "g-ts"), nil)
	expect(t, e.applied(t), [2]int64{12, 12}, e.next)
}

// TestStartFromGroup takes over from a consumer that committed offsets in
// its group (partition 1 never committed: it starts at the log start).
// After that the ledger is the truth: the group's offsets, moved
// backwards, change nothing on the next start.
func TestStartFromGroup(t *testing.T) {
	e := newTakeover(t)
	e.produce(t, 20)
	commit := func(offsets map[int32]int64) {
		cl, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		var os kadm.Offsets
		for p, o := range offsets {
			os.Add(kadm.Offset{Topic: topic, Partition: p, At: o, LeaderEpoch: -1})
		}
		resp, err := kadm.NewClient(cl).CommitOffsets(context.Background(), "legacy", os)
		if err == nil {
			err = resp.Error()
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	commit(map[int32]int64{0: 7})
	cfg := e.config(t, "group", "legacy")
	e.run(t, cfg, nil)
	expect(t, e.applied(t), [2]int64{7, 0}, e.next)

	commit(map[int32]int64{0: 2, 1: 3}) // a stale hint: ignored
	e.produce(t, 5)
	e.run(t, cfg, nil)
	expect(t, e.applied(t), [2]int64{7, 0}, e.next)
}
