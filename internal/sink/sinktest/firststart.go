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

// testPositions: the leader epoch of the last applied record is stored
// with next_offset (a batch whose records carry none keeps it), a topic id
// is recorded once, and a reseed moves next_offset with a ledger row of
// status reseeded (who, why, from, to) in one transaction, clearing the
// epoch and replacing the topic id.
func testPositions(t *testing.T, tg Target) {
	ctx := context.Background()
	e := newEnv(t, tg)
	table := uniq("pos")
	e.table(table, itemCols(tg.Types), []string{"id"})
	e.rule("t.pos", table, "    key: [id]\n")
	s := e.sink()
	tp := tpOf("t.pos", 0)
	if _, err := s.SeedOffset(ctx, tp, 0); err != nil {
		t.Fatal(err)
	}
	r := e.up(0, item(1, "a"))
	r.Topic, r.Partition, r.LeaderEpoch = tp.Topic, tp.Partition, 7
	out := s.Commit(ctx, []*exactly.PartitionBatch{{Topic: tp.Topic, Partition: tp.Partition, From: 0, Records: []*exactly.Record{r}, Epochs: true}})
	if len(out) != 1 || !out[0].Committed {
		t.Fatalf("commit: %+v", out)
	}
	pos, err := s.LoadPositions(ctx, []exactly.TP{tp})
	if err != nil {
		t.Fatal(err)
	}
	if p := pos[tp]; p.Next != 1 || p.Epoch != 7 || p.TopicID != "" {
		t.Errorf("position after a batch in epoch 7: %+v; want next 1, epoch 7, no topic id", p)
	}
	if err := s.RecordTopicID(ctx, tp, "AAAAAAAAAAAAAAAAAAAAAA=="); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordTopicID(ctx, tp, "BBBBBBBBBBBBBBBBBBBBBB=="); err != nil {
		t.Fatal(err)
	}
	r2 := e.up(1, item(2, "b"))
	r2.Topic, r2.Partition = tp.Topic, tp.Partition
	if out := e.commit(s, tp.Topic, tp.Partition, 1, r2); !out.Committed {
		t.Fatalf("commit without epochs: %v", out.Err)
	}
	pos, err = s.LoadPositions(ctx, []exactly.TP{tp})
	if err != nil {
		t.Fatal(err)
	}
	if p := pos[tp]; p.Next != 2 || p.Epoch != 7 || p.TopicID != "AAAAAAAAAAAAAAAAAAAAAA==" {
		t.Errorf("position: %+v; want next 2, epoch 7 kept, the first topic id recorded", p)
	}

	from, id, err := s.Reseed(ctx, exactly.Reseed{TP: tp, To: 0, TopicID: "CCCCCCCCCCCCCCCCCCCCCC==", Who: "ops@host", Why: "topic recreated"})
	if err != nil {
		t.Fatal(err)
	}
	if from != 2 || id == "" {
		t.Errorf("reseed returned from %d, id %q; want from 2 and a batch id", from, id)
	}
	pos, err = s.LoadPositions(ctx, []exactly.TP{tp})
	if err != nil {
		t.Fatal(err)
	}
	if p := pos[tp]; p.Next != 0 || p.Epoch != -1 || p.TopicID != "CCCCCCCCCCCCCCCCCCCCCC==" {
		t.Errorf("position after the reseed: %+v; want next 0, no epoch, the new topic id", p)
	}
	rows, err := exactly.NewLedger(e.db, e.d, e.pipeline).Batches(ctx, tp)
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, b := range rows {
		if b.Status == exactly.StatusReseeded {
			found = true
			if b.BatchID != id || b.From != 2 || b.To != 0 || b.Writer != "ops@host" || b.Records != 0 {
				t.Errorf("reseeded row %+v; want %s from 2 to 0 by ops@host", b, id)
			}
		}
	}
	if !found {
		t.Errorf("no reseeded ledger row among %d", len(rows))
	}
	if _, _, err := s.Reseed(ctx, exactly.Reseed{TP: tpOf("t.pos", 9), To: 0, Who: "ops@host", Why: "x"}); err == nil {
		t.Errorf("reseeding a partition without an offsets row succeeded")
	}
}
