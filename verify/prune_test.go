package verify_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/verify"
)

// pruneDrivers are the four sinks; SQL Server runs where
// EXACTLY_TEST_SQLSERVER_DSN names one (always under CI=true).
var pruneDrivers = []string{"sqlite", "postgres", "mysql", "sqlserver"}

// age moves the committed_at and started_at of the env's first n batches
// back by d: rows a prune with a cut of now-d/2 takes.
func (e *env) age(n int, d time.Duration) {
	e.t.Helper()
	at := time.Now().UTC().Add(-d)
	for _, b := range e.batches[:n] {
		e.exec("UPDATE exactly_batches SET committed_at = ?, started_at = ? WHERE batch_id = ?", at, at, b.BatchID)
	}
}

func (e *env) prune(chunk int) []exactly.PrunedPartition {
	e.t.Helper()
	res, err := e.sink.Prune(context.Background(), exactly.Prune{Before: time.Now().Add(-time.Hour), Chunk: chunk, Apply: true, Who: "ann@h", Why: "test retention"})
	if err != nil {
		e.t.Fatal(err)
	}
	return res
}

func (e *env) marker() exactly.BatchRow {
	e.t.Helper()
	ms, err := exactly.NewLedger(e.db, e.d, "audit").Markers(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	if len(ms) != 1 {
		e.t.Fatalf("%d pruned markers, want 1: %+v", len(ms), ms)
	}
	return ms[0]
}

func (e *env) rowCount(q string, args ...any) int64 {
	e.t.Helper()
	var n int64
	if err := e.db.QueryRow(exactly.Rebind(e.d, q), args...).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// TestVerifyAfterPruneIsClean: batches 0..29 committed two days ago are
// pruned in transactions of two rows; the marker stands for them (range,
// records, a digest of their hashes) and verify starts the chain there:
// clean, the pruned range noted and counted, the kept ranges re-read. A
// second prune extends the same marker (never the newest row).
func TestVerifyAfterPruneIsClean(t *testing.T) {
	for _, driver := range pruneDrivers {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, driver, 50, 10)
			e.age(3, 48*time.Hour)
			first := make([]exactly.BatchRow, 0, 5)
			rows, err := exactly.NewLedger(e.db, e.d, "audit").Batches(context.Background(), exactly.TP{Topic: topic})
			if err != nil {
				t.Fatal(err)
			}
			first = append(first, rows...)
			res := e.prune(2)
			if len(res) != 1 || res[0].Committed != 3 || res[0].Records != 30 || res[0].From != 0 || res[0].To != 30 || res[0].Stopped != "" {
				t.Fatalf("prune: %+v, want 3 committed rows 0..29 (30 records)", res)
			}
			m := e.marker()
			if m.From != 0 || m.To != 30 || m.Records != 30 || m.Writer != "ann@h" || m.Hash != exactly.PruneDigest("", first[:3]) {
				t.Errorf("marker %+v: want 0..30, 30 records, by ann@h, hash the digest of the pruned rows", m)
			}
			if n := e.rowCount("SELECT COUNT(*) FROM exactly_batches WHERE status = 'committed'"); n != 2 {
				t.Errorf("%d committed rows left, want 2", n)
			}
			rep := e.verify()
			want(t, rep)
			if rep.PrunedRows != 3 || rep.PrunedRecords != 30 || rep.Rehashed != 2 {
				t.Errorf("pruned %d rows / %d records, rehashed %d: want 3 / 30 / 2", rep.PrunedRows, rep.PrunedRecords, rep.Rehashed)
			}
			if len(rep.Notes) != 1 || rep.Notes[0].Kind != verify.Pruned || rep.Notes[0].From != 0 || rep.Notes[0].To != 30 ||
				!strings.Contains(rep.Notes[0].Detail, "ann@h") || !strings.Contains(rep.Notes[0].Detail, "test retention") {
				t.Errorf("notes %+v: want one pruned 0..30 by ann@h, reason test retention", rep.Notes)
			}

			// All rows old: the newest committed row stays; the marker grows.
			e.age(5, 48*time.Hour)
			res = e.prune(10000)
			if res[0].Committed != 1 || res[0].From != 30 || res[0].To != 40 {
				t.Fatalf("second prune: %+v, want the row 30..39 only (never the newest)", res)
			}
			m = e.marker()
			notes, err := exactly.ParsePruneNotes(m.Notes)
			if err != nil {
				t.Fatal(err)
			}
			if m.From != 0 || m.To != 40 || m.Records != 40 || notes.Committed != 4 || notes.Prunes != 2 ||
				m.Hash != exactly.PruneDigest("", first[:4]) || m.Hash != exactly.PruneDigest(exactly.PruneDigest("", first[:3]), first[3:4]) {
				t.Errorf("marker %+v notes %+v: want 0..40, 40 records, 4 rows in 2 prunes, the chained digest", m, notes)
			}
			rep = e.verify()
			want(t, rep)
			if rep.PrunedRows != 4 {
				t.Errorf("pruned rows %d, want 4", rep.PrunedRows)
			}
			// Nothing more to prune: a third run changes nothing.
			if res = e.prune(10000); res[0].Rows() != 0 || e.marker().BatchID != m.BatchID {
				t.Errorf("third prune: %+v; the marker changed", res)
			}
		})
	}
}

