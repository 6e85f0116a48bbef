package exactly_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/exactly/exactly"
)

// TestFieldsDifferingOnlyInCaseDoNotStallCreate: a topic whose records
// carry "Name" in one and "name" in another, under create: true. SQLite
// and MariaDB fold column names' case, so one CREATE TABLE naming both
// fails ("duplicate column name"), and the batch was retried forever: the
// pipeline stalled at offset 0 (found on the real binary with sparse JSON
// records; the old binary 83a1f7b too). The batch must commit, the
// records applied or dead-lettered, whatever the fix chooses.
func TestFieldsDifferingOnlyInCaseDoNotStallCreate(t *testing.T) {
	for _, c := range ddlCases() {
		t.Run(c.name, func(t *testing.T) {
			table := uniq("people")
			cfg := ddlConfig(t, c, "  - {topics: t.people, table: "+table+", key: [id], create: true}\n")
			s := ddlSink(t, c, cfg)
			b := &exactly.PartitionBatch{Topic: "t.people", Records: records("t.people", 0, `{"id":1,"Name":"x"}`, `{"id":2,"name":"y"}`)}
			if _, err := s.SeedOffset(context.Background(), exactly.TP{Topic: b.Topic}, 0); err != nil {
				t.Fatal(err)
			}
			out := s.Commit(context.Background(), []*exactly.PartitionBatch{b})
			if len(out) != 1 || !out[0].Committed {
				t.Fatalf("the batch did not commit (it never will, retried as it is): %v", out[0].Err)
			}
			var n int
			if err := s.DB().QueryRow(fmt.Sprintf("SELECT COUNT(*) FROM %s", table)).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if got := n + len(out[0].Batch.DeadLetters); got != 2 {
				t.Errorf("%d rows + %d dead letters, want 2 records accounted for", n, len(out[0].Batch.DeadLetters))
			}
		})
	}
}
