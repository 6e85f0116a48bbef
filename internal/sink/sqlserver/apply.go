package sqlserver

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	mssql "github.com/microsoft/go-mssqldb"

	"github.com/exactly/exactly"
)

// plan is what Apply sends for one TableWrite, built without a
// connection so the SQL text and the parameters can be tested (see
// testdata/*.golden).
type plan struct {
	// Prepare creates the #temp staging table unless this session has
	// it, and empties it (a second Apply in one transaction must not
	// apply stale rows).
	Prepare string
	// Stage is the staging table and its columns, in bulk-copy order
	// (the first is exactly_op: 'u' upsert, 'd' delete).
	Stage   string
	Columns []string
	// Rows are the bulk-copied values, converted for the driver.
	Rows [][]any
	// Apply are the UPDATE, the INSERT and the DELETE, in order.
	Apply []string
	// Inline is the same write as one statement reading its rows from
	// VALUES lists of parameters, for a write small enough to go as
	// parameters (see inline, inlineArg), or nil. Pipelined (Statements)
	// it replaces the staging table, the bulk copy and their round trips.
	Inline *exactly.Statement
}

// maxInlineParams bounds the parameters of an inline write: with the
// flight's other statements it still fits SQL Server's 2,100 per request.
const maxInlineParams = 1500

// maxValuesRows is SQL Server's limit on the rows of one INSERT …
// VALUES.
const maxValuesRows = 1000

// Apply implements exactly.Dialect: bulk copy into #temp, then the
// UPDATE and the INSERT … WHERE NOT EXISTS of upsert (a plain INSERT for
// append tables) and one DELETE.
func (d *Dialect) Apply(ctx context.Context, tx *exactly.Tx, w *exactly.TableWrite) error {
	p, err := d.plan(w)
	if err != nil {
		return err
	}
	if err := d.stage(ctx, tx, p); err != nil {
		return err
	}
	for _, q := range p.Apply {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("applying staged rows: %w", err)
		}
	}
	return nil
}

// stage creates or empties the session's staging table and bulk-copies
// the plan's rows into it.
func (d *Dialect) stage(ctx context.Context, tx *exactly.Tx, p *plan) error {
	if _, err := tx.ExecContext(ctx, p.Prepare); err != nil {
		return fmt.Errorf("preparing staging table: %w", err)
	}
	stmt, err := tx.PrepareContext(ctx, mssql.CopyIn(p.Stage, mssql.BulkOptions{}, p.Columns...))
	if err != nil {
		return fmt.Errorf("starting bulk copy: %w", err)
	}
	for _, row := range p.Rows {
		if _, err := stmt.ExecContext(ctx, row...); err != nil {
			stmt.Close()
			return fmt.Errorf("bulk copying: %w", err)
		}
	}
	if _, err := stmt.ExecContext(ctx); err != nil { // flushes the copy
		stmt.Close()
		return fmt.Errorf("bulk copying: %w", err)
	}
	if err := stmt.Close(); err != nil {
		return fmt.Errorf("bulk copying: %w", err)
	}
	return nil
}

