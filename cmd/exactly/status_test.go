package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/decode"
	"github.com/exactly/exactly/internal/kafka"
	"github.com/exactly/exactly/internal/testenv"
	"github.com/exactly/exactly/status"
)

// TestStatusWhenKafkaIsDown: with the broker stopped (a process of its
// own), status prints the ledger half (next_offset, last batch, dead
// letters, a failed batch) and "Kafka unreachable: <cause>" within the
// default 5 s wait, and exits 1; it used to exit 1 with no output at all.
// A frozen broker (connections accepted, nothing answered) is told apart.
func TestStatusWhenKafkaIsDown(t *testing.T) {
	ctx := context.Background()
	b := testenv.StartBroker(t, 1, "t.items")
	dir := t.TempDir()
	file := filepath.Join(dir, "down.yaml")
	y := fmt.Sprintf(`pipeline: down
source: {brokers: [%s]}
sink: {driver: sqlite, dsn: '%s'}
tables:
  - topics: t.items
    table: items
    key: [id]
`, b.Addr, filepath.Join(dir, "sink.db"))
	if err := os.WriteFile(file, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := exactly.LoadConfig(file)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := dialectFor("sqlite")
	sink, err := exactly.NewSink(ctx, cfg, d, decode.For(cfg), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	if _, err := sink.DB().Exec("CREATE TABLE items (id bigint PRIMARY KEY, name text)"); err != nil {
		t.Fatal(err)
	}
	tp := exactly.TP{Topic: "t.items"}
	if _, err := sink.SeedOffset(ctx, tp, 0); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr), kgo.DefaultProduceTopic("t.items"))
	if err != nil {
		t.Fatal(err)
	}
	var produce []*kgo.Record
	for i := 0; i < 5; i++ {
		v := fmt.Sprintf(`{"id":%d,"name":"n%d"}`, i, i)
		if i == 2 {
			v = `{"id":2,"name":` // malformed: a dead letter
		}
		produce = append(produce, &kgo.Record{Key: []byte(fmt.Sprintf(`{"id":%d}`, i)), Value: []byte(v)})
	}
	err = cl.ProduceSync(ctx, produce...).FirstErr()
	cl.Close()
	if err != nil {
		t.Fatal(err)
	}
	kr, err := kafka.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var recs []*exactly.Record
	err = kr.Read(ctx, tp, 0, 5, func(r *exactly.Record) error { recs = append(recs, r); return nil })
	kr.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range sink.Commit(ctx, []*exactly.PartitionBatch{{Topic: "t.items", From: 0, Records: recs}}) {
		if !o.Committed {
			t.Fatal(o.Err)
		}
	}
	// A later batch of the partition that failed (offsets 5..7 not yet
	// produced; the ledger only says so).
	if _, err := sink.DB().Exec(`INSERT INTO exactly_batches (batch_id, pipeline, topic, "partition", from_offset, to_offset,
		records, upserted, deleted, skipped, dead_lettered, hash, status, error, writer, started_at)
		VALUES ('0000000000000-failed00-000001', 'down', 't.items', 0, 5, 8, 3, 0, 0, 0, 0, '', 'failed', 'writing batch: disk full', 'w', ?)`,
		time.Now().Add(time.Second).UTC().Format(time.RFC3339Nano)); err != nil {
		t.Fatal(err)
	}

	code, out, errs := runCLI("status", "-c", file)
	if code != 0 || !strings.Contains(out, "items  5            5") {
		t.Fatalf("status with Kafka up: exit %d\n%s%s", code, out, errs)
	}

	b.Stop()
	start := time.Now()
	code, out, errs = runCLI("status", "-c", file) // the default wait
	took := time.Since(start)
	if code != 1 {
		t.Errorf("status with the broker stopped: exit %d, want 1\n%s%s", code, out, errs)
	}
	if took > 5*time.Second+5*time.Second {
		t.Errorf("status took %s with the broker stopped, want about the default 5s wait", took)
	}
	t.Logf("broker stopped: status answered in %s", took.Round(time.Millisecond))
	golden(t, "status_kafka_down", out)
	golden(t, "status_kafka_down_stderr", errs)

	code, out, errs = runCLI("status", "-c", file, "--json", "--kafka-timeout", "1s")
	var st struct {
		Partitions []status.Partition `json:"partitions"`
		KafkaError string             `json:"kafka_error"`
	}
	if err := json.Unmarshal([]byte(out), &st); code != 1 || err != nil {
		t.Fatalf("status --json with the broker stopped: exit %d, %v\n%s%s", code, err, out, errs)
	}
	if len(st.Partitions) != 1 || st.Partitions[0].NextOffset == nil || *st.Partitions[0].NextOffset != 5 || st.Partitions[0].DeadLetters != 1 ||
		st.Partitions[0].LastStatus != "failed" || st.Partitions[0].Lag != nil || !strings.Contains(st.KafkaError, "connection refused") {
		t.Errorf("status --json with the broker stopped:\n%s", out)
	}

	b.Start()
	b.Freeze()
	defer b.Thaw()
	start = time.Now()
	code, out, errs = runCLI("status", "-c", file) // the default wait, used up
	took = time.Since(start)
	if code != 1 || !strings.Contains(out, "accepts connections but did not answer (no answer within 5s)") || !strings.Contains(out, "1 open dead letters") {
		t.Errorf("status with the broker frozen: exit %d\n%s%s", code, out, errs)
	}
	if took < 5*time.Second || took > 15*time.Second {
		t.Errorf("status took %s with the broker frozen, want the default 5s wait and a 1s probe", took)
	}
	t.Logf("broker frozen: status answered in %s", took.Round(time.Millisecond))
}

// TestStatusKafkaWaitStartsAtKafka: --kafka-timeout is how long status
// waits for Kafka, not for the database. It started before the ledger was
// read, so a slow ledger read (here a lock held for 2 s; in production an
// Azure SQL database resuming from pause, or a long exactly_batches) used
// up the wait and status said "Kafka unreachable: … accepts connections
// but did not answer" and exited 1 while the broker was fine.
func TestStatusKafkaWaitStartsAtKafka(t *testing.T) {
	ctx := context.Background()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "t.items"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	dir := t.TempDir()
	file := filepath.Join(dir, "slow.yaml")
	y := fmt.Sprintf(`pipeline: slow
source: {brokers: [%s]}
sink: {driver: postgres, dsn: '%s'}
tables:
  - topics: t.items
    table: items
    key: [id]
`, cluster.ListenAddrs()[0], testenv.PostgresSchema(t))
	if err := os.WriteFile(file, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := exactly.LoadConfig(file)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := dialectFor("postgres")
	sink, err := exactly.NewSink(ctx, cfg, d, decode.For(cfg), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	if _, err := sink.SeedOffset(ctx, exactly.TP{Topic: "t.items"}, 0); err != nil {
		t.Fatal(err)
	}
	tx, err := sink.DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec("LOCK TABLE exactly_offsets IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	released := time.AfterFunc(2*time.Second, func() { _ = tx.Rollback() })
	defer released.Stop()
	code, out, errs := runCLI("status", "-c", file, "--kafka-timeout", "1s")
	if code != 0 || strings.Contains(out+errs, "Kafka unreachable") || !strings.Contains(out, "group slow") {
		t.Errorf("status with a slow ledger and Kafka up: exit %d, want 0 and the Kafka half\n%s%s", code, out, errs)
	}
}
