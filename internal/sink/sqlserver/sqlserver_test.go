package sqlserver

import (
	"database/sql/driver"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mssql "github.com/microsoft/go-mssqldb"
	"github.com/microsoft/go-mssqldb/azuread"

	"github.com/exactly/exactly"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// golden compares got with testdata/name.golden.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// render shows a plan as the server would receive it: statements in
// order, and the bulk-copied rows with each value's Go type.
func render(p *plan) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "-- prepare\n%s\n-- bulk copy into %s (%s)\n", p.Prepare, p.Stage, strings.Join(p.Columns, ", "))
	for _, row := range p.Rows {
		vals := make([]string, len(row))
		for i, v := range row {
			switch x := v.(type) {
			case nil:
				vals[i] = "NULL"
			case time.Time:
				vals[i] = "time.Time(" + x.Format(time.RFC3339Nano) + ")"
			case []byte:
				vals[i] = fmt.Sprintf("[]byte(%x)", x)
			default:
				vals[i] = fmt.Sprintf("%T(%v)", v, v)
			}
		}
		sb.WriteString("   " + strings.Join(vals, ", ") + "\n")
	}
	for i, q := range p.Apply {
		fmt.Fprintf(&sb, "-- apply %d\n%s\n", i+1, q)
	}
	if p.Inline == nil {
		sb.WriteString("-- not inline: bulk-copied when pipelined\n")
		return sb.String()
	}
	fmt.Fprintf(&sb, "-- inline, pipelined\n%s\n", p.Inline.SQL)
	vals := make([]string, len(p.Inline.Args))
	for i, v := range p.Inline.Args {
		switch x := v.(type) {
		case nil:
			vals[i] = "NULL"
		case []byte:
			vals[i] = fmt.Sprintf("[]byte(%x)", x)
			if x == nil {
				vals[i] = "[]byte(NULL)"
			}
		default:
			vals[i] = fmt.Sprintf("%T(%v)", v, v)
		}
	}
	sb.WriteString("   " + strings.Join(vals, ", ") + "\n")
	return sb.String()
}

var items = &exactly.Table{Name: "dbo.order items", Key: []string{"order", "line]no"}, Columns: []exactly.Column{
	{Name: "order", Type: "bigint"}, {Name: "line]no", Type: "int"}, {Name: "name", Type: "nvarchar(100)", Nullable: true},
	{Name: "code", Type: "varchar(20) COLLATE Latin1_General_CS_AS", Nullable: true},
	{Name: "price", Type: "decimal(20,6)", Nullable: true}, {Name: "paid", Type: "bit", Nullable: true},
	{Name: "day", Type: "date", Nullable: true}, {Name: "at", Type: "datetimeoffset(6)", Nullable: true},
	{Name: "local", Type: "datetime2(6)", Nullable: true}, {Name: "blob", Type: "varbinary(max)", Nullable: true},
	{Name: "doc", Type: "nvarchar(max)", Nullable: true}, {Name: "v", Type: "bigint", Nullable: true},
}}

func TestApplyPlans(t *testing.T) {
	ist := time.FixedZone("", 5*3600+1800)
	at := time.Date(2024, 3, 10, 2, 30, 0, 123456000, ist)
	allCols := []string{"order", "line]no", "name", "code", "price", "paid", "day", "at", "local", "blob", "doc", "v"}
	for _, c := range []struct {
		name string
		w    *exactly.TableWrite
	}{
		{"upsert", &exactly.TableWrite{Table: items, Keys: items.Key, Columns: allCols,
			Upserts: [][]any{
				{int64(1), int64(1), "héllo ✓ 'quoted'", "A-1", exactly.Decimal("12345678901234.123456"), true,
					at, at, "2024-03-10T02:30:00.5+05:30", []byte{0, 0xff}, exactly.JSON(`{"a":[1,2]}`), int64(7)},
				{int64(1), int64(2), nil, nil, nil, int64(0), "2024-02-29", "2024-02-29T23:59:59Z", nil, nil, nil, nil},
			},
			Deletes: [][]any{{int64(2), int64(1)}}}},
		{"versioned", &exactly.TableWrite{Table: items, Keys: items.Key, Columns: []string{"order", "line]no", "name", "v"}, Version: "v",
			Upserts:        [][]any{{int64(1), int64(1), "a", int64(5)}},
			Deletes:        [][]any{{int64(3), int64(1)}, {int64(4), int64(1)}},
			DeleteVersions: []any{int64(9), nil}}},
		{"append", &exactly.TableWrite{Table: items, Append: true, Columns: []string{"order", "line]no", "name"},
			Upserts: [][]any{{int64(1), int64(1), "a"}, {int64(1), int64(1), "a"}}}},
		{"key_only", &exactly.TableWrite{Table: items, Keys: items.Key, Columns: []string{"order", "line]no"},
			Upserts: [][]any{{int64(5), int64(6)}}}},
		{"deletes_only", &exactly.TableWrite{Table: items, Keys: []string{"order", "line]no"}, Columns: nil,
			Deletes: [][]any{{int64(1), int64(1)}}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, err := (&Dialect{}).plan(c.w)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, "apply_"+c.name, render(p))
		})
	}
}