func (d *Dialect) plan(w *exactly.TableWrite) (*plan, error) {
	cols := w.StageColumns()
	stage := stageName(w.Table, cols, w.Part)
	p := &plan{Stage: stage, Columns: append([]string{"exactly_op"}, cols...)}
	var tooLong *TooLongError
	var badType *TypeError

	var def strings.Builder
	def.WriteString("IF OBJECT_ID(N'tempdb.." + stage + "') IS NULL CREATE TABLE " + stage + " (exactly_op CHAR(1) NOT NULL")
	for _, c := range cols {
		def.WriteString(", " + d.Quote(c) + " " + stageType(w.Table.Column(c)) + " NULL")
	}
	def.WriteString("); DELETE FROM " + stage + ";")
	p.Prepare = def.String()

	pos := map[string]int{}
	for i, c := range cols {
		pos[c] = i + 1
	}
	conv := make([]func(any) any, len(cols))
	for i, c := range cols {
		col := w.Table.Column(c)
		cv := converter(col)
		conv[i] = cv
		if col == nil {
			continue
		}
		if check := typeCheck(col.Type); check != nil {
			cv := conv[i]
			conv[i] = func(v any) any {
				v = cv(v)
				if v != nil && !check(v) && badType == nil {
					badType = &TypeError{Table: w.Table.Name, Column: c, Type: col.Type, Value: fmt.Sprintf("%T", v)}
				}
				return v
			}
		}
		if check := lengthCheck(col.Type); check != nil {
			cv := conv[i]
			conv[i] = func(v any) any {
				v = cv(v)
				if n, max, unit, long := check(v); long && tooLong == nil {
					tooLong = &TooLongError{Table: w.Table.Name, Column: c, Length: n, Max: max, Unit: unit}
				}
				return v
			}
		}
	}
	for _, r := range w.Upserts {
		row := make([]any, len(cols)+1)
		row[0] = "u"
		for i, c := range w.Columns {
			row[pos[c]] = conv[pos[c]-1](r[i])
		}
		p.Rows = append(p.Rows, row)
	}
	for i, k := range w.Deletes {
		row := make([]any, len(cols)+1)
		row[0] = "d"
		for j, c := range w.Keys {
			row[pos[c]] = conv[pos[c]-1](k[j])
		}
		if w.Version != "" {
			row[pos[w.Version]] = conv[pos[w.Version]-1](w.DeleteVersions[i])
		}
		p.Rows = append(p.Rows, row)
	}

	p.Apply = d.applySQL(w, d.stagedIn(stage, w.Table, cols))
	if tooLong != nil {
		return nil, tooLong
	}
	if badType != nil {
		return nil, badType
	}
	p.Inline = d.inline(w, cols, p.Rows)
	return p, nil
}

// source is where the apply statements read a write's staged rows of
// one operation ('u' or 'd'): a FROM item aliased s, and the condition
// that picks the operation's rows ("" for all).
type source func(op string) (from, cond string)

// stagedIn reads them from a staging table with an exactly_op column.
// Its code-page text columns are staged as Unicode (see stageType) and
// read back converted to the column's code page, as a varchar(max): an
// assignment to a shorter column still refuses what does not fit (CAST to
// varchar(n) would cut it), and the join compares varchar with varchar
// (a varchar key column compared with nvarchar is converted row by row,
// no index seek under a SQL collation).
func (d *Dialect) stagedIn(stage string, t *exactly.Table, cols []string) source {
	from := stage + " AS s"
	var conv bool
	sel := []string{"s0.exactly_op"}
	for _, c := range cols {
		if codePageText(t.Column(c)) {
			conv = true
			sel = append(sel, "CAST(s0."+d.Quote(c)+" AS VARCHAR(MAX)) AS "+d.Quote(c))
		} else {
			sel = append(sel, "s0."+d.Quote(c))
		}
	}
	if conv {
		from = "(SELECT " + strings.Join(sel, ", ") + " FROM " + stage + " AS s0) AS s"
	}
	return func(op string) (string, string) { return from, "s.exactly_op = '" + op + "'" }
}

// codePageText says whether a column holds text in a code page: char,
// varchar, text. go-mssqldb's bulk copy sends a string to such a column as
// its UTF-8 bytes, which the server reads in the column's code page: 'café'
// was stored as 'cafÃ©' under SQL_Latin1_General_CP1_CI_AS (1252), and
// 'façade' (7 bytes) did not fit a char(6). Staged as nvarchar, the text
// travels as UTF-16 and the server converts it, as it converts an inline
// parameter.
func codePageText(c *exactly.Column) bool {
	if c == nil {
		return false
	}
	l := strings.ToLower(c.Type)
	return strings.HasPrefix(l, "varchar") || strings.HasPrefix(l, "char") || l == "text" || strings.HasPrefix(l, "text ")
}

// applySQL are the statements applying a write's staged rows to the
// target table: the upsert (or the append), then the delete.
func (d *Dialect) applySQL(w *exactly.TableWrite, src source) []string {
	var out []string
	t := d.Quote(w.Table.Name)
	if len(w.Upserts) > 0 {
		if w.Append {
			from, cond := src("u")
			out = append(out, "INSERT INTO "+t+" ("+d.list(w.Columns, "")+") SELECT "+d.list(w.Columns, "s.")+
				" FROM "+from+where(cond)+";")
		} else {
			out = append(out, d.upsert(w, t, src)...)
		}
	}
	if len(w.Deletes) > 0 {
		var on []string
		for _, k := range w.Keys {
			on = append(on, "t."+d.Quote(k)+" = s."+d.Quote(k))
		}
		from, cond := src("d")
		out = append(out, "DELETE t FROM "+t+" AS t INNER JOIN "+from+" ON "+strings.Join(on, " AND ")+where(cond, d.versionGuard(w))+";")
	}
	return out
}

