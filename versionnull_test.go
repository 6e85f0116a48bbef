package exactly_test

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"testing"

	"github.com/exactly/exactly"
)

// TestAnUpsertWithoutAVersionIsAppliedWhereverBatchesAreCut: under a
// version guard an upsert whose record lacks the version field passes the
// guard (IS NULL), and a later upsert of the key older than the stored row
// is refused. One record a batch, the first sets note to NULL; in one
// batch the later one superseded it (it carried all of its fields, so it
// was not chained) and was then refused by the table: note kept "x", the
// first record lost. Found on the binary (j2 of a differential run, old
// fd2b71f and new alike: max_records 7 against 1).
func TestAnUpsertWithoutAVersionIsAppliedWhereverBatchesAreCut(t *testing.T) {
	values := []string{
		`{"id":1,"note":"x","ver":20}`,
		`{"id":1,"note":null}`,           // no version: applied
		`{"id":1,"note":"late","ver":8}`, // older than the stored 20: refused
	}
	for _, c := range ddlCases() {
		for _, cut := range [][]int{{1, 1, 1}, {1, 2}, {3}} {
			t.Run(fmt.Sprintf("%s/%v", c.name, cut), func(t *testing.T) {
				table := uniq("v")
				cfg := ddlConfig(t, c, "  - {topics: t.v, table: "+table+", key: [id], create: true, evolve: add_columns, version: ver}\n")
				s := ddlSink(t, c, cfg)
				if _, err := s.SeedOffset(context.Background(), exactly.TP{Topic: "t.v"}, 0); err != nil {
					t.Fatal(err)
				}
				if dead := commitAtCuts(t, s, "t.v", values, cut); len(dead) != 0 {
					t.Fatalf("dead letters: %v", dead[0].Err)
				}
				var note sql.NullString
				var ver int64
				if err := s.DB().QueryRow(fmt.Sprintf("SELECT note, ver FROM %s", table)).Scan(&note, &ver); err != nil {
					t.Fatal(err)
				}
				if note.Valid || ver != 20 {
					t.Errorf("note %q (valid %v), ver %d; want NULL, 20 as one record a batch", note.String, note.Valid, ver)
				}
			})
		}
	}
}

// TestADeleteAfterAnUpsertWithoutAVersionIsTheSameWhereverBatchesAreCut:
// an upsert without a version passes the guard and leaves the stored
// version (or, carrying "ver": null, sets it to NULL); a delete older than
// the stored row that follows is then refused (or, the version being
// NULL, applied). In one batch the delete superseded the upsert and was
// written alone against the row before it: with the version field absent
// the upsert was lost (note x, one a batch y), with it null the delete was
// refused (the row kept, one a batch deleted). Now the key's records are
// written one by one.
func TestADeleteAfterAnUpsertWithoutAVersionIsTheSameWhereverBatchesAreCut(t *testing.T) {
	for _, tc := range []struct {
		name, upsert, want string
	}{
		{"absent", `{"op":"u","after":{"id":1,"note":"y"}}`, "y 10"}, // the delete older than 10: refused
		{"null", `{"op":"u","after":{"id":1,"note":"y","ver":null}}`, "none"},
	} {
		values := []string{`{"op":"c","after":{"id":1,"note":"x","ver":10}}`, tc.upsert, `{"op":"d","before":{"id":1,"ver":5}}`}
		for _, c := range cutDatabases() {
			for _, cut := range [][]int{{1, 1, 1}, {1, 2}, {2, 1}, {3}} {
				t.Run(fmt.Sprintf("%s/%s/%v", tc.name, c.name, cut), func(t *testing.T) {
					table := uniq("v")
					cfg := ddlConfig(t, c, "  - {topics: t.v, table: "+table+", format: debezium, mode: cdc, key: [id], version: ver}\n")
					s := ddlSink(t, c, cfg)
					if _, err := s.DB().Exec("CREATE TABLE " + table + " (id BIGINT NOT NULL PRIMARY KEY, note VARCHAR(40), ver BIGINT)"); err != nil {
						t.Fatal(err)
					}
					if _, err := s.SeedOffset(context.Background(), exactly.TP{Topic: "t.v"}, 0); err != nil {
						t.Fatal(err)
					}
					if dead := commitAtCuts(t, s, "t.v", values, cut); len(dead) != 0 {
						t.Fatalf("dead letters: %v", dead[0].Err)
					}
					got := "none"
					var note string
					var ver sql.NullInt64
					err := s.DB().QueryRow("SELECT note, ver FROM "+table).Scan(&note, &ver)
					switch {
					case err == nil:
						got = fmt.Sprintf("%s %d", note, ver.Int64)
					case err != sql.ErrNoRows:
						t.Fatal(err)
					}
					if got != tc.want {
						t.Errorf("row %s, want %s as one record a batch", got, tc.want)
					}
				})
			}
		}
	}
}

