package exactly_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/exactly/exactly"
)

// haltedAt commits one batch and requires it to have committed the
// records before offset, halted there, and left next_offset there.
func haltedAt(t *testing.T, s *exactly.Sink, b *exactly.PartitionBatch, offset int64) {
	t.Helper()
	out := s.Commit(context.Background(), []*exactly.PartitionBatch{b})
	var re *exactly.RecordError
	if len(out) != 1 || !errors.As(out[0].Err, &re) || re.Offset != offset {
		t.Fatalf("outcome: %+v, want a halt at offset %d", out, offset)
	}
	if offset > b.From && !out[0].Committed {
		t.Fatalf("the records before the halt did not commit: %v", out[0].Err)
	}
	tp := exactly.TP{Topic: b.Topic, Partition: b.Partition}
	off, err := s.LoadOffsets(context.Background(), []exactly.TP{tp})
	if err != nil {
		t.Fatal(err)
	}
	if off[tp] != offset {
		t.Errorf("next_offset: got %d, want %d (the halting record)", off[tp], offset)
	}
}

// Regression (issue 15.8): a record without a key was dead-lettered and
// next_offset moved past it although its rule said on_error: fail.
func TestOnErrorFailHaltsAtAMissingKey(t *testing.T) {
	for _, c := range refusingCases() {
		t.Run(c.name, func(t *testing.T) {
			s, table, pipeline := refusingSink(t, c, "fail")
			haltedAt(t, s, &exactly.PartitionBatch{Topic: "t.items", From: 0, Records: []*exactly.Record{
				{Topic: "t.items", Offset: 0, Key: []byte("1"), Value: []byte(`{"id":1,"name":"a","qty":1}`)},
				{Topic: "t.items", Offset: 1, Value: []byte(`{"name":"no key","qty":1}`)},
				{Topic: "t.items", Offset: 2, Key: []byte("2"), Value: []byte(`{"id":2,"name":"b","qty":2}`)},
			}}, 1)
			if got, want := qtyRows(t, s.DB(), table), "1:a:1"; got != want {
				t.Errorf("table: got %s, want %s", got, want)
			}
			if dl := deadLetters(t, s, pipeline); len(dl) != 0 {
				t.Errorf("on_error: fail wrote dead letters: %+v", dl)
			}
			// Halting at the first record: nothing commits, still halted.
			haltedAt(t, s, &exactly.PartitionBatch{Topic: "t.items", From: 1, Records: []*exactly.Record{
				{Topic: "t.items", Offset: 1, Value: []byte(`{"name":"no key","qty":1}`)},
			}}, 1)
		})
	}
}

// Regression (issue 15.8): a value the create/evolve pre-check finds in
// conflict with its column's type was dead-lettered although the rule
// said on_error: fail.
func TestOnErrorFailHaltsAtATypeConflict(t *testing.T) {
	for _, c := range ddlCases() {
		t.Run(c.name, func(t *testing.T) {
			table := uniq("stockfail")
			cfg := ddlConfig(t, c, "  - {topics: t.stock, table: "+table+", key: [id], create: true, evolve: add_columns, on_error: fail}\n")
			s := ddlSink(t, c, cfg)
			commit(t, s, &exactly.PartitionBatch{Topic: "t.stock", Records: records("t.stock", 0, `{"id":1,"qty":5}`)})
			haltedAt(t, s, &exactly.PartitionBatch{Topic: "t.stock", From: 1, Records: records("t.stock", 1,
				`{"id":2,"qty":7}`, `{"id":3,"qty":"lots"}`, `{"id":4,"qty":8}`)}, 2)
			var n int
			if err := s.DB().QueryRow(fmt.Sprintf("SELECT COUNT(*) FROM %s", table)).Scan(&n); err != nil || n != 2 {
				t.Errorf("rows: got %d (%v), want 2 (ids 1 and 2)", n, err)
			}
			var dl int
			s.DB().QueryRow(exactly.Rebind(s.Dialect(), "SELECT COUNT(*) FROM exactly_dead_letters WHERE pipeline = ?"), cfg.Pipeline).Scan(&dl)
			if dl != 0 {
				t.Errorf("dead letters: got %d, want none (on_error: fail)", dl)
			}
			haltedAt(t, s, &exactly.PartitionBatch{Topic: "t.stock", From: 2, Records: records("t.stock", 2,
				`{"id":3,"qty":"lots"}`, `{"id":4,"qty":8}`)}, 2)
		})
	}
}

// A merged row (two upserts of one key carrying different fields) that the
// database refuses is applied record by record: the record with the bad
// value is the dead letter, the other applies, as one by one.
func TestRefusedMergedRowIsAppliedOneByOne(t *testing.T) {
	for _, c := range refusingCases() {
		t.Run(c.name, func(t *testing.T) {
			s, table, pipeline := refusingSink(t, c, "dead_letter")
			b := commit(t, s, &exactly.PartitionBatch{Topic: "t.items", Records: []*exactly.Record{
				{Topic: "t.items", Offset: 0, Key: []byte("1"), Value: []byte(`{"id":1,"name":"a","qty":-1}`)},
				{Topic: "t.items", Offset: 1, Key: []byte("1"), Value: []byte(`{"id":1,"name":"b"}`)},
			}})
			if got, want := qtyRows(t, s.DB(), table), "1:b:0"; got != want {
				t.Errorf("table: got %s, want %s (the second record alone)", got, want)
			}
			if dl := deadLetters(t, s, pipeline); len(dl) != 1 || dl[0].offset != 0 {
				t.Errorf("dead letters: %+v, want the record at offset 0", dl)
			}
			if b.Upserted != 1 || b.Skipped != 0 || len(b.DeadLetters) != 1 {
				t.Errorf("counts: upserted %d skipped %d dead %d, want 1 0 1", b.Upserted, b.Skipped, len(b.DeadLetters))
			}
		})
	}
}
