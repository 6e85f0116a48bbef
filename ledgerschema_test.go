package exactly_test

import (
	"context"
	"testing"

	"github.com/exactly/exactly"
)

// TestLedgerHasEveryDescribedColumn: the ledger a sink opens has every
// column exactly.LedgerTables describes, with its nullability, and the
// primary key it names, on every database: the dialects render one
// description, and the columns CREATE TABLE leaves out are added in place.
func TestLedgerHasEveryDescribedColumn(t *testing.T) {
	for _, c := range ddlCases() {
		t.Run(c.name, func(t *testing.T) {
			s := ddlSink(t, c, ddlConfig(t, c, "  - {topics: t.x, key: [id]}\n"))
			for _, lt := range exactly.LedgerTables() {
				tb, err := c.d.Describe(context.Background(), s.DB(), lt.Name)
				if err != nil || tb == nil {
					t.Fatalf("describing %s: %v %v", lt.Name, tb, err)
				}
				if len(tb.Columns) != len(lt.Columns) {
					t.Errorf("%s has %d columns, the description %d", lt.Name, len(tb.Columns), len(lt.Columns))
				}
				for _, col := range lt.Columns {
					got := tb.Column(col.Name)
					if got == nil {
						t.Errorf("%s lacks %s", lt.Name, col.Name)
						continue
					}
					// SQLite reports its INTEGER PRIMARY KEY (a rowid, never
					// NULL) as nullable.
					if got.Nullable != (col.Null || col.Added) && col.Type != exactly.LedgerSerial {
						t.Errorf("%s.%s nullable %v, described %v", lt.Name, col.Name, got.Nullable, col.Null)
					}
				}
				if len(tb.Key) != len(lt.Key) {
					t.Errorf("%s key %v, described %v", lt.Name, tb.Key, lt.Key)
				}
			}
		})
	}
}
