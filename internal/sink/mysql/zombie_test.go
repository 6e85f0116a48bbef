package mysql_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/decode"
	"github.com/exactly/exactly/internal/sink/mysql"
	"github.com/exactly/exactly/internal/testenv"
)

// TestPausedZombieHoldsNoPartitionHostage: a member paused in the middle
// of its transaction (a zombie), holding a partition's exactly_offsets row
// lock, with the default settings but a short rebalance timeout. The new
// owner's flight of two partitions drops the locked one after the fence's
// lock wait (10 s) and commits the other; MariaDB ends the zombie's idle
// transaction after the idle-transaction timeout (the rebalance timeout),
// and the locked partition commits then. Seen: the new owner waited
// innodb_lock_wait_timeout (50 s) per try, every partition of its flight
// with it, until wait_timeout (8 h) ended the zombie.
func TestPausedZombieHoldsNoPartitionHostage(t *testing.T) {
	dsn := testenv.MySQLDatabase(t)
	pipeline := fmt.Sprintf("p%d", time.Now().UnixNano())
	const idle = 25 * time.Second
	cfg, err := exactly.ParseConfig(strings.NewReader(fmt.Sprintf(`pipeline: %s
source: {brokers: ['127.0.0.1:1'], rebalance_timeout: %s}
sink: {driver: mysql, dsn: '%s'}
tables:
  - {topics: t.z, table: z_items, key: [id]}
`, pipeline, idle, dsn)), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Sink.IdleTxTimeout != idle {
		t.Fatalf("idle-transaction timeout %v, want the rebalance timeout %v", cfg.Sink.IdleTxTimeout, idle)
	}
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	owner, err := exactly.NewSink(ctx, cfg, &mysql.Dialect{}, decode.For(cfg), log)
	if err != nil {
		t.Fatal(err)
	}
	defer owner.Close()
	zombie, err := exactly.NewSink(ctx, cfg, &mysql.Dialect{}, decode.For(cfg), log)
	if err != nil {
		t.Fatal(err)
	}
	defer zombie.Close()
	if _, err := owner.DB().Exec("CREATE TABLE z_items (id BIGINT PRIMARY KEY, name VARCHAR(50) NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	for p := int32(0); p < 2; p++ {
		if _, err := owner.SeedOffset(ctx, exactly.TP{Topic: "t.z", Partition: p}, 0); err != nil {
			t.Fatal(err)
		}
	}
	// The zombie ran its fence of partition 0, then stopped (SIGSTOP, a
	// GC pause, a VM freeze): its transaction sits idle, the row locked.
	zc, err := zombie.DB().Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer zc.Close()
	ztx, err := zc.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ztx.Rollback() // before zc.Close, which waits for it
	if _, err := ztx.Exec("UPDATE exactly_offsets SET next_offset = 1, writer = 'zombie' WHERE pipeline = ? AND topic = 't.z' AND `partition` = 0 AND next_offset = 0", pipeline); err != nil {
		t.Fatal(err)
	}
	paused := time.Now()

	batch := func(p int32) *exactly.PartitionBatch {
		return &exactly.PartitionBatch{Topic: "t.z", Partition: p, From: 0, Records: []*exactly.Record{{Topic: "t.z", Partition: p, Offset: 0,
			Key: []byte(fmt.Sprintf(`{"id":%d}`, p)), Value: []byte(fmt.Sprintf(`{"id":%d,"name":"owner"}`, p))}}}
	}
	cctx, cancel := context.WithTimeout(ctx, 45*time.Second)
	began := time.Now()
	out := owner.Commit(cctx, []*exactly.PartitionBatch{batch(0), batch(1)})
	cancel()
	took := time.Since(began)
	got := map[int32]exactly.Outcome{}
	for _, o := range out {
		got[o.Batch.Partition] = o
	}
	if !got[1].Committed {
		t.Fatalf("partition 1 (not locked) was held hostage by the zombie's lock on partition 0 for %v: %v", took, got[1].Err)
	}
	var lte *exactly.LockTimeoutError
	if got[0].Committed || !errors.As(got[0].Err, &lte) {
		t.Fatalf("partition 0 (locked by the zombie): committed %v, err %v; want a LockTimeoutError", got[0].Committed, got[0].Err)
	}
	t.Logf("flight returned after %v: partition 1 committed, partition 0 dropped: %v", took, got[0].Err)
	if took > 30*time.Second {
		t.Errorf("the flight took %v, want about the fence's 10 s lock wait", took)
	}

	// MariaDB ends the zombie's idle transaction; partition 0 goes on.
	deadline := time.Now().Add(idle + 40*time.Second)
	for {
		o := owner.Commit(ctx, []*exactly.PartitionBatch{batch(0)})[0]
		if o.Committed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("partition 0 still locked %v after the zombie paused (idle-transaction timeout %v): %v", time.Since(paused), idle, o.Err)
		}
		time.Sleep(time.Second)
	}
	t.Logf("partition 0 committed %v after the zombie paused", time.Since(paused))
	if err := ztx.Commit(); err == nil {
		t.Fatal("the zombie's transaction committed after the new owner applied the partition")
	}
	var next int64
	var writer string
	if err := owner.DB().QueryRow("SELECT next_offset, writer FROM exactly_offsets WHERE pipeline = ? AND topic = 't.z' AND `partition` = 0", pipeline).Scan(&next, &writer); err != nil {
		t.Fatal(err)
	}
	if next != 1 || writer == "zombie" {
		t.Errorf("partition 0: next_offset %d by %q, want 1 by the owner", next, writer)
	}
}
