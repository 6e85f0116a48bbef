package replay_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/decode"
	"github.com/exactly/exactly/internal/kafka"
	"github.com/exactly/exactly/internal/sink/sqlite"
	"github.com/exactly/exactly/replay"
)

// TestRunChunksTheRange replays ten committed records of a partition in
// transactions of at most four: three ledger rows, every record applied,
// and the result reaches the range's end. A replay that began at another
// next_offset than the ledger holds is refused with a ReplayMovedError.
func TestRunChunksTheRange(t *testing.T) {
	ctx := context.Background()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "t.items"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		r := &kgo.Record{Topic: "t.items", Key: []byte(fmt.Sprintf(`{"id":%d}`, i%6)), Value: []byte(fmt.Sprintf(`{"id":%d,"name":"n%d"}`, i%6, i))}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	cl.Close()
	yaml := fmt.Sprintf(`pipeline: p
source:
  brokers: [%s]
  group: g
sink:
  driver: sqlite
  dsn: %s
tables:
  - topics: t.items
    table: items
    key: [id]
    create: true
`, strings.Join(c.ListenAddrs(), ", "), filepath.Join(t.TempDir(), "s.db"))
	cfg, err := exactly.ParseConfig(strings.NewReader(yaml), "p.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sink, err := exactly.NewSink(ctx, cfg, &sqlite.Dialect{}, decode.For(cfg), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	tp := exactly.TP{Topic: "t.items", Partition: 0}
	if _, err := sink.SeedOffset(ctx, tp, 10); err != nil {
		t.Fatal(err)
	}
	kr, err := kafka.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer kr.Close()

	steps := 0
	res, err := replay.Run(ctx, sink, kr, replay.Range{TP: tp, From: 0, To: 10, Next: 10}, 4, func(replay.Result) { steps++ })
	if err != nil {
		t.Fatal(err)
	}
	if res.Records != 10 || res.Txs != 3 || len(res.BatchIDs) != 3 || res.At != 10 || steps != 3 {
		t.Errorf("replayed %+v in %d steps; want 10 records in 3 transactions reaching 10", res, steps)
	}
	var rows int
	if err := sink.DB().QueryRowContext(ctx, "SELECT COUNT(*) FROM items").Scan(&rows); err != nil || rows != 6 {
		t.Errorf("items holds %d rows (%v), want the 6 keys", rows, err)
	}

	// The replay began at next_offset 12, the ledger holds 10: a
	// pipeline moved it meanwhile, and nothing is written.
	var me *exactly.ReplayMovedError
	if _, err := replay.Run(ctx, sink, kr, replay.Range{TP: tp, From: 0, To: 10, Next: 12}, 4, func(replay.Result) {}); !errors.As(err, &me) {
		t.Errorf("next_offset moved: %v, want a ReplayMovedError", err)
	}
}
