package repair_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"testing"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/sink/mysql"
	"github.com/exactly/exactly/internal/sink/postgres"
	"github.com/exactly/exactly/internal/sink/sqlite"
	"github.com/exactly/exactly/internal/testenv"
	"github.com/exactly/exactly/repair"
)

func open(t testing.TB, driver string) (*sql.DB, exactly.Dialect) {
	t.Helper()
	var d exactly.Dialect
	var dsn string
	switch driver {
	case "sqlite":
		d, dsn = &sqlite.Dialect{}, filepath.Join(t.TempDir(), "sink.db")
	case "postgres":
		d, dsn = &postgres.Dialect{}, testenv.PostgresSchema(t)
	case "mysql":
		d, dsn = &mysql.Dialect{}, testenv.MySQLDatabase(t)
	}
	db, err := d.Open(context.Background(), exactly.SinkConfig{Driver: driver, DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, d
}

// seed makes a table the way an at-least-once tool leaves it: no key,
// ids 1..20 once, ids 21..25 three times with different seq and payload,
// id 26 four times fully identical, and two rows with a NULL id.
// id 27 twice with equal seq. 43 rows, 7 duplicated keys, 14 surplus rows.
func seed(t *testing.T, db *sql.DB) {
	t.Helper()
	stmts := []string{"CREATE TABLE events (id bigint, seq bigint, payload text)"}
	for id := 1; id <= 20; id++ {
		stmts = append(stmts, fmt.Sprintf("INSERT INTO events VALUES (%d, 1, 'p%d')", id, id))
	}
	for id := 21; id <= 25; id++ {
		for seq := 1; seq <= 3; seq++ {
			stmts = append(stmts, fmt.Sprintf("INSERT INTO events VALUES (%d, %d, 'p%d-%d')", id, seq, id, seq))
		}
	}
	for i := 0; i < 4; i++ {
		stmts = append(stmts, "INSERT INTO events VALUES (26, 7, 'same')")
	}
	// id 27: a tie in the order column with different payloads: whichever
	// copy is kept, the other must be in the backup (regression: two
	// separately evaluated rankings could keep one copy and back up the
	// same copy, deleting the other unsaved).
	stmts = append(stmts, "INSERT INTO events VALUES (27, 5, 'tie-a')", "INSERT INTO events VALUES (27, 5, 'tie-b')")
	stmts = append(stmts, "INSERT INTO events VALUES (NULL, 1, 'n1')", "INSERT INTO events VALUES (NULL, 1, 'n1')")
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// rowsOf returns the rows of a table as sorted strings (a multiset).
func rowsOf(t *testing.T, db *sql.DB, table string) []string {
	t.Helper()
	rows, err := db.Query("SELECT id, seq, payload FROM " + table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id, seq sql.NullInt64
		var p sql.NullString
		if err := rows.Scan(&id, &seq, &p); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%v|%v|%v", id, seq.Int64, p.String))
	}
	sort.Strings(out)
	return out
}

func tableExists(t *testing.T, db *sql.DB, d exactly.Dialect, name string) bool {
	t.Helper()
	tb, err := d.Describe(context.Background(), db, name)
	if err != nil {
		t.Fatal(err)
	}
	return tb != nil
}

func TestDedupe(t *testing.T) {
	for _, driver := range []string{"sqlite", "postgres", "mysql"} {
		for _, keep := range []string{"newest", "oldest"} {
			t.Run(driver+"/"+keep, func(t *testing.T) {
				t.Parallel()
				ctx := context.Background()
				db, d := open(t, driver)
				seed(t, db)
				spec := repair.Dedupe{Table: "events", Key: []string{"id"}, OrderBy: "seq", Keep: keep}
				before := rowsOf(t, db, "events")

				// Dry run: the plan, and nothing changed.
				p, err := repair.PlanDedupe(ctx, db, d, spec)
				if err != nil {
					t.Fatal(err)
				}
				if p.Rows != 43 || p.Keys != 7 || p.Surplus != 14 || p.NullKeys != 2 {
					t.Errorf("plan: rows %d keys %d surplus %d null keys %d, want 43 7 14 2", p.Rows, p.Keys, p.Surplus, p.NullKeys)
				}
				if len(p.Samples) != 5 || p.Samples[0].Key[0] != "26" || p.Samples[0].Copies != 4 {
					t.Errorf("samples: %+v, want 5 with id 26 (4 copies) first", p.Samples)
				}
				if got := rowsOf(t, db, "events"); fmt.Sprint(got) != fmt.Sprint(before) {
					t.Fatal("the plan changed the table")
				}
				if tableExists(t, db, d, "events_exactly_removed") {
					t.Fatal("the plan created the backup table")
				}

				res, err := repair.ApplyDedupe(ctx, db, d, spec)
				if err != nil {
					t.Fatal(err)
				}
				if res.Removed != 14 || res.Kept != 7 || len(res.Samples) != 5 {
					t.Errorf("removed %d kept %d samples %v, want 14, 7 and 5 samples", res.Removed, res.Kept, res.Samples)
				}
				after := rowsOf(t, db, "events")
				backup := rowsOf(t, db, "events_exactly_removed")
				if len(after) != 29 || len(backup) != 14 {
					t.Errorf("%d rows left and %d in the backup, want 29 and 14", len(after), len(backup))
				}
				// The backup holds exactly the removed rows: after + backup = before.
				union := append(append([]string{}, after...), backup...)
				sort.Strings(union)
				if fmt.Sprint(union) != fmt.Sprint(before) {
					t.Errorf("rows left + backup != rows before:\nbefore %v\nafter  %v\nbackup %v", before, after, backup)
				}
				// Exactly one row per key, the right copy.
				wantSeq := int64(3)
				if keep == "oldest" {
					wantSeq = 1
				}
				var dup int
				if err := db.QueryRow("SELECT COUNT(*) FROM (SELECT id FROM events WHERE id IS NOT NULL GROUP BY id HAVING COUNT(*) > 1) x").Scan(&dup); err != nil {
					t.Fatal(err)
				}
				if dup != 0 {
					t.Errorf("%d keys still duplicated", dup)
				}
				for id := 21; id <= 25; id++ {
					var seq int64
					if err := db.QueryRow(fmt.Sprintf("SELECT seq FROM events WHERE id = %d", id)).Scan(&seq); err != nil {
						t.Fatal(err)
					}
					if seq != wantSeq {
						t.Errorf("id %d kept seq %d, want %d (%s)", id, seq, wantSeq, keep)
					}
				}
				if tableExists(t, db, d, "events_exactly_kept") {
					t.Error("the scratch table was not dropped")
				}

				// A rerun finds nothing and changes nothing.
				if p, err = repair.PlanDedupe(ctx, db, d, spec); err != nil || p.Surplus != 0 || p.Keys != 0 {
					t.Errorf("rerun plan: %+v %v, want nothing to do", p, err)
				}
				if res, err = repair.ApplyDedupe(ctx, db, d, spec); err != nil || res.Removed != 0 {
					t.Errorf("rerun apply: %+v %v", res, err)
				}
				if got := rowsOf(t, db, "events_exactly_removed"); len(got) != 14 {
					t.Errorf("rerun changed the backup: %d rows", len(got))
				}

				// The unique key keeps duplicates from coming back.
				if _, err := repair.AddUniqueKey(ctx, db, d, spec); err != nil {
					t.Fatal(err)
				}
				if _, err := db.Exec("INSERT INTO events VALUES (21, 9, 'again')"); err == nil {
					t.Error("a duplicate key was inserted after the unique key was added")
				}
			})
		}
	}
}

func TestDedupeRefusesUnknownNames(t *testing.T) {
	db, d := open(t, "sqlite")
	seed(t, db)
	for _, spec := range []repair.Dedupe{
		{Table: "nope", Key: []string{"id"}},
		{Table: "events", Key: []string{"nope"}},
		{Table: "events", Key: []string{"id"}, OrderBy: "nope"},
		{Table: "events", Key: []string{"id"}, OrderBy: "seq", Keep: "middle"},
		{Table: "events"},
	} {
		if _, err := repair.ApplyDedupe(context.Background(), db, d, spec); !errors.Is(err, repair.ErrSpec) {
			t.Errorf("%+v: got %v, want ErrSpec", spec, err)
		}
	}
	if got := rowsOf(t, db, "events"); len(got) != 43 {
		t.Errorf("%d rows after refused dedupes, want 43", len(got))
	}
}

// TestDedupeCompositeKeyNoOrder: a two-column key and no --order-by (an
// arbitrary copy is kept): still one row per key and a complete backup.
func TestDedupeCompositeKeyNoOrder(t *testing.T) {
	for _, driver := range []string{"sqlite", "postgres", "mysql"} {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			db, d := open(t, driver)
			seed(t, db)
			before := rowsOf(t, db, "events")
			res, err := repair.ApplyDedupe(context.Background(), db, d, repair.Dedupe{Table: "events", Key: []string{"id", "seq"}})
			if err != nil {
				t.Fatal(err)
			}
			// (26, 7) four identical copies, (27, 5) two: 4 surplus.
			if res.Removed != 4 || res.Kept != 2 {
				t.Errorf("removed %d kept %d, want 4 and 2", res.Removed, res.Kept)
			}
			union := append(rowsOf(t, db, "events"), rowsOf(t, db, "events_exactly_removed")...)
			sort.Strings(union)
			if fmt.Sprint(union) != fmt.Sprint(before) {
				t.Errorf("rows left + backup != rows before")
			}
		})
	}
}
