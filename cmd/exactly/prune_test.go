package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/decode"
	"github.com/exactly/exactly/internal/kafka"
	"github.com/exactly/exactly/status"
)

// TestPruneCommand: usage errors exit 2; the dry run prints the plan and
// deletes nothing; --apply --json deletes and says what; verify --all is
// clean after it and status shows the marker and an unbroken chain; a row
// deleted after the marker makes the next prune stop (exit 1) and verify
// find it.
func TestPruneCommand(t *testing.T) {
	for _, driver := range []string{"sqlite", "postgres", "mysql"} {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			f := newAuditFixture(t, driver, 60, 10)
			old := time.Now().UTC().Add(-72 * time.Hour)
			f.exec(t, "UPDATE exactly_batches SET committed_at = ?, started_at = ?", old, old)

			for _, args := range [][]string{
				{"prune", "-c", f.file},
				{"prune", "-c", f.file, "--before", "soon"},
				{"prune", "-c", f.file, "--before", "2999-01-01"},
				{"prune", "-c", f.file, "--before", "1h", "--chunk", "0"},
				{"prune", "-c", f.file, "--before", "1h", "--topic", "nope.*"},
			} {
				if code, out, errs := runCLI(args...); code != 2 {
					t.Errorf("%v: exit %d, want 2\n%s%s", args, code, out, errs)
				}
			}
			count := func() int {
				var n int
				if err := f.db.QueryRow("SELECT COUNT(*) FROM exactly_batches").Scan(&n); err != nil {
					t.Fatal(err)
				}
				return n
			}
			code, out, errs := runCLI("prune", "-c", f.file, "--before", "24h")
			if code != 0 || !strings.Contains(out, "would prune t.items[0]: 5 ledger rows (5 committed, offsets 0..49, 50 records") ||
				!strings.Contains(out, "dry run: nothing was deleted") {
				t.Fatalf("dry run: exit %d\n%s%s", code, out, errs)
			}
			if n := count(); n != 6 {
				t.Fatalf("the dry run changed the ledger: %d rows, want 6", n)
			}

			code, out, errs = runCLI("prune", "-c", f.file, "--before", "24h", "--apply", "--chunk", "2", "--json", "--reason", "90 days")
			if code != 0 {
				t.Fatalf("prune --apply: exit %d\n%s%s", code, out, errs)
			}
			var rep pruneReport
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatalf("prune --json: %v\n%s", err, out)
			}
			if !rep.Applied || rep.Rows != 5 || len(rep.Partitions) != 1 || rep.Partitions[0].Committed != 5 ||
				rep.Partitions[0].ChainStart == nil || *rep.Partitions[0].ChainStart != 50 || rep.Partitions[0].Marker == "" || len(rep.Stopped) != 0 {
				t.Errorf("prune --json:\n%s", out)
			}
			if n := count(); n != 2 { // the newest row and the marker
				t.Errorf("%d ledger rows after the prune, want 2", n)
			}

			code, out, errs = runCLI("verify", "-c", f.file, "--all")
			if code != 0 || !strings.Contains(out, "pruned: 5 ledger rows (50 records)") || !strings.Contains(out, "note: pruned t.items[0] offsets 0..49") ||
				!strings.Contains(out, "90 days") {
				t.Errorf("verify --all after prune: exit %d\n%s%s", code, out, errs)
			}
			code, out, errs = runCLI("status", "-c", f.file, "--chain")
			if code != 0 || !strings.Contains(out, "t.items[0] offsets 0..49: 5 ledger rows (50 records)") || !strings.Contains(out, "chain: unbroken") ||
				!strings.Contains(out, "committed") {
				t.Errorf("status --chain after prune: exit %d\n%s%s", code, out, errs)
			}

			code, out, errs = runCLI("status", "-c", f.file, "--json")
			var st struct {
				Pruned []status.Pruned `json:"pruned"`
			}
			if err := json.Unmarshal([]byte(out), &st); code != 0 || err != nil || len(st.Pruned) != 1 ||
				st.Pruned[0].From != 0 || st.Pruned[0].To != 50 || st.Pruned[0].Rows != 5 || st.Pruned[0].Records != 50 || st.Pruned[0].Prunes != 1 {
				t.Errorf("status --json after prune: exit %d %v\n%s%s", code, err, out, errs)
			}

			// Someone deletes the first kept row: no prune runs past it,
			// verify finds it.
			f.produceMore(t, 10)
			f.commitMore(t, 60, 70)
			f.exec(t, "DELETE FROM exactly_batches WHERE batch_id = ?", f.batches[5].BatchID)
			f.exec(t, "UPDATE exactly_batches SET committed_at = ? WHERE status = 'committed'", old)
			code, out, errs = runCLI("prune", "-c", f.file, "--before", "24h", "--apply")
			if code != 1 || !strings.Contains(out, "STOPPED t.items[0]: gap: offsets 50..59") {
				t.Errorf("prune past a deleted row: exit %d, want 1\n%s%s", code, out, errs)
			}
			code, out, errs = runCLI("verify", "-c", f.file, "--all")
			if code != 1 || !strings.Contains(out, "FINDING gap t.items[0] offsets 50..59") {
				t.Errorf("verify after a row deleted behind the marker: exit %d, want 1\n%s%s", code, out, errs)
			}
		})
	}
}

