package verify_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/decode"
	"github.com/exactly/exactly/internal/kafka"
	"github.com/exactly/exactly/internal/sink/sqlite"
	"github.com/exactly/exactly/verify"
)

// TestVerifyRealPipelineTransactionalTopic runs the real consumer (Source)
// over a topic written by a transactional producer that aborts some
// transactions, with batches cut inside transactions, and proves verify
// finds nothing: transaction markers and aborted records are normal
// sparseness, not gaps, and every range re-hashes the same.
func TestVerifyRealPipelineTransactionalTopic(t *testing.T) {
	ctx := context.Background()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	brokers := cluster.ListenAddrs()

	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic),
		kgo.TransactionalID("verify-tx"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	committed := 0
	for txn := 0; txn < 12; txn++ {
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 5; i++ {
			id := txn*5 + i
			r := &kgo.Record{Partition: int32(id % 2), Key: []byte(fmt.Sprintf(`{"id":%d}`, id%9)),
				Value: []byte(fmt.Sprintf(`{"id":%d,"name":"t%d-%d"}`, id%9, txn, i))}
			if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		commit := txn%3 != 2
		if commit {
			committed += 5
		}
		if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
	}
	cl.Close()

	dsn := filepath.Join(t.TempDir(), "sink.db")
	y := fmt.Sprintf(`pipeline: audit
source: {brokers: [%s], group: verify-pipeline}
sink: {driver: sqlite, dsn: '%s'}
batch: {interval: 30ms, max_records: 4}
tables:
  - {topics: %s, table: items, key: [id]}
`, strings.Join(brokers, ","), dsn, topic)
	cfg, err := exactly.ParseConfig(strings.NewReader(y), "audit.yaml")
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	d := &sqlite.Dialect{}
	sink, err := exactly.NewSink(ctx, cfg, d, decode.For(cfg), log)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	if _, err := sink.DB().Exec("CREATE TABLE items (id bigint PRIMARY KEY, name text)"); err != nil {
		t.Fatal(err)
	}
	src, err := kafka.NewSource(cfg, sink, log)
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- src.Run(rctx) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var n int
		if err := sink.DB().QueryRow("SELECT COALESCE(SUM(records), 0) FROM exactly_batches WHERE status = 'committed'").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == committed {
			break
		}
		if n > committed || time.Now().After(deadline) {
			cancel()
			t.Fatalf("ledger counts %d records, %d were committed to Kafka", n, committed)
		}
		time.Sleep(30 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	reader, err := kafka.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	rep, err := verify.Run(ctx, exactly.NewLedger(sink.DB(), d, "audit"), reader, verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var batches int
	sink.DB().QueryRow("SELECT COUNT(*) FROM exactly_batches WHERE status = 'committed'").Scan(&batches)
	if !rep.Clean() || len(rep.Notes) != 0 || rep.Rehashed != batches || rep.Records != int64(committed) || rep.Partitions != 2 {
		t.Errorf("verify of a transactional topic: clean %v, rehashed %d of %d batches, %d of %d records, %d partitions\nfindings %v\nnotes %v",
			rep.Clean(), rep.Rehashed, batches, rep.Records, committed, rep.Partitions, rep.Findings, rep.Notes)
	}
	var sparse int
	sink.DB().QueryRow("SELECT COUNT(*) FROM exactly_batches WHERE to_offset - from_offset > records").Scan(&sparse)
	if sparse == 0 {
		t.Error("no batch spans a transaction marker or an aborted record: the test does not test sparseness")
	}
}
