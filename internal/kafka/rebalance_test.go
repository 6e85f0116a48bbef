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
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	start := func() *kafka.Source {
		sink, err := exactly.NewSink(context.Background(), cfg, &sqlite.Dialect{}, decode.New, log)
		if err != nil {
			t.Fatal(err)
		}
		src, err := kafka.NewSource(cfg, sink, log)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- src.Run(ctx) }()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Error(err)
			}
			sink.Close()
		})
		return src
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); !ok(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	a := start()
	waitFor("the first member to own both partitions", func() bool { return a.Assigned() == 2 })
	b := start()
	waitFor("the idle first member to hand a partition to the second",
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
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	start := func() *kafka.Source {
		sink, err := exactly.NewSink(context.Background(), cfg, &sqlite.Dialect{}, decode.New, log)
		if err != nil {
			t.Fatal(err)
		}
		src, err := kafka.NewSource(cfg, sink, log)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- src.Run(ctx) }()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Error(err)
			}
			sink.Close()
		})
		return src
	}
	waitFor := func(what string, within time.Duration, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(within); !ok(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within %v", what, within)
			}
		}
	}
	a := start()
	waitFor("the first member owns both partitions", 30*time.Second, func() bool { return a.Assigned() == 2 })
	e.produce(t, 5) // buffered, due only in 30s
	time.Sleep(500 * time.Millisecond)
	b := start()
	waitFor("the second member gets a partition", 12*time.Second, func() bool { return a.Assigned() == 1 && b.Assigned() == 1 })
}