func TestDDL(t *testing.T) {
	d := &Dialect{}
	var sb strings.Builder
	sb.WriteString("-- ledger\n" + strings.Join(d.LedgerDDL(), "\n") + "\n")
	sb.WriteString("-- insert if absent (rebound)\n" + exactly.Rebind(d, d.InsertIfAbsent("exactly_offsets",
		[]string{"pipeline", "topic", "partition", "next_offset", "writer", "updated_at"})) + "\n")
	cols := []exactly.ColumnDef{
		{Name: "id", Type: exactly.Type{Kind: exactly.KindInt64}},
		{Name: "name's", Type: exactly.Type{Kind: exactly.KindText}, Nullable: true},
		{Name: "amount", Type: exactly.Type{Kind: exactly.KindDecimal, Precision: 12, Scale: 2}, Nullable: true},
		{Name: "ratio", Type: exactly.Type{Kind: exactly.KindDecimal, Scale: -1}, Nullable: true},
		{Name: "huge", Type: exactly.Type{Kind: exactly.KindDecimal, Precision: 60, Scale: 2}, Nullable: true},
		{Name: "ok", Type: exactly.Type{Kind: exactly.KindBool}, Nullable: true},
		{Name: "at", Type: exactly.Type{Kind: exactly.KindTimestampTZ, Precision: 9}, Nullable: true},
		{Name: "wall", Type: exactly.Type{Kind: exactly.KindTimestamp, Precision: 3}, Nullable: true},
		{Name: "clock", Type: exactly.Type{Kind: exactly.KindTime}, Nullable: true},
		{Name: "day", Type: exactly.Type{Kind: exactly.KindDate}, Nullable: true},
		{Name: "doc", Type: exactly.Type{Kind: exactly.KindJSON}, Nullable: true},
		{Name: "raw", Type: exactly.Type{Kind: exactly.KindBytes}, Nullable: true},
		{Name: "f", Type: exactly.Type{Kind: exactly.KindFloat32}, Nullable: true},
		{Name: "code", Type: exactly.Type{Kind: exactly.KindText}},
	}
	sb.WriteString("-- create table\n" + d.CreateTable("sales.o'rders", cols, []string{"id", "code"}) + "\n")
	sb.WriteString("-- add column\n" + d.AddColumn("sales.o'rders", exactly.ColumnDef{Name: "new]col", Type: exactly.Type{Kind: exactly.KindInt32}, Nullable: true}) + "\n")
	sb.WriteString("-- create table like\n" + d.CreateTableLike("dbo.t_exactly_removed", "dbo.t") + "\n")
	set, rollback, release := d.Savepoint("exactly_isolate")
	sb.WriteString("-- savepoint\n" + set + "\n" + rollback + "\n" + release + "\n")
	sb.WriteString("-- fence (rebound as Sink builds it)\n" + exactly.Rebind(d, "UPDATE exactly_offsets SET "+d.Quote("next_offset")+" = ? WHERE "+
		d.Quote("pipeline")+" = ? AND "+d.Quote("partition")+" = ? AND "+d.Quote("next_offset")+" = ?") + "\n")
	golden(t, "ddl", sb.String())
}

