package exactly_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/exactly/exactly"
)

// TestAVersionColumnCreatedFromANullVersionStillComparesNumbers: with
// create: true a table made from a first batch whose version field is
// null (a schemaless Debezium row, "ver": null) gets a text version
// column, and the guard then compares versions as text: "5" is newer than
// "25", so an older upsert rolls the row back, and "5" > "15" refuses a
// newer delete. Found live on the binary (2aaf33f and 97750e7 alike,
// PostgreSQL): a stream of 6,000 Debezium events over 600 keys, version:
// ver, max_records 1 against 50,000: 21 keys differed, the one-a-batch run
// holding rows of an older version; the key alone (first batch with a
// version) gave the right row. The guard must never roll a row back,
// whatever the first batch looked like.
func TestAVersionColumnCreatedFromANullVersionStillComparesNumbers(t *testing.T) {
	values := []string{
		`{"op":"c","after":{"id":1,"note":"first","ver":null}}`,
		`{"op":"c","after":{"id":2,"note":"keep","ver":25}}`,
		`{"op":"u","after":{"id":2,"note":"late","ver":5}}`, // older than 25: refused
	}
	for _, c := range cutDatabases() {
		for _, cut := range [][]int{{1, 1, 1}, {1, 2}} {
			t.Run(fmt.Sprintf("%s/%v", c.name, cut), func(t *testing.T) {
				table := uniq("v")
				cfg := ddlConfig(t, c, "  - {topics: t.v, table: "+table+", format: debezium, mode: cdc, key: [id], version: ver, create: true}\n")
				s := ddlSink(t, c, cfg)
				if _, err := s.SeedOffset(context.Background(), exactly.TP{Topic: "t.v"}, 0); err != nil {
					t.Fatal(err)
				}
				if dead := commitAtCuts(t, s, "t.v", values, cut); len(dead) != 0 {
					t.Fatalf("dead letters: %v", dead[0].Err)
				}
				var note string
				if err := s.DB().QueryRow(fmt.Sprintf("SELECT note FROM %s WHERE id = 2", table)).Scan(&note); err != nil {
					t.Fatal(err)
				}
				if note != "keep" {
					t.Errorf("note %q: the upsert of version 5 replaced the row of version 25", note)
				}
			})
		}
	}
}

// versionTypeCase is a stream of Debezium records for a rule with
// version: ver, and what the table must hold after it wherever it is cut.
type versionTypeCase struct {
	name   string
	rule   string // the rule's options after version: ver
	create string // SQL creating the table first (%s: its name), or ""
	values []string
	cuts   [][]int
	note   string // note of id 2 afterwards
	dead   string // the one dead letter's error holds it, or "" for none
	typ    string // the ver column's type holds it ("int", "text")
}

// TestAVersionColumnSeenOnlyAsNullOrNotAtAllIsAnInteger: the version
// column a batch saw only as null, or not at all, is made as a JSON
// integer's column (create, and evolve: add_columns adding it to a table),
// so versions compare as numbers whatever the first batch looked like; a
// later version that is not an integer is then a dead letter naming the
// column and its type, or widens the column under evolve: widen. Before,
// the absent version made no column (the guard's statements then named a
// column the table lacks) and a null one under add_columns a text column
// ("5" newer than "25"); a later "v30" went into a text column unnoticed.
func TestAVersionColumnSeenOnlyAsNullOrNotAtAllIsAnInteger(t *testing.T) {
	threeCuts := [][]int{{1, 1, 1}, {1, 2}, {3}}
	cases := []versionTypeCase{{
		name: "absent",
		rule: "create: true",
		values: []string{
			`{"op":"c","after":{"id":1,"note":"first"}}`,
			`{"op":"c","after":{"id":2,"note":"keep","ver":25}}`,
			`{"op":"u","after":{"id":2,"note":"late","ver":5}}`,
		},
		cuts: [][]int{{1, 1, 1}, {1, 2}}, note: "keep", typ: "int",
	}, {
		name: "added-as-null",
		rule: "evolve: add_columns",
		// Both columns text-typed alike on every database.
		create: "CREATE TABLE %s (id integer NOT NULL PRIMARY KEY, note varchar(100))",
		values: []string{
			`{"op":"c","after":{"id":1,"note":"first","ver":null}}`,
			`{"op":"c","after":{"id":2,"note":"keep","ver":25}}`,
			`{"op":"u","after":{"id":2,"note":"late","ver":5}}`,
		},
		cuts: [][]int{{1, 1, 1}, {1, 2}}, note: "keep", typ: "int",
	}, {
		name: "later-string",
		rule: "create: true",
		values: []string{
			`{"op":"c","after":{"id":1,"note":"first","ver":null}}`,
			`{"op":"c","after":{"id":2,"note":"keep","ver":25}}`,
			`{"op":"u","after":{"id":2,"note":"str","ver":"v30"}}`,
		},
		cuts: [][]int{{1, 1, 1}, {1, 2}}, note: "keep", dead: `field "ver" holds text "v30" but column ver is `, typ: "int",
	}, {
		name: "later-string-widen",
		rule: "create: true, evolve: widen",
		values: []string{
			`{"op":"c","after":{"id":1,"note":"first","ver":null}}`,
			`{"op":"c","after":{"id":2,"note":"keep","ver":25}}`,
			`{"op":"u","after":{"id":2,"note":"str","ver":"v30"}}`,
		},
		cuts: threeCuts, note: "str", typ: "text",
	}}
	for _, c := range cutDatabases() {
		for _, vc := range cases {
			for _, cut := range vc.cuts {
				t.Run(fmt.Sprintf("%s/%s/%v", c.name, vc.name, cut), func(t *testing.T) {
					table := uniq("v")
					cfg := ddlConfig(t, c, "  - {topics: t.v, table: "+table+", format: debezium, mode: cdc, key: [id], version: ver, "+vc.rule+"}\n")
					s := ddlSink(t, c, cfg)
					if vc.create != "" {
						if _, err := s.DB().Exec(fmt.Sprintf(vc.create, table)); err != nil {
							t.Fatal(err)
						}
					}
					if _, err := s.SeedOffset(context.Background(), exactly.TP{Topic: "t.v"}, 0); err != nil {
						t.Fatal(err)
					}
					dead := commitAtCuts(t, s, "t.v", vc.values, cut)
					switch {
					case vc.dead == "" && len(dead) != 0:
						t.Fatalf("dead letters: %v", dead[0].Err)
					case vc.dead != "" && (len(dead) != 1 || !strings.Contains(dead[0].Err.Error(), vc.dead)):
						t.Fatalf("dead letters %v, want one holding %q", dead, vc.dead)
					}
					var note string
					if err := s.DB().QueryRow(fmt.Sprintf("SELECT note FROM %s WHERE id = 2", table)).Scan(&note); err != nil {
						t.Fatal(err)
					}
					if note != vc.note {
						t.Errorf("note %q, want %q", note, vc.note)
					}
					tb, err := s.Dialect().Describe(context.Background(), s.DB(), table)
					if err != nil || tb == nil {
						t.Fatalf("describing %s: %v %v", table, tb, err)
					}
					col := tb.Column("ver")
					if col == nil {
						t.Fatalf("no column ver: %s", describe(t, s, table))
					}
					typ := strings.ToLower(col.Type)
					if isText := strings.Contains(typ, "text") || strings.Contains(typ, "char"); (vc.typ == "text") != isText || vc.typ == "int" && !strings.Contains(typ, "int") {
						t.Errorf("column ver is %s, want %s", col.Type, vc.typ)
					}
				})
			}
		}
	}
}