// where is a WHERE clause of the conditions that are not "", or "".
func where(conds ...string) string {
	var c []string
	for _, x := range conds {
		if x != "" {
			c = append(c, x)
		}
	}
	if len(c) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(c, " AND ")
}

// versionGuard is the condition that the staged version is not older
// than the stored one, or "" without a version column.
func (d *Dialect) versionGuard(w *exactly.TableWrite) string {
	if w.Version == "" {
		return ""
	}
	v := d.Quote(w.Version)
	return "(s." + v + " IS NULL OR t." + v + " IS NULL OR t." + v + " <= s." + v + ")"
}

// inline is the write as one statement of the apply statements alone,
// each reading the write's rows from a derived table, (VALUES …) AS s,
// every value a parameter cast to its column's type (a NULL a typed NULL
// literal); the UPDATE and the INSERT of an upsert read the same
// parameters. No staging table: a #temp or a table variable per table
// per flight is an object created in tempdb, 800 a flight at 800 tables.
// Nil when the write has more than maxInlineParams values or a value
// inlineArg cannot send exactly as the bulk copy would store it: that
// write is bulk-copied, so a value is stored the same whichever way its
// batch was cut.
func (d *Dialect) inline(w *exactly.TableWrite, cols []string, rows [][]any) *exactly.Statement {
	if len(rows) == 0 || len(rows)*len(cols) > maxInlineParams {
		return nil
	}
	// The column types as CAST takes them: a parameter's type is its Go
	// value's, a bare NULL is an int where every row of a VALUES list
	// holds NULL, and an int converts to no date or time type.
	types := make([]string, len(cols))
	for i, c := range cols {
		types[i] = "nvarchar(max)" // no such column: its name is refused by the apply
		if col := w.Table.Column(c); col != nil {
			types[i] = col.Type
			if k := strings.Index(strings.ToLower(types[i]), " collate "); k >= 0 {
				types[i] = types[i][:k]
			}
		}
	}
	var args []any
	values := map[string]*strings.Builder{"u": {}, "d": {}}
	for _, r := range rows {
		sb := values[r[0].(string)]
		if sb.Len() == 0 {
			sb.WriteString("(VALUES ")
		} else {
			sb.WriteString(", ")
		}
		sb.WriteString("(")
		for i, v := range r[1:] {
			if i > 0 {
				sb.WriteString(", ")
			}
			if v == nil {
				sb.WriteString("CAST(NULL AS " + types[i] + ")")
				continue
			}
			a, ok := inlineArg(types[i], v)
			if !ok {
				return nil
			}
			args = append(args, a)
			sb.WriteString("CAST(@p" + strconv.Itoa(len(args)) + " AS " + types[i] + ")")
		}
		sb.WriteString(")")
	}
	alias := ") AS s (" + d.list(cols, "") + ")"
	src := func(op string) (string, string) { return values[op].String() + alias, "" }
	return &exactly.Statement{SQL: strings.Join(d.applySQL(w, src), " "), Args: args}
}

