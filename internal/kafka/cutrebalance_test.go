package kafka_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/decode"
	"github.com/exactly/exactly/internal/kafka"
	"github.com/exactly/exactly/internal/sink/postgres"
	"github.com/exactly/exactly/internal/testenv"
)

// TestASecondMemberJoinsWhileAPartitionIsCut: four partitions of 240
// records each into a table whose trigger sleeps 10 ms a row, flights
// given 1 s, so the first member's flights run out of time and its
// partitions are cut (the rest of each stays buffered and paused). A
// second member joins the group then and takes half the partitions. Every
// record must be applied exactly once, the ledger chain unbroken, within
// a bound: no record lost with a cut partition's buffer, none applied
// twice by the member that got it, no partition left paused.
func TestASecondMemberJoinsWhileAPartitionIsCut(t *testing.T) {
	const (
		parts   = 4
		records = 240
		limit   = time.Second
		bound   = 120 * time.Second
		topic   = "cut.rebalance"
	)
	dsn := testenv.PostgresSchema(t)
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(parts, topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cfg, err := exactly.ParseConfig(strings.NewReader(fmt.Sprintf(`pipeline: cutreb
source: {brokers: [%s], group: cutreb, membership: dynamic}
sink: {driver: postgres, dsn: '%s'}
batch: {interval: 100ms}
tables:
  - {topics: '%s', table: events, mode: append}
`, strings.Join(c.ListenAddrs(), ", "), dsn, strings.ReplaceAll(topic, ".", `\.`))), "cutreb.yaml")
	if err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	newSink := func() *exactly.Sink {
		sink, err := exactly.NewSink(context.Background(), cfg, &postgres.Dialect{}, decode.For(cfg), log)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sink.Close() })
		return sink
	}
	sink := newSink()
	for _, q := range []string{
		"CREATE TABLE events (p INTEGER NOT NULL, o BIGINT NOT NULL)",
		"CREATE FUNCTION slow_row() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.01); RETURN NEW; END $$",
		"CREATE TRIGGER slow BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION slow_row()",
	} {
		if _, err := sink.DB().Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	var recs []*kgo.Record
	for p := range parts {
		for o := range records {
			recs = append(recs, &kgo.Record{Topic: topic, Partition: int32(p), Value: fmt.Appendf(nil, `{"p":%d,"o":%d}`, p, o)})
		}
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl.Close()

	a, err := kafka.NewSource(cfg, sink, log, kafka.FlightTimeout(limit))
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	stopA := runSource(t, a)
	defer stopA()
	waitFor(t, "a flight of the first member to run out of its time", 30*time.Second, func() bool {
		return strings.Contains(logs.String(), "a flight ran out of its time")
	})
	b, err := kafka.NewSource(cfg, newSink(), log, kafka.FlightTimeout(limit))
	if err != nil {
		t.Fatal(err)
	}
	stopB := runSource(t, b)
	defer stopB()
	var tps []exactly.TP
	for p := range parts {
		tps = append(tps, exactly.TP{Topic: topic, Partition: int32(p)})
	}
	for {
		got, err := sink.LoadOffsets(context.Background(), tps)
		done := err == nil
		for _, tp := range tps {
			done = done && got[tp] == records
		}
		if done {
			break
		}
		if time.Since(began) > bound {
			t.Fatalf("after %v the pipeline is at %v of %d per partition (%v); members own %d and %d\nlog:\n%s", bound, got, records, err, a.Assigned(), b.Assigned(), logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("caught up in %v; members own %d and %d partitions", time.Since(began).Round(time.Millisecond), a.Assigned(), b.Assigned())
	rs, err := sink.DB().Query("SELECT p, o, COUNT(*) FROM events GROUP BY p, o ORDER BY p, o")
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	seen := make([]int64, parts)
	for rs.Next() {
		var p, o, n int64
		if err := rs.Scan(&p, &o, &n); err != nil {
			t.Fatal(err)
		}
		if o != seen[p] || n != 1 {
			t.Fatalf("partition %d: record %d applied %d times (expected record %d next)", p, o, n, seen[p])
		}
		seen[p]++
	}
	for p, n := range seen {
		if n != records {
			t.Errorf("partition %d: %d records applied, want %d", p, n, records)
		}
	}
	l := exactly.NewLedger(sink.DB(), &postgres.Dialect{}, cfg.Pipeline)
	offs, err := l.Offsets(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if breaks, _, err := l.CheckChains(context.Background(), offs); err != nil || len(breaks) > 0 {
		t.Fatalf("ledger chain: %v %v", breaks, err)
	}
}
