package exactly_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
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

// TestCaseClashesAreTheSameDeadLettersWhereverBatchesAreCut: on a
// database that folds column names, the first spelling a table meets is
// kept and every later record bringing another spelling of it (or two
// spellings itself) is a dead letter naming both, whether the records come
// in one batch or one batch each; PostgreSQL tells the names apart and
// takes every record.
func TestCaseClashesAreTheSameDeadLettersWhereverBatchesAreCut(t *testing.T) {
	values := []string{
		`{"id":1,"Name":"x"}`,
		`{"id":2,"name":"y"}`,            // another spelling of a column made by record 0
		`{"id":3,"Name":"z","NAME":"w"}`, // one spelling known, one new
		`{"id":4,"Age":5,"age":6}`,       // two new spellings in one record
		`{"id":5,"Age":7}`,               // Age is new: record 3 was refused
		`{"id":6,"age":8}`,
	}
	for _, c := range ddlCases() {
		want := "[1 2 3 5]"
		if c.name == "postgres" {
			want = "[]"
		}
		for _, cut := range [][]int{{6}, {1, 1, 1, 1, 1, 1}, {2, 3, 1}} {
			t.Run(fmt.Sprintf("%s/%v", c.name, cut), func(t *testing.T) {
				table := uniq("people")
				cfg := ddlConfig(t, c, "  - {topics: t.people, table: "+table+", key: [id], create: true, evolve: add_columns}\n")
				s := ddlSink(t, c, cfg)
				if _, err := s.SeedOffset(context.Background(), exactly.TP{Topic: "t.people"}, 0); err != nil {
					t.Fatal(err)
				}
				var dead []int64
				for _, d := range commitAtCuts(t, s, "t.people", values, cut) {
					dead = append(dead, d.Record.Offset)
					if !strings.Contains(d.Err.Error(), "differs only in case") {
						t.Errorf("offset %d: %v", d.Record.Offset, d.Err)
					}
				}
				if got := fmt.Sprint(dead); got != want {
					t.Errorf("dead letters at offsets %s, want %s", got, want)
				}
				var rows int
				if err := s.DB().QueryRow(fmt.Sprintf("SELECT COUNT(*) FROM %s", table)).Scan(&rows); err != nil {
					t.Fatal(err)
				}
				if rows+len(dead) != len(values) {
					t.Errorf("%d rows + %d dead letters, want %d records accounted for", rows, len(dead), len(values))
				}
			})
		}
	}
}

// TestCaseClashesWithAFieldWidenRefusedAreTheSameWhereverBatchesAreCut:
// under evolve: widen a record the fold refuses (text for a boolean
// column) adds none of its fields, so its spellings claim nothing. Before,
// its "Z" made record 2's "z" a dead letter when both were in one batch,
// while cut one record a batch "z" became a column and record 2 a row (on
// the real binary, SQLite: batch.max_records 50000 against 1).
func TestCaseClashesWithAFieldWidenRefusedAreTheSameWhereverBatchesAreCut(t *testing.T) {
	values := []string{
		`{"id":1,"q":true}`,
		`{"id":2,"q":"abc","Z":1}`, // refused by the fold: Z never becomes a column
		`{"id":3,"z":2}`,
		`{"id":4,"q":5,"Y":1}`, // refused too
		`{"id":5,"y":1,"Y2":1}`,
		`{"id":6,"y2":1}`,   // Y2 is a column by now
		`{"id":7,"N":null}`, // widen makes no column of a field seen only as null
		`{"id":8,"n":1}`,    // so n becomes the column
		`{"id":9,"N":2}`,
	}
	for _, c := range ddlCases() {
		want := "[1 3 5 8]"
		if c.name == "postgres" {
			want = "[1 3]"
		}
		for _, cut := range [][]int{{9}, {1, 1, 1, 1, 1, 1, 1, 1, 1}, {2, 3, 1, 2, 1}, {7, 2}} {
			t.Run(fmt.Sprintf("%s/%v", c.name, cut), func(t *testing.T) {
				table := uniq("widen")
				cfg := ddlConfig(t, c, "  - {topics: t.widen, table: "+table+", key: [id], create: true, evolve: widen}\n")
				s := ddlSink(t, c, cfg)
				if _, err := s.SeedOffset(context.Background(), exactly.TP{Topic: "t.widen"}, 0); err != nil {
					t.Fatal(err)
				}
				var dead []int64
				for _, d := range commitAtCuts(t, s, "t.widen", values, cut) {
					dead = append(dead, d.Record.Offset)
				}
				slices.Sort(dead)
				if got := fmt.Sprint(dead); got != want {
					t.Errorf("dead letters at offsets %s, want %s", got, want)
				}
			})
		}
	}
}

