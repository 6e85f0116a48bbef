package exactly_test

import (
	"testing"

	"github.com/exactly/exactly"
)

// TestChainRule: one partition's committed rows, fed in from_offset order,
// and the breaks the chain rule finds in them.
func TestChainRule(t *testing.T) {
	tp := exactly.TP{Topic: "t", Partition: 0}
	row := func(id string, from, to int64) *exactly.BatchRow {
		return &exactly.BatchRow{BatchID: id, Topic: "t", From: from, To: to, Status: exactly.StatusCommitted}
	}
	for _, c := range []struct {
		name  string
		chain *exactly.Chain
		rows  []*exactly.BatchRow
		next  int64
		want  []string
	}{
		{"unbroken", exactly.NewChain(tp, nil), []*exactly.BatchRow{row("a", 5, 10), row("b", 10, 12)}, 12, nil},
		{"gap, overlap and next_offset", exactly.NewChain(tp, nil),
			[]*exactly.BatchRow{row("a", 0, 10), row("b", 12, 20), row("c", 15, 20)}, 21,
			[]string{"gap: offsets 10..11 are in no committed batch",
				"overlap: a batch starts at 15 but the previous one ended at 20 (offsets applied twice?)",
				"next_offset is 21 but the last committed batch ends at 20"}},
		{"restarted by a reseed", exactly.NewChain(tp, &exactly.BatchRow{BatchID: "r", From: 20, To: 100, Status: exactly.StatusReseeded}),
			[]*exactly.BatchRow{row("a", 100, 110), row("b", 112, 120)}, 120,
			[]string{"gap: offsets 110..111 are in no committed batch"}},
		{"read from the beginning", exactly.NewChainFrom(tp, 0), []*exactly.BatchRow{row("a", 3, 10)}, 10,
			[]string{"gap: offsets 0..2 are in no committed batch"}},
		{"nothing committed", exactly.NewChainFrom(tp, 0), nil, 4,
			[]string{"next_offset is 4 but the last committed batch ends at 0"}},
	} {
		var got []string
		for _, r := range c.rows {
			if brk, ok := c.chain.Add(r); ok {
				got = append(got, brk.Problem())
			}
		}
		if brk, ok := c.chain.Close(c.next); ok {
			got = append(got, brk.Problem())
		}
		if len(got) != len(c.want) {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
			continue
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("%s: break %d is %q, want %q", c.name, i, got[i], c.want[i])
			}
		}
	}
}
