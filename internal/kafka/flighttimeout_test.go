package kafka_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/decode"
	"github.com/exactly/exactly/internal/kafka"
	"github.com/exactly/exactly/internal/sink/mysql"
	"github.com/exactly/exactly/internal/sink/postgres"
	"github.com/exactly/exactly/internal/testenv"
)

// logBuffer is a log destination safe for the Source's goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestAFlightTooSlowForItsTimeIsCutUntilItFits: a backlog of 240 records
// in one partition, into a table whose trigger sleeps 10 ms a row, with
// flights given 1 s: the first flight, all 240 records (~2.4 s), cannot
// finish in time; fewer can (60: ~0.6 s, room left for a loaded machine).
// The pipeline must get through it: every record applied exactly once, the
// ledger chain unbroken, within a bound. Regression: a flight that ran out
// of time was retried with as many records, and ran out of time again
// forever (the review's MariaDB backlog stuck at 3,000 of 51,000).
func TestAFlightTooSlowForItsTimeIsCutUntilItFits(t *testing.T) {
	for _, c := range []struct {
		name string
		d    exactly.Dialect
		dsn  func(t *testing.T) string
		slow []string // a 10 ms sleep per row inserted into events
	}{
		{"postgres", &postgres.Dialect{}, func(t *testing.T) string { return testenv.PostgresSchema(t) }, []string{
			"CREATE FUNCTION slow_row() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.01); RETURN NEW; END $$",
			"CREATE TRIGGER slow BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION slow_row()",
		}},
		{"mariadb", &mysql.Dialect{}, func(t *testing.T) string { return testenv.MySQLDatabase(t) }, []string{
			"CREATE TRIGGER slow BEFORE INSERT ON events FOR EACH ROW SET @slept = SLEEP(0.01)",
		}},
	} {
		t.Run(c.name, func(t *testing.T) { testFlightCut(t, c.d, c.dsn(t), c.slow) })
	}
}

func testFlightCut(t *testing.T, d exactly.Dialect, dsn string, slow []string) {
	const (
		records = 240
		limit   = time.Second
		bound   = 60 * time.Second
		topic   = "slow.events"
	)
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cfg, err := exactly.ParseConfig(strings.NewReader(fmt.Sprintf(`pipeline: slow
source: {brokers: [%s], group: slow}
sink: {driver: %s, dsn: '%s'}
batch: {interval: 100ms}
tables:
  - {topics: '%s', table: events, mode: append}
`, strings.Join(c.ListenAddrs(), ", "), d.Name(), dsn, strings.ReplaceAll(topic, ".", `\.`))), "slow.yaml")
	if err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	sink, err := exactly.NewSink(context.Background(), cfg, d, decode.For(cfg), log)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	for _, q := range append([]string{"CREATE TABLE events (p INTEGER NOT NULL, o BIGINT NOT NULL)"}, slow...) {
		if _, err := sink.DB().Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	var recs []*kgo.Record
	for o := range records {
		recs = append(recs, &kgo.Record{Topic: topic, Value: fmt.Appendf(nil, `{"p":0,"o":%d}`, o)})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl.Close()

	src, err := kafka.NewSource(cfg, sink, log, kafka.FlightTimeout(limit))
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	stop := runSource(t, src)
	tp := exactly.TP{Topic: topic, Partition: 0}
	for {
		got, err := sink.LoadOffsets(context.Background(), []exactly.TP{tp})
		if err == nil && got[tp] == records {
			break
		}
		if time.Since(began) > bound {
			stop()
			t.Fatalf("after %v the pipeline is at offset %d of %d (%v)\nlog:\n%s", bound, got[tp], records, err, logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	took := time.Since(began)
	stop()

	// Every record exactly once.
	rs, err := sink.DB().Query("SELECT o, COUNT(*) FROM events GROUP BY o ORDER BY o")
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	next := int64(0)
	for rs.Next() {
		var o, n int64
		if err := rs.Scan(&o, &n); err != nil {
			t.Fatal(err)
		}
		if o != next || n != 1 {
			t.Fatalf("record %d applied %d times (expected record %d next)", o, n, next)
		}
		next++
	}
	if next != records {
		t.Fatalf("%d records applied, want %d", next, records)
	}
	// The ledger chain unbroken: the batches that committed, cut where
	// they were, cover 0..240 once.
	l := exactly.NewLedger(sink.DB(), d, cfg.Pipeline)
	offs, err := l.Offsets(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	breaks, batches, err := l.CheckChains(context.Background(), offs)
	if err != nil || len(breaks) > 0 {
		t.Fatalf("ledger chain: %v %v", breaks, err)
	}
	// It got there by cutting: at least one flight ran out of time, and
	// each such shrink was said once, with the numbers.
	warned := strings.Count(logs.String(), "a flight ran out of its time")
	if warned == 0 || !strings.Contains(logs.String(), fmt.Sprintf("records=%d max_records=%d limit=%v", records, records/2, limit)) {
		t.Errorf("no warning that the first flight of %d records ran out of %v and was halved:\n%s", records, limit, logs)
	}
	t.Logf("%d records in %d committed batches in %v after %d shrinks (load %s)", records, batches, took.Round(time.Millisecond), warned, load())
}

// load is the one-minute load average, for the log.
func load() string {
	b, _ := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); len(f) > 0 {
		return f[0]
	}
	return "?"
}