// upsert is the set-based upsert, in two statements run in order: an
// UPDATE … FROM #stage of the rows that exist (unless the stored version is
// newer), then an INSERT … SELECT of the staged rows whose key is not
// there. The NOT EXISTS probe reads WITH (UPDLOCK, HOLDLOCK): it takes
// key-range locks, so a concurrent writer cannot insert the same key
// between the probe and the insert (the failure: a primary key violation,
// 2627, on a key that was absent a moment before). Not MERGE: it has a
// long record of concurrency bugs on SQL Server, and Babelfish refuses it;
// these statements run everywhere, so the ones CI runs are the ones users
// run. A key-only table has nothing to update.
func (d *Dialect) upsert(w *exactly.TableWrite, t string, src source) []string {
	var on, set []string
	isKey := map[string]bool{}
	for _, k := range w.Keys {
		isKey[k] = true
		on = append(on, "t."+d.Quote(k)+" = s."+d.Quote(k))
	}
	// Key columns are set too: under a case-insensitive collation 'abc'
	// and 'ABC' are one row, and the row's key is spelt as its last
	// change spelt it, as on the other dialects (an update that left the
	// key alone kept the spelling of the first insert, so one record per
	// transaction and one batch left different keys).
	for _, c := range w.Columns {
		set = append(set, d.Quote(c)+" = s."+d.Quote(c))
	}
	join := strings.Join(on, " AND ")
	from, cond := src("u")
	var out []string
	if len(set) > 0 {
		out = append(out, "UPDATE t SET "+strings.Join(set, ", ")+" FROM "+t+" AS t INNER JOIN "+from+" ON "+join+
			where(cond, d.versionGuard(w))+";")
	}
	out = append(out, "INSERT INTO "+t+" ("+d.list(w.Columns, "")+") SELECT "+d.list(w.Columns, "s.")+" FROM "+from+
		where(cond, "NOT EXISTS (SELECT 1 FROM "+t+" AS t WITH (UPDLOCK, HOLDLOCK) WHERE "+join+")")+";")
	return out
}

// stageName names the session's staging table for a table, column set
// and part: pipelined (ExecPipeline), every part of a flight is staged
// before any is applied, so two parts must never share a staging table.
func stageName(t *exactly.Table, cols []string, part int) string {
	key := t.Name
	for _, c := range cols {
		// The column's type too: a session keeps its #temp table, and
		// after a column was widened (evolve: widen) or altered, a stale
		// staging column of the old type refused the new values.
		key += "\x00" + c + "\x00" + stageType(t.Column(c))
	}
	if part != 0 {
		key += "\x00part" + strconv.Itoa(part)
	}
	h := sha1.Sum([]byte(key))
	return "#exactly_stage_" + hex.EncodeToString(h[:8])
}

// stageType is the target column's type for the staging column. Text
// columns without their own collation get the database's: a #temp table
// otherwise takes tempdb's, and comparing the two in the join fails
// ("cannot resolve the collation conflict").
func stageType(c *exactly.Column) string {
	if c == nil {
		return "NVARCHAR(MAX)"
	}
	typ := c.Type
	l := strings.ToLower(typ)
	if codePageText(c) {
		// Unicode on the wire (see codePageText), the column's collation
		// kept: converting to varchar uses its code page.
		typ = "NVARCHAR(MAX)"
		if i := strings.Index(l, " collate "); i >= 0 {
			typ += c.Type[i:]
		}
	}
	if (strings.Contains(l, "char") || strings.Contains(l, "text")) && !strings.Contains(l, " collate ") {
		typ += " COLLATE DATABASE_DEFAULT"
	}
	return typ
}

// converter maps a decoded value to what the bulk copy accepts for the
// column's type.
func converter(c *exactly.Column) func(any) any {
	typ := ""
	if c != nil {
		typ = strings.ToLower(c.Type)
	}
	switch {
	case typ == "bit":
		return bitValue
	case typ == "uniqueidentifier":
		return guidValue
	case typ == "tinyint", typ == "smallint", typ == "int", typ == "bigint":
		return intValue
	case strings.HasPrefix(typ, "float"), typ == "real":
		return floatValue
	case typ == "date":
		return dateValue
	case strings.HasPrefix(typ, "datetimeoffset"):
		return instantValue
	case strings.HasPrefix(typ, "datetime"), strings.HasPrefix(typ, "smalldatetime"):
		return utcValue
	case strings.HasPrefix(typ, "time"):
		return clockValue
	case strings.Contains(typ, "char"), strings.Contains(typ, "text"):
		return textValue
	case strings.HasPrefix(typ, "decimal"), strings.HasPrefix(typ, "numeric"):
		return decimalValue
	}
	return value
}