// TestVerifyFindsTamperingAfterPrune: a pruned ledger still shows rows
// deleted by someone else (a kept row, rows without a marker), a row put
// back inside the pruned range, and an altered marker.
func TestVerifyFindsTamperingAfterPrune(t *testing.T) {
	cases := []struct {
		name   string
		tamper func(e *env)
		want   []verify.Finding
	}{
		{"deleted first kept row is a gap after the marker", func(e *env) {
			e.exec("DELETE FROM exactly_batches WHERE batch_id = ?", e.batches[3].BatchID)
		}, []verify.Finding{{Kind: verify.Gap, From: 30, To: 40}}},
		{"rows deleted without marker are a gap", func(e *env) {
			e.exec("DELETE FROM exactly_batches WHERE batch_id IN (?, ?)", e.batches[4].BatchID, e.batches[5].BatchID)
		}, []verify.Finding{{Kind: verify.Gap, From: 40, To: 60}}},
		{"deleted newest row leaves next_offset ahead", func(e *env) {
			e.exec("DELETE FROM exactly_batches WHERE batch_id = ?", e.batches[6].BatchID)
		}, []verify.Finding{{Kind: verify.NextOffsetMismatch, From: 60, To: 70}}},
		{"marker moved back is a gap", func(e *env) {
			e.exec("UPDATE exactly_batches SET to_offset = 20 WHERE status = 'pruned'")
		}, []verify.Finding{{Kind: verify.Gap, From: 20, To: 30}}},
		{"marker moved on is an overlap", func(e *env) {
			e.exec("UPDATE exactly_batches SET to_offset = 40 WHERE status = 'pruned'")
		}, []verify.Finding{{Kind: verify.Overlap, From: 30, To: 40}}},
		// The marker altered in place: verify said clean (and, for the
		// notes, dropped the marker's rows from its totals).
		{"marker notes that do not parse", func(e *env) {
			e.exec("UPDATE exactly_batches SET notes = 'x' WHERE status = 'pruned'")
		}, []verify.Finding{{Kind: verify.AlteredMarker, From: 0, To: 30}}},
		{"marker records edited", func(e *env) {
			e.exec("UPDATE exactly_batches SET records = 1 WHERE status = 'pruned'")
		}, []verify.Finding{{Kind: verify.AlteredMarker, From: 0, To: 30}}},
		{"marker notes' records edited", func(e *env) {
			e.exec("UPDATE exactly_batches SET notes = REPLACE(notes, '\"records\":30', '\"records\":3') WHERE status = 'pruned'")
		}, []verify.Finding{{Kind: verify.AlteredMarker, From: 0, To: 30}}},
		{"marker hash edited", func(e *env) {
			e.exec("UPDATE exactly_batches SET hash = 'sha256:00' WHERE status = 'pruned'")
		}, []verify.Finding{{Kind: verify.AlteredMarker, From: 0, To: 30}}},
		{"a second marker", func(e *env) {
			e.exec(`INSERT INTO exactly_batches (batch_id, pipeline, topic, "partition", from_offset, to_offset, min_offset, max_offset,
				records, upserted, deleted, skipped, dead_lettered, hash, status, error, writer, started_at, committed_at, notes)
				SELECT 'zzzz', pipeline, topic, "partition", from_offset, to_offset, min_offset, max_offset,
				records, upserted, deleted, skipped, dead_lettered, hash, status, error, writer, started_at, committed_at, notes
				FROM exactly_batches WHERE status = 'pruned'`)
		}, []verify.Finding{{Kind: verify.AlteredMarker, From: 0, To: 30}}},
	}
	for _, driver := range pruneDrivers {
		for _, c := range cases {
			t.Run(driver+"/"+c.name, func(t *testing.T) {
				t.Parallel()
				e := newEnv(t, driver, 70, 10)
				e.age(3, 48*time.Hour)
				e.prune(10000)
				if rep := e.verify(); !rep.Clean() {
					t.Fatalf("before tampering: %+v", rep.Findings)
				}
				c.tamper(e)
				rep := e.verify()
				want(t, rep, c.want...)
				if rep.PrunedRows != 3 && c.want[0].Kind == verify.AlteredMarker && !strings.Contains(c.name, "parse") {
					t.Errorf("pruned rows %d, want the 3 of the marker the chain starts at", rep.PrunedRows)
				}
			})
		}
	}
}