// TestFieldsMySQLCannotNameDoNotStallCreate: MySQL and MariaDB keep
// identifiers in utf8mb3 and refuse a character beyond the Basic
// Multilingual Plane in a column name ("Invalid utf8mb3 character
// string", 1300): a field named "a😀" under create failed CREATE TABLE on
// every try, and the partition stalled at its offset. It is a dead letter
// there; the other databases take it.
func TestFieldsMySQLCannotNameDoNotStallCreate(t *testing.T) {
	for _, c := range ddlCases() {
		t.Run(c.name, func(t *testing.T) {
			table := uniq("emoji")
			cfg := ddlConfig(t, c, "  - {topics: t.emoji, table: "+table+", key: [id], create: true, evolve: add_columns}\n")
			s := ddlSink(t, c, cfg)
			if _, err := s.SeedOffset(context.Background(), exactly.TP{Topic: "t.emoji"}, 0); err != nil {
				t.Fatal(err)
			}
			for i, v := range []string{`{"id":1,"a😀":1}`, `{"id":2,"b":1}`, `{"id":3,"b😀":1}`} {
				b := &exactly.PartitionBatch{Topic: "t.emoji", From: int64(i), Records: records("t.emoji", int64(i), v)}
				out := s.Commit(context.Background(), []*exactly.PartitionBatch{b})
				if len(out) != 1 || !out[0].Committed {
					t.Fatalf("batch at %d did not commit (it never will, retried as it is): %v", i, out[0].Err)
				}
				dead := len(out[0].Batch.DeadLetters)
				if want := i != 1 && c.name == "mariadb"; (dead == 1) != want {
					t.Errorf("offset %d: %d dead letters, want one: %v", i, dead, want)
				}
			}
		})
	}
}

// TestCaseClashesOfIgnoredFieldsAreTheSameWhereverBatchesAreCut: under
// create: true without evolve, a table that exists takes no new column,
// and its new fields are ignored; "Z" then "z" were a dead letter when
// both came in one batch (Z claimed though it never became a column) and
// two rows when cut one record a batch.
func TestCaseClashesOfIgnoredFieldsAreTheSameWhereverBatchesAreCut(t *testing.T) {
	values := []string{`{"id":1,"a":1}`, `{"id":2,"Z":1}`, `{"id":3,"z":2}`, `{"id":4,"A":3}`}
	for _, c := range ddlCases() {
		want := "[3]" // A differs only in case from the column a
		if c.name == "postgres" {
			want = "[]"
		}
		for _, cut := range [][]int{{1, 3}, {1, 1, 1, 1}} {
			t.Run(fmt.Sprintf("%s/%v", c.name, cut), func(t *testing.T) {
				table := uniq("ignored")
				cfg := ddlConfig(t, c, "  - {topics: t.ign, table: "+table+", key: [id], create: true}\n")
				s := ddlSink(t, c, cfg)
				if _, err := s.SeedOffset(context.Background(), exactly.TP{Topic: "t.ign"}, 0); err != nil {
					t.Fatal(err)
				}
				var dead []int64
				for _, d := range commitAtCuts(t, s, "t.ign", values, cut) {
					dead = append(dead, d.Record.Offset)
				}
				slices.Sort(dead)
				if got := fmt.Sprint(dead); got != want {
					t.Errorf("dead letters at offsets %s, want %s", got, want)
				}
			})
		}
	}
}

// commitAtCuts commits values to topic in batches of the sizes cut gives,
// each batch's offsets following the last, and returns the dead letters
// in the order the batches gave them.
func commitAtCuts(t *testing.T, s *exactly.Sink, topic string, values []string, cut []int) []exactly.DeadLetter {
	t.Helper()
	var dead []exactly.DeadLetter
	from := 0
	for _, n := range cut {
		b := &exactly.PartitionBatch{Topic: topic, From: int64(from), Records: records(topic, int64(from), values[from:from+n]...)}
		out := s.Commit(context.Background(), []*exactly.PartitionBatch{b})
		if len(out) != 1 || !out[0].Committed {
			t.Fatalf("batch at %d did not commit: %v", from, out[0].Err)
		}
		dead = append(dead, out[0].Batch.DeadLetters...)
		from += n
	}
	return dead
}