// decimalValue sends an integer to a decimal column as its text:
// go-mssqldb's bulk copy sends an int64 as an unscaled decimal of scale 0
// into a column of scale s, which the server reads as 7 × 10^-s (an
// integer 7 became 0.000000000000000007 in a DECIMAL(38,18), committed).
// The driver parses text at the column's scale.
//
// A number in exponent notation (JSON's 1e3, 2.5E-2) is sent as its
// plain digits: the driver parses only plain text and refused it, so a
// valid number was a dead letter on SQL Server alone.
func decimalValue(v any) any {
	switch x := v.(type) {
	case int64:
		return strconv.FormatInt(x, 10)
	case exactly.Decimal:
		if p, ok := plainDigits(string(x)); ok {
			return p
		}
	case string:
		if p, ok := plainDigits(strings.TrimSpace(x)); ok {
			return p
		}
	}
	return value(v)
}

// plainDigits writes a decimal number in exponent notation without it
// ("1.5e3" → "1500", "-2.5E-2" → "-0.025"); ok is false for any other
// text, and for exponents beyond what a decimal(38) could hold.
func plainDigits(s string) (string, bool) {
	i := strings.IndexAny(s, "eE")
	if i <= 0 {
		return "", false
	}
	exp, err := strconv.Atoi(s[i+1:])
	if err != nil || exp > 80 || exp < -80 {
		return "", false
	}
	m := s[:i]
	sign := ""
	if m[0] == '+' || m[0] == '-' {
		if m[0] == '-' {
			sign = "-"
		}
		m = m[1:]
	}
	intPart, frac, _ := strings.Cut(m, ".")
	digits := intPart + frac
	if digits == "" || strings.Trim(digits, "0123456789") != "" {
		return "", false
	}
	point := len(intPart) + exp // digits before the point
	switch {
	case point <= 0:
		digits = strings.Repeat("0", 1-point) + digits
		point = 1
	case point > len(digits):
		digits += strings.Repeat("0", point-len(digits))
	}
	out := strings.TrimLeft(digits[:point], "0")
	if out == "" {
		out = "0"
	}
	if f := digits[point:]; f != "" {
		out += "." + f
	}
	return sign + out, true
}

// textValue sends an integer to a text column as its decimal text, as
// SQL Server converts a bigint to nvarchar: the bulk copy sent an int64
// as 8 raw bytes, which SQL Server would store as garbage and Babelfish
// refuses ("invalid UTF16 byte sequence"), so a text key given integers
// failed its flight forever.
func textValue(v any) any {
	if x, ok := v.(int64); ok {
		return strconv.FormatInt(x, 10)
	}
	return value(v)
}

// value: exact decimals and JSON as text (the bulk copy parses decimal
// text exactly).
func value(v any) any {
	switch x := v.(type) {
	case exactly.Decimal:
		return string(x)
	case exactly.JSON:
		return string(x)
	case time.Time:
		return x.UTC()
	}
	return v
}

func parseTime(v any) any {
	if s, ok := v.(string); ok {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return t
		}
		// Text without a zone, as SQL Server itself reads it (the bulk
		// copy parses only "YYYY-MM-DD hh:mm:ss" followed by a zone).
		for _, layout := range naiveLayouts {
			if t, err := time.Parse(layout, s); err == nil {
				return t
			}
		}
	}
	return v
}

// naiveLayouts are the zone-less spellings of an instant taken as UTC.
var naiveLayouts = []string{"2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999"}

// instantValue keeps the zone: datetimeoffset stores it.
func instantValue(v any) any {
	if t, ok := parseTime(v).(time.Time); ok {
		return t
	}
	return value(v)
}

// utcValue stores instants in UTC in zone-less datetime2/datetime.
func utcValue(v any) any {
	if t, ok := parseTime(v).(time.Time); ok {
		return t.UTC()
	}
	return value(v)
}

// dateValue keeps the calendar day the value was given in.
func dateValue(v any) any {
	if t, ok := parseTime(v).(time.Time); ok {
		return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	}
	return value(v)
}

// clockValue writes a time of day on the zero date.
func clockValue(v any) any {
	if t, ok := v.(time.Time); ok {
		return time.Date(1, 1, 1, t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
	}
	return value(v)
}

// bitValue: the bulk copy takes only bool for bit columns.
func bitValue(v any) any {
	switch x := v.(type) {
	case int64:
		return x != 0
	case string:
		switch strings.ToLower(strings.TrimSpace(x)) {
		case "1", "true":
			return true
		case "0", "false":
			return false
		}
	}
	return v
}