// TestVerifyGapAfterMarkerOutsideWindow: a row deleted right after the
// marker is found by the default window (24h) too, though the rows around
// it are older than the window.
func TestVerifyGapAfterMarkerOutsideWindow(t *testing.T) {
	e := newEnv(t, "sqlite", 70, 10)
	e.age(6, 48*time.Hour)
	e.age(4, 96*time.Hour)
	if _, err := e.sink.Prune(context.Background(), exactly.Prune{Before: time.Now().Add(-72 * time.Hour), Apply: true, Who: "ann@h"}); err != nil {
		t.Fatal(err)
	}
	if m := e.marker(); m.To != 40 {
		t.Fatalf("marker ends at %d, want 40", m.To)
	}
	e.exec("DELETE FROM exactly_batches WHERE batch_id = ?", e.batches[4].BatchID)
	rep, err := verify.Run(context.Background(), exactly.NewLedger(e.db, e.d, "audit"), e.reader, verify.Options{Since: time.Now().Add(-24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	want(t, rep, verify.Finding{Kind: verify.Gap, From: 40, To: 50})
}

// TestPruneLeavesFailedRowsOfKeptRangesAndOpenDeadLetters: failed rows go
// with the pruned range they lie in, not beyond it (one there is still
// failed_unresolved); dead letters go only with --dead-letters and only
// when resolved before the cut.
func TestPruneLeavesFailedRowsOfKeptRangesAndOpenDeadLetters(t *testing.T) {
	for _, driver := range pruneDrivers {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, driver, 50, 10)
			e.age(3, 48*time.Hour)
			old := time.Now().UTC().Add(-48 * time.Hour)
			ins := `INSERT INTO exactly_batches (batch_id, pipeline, topic, "partition", from_offset, to_offset, min_offset, max_offset,
				records, upserted, deleted, skipped, dead_lettered, hash, status, error, writer, started_at, committed_at)
				VALUES (?, 'audit', ?, 0, ?, ?, NULL, NULL, 0, 0, 0, 0, 0, '', 'failed', 'deadlock', 'test', ?, NULL)`
			e.exec(ins, "f-in", topic, 10, 20, old)    // inside the pruned range: goes
			e.exec(ins, "f-edge", topic, 20, 35, old)  // reaches past it: stays (covered by kept row 30..39)
			e.produce(5)                               // offsets 50..54, never applied
			e.exec(ins, "f-stuck", topic, 50, 55, old) // beyond next_offset: stays, a finding
			dl := `INSERT INTO exactly_dead_letters (pipeline, batch_id, topic, "partition", "offset", record_key, record_value, headers, error, created_at, resolved_at, resolved_by, resolved_batch)
				VALUES ('audit', 'b', ?, 0, ?, NULL, NULL, NULL, 'bad', ?, ?, ?, NULL)`
			e.exec(strings.ReplaceAll(dl, `"offset"`, e.d.Quote("offset")), topic, 3, old, old, "bob") // resolved long ago: goes
			open := strings.Replace(dl, "?, ?, NULL)", "NULL, NULL, NULL)", 1)
			e.exec(strings.ReplaceAll(open, `"offset"`, e.d.Quote("offset")), topic, 4, old) // open: stays
			e.exec(strings.ReplaceAll(dl, `"offset"`, e.d.Quote("offset")), topic, 5, old, time.Now().UTC(), "bob")
			res, err := e.sink.Prune(context.Background(), exactly.Prune{Before: time.Now().Add(-time.Hour), Apply: true, DeadLetters: true, Who: "ann@h"})
			if err != nil {
				t.Fatal(err)
			}
			if res[0].Committed != 3 || res[0].Failed != 1 || res[0].DeadLetters != 1 {
				t.Errorf("prune: %+v, want 3 committed, 1 failed, 1 dead letter", res[0])
			}
			if n := e.rowCount("SELECT COUNT(*) FROM exactly_batches WHERE status = 'failed'"); n != 2 {
				t.Errorf("%d failed rows left, want 2 (f-edge, f-stuck)", n)
			}
			if n := e.rowCount("SELECT COUNT(*) FROM exactly_dead_letters WHERE resolved_at IS NULL"); n != 1 {
				t.Errorf("%d open dead letters left, want 1", n)
			}
			if n := e.rowCount("SELECT COUNT(*) FROM exactly_dead_letters"); n != 2 {
				t.Errorf("%d dead letters left, want 2 (the open one, the one resolved after the cut)", n)
			}
			want(t, e.verify(), verify.Finding{Kind: verify.FailedUnresolved, From: 50, To: 55},
				verify.Finding{Kind: verify.DeadLetters, From: 4, To: 5})
		})
	}
}

