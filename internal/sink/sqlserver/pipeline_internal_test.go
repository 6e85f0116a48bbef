package sqlserver

import (
	"errors"
	"strings"
	"testing"
	"time"

	mssql "github.com/microsoft/go-mssqldb"

	"github.com/exactly/exactly"
)

// TestRenumberLeavesNamesAndLiterals: a column named [x@p1] or a string
// '@p1' is not a parameter (the regular expression renumbered both).
func TestRenumberLeavesNamesAndLiterals(t *testing.T) {
	q := `UPDATE [x@p1] SET [a@p2]]@p1] = @p1, "q@p1" = N'@p2 it''s @p1' /* @p1 */ WHERE c = @p2 -- @p1
AND d = @p10 AND @p1x = @exactly_p1 AND e=@p2`
	got := renumber(q, []int{7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	want := `UPDATE [x@p1] SET [a@p2]]@p1] = @p7, "q@p1" = N'@p2 it''s @p1' /* @p1 */ WHERE c = @p8 -- @p1
AND d = @p16 AND @p1x = @exactly_p1 AND e=@p8`
	if got != want {
		t.Errorf("renumber:\n got %s\nwant %s", got, want)
	}
}

// TestBatchSendsEqualValuesOnce: the fences and ledger rows of a flight
// repeat the pipeline, the writer, the time and small numbers; each is
// one parameter of the request. Equal instants in different zones and
// values of different Go types stay apart.
func TestBatchSendsEqualValuesOnce(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	b := newBatch()
	b.add(exactly.Statement{SQL: "UPDATE o SET n = @p1, w = @p2, at = @p3 WHERE t = @p4", Args: []any{int64(5), "w1", now, "topic"}})
	b.add(exactly.Statement{SQL: "UPDATE o SET n = @p1, w = @p2, at = @p3 WHERE t = @p4", Args: []any{int64(5), "w1", now.In(time.FixedZone("", 3600)), "other"}})
	b.add(exactly.Statement{SQL: "INSERT INTO x VALUES (@p1, @p2, @p3, @p4, @p5)", Args: []any{5, int64(5), nil, []byte(nil), []byte{}}})
	b.add(exactly.Statement{SQL: "INSERT INTO x VALUES (@p1, @p2, @p3)", Args: []any{nil, []byte(nil), []byte{}}})
	want := []any{int64(5), "w1", now, "topic", now.In(time.FixedZone("", 3600)), "other", 5, nil, []byte(nil), []byte{}}
	if len(b.args) != len(want) {
		t.Fatalf("%d parameters %v, want %d %v", len(b.args), b.args, len(want), want)
	}
	q := b.sb.String()
	for _, s := range []string{"UPDATE o SET n = @p1, w = @p2, at = @p3 WHERE t = @p4;", "UPDATE o SET n = @p1, w = @p2, at = @p5 WHERE t = @p6;",
		"INSERT INTO x VALUES (@p7, @p1, @p8, @p9, @p10);", "INSERT INTO x VALUES (@p8, @p9, @p10);"} {
		if !strings.Contains(q, s) {
			t.Errorf("batch lacks %q:\n%s", s, q)
		}
	}
	// A statement fits when its new values do.
	big := exactly.Statement{SQL: "x", Args: make([]any, maxParams)}
	for i := range big.Args {
		big.Args[i] = int64(1000 + i)
	}
	if b.fits(big) {
		t.Error("a statement of 2000 new values fits beside 10")
	}
	for i := range big.Args[:10] {
		big.Args[i] = "w1"
	}
	if !b.fits(big) {
		t.Error("a statement of 1990 new values and 10 sent ones does not fit beside 10")
	}
}

// TestStatementAtLine: an error's line in the batch names its statement,
// multi-line statements included; the header names none.
func TestStatementAtLine(t *testing.T) {
	b := newBatch()
	b.add(exactly.Statement{SQL: "SELECT 1"})                  // lines 2-3
	b.add(exactly.Statement{SQL: "SELECT 2\nFROM x\nWHERE y"}) // lines 4-7
	b.add(exactly.Statement{SQL: "SELECT 3"})                  // lines 8-9
	for line, want := range map[int]int{0: -1, 1: -1, 2: 0, 3: 0, 4: 1, 6: 1, 7: 1, 8: 2, 9: 2} {
		if got := b.statementAt(line); got != want {
			t.Errorf("line %d: statement %d, want %d", line, got, want)
		}
	}
	me := mssql.Error{Number: 3998, LineNo: 1, All: []mssql.Error{{Number: 1222, Class: 16, LineNo: 5}, {Number: 3998, Class: 16, LineNo: 1}}}
	if got := errorLine(me); got != 5 {
		t.Errorf("errorLine: %d, want the first error's 5", got)
	}
	// Raised in a trigger of the target table: SQL Server names the
	// trigger (ProcName) and counts its lines, which name no statement of
	// the batch. (Babelfish names no procedure: line 3 of a trigger came
	// back as line 3, the first fence's.)
	me = mssql.Error{Number: 1222, Class: 16, LineNo: 3, ProcName: "items_audit", All: []mssql.Error{{Number: 1222, Class: 16, LineNo: 3, ProcName: "items_audit"}}}
	if got := b.statementAt(errorLine(me)); got != -1 {
		t.Errorf("an error on line 3 of a trigger names statement %d of the batch, want none", got)
	}
}

// TestLockTimeoutOfAPipelinedStatement: a 1222 traced to its statement is
// still a lock timeout, and Sink can tell which fence it was.
func TestLockTimeoutOfAPipelinedStatement(t *testing.T) {
	err := error(&exactly.StatementError{Index: 1, Err: mssql.Error{Number: 1222, Class: 16, LineNo: 4}})
	if !(&Dialect{}).LockTimedOut(err) {
		t.Error("1222 inside a StatementError is not a lock timeout")
	}
	var se *exactly.StatementError
	if !errors.As(err, &se) || se.Index != 1 {
		t.Errorf("StatementError lost: %v", err)
	}
	if (&Dialect{}).Classify(err) != exactly.ErrConflict {
		t.Error("1222 inside a StatementError is not a conflict")
	}
}

// TestMaxInsertRows: within 2,000 parameters and 1,000 rows.
func TestMaxInsertRows(t *testing.T) {
	d := &Dialect{}
	for cols, want := range map[int]int{20: 100, 10: 200, 1: 1000, 3000: 1} {
		if got := d.MaxInsertRows(cols); got != want {
			t.Errorf("%d columns: %d rows, want %d", cols, got, want)
		}
	}
}

// TestInlineArg: values go inline only where the server's conversion of
// the parameter stores what the bulk copy stores.
func TestInlineArg(t *testing.T) {
	at := time.Date(2024, 3, 10, 2, 30, 0, 123456789, time.FixedZone("", 5*3600+1800))
	for _, c := range []struct {
		typ  string
		v    any
		want any
		ok   bool
	}{
		{"int", int64(1 << 31), nil, false}, // the bulk copy would wrap it: not inline
		{"int", int64(-1 << 31), int64(-1 << 31), true},
		{"tinyint", int64(-1), nil, false},
		{"bigint", "1", nil, false},
		{"bit", true, true, true},
		{"float", int64(1 << 53), nil, false},
		{"float", 1.5, 1.5, true},
		{"decimal(20,6)", "1.25", "1.25", true},
		{"decimal(20,6)", 1.25, nil, false},
		{"nvarchar(10)", "héllo", "héllo", true},
		{"varchar(10) COLLATE Latin1_General_CS_AS", "hello", "hello", true},
		{"varchar(10)", "héllo", nil, false},
		{"varbinary(max)", nil, nil, true},
		{"nvarchar(max)", nil, nil, true},
		{"date", "2024-02-29", "2024-02-29", true},
		{"date", "29/02/2024", nil, false},
		{"datetime2(3)", at.UTC(), "2024-03-09T21:00:00.123", true},
		{"datetime2(0)", at.UTC(), "2024-03-09T21:00:00", true},
		{"datetimeoffset(6)", at, at.Truncate(time.Microsecond), true},
		{"time(7)", at, "02:30:00.1234567", true},
		{"datetime", at, nil, false},
		{"money", "1.00", nil, false},
		{"uniqueidentifier", mssql.UniqueIdentifier{1}, "01000000-0000-0000-0000-000000000000", true},
	} {
		got, ok := inlineArg(c.typ, c.v)
		if ok != c.ok || (ok && !equal(got, c.want)) {
			t.Errorf("inlineArg(%s, %#v) = %#v, %v; want %#v, %v", c.typ, c.v, got, ok, c.want, c.ok)
		}
	}
}

func equal(a, b any) bool {
	if x, ok := a.([]byte); ok {
		y, ok := b.([]byte)
		return ok && (x == nil) == (y == nil) && string(x) == string(y)
	}
	return a == b
}
