package sinktest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/exactly/exactly"
)

// testPrune: exactly prune on this database. A dry run counts and
// changes nothing; a run limited to one partition touches only it; the
// run over all, in transactions of two rows, leaves per partition its
// newest committed row and one marker standing for the rest (range,
// records), and the chains (status --chain's rule) are unbroken from the
// markers to next_offset.
func testPrune(t *testing.T, tg Target) {
	e := newEnv(t, tg)
	table := uniq("prune")
	e.table(table, itemCols(tg.Types), []string{"id"})
	e.rule("t.items", table, "    key: [id]\n")
	s := e.sink()
	ctx := context.Background()
	batches := map[int32]int{0: 6, 1: 3}
	for p, n := range batches {
		if _, err := s.SeedOffset(ctx, tpOf("t.items", p), 0); err != nil {
			t.Fatal(err)
		}
		for i := range n {
			off := int64(2 * i)
			e.mustCommit(s, "t.items", p, off, e.up(off, item(off, "a")), e.up(off+1, item(off+1, "b")))
		}
	}
	old := time.Now().UTC().Add(-72 * time.Hour)
	if _, err := e.db.Exec(e.q("UPDATE exactly_batches SET committed_at = ?, started_at = ? WHERE pipeline = ?"), old, old, e.pipeline); err != nil {
		t.Fatal(err)
	}
	all := "SELECT COUNT(*) FROM exactly_batches WHERE pipeline = ?"
	cut := time.Now().Add(-24 * time.Hour)
	res, err := s.Prune(ctx, exactly.Prune{Before: cut, Chunk: 2, Who: "conformance"})
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(pruned(res)); got != "map[0:5 1:2]" {
		t.Errorf("dry run: %s, want map[0:5 1:2]", got)
	}
	if n := e.count(all, e.pipeline); n != 9 {
		t.Fatalf("the dry run changed the ledger: %d rows, want 9", n)
	}
	res, err = s.Prune(ctx, exactly.Prune{Before: cut, Chunk: 2, Apply: true, Who: "conformance",
		Select: func(tp exactly.TP) bool { return tp.Partition == 1 }})
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(pruned(res)); got != "map[1:2]" {
		t.Errorf("prune of partition 1: %s, want map[1:2]", got)
	}
	if _, err := s.Prune(ctx, exactly.Prune{Before: cut, Chunk: 2, Apply: true, Who: "conformance"}); err != nil {
		t.Fatal(err)
	}
	if n := e.count(all+" AND status = 'committed'", e.pipeline); n != 2 {
		t.Errorf("%d committed rows left, want 2 (the newest of each partition)", n)
	}
	l := exactly.NewLedger(e.db, e.d, e.pipeline)
	ms, err := l.Markers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[int32]string{}
	for _, m := range ms {
		got[m.Partition] = fmt.Sprintf("%d..%d %d records by %s", m.From, m.To, m.Records, m.Writer)
	}
	if fmt.Sprint(got) != "map[0:0..10 10 records by conformance 1:0..4 4 records by conformance]" {
		t.Errorf("markers: %v", got)
	}
	offs, err := l.Offsets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	breaks, n, err := l.CheckChains(ctx, offs)
	if err != nil || len(breaks) != 0 || n != 2 {
		t.Errorf("chains after the prune: %v, %d committed rows followed, %v; want unbroken, 2", breaks, n, err)
	}
}

// pruned maps partitions to the ledger rows a prune deleted there.
func pruned(res []exactly.PrunedPartition) map[int32]int64 {
	out := map[int32]int64{}
	for _, r := range res {
		if r.Rows() > 0 {
			out[r.Partition] = r.Rows()
		}
	}
	return out
}