// TestPruneStopsAtABreak: a gap in the prefix is never pruned away: the
// prune stops before it, says so, and verify still reports the gap.
func TestPruneStopsAtABreak(t *testing.T) {
	e := newEnv(t, "sqlite", 60, 10)
	e.age(5, 48*time.Hour)
	e.exec("DELETE FROM exactly_batches WHERE batch_id = ?", e.batches[2].BatchID)
	res := e.prune(10000)
	if res[0].Committed != 2 || res[0].To != 20 || !strings.Contains(res[0].Stopped, "gap") {
		t.Errorf("prune: %+v, want rows 0..19 and a stop at the gap", res[0])
	}
	want(t, e.verify(), verify.Finding{Kind: verify.Gap, From: 20, To: 30})
}

// TestConcurrentPrunesKeepTheChain: prunes racing on one ledger, one row
// per transaction: each transaction either commits a marker that follows
// the rows left or is refused (PruneMovedError); the ledger verifies clean.
func TestConcurrentPrunesKeepTheChain(t *testing.T) {
	for _, driver := range []string{"postgres", "mysql", "sqlserver"} {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, driver, 200, 5)
			e.age(len(e.batches), 48*time.Hour)
			var wg sync.WaitGroup
			errs := make([]error, 3)
			for i := range errs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, errs[i] = e.sink.Prune(context.Background(), exactly.Prune{Before: time.Now().Add(-time.Hour), Chunk: 3, Apply: true, Who: "racer"})
				}()
			}
			wg.Wait()
			for _, err := range errs {
				var moved *exactly.PruneMovedError
				if err != nil && !errors.As(err, &moved) {
					t.Errorf("concurrent prune: %v", err)
				}
			}
			e.prune(10000) // whatever was left
			m := e.marker()
			if m.From != 0 || m.To != 195 || m.Records != 195 {
				t.Errorf("marker %d..%d %d records, want 0..195, 195", m.From, m.To, m.Records)
			}
			rep := e.verify()
			want(t, rep)
			if rep.PrunedRecords != 195 {
				t.Errorf("pruned records %d, want 195", rep.PrunedRecords)
			}
		})
	}
}

// TestInterruptedPruneVerifiesClean: a prune stopped after its first
// transaction (SIGINT) leaves a marker and rows that verify clean, and
// the next run continues from that marker.
func TestInterruptedPruneVerifiesClean(t *testing.T) {
	for _, driver := range []string{"sqlite", "postgres"} {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, driver, 80, 10)
			e.age(7, 48*time.Hour)
			ctx, cancel := context.WithCancel(context.Background())
			_, err := e.sink.Prune(ctx, exactly.Prune{Before: time.Now().Add(-time.Hour), Chunk: 2, Apply: true, Who: "ann@h",
				Progress: func(exactly.TP, int64) { cancel() }})
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("interrupted prune: %v, want context.Canceled", err)
			}
			if m := e.marker(); m.To != 20 {
				t.Fatalf("marker ends at %d after one transaction of two rows, want 20", m.To)
			}
			want(t, e.verify())
			e.prune(2)
			if m := e.marker(); m.To != 70 || m.Records != 70 {
				t.Errorf("marker %d..%d, %d records after the second run; want 0..70, 70", m.From, m.To, m.Records)
			}
			want(t, e.verify())
		})
	}
}