// TestARefusedUpsertLeavesTheOlderChangesOfItsBatchToTheGuard: under a
// version guard a batch skips a key's changes older than a later one of
// it, which wins over them; but when the database refuses that one (here
// a CHECK), one by one the older ones meet the row as it was and may
// apply. In one batch they were lost: {note:bad, ver:15} then {note:a,
// ver:10} left no row (one a batch: a, 10), and {ver:5}, {note:bad,
// ver:10}, d{ver:5} left the row of ver 5 (one a batch: deleted).
func TestARefusedUpsertLeavesTheOlderChangesOfItsBatchToTheGuard(t *testing.T) {
	for _, tc := range []struct {
		name       string
		values     []string
		want, dead string
	}{
		{"upsert", []string{`{"op":"u","after":{"id":1,"note":"bad","ver":15}}`, `{"op":"u","after":{"id":1,"note":"a","ver":10}}`}, "a 10", "[0]"},
		{"delete", []string{`{"op":"c","after":{"id":1,"note":"a","ver":5}}`, `{"op":"u","after":{"id":1,"note":"bad","ver":10}}`,
			`{"op":"d","before":{"id":1,"ver":5}}`}, "none", "[1]"},
	} {
		cuts := [][]int{slices.Repeat([]int{1}, len(tc.values)), {len(tc.values)}}
		if len(tc.values) == 3 {
			cuts = append(cuts, []int{1, 2})
		}
		for _, c := range cutDatabases() {
			for _, cut := range cuts {
				t.Run(fmt.Sprintf("%s/%s/%v", tc.name, c.name, cut), func(t *testing.T) {
					table := uniq("v")
					cfg := ddlConfig(t, c, "  - {topics: t.v, table: "+table+", format: debezium, mode: cdc, key: [id], version: ver}\n")
					s := ddlSink(t, c, cfg)
					if _, err := s.DB().Exec("CREATE TABLE " + table + " (id BIGINT NOT NULL PRIMARY KEY, note VARCHAR(40) CHECK (note <> 'bad'), ver BIGINT)"); err != nil {
						t.Fatal(err)
					}
					if _, err := s.SeedOffset(context.Background(), exactly.TP{Topic: "t.v"}, 0); err != nil {
						t.Fatal(err)
					}
					var dead []int64
					for _, d := range commitAtCuts(t, s, "t.v", tc.values, cut) {
						dead = append(dead, d.Record.Offset)
					}
					got := "none"
					var note string
					var ver sql.NullInt64
					err := s.DB().QueryRow("SELECT note, ver FROM "+table).Scan(&note, &ver)
					switch {
					case err == nil:
						got = fmt.Sprintf("%s %d", note, ver.Int64)
					case err != sql.ErrNoRows:
						t.Fatal(err)
					}
					if got != tc.want || fmt.Sprint(dead) != tc.dead {
						t.Errorf("row %s, dead letters at %v; want %s, %s as one record a batch", got, dead, tc.want, tc.dead)
					}
				})
			}
		}
	}
}
