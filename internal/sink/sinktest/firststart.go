package sinktest

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/exactly/exactly"
)

// testFirstStart: the pipeline's first start is recorded once, with the
// offsets rows of the partitions that existed then in the same
// transaction; a second instance's record changes nothing; a ledger that
// already had offsets rows (a version without exactly_pipelines) is
// recorded without seeding.
func testFirstStart(t *testing.T, tg Target) {
	ctx := context.Background()
	e := newEnv(t, tg)
	e.rule("t.first", uniq("unused"), "    key: [id]\n")
	s := e.sink()
	if row, err := s.FirstStart(ctx); err != nil || row != nil {
		t.Fatalf("first start of a new pipeline: %+v, %v; want none", row, err)
	}
	tps := []exactly.TP{tpOf("t.first", 0), tpOf("t.first", 1)}
	row, err := s.RecordFirstStart(ctx, "latest", map[exactly.TP]int64{tps[0]: 10, tps[1]: 20})
	if err != nil {
		t.Fatal(err)
	}
	if row.StartFrom != "latest" || row.StartedAt.IsZero() || row.Notes != "" {
		t.Errorf("recorded %+v; want start_from latest, a time, no notes", row)
	}
	again, err := e.sink().RecordFirstStart(ctx, "earliest", map[exactly.TP]int64{tps[0]: 0, tps[1]: 0, tpOf("t.first", 2): 0})
	if err != nil {
		t.Fatalf("a second instance recording the first start: %v", err)
	}
	if again.StartFrom != "latest" || !again.StartedAt.Equal(row.StartedAt) {
		t.Errorf("second record: %+v; want the first one kept (%+v)", again, row)
	}
	got, err := s.LoadOffsets(ctx, append(tps, tpOf("t.first", 2)))
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(map[exactly.TP]int64{tps[0]: 10, tps[1]: 20}) {
		t.Errorf("offsets after two records: %v; want the first start's seeds only", got)
	}

	// A ledger from before exactly_pipelines: offsets rows, no record.
	old := newEnv(t, tg)
	old.rule("t.old", uniq("unused"), "    key: [id]\n")
	os := old.sink()
	if _, err := os.SeedOffset(ctx, tpOf("t.old", 0), 42); err != nil {
		t.Fatal(err)
	}
	row, err = os.RecordFirstStart(ctx, "latest", map[exactly.TP]int64{tpOf("t.old", 0): 50, tpOf("t.old", 1): 50})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(row.Notes, "already had 1 offsets rows") {
		t.Errorf("notes of a first start recorded on an existing ledger: %q", row.Notes)
	}
	got, err = os.LoadOffsets(ctx, []exactly.TP{tpOf("t.old", 0), tpOf("t.old", 1)})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(map[exactly.TP]int64{tpOf("t.old", 0): 42}) {
		t.Errorf("offsets of an existing ledger after the record: %v; want only its own row", got)
	}
}
