package exactly_test

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/exactly/exactly"
)

// TestAColumnAnOperatorAddsIsWritten: under a rule that adds no columns,
// a field without a column is ignored; once an operator adds the column,
// later records must fill it. The description cached at the first flight
// was trusted for as long as the process ran, so the field stayed NULL
// until a restart (found by review on the binary, PostgreSQL).
func TestAColumnAnOperatorAddsIsWritten(t *testing.T) {
	defer exactly.SetStaleAfter(0)()
	for _, c := range ddlCases() {
		t.Run(c.name, func(t *testing.T) {
			table := uniq("added")
			cfg := ddlConfig(t, c, "  - {topics: t.added, table: "+table+", key: [id]}\n")
			s := ddlSink(t, c, cfg)
			if _, err := s.DB().Exec(fmt.Sprintf("CREATE TABLE %s (id INTEGER NOT NULL PRIMARY KEY, a TEXT)", table)); err != nil {
				t.Fatal(err)
			}
			tp := exactly.TP{Topic: "t.added"}
			if _, err := s.SeedOffset(context.Background(), tp, 0); err != nil {
				t.Fatal(err)
			}
			commit := func(from int64, v string) {
				t.Helper()
				b := &exactly.PartitionBatch{Topic: tp.Topic, From: from, Records: records(tp.Topic, from, v)}
				if out := s.Commit(context.Background(), []*exactly.PartitionBatch{b}); !out[0].Committed {
					t.Fatal(out[0].Err)
				}
			}
			commit(0, `{"id":1,"a":"x","c":"ignored: no column yet"}`)
			if _, err := s.DB().Exec(fmt.Sprintf("ALTER TABLE %s ADD COLUMN c TEXT", table)); err != nil {
				t.Fatal(err)
			}
			time.Sleep(10 * time.Millisecond)
			commit(1, `{"id":2,"a":"y","c":"z"}`)
			var got sql.NullString
			if err := s.DB().QueryRow(fmt.Sprintf("SELECT c FROM %s WHERE id = 2", table)).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got.String != "z" {
				t.Errorf("c of the record after ADD COLUMN is %v, want z", got)
			}
		})
	}
}