// TestPruneStopsAtAnAlteredMarker: a marker whose notes do not parse is
// not extended (the partition is reported stopped), the others are pruned.
func TestPruneStopsAtAnAlteredMarker(t *testing.T) {
	e := newEnv(t, "sqlite", 60, 10)
	e.age(3, 48*time.Hour)
	e.prune(10000)
	e.exec("UPDATE exactly_batches SET notes = 'x' WHERE status = 'pruned'")
	e.age(5, 48*time.Hour)
	res, err := e.sink.Prune(context.Background(), exactly.Prune{Before: time.Now().Add(-time.Hour), Apply: true, DeadLetters: true, Who: "ann@h"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || res[0].Rows() != 0 || !strings.Contains(res[0].Stopped, "unreadable notes") {
		t.Errorf("prune over an altered marker: %+v", res)
	}
}

// TestPruneKeepsAGapAfterAReseed: the first row after a reseed deleted
// (a gap between the reseed's to_offset and the next committed row) is a
// break the prune must not run past: it stops there and verify still
// finds the gap. The prune started the chain at the first committed row
// after the reseed instead of at the reseed, pruned the rows after the
// gap, and verify, starting at the new marker, found nothing.
func TestPruneKeepsAGapAfterAReseed(t *testing.T) {
	e := newEnv(t, "sqlite", 50, 10)
	if _, _, err := e.sink.Reseed(context.Background(), exactly.Reseed{TP: exactly.TP{Topic: topic}, To: 20, Who: "ann@h", Why: "test"}); err != nil {
		t.Fatal(err)
	}
	e.commit(20, 50, 10) // batches 5, 6, 7: 20..29, 30..39, 40..49
	e.exec("DELETE FROM exactly_batches WHERE batch_id = ?", e.batches[5].BatchID)
	want(t, e.verify(), verify.Finding{Kind: verify.Gap, From: 20, To: 30})
	e.age(len(e.batches), 48*time.Hour)
	res := e.prune(10000)
	if len(res) != 1 || res[0].Rows() != 0 || !strings.Contains(res[0].Stopped, "gap") {
		t.Errorf("prune after a gap behind a reseed: %+v, want nothing pruned and a stop at the gap", res)
	}
	want(t, e.verify(), verify.Finding{Kind: verify.Gap, From: 20, To: 30})
}

// TestPruneBesideAnotherPruneIsNoBreak: a prune that read the marker
// before another prune replaced it finds the first row left past the
// marker it read: the ledger moved under it (PruneMovedError, "run
// again"), not a break of the chain. It reported the partition STOPPED
// at a "gap" (exit 1, "exactly verify reports it") where verify found
// nothing: seen with two prunes beside exactly run on MariaDB.
func TestPruneBesideAnotherPruneIsNoBreak(t *testing.T) {
	for _, driver := range pruneDrivers {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, driver, 70, 10)
			e.age(2, 48*time.Hour)
			e.prune(10000) // a marker 0..20
			e.age(6, 48*time.Hour)
			ctx := context.Background()
			res, err := e.sink.Prune(ctx, exactly.Prune{Before: time.Now().Add(-time.Hour), Apply: true, Who: "slow",
				Select: func(exactly.TP) bool {
					e.prune(2) // the other prune, after this one read the marker
					return true
				}})
			var moved *exactly.PruneMovedError
			if len(res) != 1 {
				t.Fatalf("%d partitions, want 1 (%v)", len(res), err)
			}
			if !errors.As(err, &moved) || res[0].Stopped != "" {
				t.Errorf("a prune whose marker another prune replaced: %d partitions, stopped %q, %v; want a PruneMovedError and no stop", len(res), res[0].Stopped, err)
			}
			want(t, e.verify())
		})
	}
}

// TestPruneHugeChunk: --chunk 9223372036854775807 (the flag takes an
// int64) is a chunk as large as the partition: the page query asked for
// chunk+1 rows, which overflowed to a negative LIMIT (PostgreSQL and
// MariaDB refused it, exit 1; SQLite read it as no limit).
func TestPruneHugeChunk(t *testing.T) {
	for _, driver := range pruneDrivers {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, driver, 50, 10)
			e.age(5, 48*time.Hour)
			if m := e.prune(math.MaxInt); m[0].Committed != 4 {
				t.Errorf("prune with the largest chunk: %d rows, want 4", m[0].Committed)
			}
			want(t, e.verify())
		})
	}
}

