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

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/decode"
	"github.com/exactly/exactly/internal/testenv"
	"github.com/exactly/exactly/status"
)

// TestStatusChain: status --chain checks the chain of committed batches
// with the rule verify and the status page apply: a replay of a committed
// range is not an overlap, a gap is named with its offsets, and without
// --chain nothing is read or printed.
func TestStatusChain(t *testing.T) {
	ctx := context.Background()
	b := testenv.StartBroker(t, 1, "t.items")
	dir := t.TempDir()
	file := filepath.Join(dir, "chain.yaml")
	y := fmt.Sprintf("pipeline: chain\nsource: {brokers: [%s]}\nsink: {driver: sqlite, dsn: '%s'}\ntables:\n  - {topics: t.items, table: items, key: [id]}\n",
		b.Addr, filepath.Join(dir, "sink.db"))
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
	if _, err := sink.SeedOffset(ctx, exactly.TP{Topic: "t.items"}, 0); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	for i, r := range []struct {
		from, to int64
		status   string
	}{
		{0, 10, "committed"}, {10, 20, "committed"},
		{5, 15, "replayed"},   // exactly replay of 5..14: not an overlap
		{22, 30, "committed"}, // offsets 20..21 in no batch
	} {
		if _, err := sink.DB().Exec(`INSERT INTO exactly_batches (batch_id, pipeline, topic, "partition", from_offset, to_offset,
			records, upserted, deleted, skipped, dead_lettered, hash, status, writer, started_at, committed_at)
			VALUES (?, 'chain', 't.items', 0, ?, ?, 0, 0, 0, 0, 0, 'h', ?, 'w', ?, ?)`,
			fmt.Sprintf("b%d", i), r.from, r.to, r.status, now.Add(time.Duration(i)*time.Second), now.Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := sink.DB().Exec(`UPDATE exactly_offsets SET next_offset = 30 WHERE pipeline = 'chain'`); err != nil {
		t.Fatal(err)
	}

	code, out, errs := runCLI("status", "-c", file, "--chain")
	if code != 0 || !strings.Contains(out, "chain: 1 break(s) in 3 committed batches") ||
		!strings.Contains(out, "t.items[0]: gap: offsets 20..21 are in no committed batch") || strings.Contains(out, "overlap") {
		t.Errorf("status --chain: exit %d\n%s%s", code, out, errs)
	}
	code, out, errs = runCLI("status", "-c", file, "--chain", "--json")
	var st struct {
		Chain status.Chain `json:"chain"`
	}
	if err := json.Unmarshal([]byte(out), &st); code != 0 || err != nil {
		t.Fatalf("status --chain --json: exit %d, %v\n%s%s", code, err, out, errs)
	}
	if got := st.Chain; got.Batches != 3 || len(got.Breaks) != 1 || got.Breaks[0].Kind != "gap" || got.Breaks[0].From != 20 || got.Breaks[0].To != 22 {
		t.Errorf("status --chain --json: %+v", got)
	}
	if code, out, _ = runCLI("status", "-c", file); code != 0 || strings.Contains(out, "\nchain:") {
		t.Errorf("status without --chain: exit %d\n%s", code, out)
	}
}

// TestStatusChainCountsTheShownPartitions: with --topic, status --chain
// checks and counts the committed batches of the partitions it shows, not
// those of every partition of the pipeline.
func TestStatusChainCountsTheShownPartitions(t *testing.T) {
	ctx := context.Background()
	b := testenv.StartBroker(t, 1, "t.shown", "t.hidden")
	dir := t.TempDir()
	file := filepath.Join(dir, "chain.yaml")
	y := fmt.Sprintf("pipeline: chain\nsource: {brokers: [%s]}\nsink: {driver: sqlite, dsn: '%s'}\ntables:\n  - {topics: '^t[.](shown|hidden)$', table: items, key: [id]}\n",
		b.Addr, filepath.Join(dir, "sink.db"))
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
	now := time.Now().UTC()
	rows := map[string][][2]int64{
		"t.shown":  {{0, 10}, {10, 20}},
		"t.hidden": {{0, 5}, {5, 10}, {10, 15}, {20, 25}}, // a gap at 15..19
	}
	i := 0
	for topic, ranges := range rows {
		if _, err := sink.SeedOffset(ctx, exactly.TP{Topic: topic}, 0); err != nil {
			t.Fatal(err)
		}
		for _, r := range ranges {
			i++
			if _, err := sink.DB().Exec(`INSERT INTO exactly_batches (batch_id, pipeline, topic, "partition", from_offset, to_offset,
				records, upserted, deleted, skipped, dead_lettered, hash, status, writer, started_at, committed_at)
				VALUES (?, 'chain', ?, 0, ?, ?, 0, 0, 0, 0, 0, 'h', 'committed', 'w', ?, ?)`,
				fmt.Sprintf("b%d", i), topic, r[0], r[1], now, now); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := sink.DB().Exec(`UPDATE exactly_offsets SET next_offset = ? WHERE pipeline = 'chain' AND topic = ?`, ranges[len(ranges)-1][1], topic); err != nil {
			t.Fatal(err)
		}
	}

	code, out, errs := runCLI("status", "-c", file, "--chain", "--topic", "t.shown")
	if code != 0 || !strings.Contains(out, "chain: unbroken: 2 committed batches") {
		t.Errorf("status --chain --topic t.shown: exit %d, want 2 committed batches of t.shown[0] and no break\n%s%s", code, out, errs)
	}
	code, out, errs = runCLI("status", "-c", file, "--chain", "--topic", "t.shown", "--json")
	var st struct {
		Chain status.Chain `json:"chain"`
	}
	if err := json.Unmarshal([]byte(out), &st); code != 0 || err != nil {
		t.Fatalf("status --chain --json: exit %d, %v\n%s%s", code, err, out, errs)
	}
	if got := st.Chain; got.Batches != 2 || len(got.Breaks) != 0 {
		t.Errorf("status --chain --topic t.shown --json: %+v, want 2 committed batches, no break", got)
	}
	if code, out, errs = runCLI("status", "-c", file, "--chain"); code != 0 || !strings.Contains(out, "chain: 1 break(s) in 6 committed batches") {
		t.Errorf("status --chain: exit %d, want the gap of t.hidden[0] in 6 committed batches\n%s%s", code, out, errs)
	}
}