// commitMore commits [from, to) of t.items[0] as one batch.
func (f *auditFixture) commitMore(t *testing.T, from, to int64) {
	t.Helper()
	ctx := context.Background()
	cfg, err := exactly.LoadConfig(f.file)
	if err != nil {
		t.Fatal(err)
	}
	kr, err := kafka.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer kr.Close()
	var recs []*exactly.Record
	if err := kr.Read(ctx, exactly.TP{Topic: "t.items"}, from, to, func(r *exactly.Record) error {
		recs = append(recs, r)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	b := &exactly.PartitionBatch{Topic: "t.items", From: from, Records: recs}
	for _, o := range f.sink.Commit(ctx, []*exactly.PartitionBatch{b}) {
		if !o.Committed {
			t.Fatal(o.Err)
		}
	}
	f.batches = append(f.batches, b)
}

// TestPruneBesideARunningPipeline: exactly prune --apply (1200 rows, 6 transactions) runs while the
// pipeline (the consumer group member exactly run starts, on kfake) keeps
// committing small batches of records produced meanwhile. Nothing is lost
// (next_offset reaches every record, verify --all clean: the chain runs
// from the marker through the rows the pipeline committed during the
// prune), and the pipeline is not held up: no gap between its commits
// while the prune runs exceeds maxStall.
func TestPruneBesideARunningPipeline(t *testing.T) {
	const maxStall = 2 * time.Second
	for _, driver := range []string{"sqlite", "postgres", "mysql"} {
		t.Run(driver, func(t *testing.T) {
			f := newAuditFixture(t, driver, 1200, 1) // 1200 ledger rows
			old := time.Now().UTC().Add(-72 * time.Hour)
			f.exec(t, "UPDATE exactly_batches SET committed_at = ?, started_at = ?", old, old)
			cfg, err := exactly.LoadConfig(f.file)
			if err != nil {
				t.Fatal(err)
			}
			cfg.Batch.Interval = exactly.Duration(20 * time.Millisecond)
			cfg.Batch.MaxRecords = 5
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
			defer func() {
				cancel()
				if err := <-ran; err != nil {
					t.Error(err)
				}
			}()
			// The producer: a record every 5 ms until the prune is done.
			stopProducing := make(chan struct{})
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stopProducing:
						return
					case <-time.After(5 * time.Millisecond):
						f.produceMore(t, 1)
					}
				}
			}()
			waitNext := func(want int64) {
				t.Helper()
				deadline := time.Now().Add(60 * time.Second)
				for {
					var n int64
					if err := f.db.QueryRow("SELECT next_offset FROM exactly_offsets").Scan(&n); err != nil {
						t.Fatal(err)
					}
					if n >= want {
						return
					}
					if time.Now().After(deadline) {
						t.Fatalf("next_offset %d, want %d: the pipeline stalled", n, want)
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
			waitNext(1220) // running
			began := time.Now()
			code, out, errs := runCLI("prune", "-c", f.file, "--before", "24h", "--apply", "--chunk", "200")
			took := time.Since(began)
			close(stopProducing)
			wg.Wait()
			if code != 0 || !strings.Contains(out, "pruned t.items[0]: 1200 ledger rows") {
				t.Fatalf("prune beside the pipeline: exit %d\n%s%s", code, out, errs)
			}
			waitNext(int64(f.produced))
			// The pipeline's commits during the prune, in order: the
			// longest wait between two of them.
			rows, err := f.db.Query(exactly.Rebind(f.d, "SELECT committed_at FROM exactly_batches WHERE status = 'committed' ORDER BY from_offset"))
			if err != nil {
				t.Fatal(err)
			}
			var during, before time.Duration // the longest gap while the prune ran, and in as long before it
			var prev time.Time
			n := 0
			for rows.Next() {
				var at any
				if err := rows.Scan(&at); err != nil {
					t.Fatal(err)
				}
				c := asTestTime(at)
				switch {
				case !c.Before(began) && !c.After(began.Add(took)):
					n++
					if !prev.IsZero() {
						during = max(during, c.Sub(prev))
					}
				case !c.Before(began.Add(-took)) && c.Before(began) && !prev.IsZero() && !prev.Before(began.Add(-took)):
					before = max(before, c.Sub(prev))
				}
				if c.After(old) {
					prev = c
				}
			}
			rows.Close()
			t.Logf("%s: pruned 1200 rows in %s beside the pipeline; %d pipeline commits meanwhile, longest gap between two %s (%s in as long before the prune)", driver, took, n, during, before)
			if n < 2 || during > maxStall {
				t.Errorf("the pipeline committed %d batches during the %s prune, longest gap %s: want it running, no gap above %s", n, took, during, maxStall)
			}
			cancel()
			if err := <-ran; err != nil {
				t.Error(err)
			}
			ran <- nil
			code, out, errs = runCLI("verify", "-c", f.file, "--all")
			if code != 0 {
				t.Errorf("verify --all after the prune beside the pipeline: exit %d\n%s%s", code, out, errs)
			}
		})
	}
}

// asTestTime reads a scanned timestamp (SQLite gives text).
func asTestTime(v any) time.Time {
	switch t := v.(type) {
	case time.Time:
		return t
	case string:
		for _, l := range []string{"2006-01-02 15:04:05.999999999-07:00", time.RFC3339Nano} {
			if p, err := time.Parse(l, t); err == nil {
				return p
			}
		}
	}
	return time.Time{}
}