func TestQuote(t *testing.T) {
	d := &Dialect{}
	for in, want := range map[string]string{
		"t": "[t]", "order items": "[order items]", "dbo.t": "[dbo].[t]", "a]b": "[a]]b]", "select": "[select]",
	} {
		if got := d.Quote(in); got != want {
			t.Errorf("Quote(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestConverters(t *testing.T) {
	ist := time.FixedZone("", 5*3600+1800)
	at := time.Date(2024, 3, 10, 2, 30, 0, 0, ist)
	for _, c := range []struct {
		typ  string
		in   any
		want string
	}{
		{"decimal(20,6)", exactly.Decimal("-0.000001"), "string(-0.000001)"},
		{"nvarchar(max)", exactly.JSON(`{"a":1}`), `string({"a":1})`},
		{"bit", int64(1), "bool(true)"},
		{"bit", "false", "bool(false)"},
		{"bit", true, "bool(true)"},
		{"datetimeoffset(6)", at, "time.Time(2024-03-10 02:30:00 +0530 +0530)"},
		{"datetimeoffset(6)", "2024-03-10T02:30:00+05:30", "time.Time(2024-03-10 02:30:00 +0530 +0530)"},
		{"datetime2(6)", at, "time.Time(2024-03-09 21:00:00 +0000 UTC)"},
		{"datetime2(6)", "2024-03-10T02:30:00+05:30", "time.Time(2024-03-09 21:00:00 +0000 UTC)"},
		{"date", at, "time.Time(2024-03-10 00:00:00 +0000 UTC)"},
		{"date", "2024-02-29", "string(2024-02-29)"},
		{"time(6)", at, "time.Time(0001-01-01 02:30:00 +0000 UTC)"},
		{"bigint", int64(-9), "int64(-9)"},
		{"varbinary(max)", []byte{1}, "[]uint8([1])"},
		{"nvarchar(10)", nil, "<nil>(<nil>)"},
	} {
		got := converter(&exactly.Column{Type: c.typ})(c.in)
		if s := fmt.Sprintf("%T(%v)", got, got); s != c.want {
			t.Errorf("%s ← %T(%v): got %s, want %s", c.typ, c.in, c.in, s, c.want)
		}
	}
}

func TestStageTypeKeepsCollations(t *testing.T) {
	for typ, want := range map[string]string{
		"nvarchar(100)": "nvarchar(100) COLLATE DATABASE_DEFAULT",
		// Code-page text is staged as Unicode (see codePageText), in the
		// column's collation.
		"varchar(20) COLLATE Latin1_General_CS_AS": "NVARCHAR(MAX) COLLATE Latin1_General_CS_AS",
		"varchar(20)":       "NVARCHAR(MAX) COLLATE DATABASE_DEFAULT",
		"char(6)":           "NVARCHAR(MAX) COLLATE DATABASE_DEFAULT",
		"text":              "NVARCHAR(MAX) COLLATE DATABASE_DEFAULT",
		"bigint":            "bigint",
		"datetimeoffset(6)": "datetimeoffset(6)",
	} {
		if got := stageType(&exactly.Column{Type: typ}); got != want {
			t.Errorf("stageType(%s) = %s, want %s", typ, got, want)
		}
	}
}

func TestClassify(t *testing.T) {
	d := &Dialect{}
	for _, c := range []struct {
		err  error
		want exactly.ErrorKind
	}{
		{mssql.Error{Number: 1205, Message: "Transaction was deadlocked"}, exactly.ErrConflict},
		{fmt.Errorf("writing table t: %w", mssql.Error{Number: 1205}), exactly.ErrConflict},
		{mssql.Error{Number: 1222}, exactly.ErrConflict},
		{mssql.Error{Number: 40613, Message: "Database is not currently available"}, exactly.ErrConnection},
		{mssql.Error{Number: 40501, Message: "The service is currently busy"}, exactly.ErrConnection},
		{mssql.Error{Number: 49918}, exactly.ErrConnection},
		{mssql.Error{Number: 40197}, exactly.ErrConnection},
		{mssql.Error{Number: 4060}, exactly.ErrConnection},
		{mssql.Error{Number: 10928}, exactly.ErrConnection},
		// A batch's errors: a transient one anywhere decides.
		{mssql.Error{Number: 3621, All: []mssql.Error{{Number: 40613}, {Number: 3621}}}, exactly.ErrConnection},
		{mssql.Error{Number: 2627, Message: "Violation of PRIMARY KEY constraint"}, exactly.ErrData},
		{mssql.Error{Number: 515}, exactly.ErrData},
		{mssql.Error{Number: 8152}, exactly.ErrData},
		{mssql.Error{Number: 2628}, exactly.ErrData},
		{mssql.Error{Number: 8115}, exactly.ErrData},
		{mssql.Error{Number: 547}, exactly.ErrData},
		{mssql.Error{Number: 208, Message: "Invalid object name"}, exactly.ErrOther},
		{driver.ErrBadConn, exactly.ErrConnection},
		{fmt.Errorf("committing: %w", io.EOF), exactly.ErrConnection},
		{mssql.StreamError{InnerError: errors.New("bad packet")}, exactly.ErrConnection},
		{errors.New("something else"), exactly.ErrOther},
	} {
		if got := d.Classify(c.err); got != c.want {
			t.Errorf("Classify(%v) = %d, want %d", c.err, got, c.want)
		}
	}
}

// TestClassifyAzureTransients: every error Azure SQL documents as
// transient (reconfiguration, failover, throttling, resource limits) is a
// connection error, so the partition is retried from the ledger with
// backoff and an unknown COMMIT is read back; a deadlock is a conflict,
// retried at once. None of them may count as bad data (a dead letter).
func TestClassifyAzureTransients(t *testing.T) {
	d := &Dialect{}
	for _, n := range []int32{40613, 40197, 40501, 49918, 49919, 49920, 4060, 4221, 10928, 10929, 40540, 40544} {
		err := fmt.Errorf("writing table t: %w", mssql.Error{Number: n, Class: 16})
		if got := d.Classify(err); got != exactly.ErrConnection {
			t.Errorf("Classify(error %d) = %v, want a connection error", n, got)
		}
	}
	if got := d.Classify(mssql.Error{Number: 1205, Class: 13}); got != exactly.ErrConflict {
		t.Errorf("Classify(deadlock 1205) = %v, want a conflict", got)
	}
}

func TestUsesAzureAD(t *testing.T) {
	for dsn, want := range map[string]bool{
		"sqlserver://u:p@host:1433?database=db":                                                                                 false,
		"sqlserver://host.database.windows.net?database=db&fedauth=ActiveDirectoryDefault":                                      true,
		"server=host.database.windows.net;database=db;fedauth=ActiveDirectoryManagedIdentity;user id=00000000-0000-0000-0000-0": true,
		"sqlserver://host?database=db&FedAuth=ActiveDirectoryServicePrincipal":                                                  true,
	} {
		if got := UsesAzureAD(dsn); got != want {
			t.Errorf("UsesAzureAD(%q) = %v, want %v", dsn, got, want)
		}
	}
}

// TestPlanRefusesTooLongValues: a value longer than its bounded column is
// a data error naming the column before anything is sent (Babelfish
// answered the bulk copy with an unmapped protocol error, retried
// forever); a value that fits, or an unbounded column, passes.
func TestPlanRefusesTooLongValues(t *testing.T) {
	d := &Dialect{}
	write := func(name, code any) *exactly.TableWrite {
		return &exactly.TableWrite{Table: items, Keys: []string{"order", "line]no"},
			Columns: []string{"order", "line]no", "name", "code", "doc"},
			Upserts: [][]any{{int64(1), int64(1), name, code, strings.Repeat("x", 5000)}}}
	}
	for _, c := range []struct {
		name, code any
		col        string
	}{
		{strings.Repeat("é", 100), "ok", ""},
		{strings.Repeat("é", 101), "ok", "name"},
		{strings.Repeat("😀", 51), "ok", "name"}, // 102 UTF-16 code units in nvarchar(100)
		{"ok", strings.Repeat("c", 21), "code"}, // varchar(20)
		{"ok", strings.Repeat("c", 20), ""},
	} {
		_, err := d.plan(write(c.name, c.code))
		var tl *TooLongError
		switch {
		case c.col == "" && err != nil:
			t.Errorf("name %d runes, code %v: %v, want no error", len([]rune(c.name.(string))), c.code, err)
		case c.col != "" && (!errors.As(err, &tl) || tl.Column != c.col):
			t.Errorf("want a TooLongError for column %s, got %v", c.col, err)
		case c.col != "" && d.Classify(fmt.Errorf("writing: %w", err)) != exactly.ErrData:
			t.Errorf("%v is not classified as bad data", err)
		}
	}
}

// TestEntraExample: examples/azuresql-entra.yaml loads, and its DSN is
// one the azuread driver takes (parsed only: nothing is contacted).
func TestEntraExample(t *testing.T) {
	t.Setenv("KAFKA_PASSWORD", "x")
	c, err := exactly.LoadConfig(filepath.Join("..", "..", "..", "examples", "azuresql-entra.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Sink.Driver != "sqlserver" || !UsesAzureAD(c.Sink.DSN) {
		t.Fatalf("sink %s %q: want sqlserver with fedauth", c.Sink.Driver, c.Sink.DSN)
	}
	if _, err := azuread.NewConnector(c.Sink.DSN); err != nil {
		t.Errorf("azuread cannot use the example's DSN: %v", err)
	}
}

// TestLockTimedOut: 1222 is a lock timeout (a zombie's fence row), other
// errors are not.
func TestLockTimedOut(t *testing.T) {
	d := &Dialect{}
	if !d.LockTimedOut(fmt.Errorf("advancing offset: %w", mssql.Error{Number: 1222})) {
		t.Error("1222 is not recognised as a lock timeout")
	}
	for _, err := range []error{mssql.Error{Number: 1205}, mssql.Error{Number: 2627}, errors.New("x")} {
		if d.LockTimedOut(err) {
			t.Errorf("%v taken for a lock timeout", err)
		}
	}
	if !strings.Contains(sessionSQL, "SET LOCK_TIMEOUT") {
		t.Errorf("sessions wait for locks forever: %q", sessionSQL)
	}
}

// TestPlanRefusesValuesOfTheWrongType: a value the bulk copy cannot send
// to its column's type is a data error naming the column before anything
// is sent. Seen live on Babelfish: a JSON string into a varbinary column
// failed the bulk copy client-side ("invalid type for Binary column"),
// classified as unknown, and the partition retried forever. Integers as
// text and GUIDs as text are converted; a fraction never goes to an int;
// an exact decimal goes to a float column (the driver took no text there);
// text that is no decimal, or finer than the column's scale (the driver
// refuses, it never rounds), is refused.
func TestPlanRefusesValuesOfTheWrongType(t *testing.T) {
	d := &Dialect{}
	tbl := &exactly.Table{Name: "typed", Key: []string{"id"}, Columns: []exactly.Column{
		{Name: "id", Type: "bigint"}, {Name: "blob", Type: "varbinary(100)"}, {Name: "g", Type: "uniqueidentifier"},
		{Name: "flag", Type: "bit"}, {Name: "n", Type: "int"}, {Name: "amount", Type: "decimal(10,2)"}, {Name: "f", Type: "float"},
	}}
	for _, c := range []struct {
		col string
		v   any
		bad bool
	}{
		{"blob", "AAEC", true}, {"blob", []byte{0, 1}, false}, {"blob", nil, false},
		{"g", "6F9619FF-8B86-D011-B42D-00C04FC964FF", false}, {"g", "not-a-guid", true},
		{"flag", "yes", true}, {"flag", true, false},
		{"n", "42", false}, {"n", "abc", true}, {"n", exactly.Decimal("1.5"), true}, {"n", float64(1.5), true},
		{"n", float64(3), false}, {"n", int64(7), false},
		{"amount", "abc", true}, {"amount", exactly.Decimal("2.25"), false}, {"amount", ".5", false}, {"amount", int64(3), false},
		{"amount", exactly.Decimal("1.234"), true}, {"amount", exactly.Decimal("1e5"), false}, {"amount", exactly.Decimal("1e-3"), true}, {"amount", true, true},
		{"f", exactly.Decimal("1.5"), false}, {"f", "x", true}, {"f", int64(2), false},
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
		case c.bad && strings.Contains(err.Error(), fmt.Sprint(c.v)):
			t.Errorf("%v repeats the value", err)
		}
	}
}
