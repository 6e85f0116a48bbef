package main

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/decode"
	"github.com/exactly/exactly/internal/kafka"
)

// TestReplayStopsWhenThePipelineCommitsMeanwhile pins issue 15.5: replay
// read next_offset once and its transaction only required next_offset >=
// the range's end, so a pipeline batch committed while the replay ran was
// overwritten with older values. Here the "pipeline" commits offset 30 (id
// 3 becomes n31) holding the offsets row lock while the replay waits for
// it: the replay must refuse, and id 3 must keep the newer value.
func TestReplayStopsWhenThePipelineCommitsMeanwhile(t *testing.T) {
	f := newAuditFixture(t, "postgres", 30, 10)
	f.produceMore(t, 1) // offset 30: id 3 = n31
	ctx := context.Background()
	tx, err := f.db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec("UPDATE items SET name = 'n31' WHERE id = 3"); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec("UPDATE exactly_offsets SET next_offset = 31 WHERE pipeline = 'audit' AND topic = 't.items'"); err != nil {
		t.Fatal(err)
	}
	type result struct {
		code     int
		out, err string
	}
	done := make(chan result, 1)
	go func() {
		code, out, errs := runCLI("replay", "-c", f.file, "--topic", "t.items", "--partition", "0", "--from", "0")
		done <- result{code, out, errs}
	}()
	// Commit the pipeline's batch once the replay waits for the row lock.
	deadline := time.Now().Add(60 * time.Second)
	for {
		var n int
		if err := f.db.QueryRow(`SELECT COUNT(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'UPDATE exactly_offsets%'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			break
		}
		select {
		case r := <-done:
			t.Fatalf("replay ended without waiting for the offsets row lock: exit %d\n%s%s", r.code, r.out, r.err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the replay never waited for the offsets row lock")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.code == 0 {
		t.Errorf("replay exit 0 after the pipeline moved on; want a refusal\n%s%s", r.out, r.err)
	}
	if !strings.Contains(r.err, "moved from 30 to 31") {
		t.Errorf("the refusal does not say next_offset moved:\n%s", r.err)
	}
	var name string
	if err := f.db.QueryRow("SELECT name FROM items WHERE id = 3").Scan(&name); err != nil {
		t.Fatal(err)
	}
	if name != "n31" {
		t.Errorf("id 3 holds %q after the replay, want the newer n31 the pipeline committed", name)
	}
	if n := f.count(t, "SELECT COUNT(*) FROM exactly_batches WHERE status = 'replayed'"); n != 0 {
		t.Errorf("%d replayed ledger rows after a refused replay", n)
	}
}

// TestReplayRefusedWhileAPipelineOwnsThePartition pins issue 15.5 from the
// other side: next to a running pipeline (a real consumer group member on
// kfake, writing to PostgreSQL) replay refuses and names the owner; once
// the pipeline stopped, the same replay runs.
func TestReplayRefusedWhileAPipelineOwnsThePartition(t *testing.T) {
	f := newAuditFixture(t, "postgres", 30, 10)
	cfg, err := exactly.LoadConfig(f.file)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	sink, err := exactly.NewSink(context.Background(), cfg, f.d, decode.For(cfg), log)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	src, err := kafka.NewSource(cfg, sink, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- src.Run(ctx) }()
	stop := func() {
		if cancel != nil {
			cancel()
			if err := <-ran; err != nil {
				t.Error(err)
			}
			cancel = nil
		}
	}
	defer stop()
	deadline := time.Now().Add(60 * time.Second)
	for src.Assigned() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the pipeline was never assigned the partition")
		}
		time.Sleep(20 * time.Millisecond)
	}
	before := f.snapshot(t)
	code, out, errs := runCLI("replay", "-c", f.file, "--topic", "t.items", "--partition", "0", "--from", "0")
	if code == 0 {
		t.Fatalf("replay next to a running pipeline: exit 0, want a refusal\n%s%s", out, errs)
	}
	if !strings.Contains(errs, "t.items[0] is owned by member") || !strings.Contains(errs, "Stop every member of consumer group audit") {
		t.Errorf("the refusal does not name the owner and the way out:\n%s", errs)
	}
	if n := f.count(t, "SELECT COUNT(*) FROM exactly_batches WHERE status = 'replayed'"); n != 0 {
		t.Errorf("%d replayed ledger rows after a refused replay", n)
	}
	stop()
	// The member left the group on its way out: the replay runs now.
	deadline = time.Now().Add(60 * time.Second)
	for {
		code, out, errs = runCLI("replay", "-c", f.file, "--topic", "t.items", "--partition", "0", "--from", "0")
		if code == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("replay after the pipeline stopped: exit %d\n%s%s", code, out, errs)
		}
		time.Sleep(time.Second)
	}
	if got := f.snapshot(t); got != before {
		t.Errorf("replay up to next_offset changed the table:\nbefore %s\nafter  %s", before, got)
	}
}
