package kafka_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/decode"
	"github.com/exactly/exactly/internal/kafka"
	"github.com/exactly/exactly/internal/sink/sqlite"
)

// halts records the partitions that halted, and why.
type halts struct {
	exactly.NopObserver
	mu sync.Mutex
	m  map[exactly.TP]error
}

func (h *halts) Halted(tp exactly.TP, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.m == nil {
		h.m = map[exactly.TP]error{}
	}
	h.m[tp] = err
}

func (h *halts) get(tp exactly.TP) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.m[tp]
}

// TestTruncatedLogHaltsAfterRestart: the leader epoch of the last applied
// record is stored with next_offset, and a restart seeks with it
// (KIP-320), so a log truncated while the pipeline was down halts the
// partition instead of resuming past records it never applied.
//
// kfake cannot truncate a log: it has no replicas, so no unclean leader
// election, and no request removes records from the end of a log
// (DeleteRecords moves the log start). What it can do is bump the leader
// epoch (ShufflePartitionLeaders) and keep each batch's epoch, which is
// what OffsetForLeaderEpoch answers from. So the divergence is made from
// the ledger's side: the ledger says partition 0 was applied up to offset
// 15 in leader epoch 0 — as if the old leader had written 10..14, the
// pipeline applied them, and an unclean election lost them — while the
// log's epoch 0 ends at 10 and epoch 1 wrote other records at 10..19.
// Resuming at 15 (what happened before: the epoch was not stored and
// the client seeked with -1) skipped 10..14 of epoch 1 silently.
func TestTruncatedLogHaltsAfterRestart(t *testing.T) {
	e := newTakeover(t)
	c := e.cluster
	e.produce(t, 10) // epoch 0
	cfg := e.config(t, "earliest", "g-trunc")
	e.run(t, cfg, nil)
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	sink, err := exactly.NewSink(ctx, cfg, &sqlite.Dialect{}, decode.For(cfg), log)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	tps := []exactly.TP{{Topic: topic, Partition: 0}, {Topic: topic, Partition: 1}}
	pos, err := sink.LoadPositions(ctx, tps)
	if err != nil {
		t.Fatal(err)
	}
	for _, tp := range tps {
		if p := pos[tp]; p.Next != 10 || p.Epoch != 0 {
			t.Fatalf("%s stored %+v; want next_offset 10 in leader epoch 0", tp, p)
		}
	}

	c.ShufflePartitionLeaders() // leader epoch 1
	e.produce(t, 10)            // offsets 10..19 in epoch 1
	if _, err := sink.DB().Exec(`UPDATE exactly_offsets SET next_offset = 15 WHERE "partition" = 0`); err != nil {
		t.Fatal(err)
	}

	h := &halts{}
	src, err := kafka.NewSource(cfg, sink, log, kafka.Observe(h))
	if err != nil {
		t.Fatal(err)
	}
	stop := runSource(t, src)
	defer stop()
	waitFor(t, "partition 0 halts with the truncation", 20*time.Second, func() bool { return h.get(tps[0]) != nil })
	var te *exactly.LogTruncatedError
	if err := h.get(tps[0]); !errors.As(err, &te) || te.ResetTo != 10 || te.Next != 15 || !strings.Contains(err.Error(), "exactly reseed") {
		t.Errorf("partition 0 halted with %v; want a log truncation at 10 below next_offset 15, naming exactly reseed", err)
	}
	waitFor(t, "partition 1 applies epoch 1's records", 20*time.Second, func() bool {
		got, err := sink.LoadOffsets(ctx, tps[1:])
		return err == nil && got[tps[1]] == 20
	})
	got, err := sink.LoadPositions(ctx, tps)
	if err != nil {
		t.Fatal(err)
	}
	if got[tps[0]].Next != 15 {
		t.Errorf("partition 0 moved to %d; halted, it stays at 15", got[tps[0]].Next)
	}
	if got[tps[1]].Epoch != 1 {
		t.Errorf("partition 1 stored leader epoch %d; want 1, the epoch of its last record", got[tps[1]].Epoch)
	}
	if h.get(tps[1]) != nil {
		t.Errorf("partition 1 halted: %v", h.get(tps[1]))
	}
}

