package exactly

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestPlanIsTheSameWithShapes: rows that name their shape (a decoder's
// Change.Shape) plan into the same writes, rows, counts and dead letters
// as the same rows without one: a shape only spares walks of the maps.
// So do rows by position (Change.Values, the JSON decoder's): a row's
// form never changes what is written.
// Random batches of upserts of a few field lists (some in another order,
// one with a field the table lacks, one without the key, taken from the
// record key; others keyed by the record key or by their row), deletes
// and repeated keys (merges, deletes before upserts), in modes upsert,
// cdc and append, with and without a version.
func TestPlanIsTheSameWithShapes(t *testing.T) {
	table := &Table{Name: "t", Key: []string{"id"}, Columns: []Column{{Name: "id", Type: "bigint"},
		{Name: "a", Type: "bigint"}, {Name: "b", Type: "text"}, {Name: "v", Type: "bigint"}}}
	lists := [][]string{{"id", "a", "b", "v"}, {"id", "a", "v"}, {"a", "id", "b", "v"}, {"id", "b", "x", "v"}, {"a", "v"}, {"id", "v"}}
	shapes := make([]*Shape, len(lists)) // one per list, as decoders hand them out
	for i, l := range lists {
		shapes[i] = &Shape{Names: l}
	}
	for seed := range 300 {
		for _, mode := range []string{"upsert", "cdc", "append"} {
			for _, version := range []string{"", "v"} {
				rule := &TableRule{Mode: mode, Version: version, Key: []string{"id"}}
				plan := func(form string) string {
					rng := rand.New(rand.NewPCG(uint64(seed), 1))
					b := &PartitionBatch{Topic: "t"}
					n := 1 + rng.IntN(40)
					for i := range n {
						rec := &Record{Topic: "t", Offset: int64(i), Value: []byte("x")}
						id := int64(rng.IntN(6))
						ch := Change{Op: OpUpsert, Key: map[string]any{"id": id}}
						if rng.IntN(5) == 0 {
							ch.Op = OpDelete
						} else {
							l := rng.IntN(len(lists))
							ch.Row = map[string]any{}
							for _, f := range lists[l] {
								ch.Row[f] = rng.Int64N(4)
							}
							if _, ok := ch.Row["id"]; ok {
								ch.Row["id"] = id
								if rng.IntN(2) == 0 {
									ch.Key = nil // the key from the row
								}
							}
							if version != "" {
								ch.Version = ch.Row["v"]
							}
							switch form {
							case "shaped":
								ch.Shape = shapes[l]
							case "by position":
								ch.Shape = shapes[l]
								for _, f := range lists[l] {
									ch.Values = append(ch.Values, ch.Row[f])
								}
								ch.Row = nil
							}
						}
						b.changes = append(b.changes, change{rec: rec, rule: rule, table: "t", Change: ch})
					}
					s := &Sink{}
					writes, err := s.plan(context.Background(), nil, []*PartitionBatch{b}, map[string]*Table{"t": table})
					var out strings.Builder
					fmt.Fprintf(&out, "err %v; upserted %d deleted %d skipped %d dead %d\n", err, b.Upserted, b.Deleted, b.Skipped, len(b.DeadLetters))
					for _, w := range writes {
						fmt.Fprintf(&out, "part %d append %v keys %v columns %v version %q\n  upserts %v\n  deletes %v %v\n",
							w.Part, w.Append, w.Keys, w.Columns, w.Version, w.Upserts, w.Deletes, w.DeleteVersions)
					}
					return out.String()
				}
				without := plan("")
				for _, form := range []string{"shaped", "by position"} {
					if with := plan(form); with != without {
						t.Fatalf("seed %d, mode %s, version %q:\n%s:\n%s\nwithout shapes:\n%s", seed, mode, version, form, with, without)
					}
				}
			}
		}
	}
}

// TestWriteLeavesRowsAsDecoded: the key values written come from the
// item's key, not by writing them into the decoded row, whose fields
// (and so its shape) stay those the record carried: a row taken from the
// record key's id still has no id field after planning.
func TestWriteLeavesRowsAsDecoded(t *testing.T) {
	table := &Table{Name: "t", Key: []string{"id"}, Columns: []Column{{Name: "id", Type: "bigint"}, {Name: "a", Type: "bigint"}}}
	rule := &TableRule{Mode: "upsert", Key: []string{"id"}}
	row := map[string]any{"a": int64(1), "id": int64(9)}
	b := &PartitionBatch{Topic: "t", changes: []change{{rec: &Record{Topic: "t"}, rule: rule, table: "t",
		Change: Change{Op: OpUpsert, Key: map[string]any{"id": int64(7)}, Row: row, Shape: &Shape{Names: []string{"a", "id"}}}}}}
	writes, err := (&Sink{}).plan(context.Background(), nil, []*PartitionBatch{b}, map[string]*Table{"t": table})
	if err != nil || len(writes) != 1 {
		t.Fatalf("%v, %d writes", err, len(writes))
	}
	if got := fmt.Sprint(writes[0].Columns, writes[0].Upserts); got != "[id a] [[7 1]]" {
		t.Errorf("written %s, want [id a] [[7 1]] (the record key's id wins)", got)
	}
	if row["id"] != int64(9) || len(row) != 2 {
		t.Errorf("the decoded row became %v", row)
	}
}
