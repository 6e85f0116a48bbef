package kafka_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/decode"
	"github.com/exactly/exactly/internal/kafka"
	"github.com/exactly/exactly/internal/sink/sqlite"
)

// TestIdleMemberLetsAnotherJoin pins a bug of the pipelined loop: it
// allowed rebalances only after a cycle committed, so a member with
// nothing to write blocked every rebalance and a second member of the
// group never got a partition. Both members must end up with one of the
// two partitions.
func TestIdleMemberLetsAnotherJoin(t *testing.T) {
	e := newTakeover(t)
	cfg := e.config(t, "earliest", "idle")
	a := startMember(t, cfg)
	waitFor(t, "the first member to own both partitions", 30*time.Second, func() bool { return a.Assigned() == 2 })
	b := startMember(t, cfg)
	waitFor(t, "the idle first member to hand a partition to the second", 30*time.Second,
		func() bool { return a.Assigned() == 1 && b.Assigned() == 1 })
}

// TestRebalanceWaitsNoLongerThanItMust: with a long batch.interval a
// member waiting for records (or for its next batch to fall due) must
// still let a rebalance run as soon as the group asks, not when the
// interval runs out: the second member gets its partition well before
// the 30s interval.
func TestRebalanceWaitsNoLongerThanItMust(t *testing.T) {
	e := newTakeover(t)
	cfg := e.config(t, "earliest", "slow-interval")
	cfg.Batch.Interval = exactly.Duration(30 * time.Second)
	a := startMember(t, cfg)
	waitFor(t, "the first member owns both partitions", 30*time.Second, func() bool { return a.Assigned() == 2 })
	e.produce(t, 5) // buffered, due only in 30s
	time.Sleep(500 * time.Millisecond)
	b := startMember(t, cfg)
	waitFor(t, "the second member gets a partition", 12*time.Second, func() bool { return a.Assigned() == 1 && b.Assigned() == 1 })
}

// startMember runs a group member on the takeover's SQLite sink until the
// test ends.
func startMember(t *testing.T, cfg *exactly.Config) *kafka.Source {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	sink, err := exactly.NewSink(context.Background(), cfg, &sqlite.Dialect{}, decode.For(cfg), log)
	if err != nil {
		t.Fatal(err)
	}
	src, err := kafka.NewSource(cfg, sink, log)
	if err != nil {
		t.Fatal(err)
	}
	stop := runSource(t, src)
	t.Cleanup(func() {
		stop()
		sink.Close()
	})
	return src
}

// waitFor polls ok until it holds, failing the test after within.
func waitFor(t *testing.T, what string, within time.Duration, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(within); !ok(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
	}
}
