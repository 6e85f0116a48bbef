package kafka_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/decode"
	"github.com/exactly/exactly/internal/kafka"
	"github.com/exactly/exactly/internal/sink/sqlite"
)

// TestMemoryStaysBoundedWhileTheDatabaseIsStuck: 20,000 records wait in
// Kafka while another connection holds the SQLite write lock, so no batch
// can commit. The member must hold no more than the batch caps allow
// (buffered plus in flight, a few times batch.max_records), not the
// backlog; once the lock goes, every record is applied exactly once.
func TestMemoryStaysBoundedWhileTheDatabaseIsStuck(t *testing.T) {
	e := newTakeover(t)
	cfg := e.config(t, "earliest", "stuck")
	cfg.Batch.MaxRecords = 1000
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	sink, err := exactly.NewSink(context.Background(), cfg, &sqlite.Dialect{}, decode.For(cfg), log)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	// Create the table and the offsets rows with a first small run.
	e.produce(t, 5)
	e.run(t, cfg, nil)

	// The lock: an open write transaction on the same file.
	lockDB, err := sql.Open("sqlite", e.dsn+"?_pragma=busy_timeout(30000)")
	if err != nil {
		t.Fatal(err)
	}
	defer lockDB.Close()
	lock, err := lockDB.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if _, err := lock.ExecContext(context.Background(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	locked := true
	defer func() {
		if locked {
			lock.ExecContext(context.Background(), "ROLLBACK")
		}
	}()

	cl, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	for o := 0; o < 10000; o += 500 { // small produce batches: many fetches
		var recs []*kgo.Record
		for p := int32(0); p < 2; p++ {
			for i := 0; i < 500; i++ {
				off := e.next[p] + int64(i)
				recs = append(recs, &kgo.Record{Topic: topic, Partition: p, Value: []byte(fmt.Sprintf(`{"p":%d,"o":%d}`, p, off))})
			}
			e.next[p] += 500
		}
		if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	cl.Close()

	src, err := kafka.NewSource(cfg, sink, log)
	if err != nil {
		t.Fatal(err)
	}
	defer runSource(t, src)()
	most := 0
	for until := time.Now().Add(3 * time.Second); time.Now().Before(until); time.Sleep(5 * time.Millisecond) {
		most = max(most, src.Held())
	}
	if bound := 3 * cfg.Batch.MaxRecords; most > bound || most == 0 {
		t.Fatalf("with the database stuck the member held up to %d records of a 20,000 backlog; want some, at most %d", most, bound)
	}
	t.Logf("held at most %d records of a 20,000 backlog while the database was stuck", most)
	if _, err := lock.ExecContext(context.Background(), "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	locked = false
	tps := []exactly.TP{{Topic: topic, Partition: 0}, {Topic: topic, Partition: 1}}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		got, err := sink.LoadOffsets(context.Background(), tps)
		if err == nil && got[tps[0]] == e.next[0] && got[tps[1]] == e.next[1] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("did not catch up after the lock went: %v %v, want %v", got, err, e.next)
		}
	}
	expect(t, e.applied(t), [2]int64{0, 0}, e.next)
}
