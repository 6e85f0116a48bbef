package kafka

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/decode"
	"github.com/exactly/exactly/internal/sink/sqlite"
)

// TestStartOffsetsOfTwoSessionsAtOnce: franz-go runs each group session's
// offset fetch (adjust → startOffsets) in a goroutine of its own, and a
// session cancelled while adjust retries a database outage is not waited
// for, so two may run at once. Under -race this failed: the pipeline row
// read on the first assignment was a plain field both wrote and read (seen
// as a DATA RACE in the chaos suite on SQL Server).
func TestStartOffsetsOfTwoSessionsAtOnce(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "t"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cfg, err := exactly.ParseConfig(strings.NewReader(`pipeline: p
source: {brokers: [`+c.ListenAddrs()[0]+`]}
sink: {driver: sqlite, dsn: '`+filepath.Join(t.TempDir(), "x.db")+`'}
tables:
  - {topics: t, key: [id]}
`), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx := context.Background()
	sink, err := exactly.NewSink(ctx, cfg, &sqlite.Dialect{}, decode.For(cfg), log)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	if err := sink.EnsureLedger(ctx); err != nil {
		t.Fatal(err)
	}
	s, err := NewSource(cfg, sink, log)
	if err != nil {
		t.Fatal(err)
	}
	defer s.cl.Close()
	tps := []exactly.TP{{Topic: "t", Partition: 0}, {Topic: "t", Partition: 1}}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Go(func() {
			var got map[exactly.TP]exactly.Position
			got, errs[i] = s.startOffsets(ctx, tps)
			if errs[i] == nil && len(got) != len(tps) {
				t.Errorf("session %d: start offsets of %d partitions, want %d", i, len(got), len(tps))
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		// SQLite's single writer may refuse the loser's seed; a
		// retry (adjust's loop) then reads the winner's rows.
		if err != nil {
			if _, err := s.startOffsets(ctx, tps); err != nil {
				t.Fatalf("session %d: %v", i, err)
			}
		}
	}
	if s.first.Load() == nil {
		t.Fatal("no pipeline row recorded")
	}
}
