package exactly_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/exactly/exactly"
)

// TestATableRecreatedWithOtherTypesTakesItsRecords: an operator drops a
// table while the pipeline runs and creates it again with a text column
// where it had an integer. A record whose text fits the new column was a
// dead letter ("column a integer: not an integer") from the description
// cached before, for good: the flight committed, so the cache was never
// forgotten (on the binary, PostgreSQL without create or evolve). A
// refusal is now checked against the table described again.
func TestATableRecreatedWithOtherTypesTakesItsRecords(t *testing.T) {
	for _, c := range ddlCases() {
		for _, evolve := range []string{"", ", evolve: add_columns", ", evolve: widen"} {
			t.Run(c.name+evolve, func(t *testing.T) {
				table := uniq("recreated")
				cfg := ddlConfig(t, c, "  - {topics: t.re, table: "+table+", key: [id]"+evolve+"}\n")
				s := ddlSink(t, c, cfg)
				q := c.d.Quote
				integer, text := "INTEGER", "TEXT"
				if c.name == "mariadb" {
					text = "VARCHAR(20)"
				}
				create := func(typ string) {
					if _, err := s.DB().Exec(fmt.Sprintf("CREATE TABLE %s (%s BIGINT NOT NULL PRIMARY KEY, %s %s)", q(table), q("id"), q("a"), typ)); err != nil {
						t.Fatal(err)
					}
				}
				create(integer)
				if _, err := s.SeedOffset(context.Background(), exactly.TP{Topic: "t.re"}, 0); err != nil {
					t.Fatal(err)
				}
				commit := func(from int64, v string) exactly.Outcome {
					b := &exactly.PartitionBatch{Topic: "t.re", From: from, Records: records("t.re", from, v)}
					out := s.Commit(context.Background(), []*exactly.PartitionBatch{b})
					if len(out) != 1 || !out[0].Committed {
						t.Fatalf("batch at %d did not commit: %v", from, out[0].Err)
					}
					return out[0]
				}
				commit(0, `{"id":1,"a":5}`)
				if _, err := s.DB().Exec("DROP TABLE " + q(table)); err != nil {
					t.Fatal(err)
				}
				create(text)
				if out := commit(1, `{"id":2,"a":"abc"}`); len(out.Batch.DeadLetters) != 0 {
					t.Fatalf("dead-lettered: %v", out.Batch.DeadLetters[0].Err)
				}
				var a string
				if err := s.DB().QueryRow(fmt.Sprintf("SELECT %s FROM %s WHERE %s = 2", q("a"), q(table), q("id"))).Scan(&a); err != nil || a != "abc" {
					t.Fatalf("row 2: a = %q, %v", a, err)
				}
			})
		}
	}
}
