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
