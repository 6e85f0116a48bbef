package sqlserver

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/exactly/exactly"
)

// TestPlanRefusesWhatTheBulkCopyCannotSend: go-mssqldb's bulk copy refuses
// client-side, with a plain error, a value it cannot encode for the
// column: a bool or a float into a text column ("invalid type for nvarchar
// column"), an integer day count into a date (a schemaless Debezium date),
// text its own layout does not parse into a date or time column
// ("2024-02-30 00:00:00", "2024-01-01 24:00:00", "2024-01-01" in a
// datetime2; and "2024-01-01 10:00:00", which SQL Server reads, and which
// is now converted as it reads it: in UTC, like an instant). Classified
// "other", the batch was retried every 30 s without end and the partition
// stalled (seen with the binary on Babelfish: the same stream cut at 1000
// records stuck on "unable to convert string to date" at a record a later
// change of its key superseded). And more integer digits than a decimal's
// precision minus its scale, which the server refuses (8115) only after the
// collapse: a superseded 12345.6 for a decimal(5,2) was skipped, not
// dead-lettered (Babelfish: "numeric field overflow", unmapped, stalled).
// Each is now a TypeError naming the column:
// a dead letter, on every cut (ValueCheck shares typeCheck).
func TestPlanRefusesWhatTheBulkCopyCannotSend(t *testing.T) {
	d := &Dialect{}
	tbl := &exactly.Table{Name: "typed", Key: []string{"id"}, Columns: []exactly.Column{
		{Name: "id", Type: "bigint"}, {Name: "s", Type: "nvarchar(50)"}, {Name: "a", Type: "varchar(50)"},
		{Name: "day", Type: "date"}, {Name: "at", Type: "datetime2(6)"}, {Name: "old", Type: "datetime"},
		{Name: "off", Type: "datetimeoffset(7)"}, {Name: "clock", Type: "time(7)"}, {Name: "amount", Type: "decimal(5,2)"},
	}}
	at := time.Date(2024, 1, 1, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		col string
		v   any
		bad bool
	}{
		{"s", "x", false}, {"s", int64(3), false}, {"s", exactly.Decimal("1.5"), false}, {"s", exactly.JSON(`{}`), false},
		{"s", true, true}, {"s", float64(1.5), true}, {"s", at, true},
		{"a", "x", false}, {"a", int64(3), false}, {"a", []byte("x"), false}, {"a", false, true}, {"a", float64(2), true},
		{"day", "2024-01-31", false}, {"day", at, false}, {"day", "2024-01-01T00:00:00+05:00", false},
		{"day", int64(19000), true}, {"day", "2024-02-30", true}, {"day", "31/01/2024", true}, {"day", true, true},
		{"at", "2024-01-01T00:00:00Z", false}, {"at", "2024-01-01 10:00:00", false}, {"at", at, false},
		{"at", "2024-02-30 00:00:00", true}, {"at", "2024-01-01 24:00:00", true}, {"at", "2024-01-01", true},
		{"at", int64(1700000000000), true},
		{"old", "2024-01-01 10:00:00.5", false}, {"old", "yesterday", true},
		{"off", "2024-01-01T00:00:00+05:00", false}, {"off", "2024-01-01 00:00:00 +05:00", true},
		{"amount", exactly.Decimal("999.99"), false}, {"amount", "-0999.5", false}, {"amount", int64(999), false},
		{"amount", exactly.Decimal("12345.6"), true}, {"amount", int64(1000), true}, {"amount", "-1000", true},
		{"clock", "10:11:12", false}, {"clock", at, false}, {"clock", "25:00:00", true}, {"clock", int64(3600), true},
	} {
		w := &exactly.TableWrite{Table: tbl, Keys: []string{"id"}, Columns: []string{"id", c.col},
			Upserts: [][]any{{int64(1), c.v}}}
		_, err := d.plan(w)
		var te *TypeError
		switch {
		case !c.bad && err != nil:
			t.Errorf("%s = %#v: %v, want no error", c.col, c.v, err)
		case c.bad && (!errors.As(err, &te) || te.Column != c.col):
			t.Errorf("%s = %#v: want a TypeError naming the column, got %v", c.col, c.v, err)
		case c.bad && d.Classify(fmt.Errorf("writing: %w", err)) != exactly.ErrData:
			t.Errorf("%v is not classified as bad data", err)
		}
		col := tbl.Column(c.col)
		check := d.ValueCheck(col)
		if got := check != nil && check(c.v) != ""; got != c.bad {
			t.Errorf("ValueCheck(%s = %#v) refuses: %v, want %v", c.col, c.v, got, c.bad)
		}
	}
}