// TestRecreatedTopicHaltsThePartition: a topic deleted and created again
// while the pipeline owns it halts its partitions with that cause (its id
// changed) within the watermark check's default period, and applies none
// of the new topic's records; after a restart they halt at once on
// assignment. A ledger row without a topic id (an older ledger, a broker
// without ids) halts as offsets beyond the log end. Before, the running
// member stayed ready with lag 0 and never applied the new records, and a
// restart halted with "offsets 10..-1 were deleted".
func TestRecreatedTopicHaltsThePartition(t *testing.T) {
	e := newTakeover(t)
	e.produce(t, 10)
	cfg := e.config(t, "earliest", "g-recreate")
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	sink, err := exactly.NewSink(ctx, cfg, &sqlite.Dialect{}, decode.For(cfg), log)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	tps := []exactly.TP{{Topic: topic, Partition: 0}, {Topic: topic, Partition: 1}}
	start := func() (*halts, func()) {
		h := &halts{}
		src, err := kafka.NewSource(cfg, sink, log, kafka.Observe(h))
		if err != nil {
			t.Fatal(err)
		}
		return h, runSource(t, src)
	}
	h, stop := start()
	waitFor(t, "the first records are applied", 20*time.Second, func() bool {
		got, err := sink.LoadOffsets(ctx, tps)
		return err == nil && got[tps[0]] == 10 && got[tps[1]] == 10
	})
	before, err := sink.LoadPositions(ctx, tps)
	if err != nil {
		t.Fatal(err)
	}
	if before[tps[0]].TopicID == "" {
		t.Fatalf("no topic id recorded: %+v", before)
	}

	adm := kadm.NewClient(e.client(t))
	if _, err := adm.DeleteTopics(ctx, topic); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	e.next = [2]int64{}
	e.produce(t, 3)
	began := time.Now()
	// The default watermark period is 5s: a halt within two of them.
	waitFor(t, "the running member halts both partitions", 12*time.Second, func() bool { return h.get(tps[0]) != nil && h.get(tps[1]) != nil })
	t.Logf("running member halted %v after the new records", time.Since(began).Round(time.Millisecond))
	for _, tp := range tps {
		var re *exactly.TopicRecreatedError
		if err := h.get(tp); !errors.As(err, &re) || !strings.Contains(err.Error(), "exactly reseed") || re.Next != 10 {
			t.Errorf("%s halted with %v; want topic recreated at next_offset 10, naming exactly reseed", tp, err)
		}
	}
	stop()
	after, err := sink.LoadPositions(ctx, tps)
	if err != nil {
		t.Fatal(err)
	}
	for _, tp := range tps {
		if after[tp].Next != 10 {
			t.Errorf("%s moved to %d; halted, it stays at 10", tp, after[tp].Next)
		}
	}

	// Restart: halted at once, on assignment.
	h, stop = start()
	waitFor(t, "a restarted member halts both partitions", 20*time.Second, func() bool { return h.get(tps[0]) != nil && h.get(tps[1]) != nil })
	for _, tp := range tps {
		var re *exactly.TopicRecreatedError
		if err := h.get(tp); !errors.As(err, &re) {
			t.Errorf("after a restart %s halted with %v; want topic recreated", tp, err)
		}
	}
	stop()

	// Without a stored topic id: beyond the log end (3 < 10).
	if _, err := sink.DB().Exec(`UPDATE exactly_offsets SET topic_id = NULL`); err != nil {
		t.Fatal(err)
	}
	h, stop = start()
	defer stop()
	waitFor(t, "a member without topic ids halts both partitions", 20*time.Second, func() bool { return h.get(tps[0]) != nil && h.get(tps[1]) != nil })
	for _, tp := range tps {
		var be *exactly.BeyondLogEndError
		if err := h.get(tp); !errors.As(err, &be) || be.Next != 10 || be.End != 3 || !strings.Contains(err.Error(), "lag -7") {
			t.Errorf("without a topic id %s halted with %v; want beyond the log end: next_offset 10, end 3, lag -7", tp, err)
		}
	}
	if n := e.appliedCount(t); n != 20 {
		t.Errorf("%d records in the table; want the 20 of the old topic, none of the new one", n)
	}
}