// pruneOnCompacted is the env's Kafka log that runs a prune the first
// time verify asks whether the topic is compacted: after verify read the
// markers, before it reads the partition's rows.
type pruneOnCompacted struct {
	verify.Log
	once  sync.Once
	prune func()
}

func (l *pruneOnCompacted) Compacted(ctx context.Context, topic string) (bool, error) {
	l.once.Do(l.prune)
	return l.Log.Compacted(ctx, topic)
}

// TestVerifyBesideAPrune: a prune that commits while verify runs (a
// daily prune and a scheduled verify overlap) leaves a ledger verify
// finds clean. Verify read the markers first and the rows after: the
// rows the prune had deleted meanwhile were a gap "Kafka still holds N
// records there that were never applied" (exit 1).
func TestVerifyBesideAPrune(t *testing.T) {
	for _, driver := range pruneDrivers {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, driver, 70, 10)
			e.age(2, 48*time.Hour)
			e.prune(10000) // a marker 0..20
			e.age(5, 48*time.Hour)
			log := &pruneOnCompacted{Log: e.reader, prune: func() { e.prune(10000) }}
			rep, err := verify.Run(context.Background(), exactly.NewLedger(e.db, e.d, "audit"), log, verify.Options{})
			if err != nil {
				t.Fatal(err)
			}
			want(t, rep)
			if m := e.marker(); m.To != 50 {
				t.Fatalf("the prune beside verify: marker ends at %d, want 50", m.To)
			}
			if rep.PrunedRows != 5 || rep.Rehashed != 2 {
				t.Errorf("pruned rows %d, rehashed %d: want 5 and 2, as of the ledger after the prune", rep.PrunedRows, rep.Rehashed)
			}
		})
	}
}

// TestChainBesideAPrune: status --chain and the status page
// (CheckChains) check the chain while a prune deletes rows one
// transaction at a time: never a break. They read the markers, then the
// rows: a prune committing between the two made the rows it deleted a
// gap after the marker read.
func TestChainBesideAPrune(t *testing.T) {
	for _, driver := range pruneDrivers {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, driver, 120, 2)
			e.age(len(e.batches), 48*time.Hour)
			l := exactly.NewLedger(e.db, e.d, "audit")
			offs, err := l.Offsets(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan struct{})
			go func() {
				defer close(done)
				if _, err := e.sink.Prune(context.Background(), exactly.Prune{Before: time.Now().Add(-time.Hour), Chunk: 1, Apply: true, Who: "ann@h"}); err != nil {
					t.Error(err)
				}
			}()
			checks := 0
			for running := true; running; checks++ {
				select {
				case <-done:
					running = false
				default:
				}
				breaks, _, err := l.CheckChains(context.Background(), offs)
				if err != nil || len(breaks) != 0 {
					<-done
					t.Fatalf("check %d beside a prune: %v %v, want the chain unbroken", checks, breaks, err)
				}
			}
			t.Logf("%d checks", checks)
		})
	}
}

// TestPruneAcrossAReseed: a marker before a reseed stays (with the rows
// before the reseed); a prune after it starts a new marker at the
// reseed's to_offset; verify is clean and counts the current marker only.
func TestPruneAcrossAReseed(t *testing.T) {
	e := newEnv(t, "sqlite", 70, 10)
	e.age(7, 48*time.Hour)
	e.prune(10000) // marker 0..60
	if _, _, err := e.sink.Reseed(context.Background(), exactly.Reseed{TP: exactly.TP{Topic: topic}, To: 30, Who: "ann@h", Why: "again"}); err != nil {
		t.Fatal(err)
	}
	e.commit(30, 70, 10)
	e.age(len(e.batches), 48*time.Hour)
	res := e.prune(10000)
	if len(res) != 1 || res[0].Committed != 3 || res[0].From != 30 || res[0].To != 60 || res[0].Stopped != "" {
		t.Fatalf("prune after a reseed: %+v (stopped %q), want 30..60", res, res[0].Stopped)
	}
	if n := e.rowCount("SELECT COUNT(*) FROM exactly_batches WHERE status = 'pruned'"); n != 2 {
		t.Errorf("%d markers, want 2 (one each side of the reseed)", n)
	}
	rep := e.verify()
	want(t, rep)
	if rep.PrunedRows != 3 {
		t.Errorf("pruned rows %d, want 3 (the marker after the reseed)", rep.PrunedRows)
	}
}
