package sqlserver

import (
	"fmt"
	"math"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	mssql "github.com/microsoft/go-mssqldb"
)

// TypeError is a value the bulk copy cannot send to its column's type (a
// JSON string into a varbinary, "abc" into an int, a string that is no
// GUID into a uniqueidentifier), found before the bulk copy. The driver
// refuses such a value client-side with a plain error ("mssql: invalid
// type for Binary column: string …") that no classifier could call bad
// data, so the batch was retried forever and its partition stalled. Found
// here, it is a data error naming the column: the row is isolated and
// dead-lettered (SQL Server itself refuses nvarchar into varbinary, 257).
type TypeError struct {
	Table, Column, Type string
	Value               string // the Go type of the value, never the value
}

func (e *TypeError) Error() string {
	return fmt.Sprintf("value for column %s of %s is a %s, which cannot be stored as %s",
		e.Column, e.Table, e.Value, e.Type)
}

// typeCheck returns what the bulk copy accepts for a column type the
// driver refuses other values for, or nil when it takes anything the
// converters produce.
func typeCheck(typ string) func(v any) bool {
	l := strings.ToLower(typ)
	switch {
	case l == "bit":
		return func(v any) bool { return reflect.TypeOf(v).Kind() == reflect.Bool }
	case l == "uniqueidentifier":
		return func(v any) bool {
			switch v.(type) {
			case mssql.UniqueIdentifier, []byte:
				return true
			}
			return false
		}
	case l == "tinyint", l == "smallint", l == "int", l == "bigint":
		return func(v any) bool {
			switch v.(type) {
			case int, int32, int64:
				return true
			}
			return false
		}
	case strings.HasPrefix(l, "float"), l == "real":
		return func(v any) bool {
			switch v.(type) {
			case float32, float64, int, int64:
				return true
			}
			return false
		}
	case strings.HasPrefix(l, "decimal"), strings.HasPrefix(l, "numeric"):
		scale, precision := 0, 18 // SQL Server's decimal is decimal(18,0)
		if m := decimalType.FindStringSubmatch(l); m != nil {
			precision, _ = strconv.Atoi(m[1])
			if m[2] != "" {
				scale, _ = strconv.Atoi(m[2])
			}
		}
		return func(v any) bool {
			switch x := v.(type) {
			case int, int8, int16, int32, int64, float32, float64:
				return true
			case string:
				// The driver parses the text itself and refuses a
				// fraction finer than the column's scale (it never rounds);
				// more integer digits than precision - scale the server
				// refuses (8115, arithmetic overflow), after the
				// collapse, so a superseded record was only skipped.
				m := decimalText.FindStringSubmatch(x)
				return m != nil && len(m[2])+len(m[3]) <= scale &&
					len(strings.TrimLeft(m[1], "0")) <= precision-scale
			}
			return false
		}
	case strings.HasPrefix(l, "binary"), strings.HasPrefix(l, "varbinary"), l == "image":
		return func(v any) bool { _, ok := v.([]byte); return ok }
	case strings.HasPrefix(l, "nchar"), strings.HasPrefix(l, "nvarchar"), l == "ntext",
		strings.HasPrefix(l, "char"), strings.HasPrefix(l, "varchar"), l == "text":
		// The driver encodes text, bytes and integers; a bool, a float
		// or a time it refuses ("invalid type for nvarchar column").
		return func(v any) bool {
			switch v.(type) {
			case string, []byte, int, int8, int16, int32, int64:
				return true
			}
			return false
		}
	case l == "date":
		return driverTime(bulkDateLayout)
	case l == "time" || strings.HasPrefix(l, "time("):
		return driverTime(bulkTimeLayout)
	case strings.HasPrefix(l, "datetime"), l == "smalldatetime":
		return driverTime(bulkDateTimeLayout)
	}
	return nil
}

// The layouts go-mssqldb's bulk copy parses text of a date, time and
// datetime/datetime2/datetimeoffset column with (bulkcopy.go); it refuses
// other text, and any value that is neither text nor a time.Time, with a
// plain error.
const (
	bulkDateLayout     = "2006-01-02"
	bulkTimeLayout     = "15:04:05.9999999"
	bulkDateTimeLayout = "2006-01-02 15:04:05.999999999Z07:00"
)

// driverTime accepts what the bulk copy sends to a column whose text it
// parses with layout: a time.Time, or text that layout parses.
func driverTime(layout string) func(v any) bool {
	return func(v any) bool {
		switch x := v.(type) {
		case time.Time:
			return true
		case string:
			_, err := time.Parse(layout, x)
			return err == nil
		}
		return false
	}
}

var (
	decimalType = regexp.MustCompile(`^(?:decimal|numeric)\s*\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\)`)
	decimalText = regexp.MustCompile(`^[+-]?(?:(\d+)(?:\.(\d*))?|\.(\d+))$`)
)

// floatValue sends a number given as text or as an exact decimal to a
// float column as a float64 (the bulk copy takes no text there).
func floatValue(v any) any {
	v = value(v)
	if s, ok := v.(string); ok {
		if f, err := strconv.ParseFloat(strings.TrimSpace(s), 64); err == nil {
			return f
		}
	}
	return v
}

// guidValue sends a GUID given as text ("6F9619FF-8B86-D011-B42D-00C04FC964FF")
// as the 16 bytes the bulk copy takes for a uniqueidentifier.
func guidValue(v any) any {
	if s, ok := v.(string); ok {
		var g mssql.UniqueIdentifier
		if err := g.Scan(s); err == nil {
			return g
		}
	}
	return value(v)
}

// intValue sends an integer given as text or as an exact decimal without
// a fraction as an int64; anything else is left for typeCheck to refuse
// (the driver would cut 1.5 to 1 from a float, never silently here).
func intValue(v any) any {
	v = value(v)
	switch x := v.(type) {
	case string:
		if n, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64); err == nil {
			return n
		}
	case float64:
		if n := int64(x); float64(n) == x {
			return n
		}
	}
	return v
}

// inlineArg is the parameter that stores v in a column of type typ
// exactly as the bulk copy stores it, and true; false when there is no
// such parameter (the write is then bulk-copied). v is already converted
// (converter). The server converts each parameter to the staging column's
// type; only conversions that are exact and independent of session
// settings are used: integers in the column's range, bits, floats, decimal
// text (typeCheck bounded its scale), Unicode text, ASCII text for
// non-Unicode columns (the bulk copy sends a varchar's bytes as they are,
// the server converts nvarchar into the column's code page: they agree on
// ASCII only), bytes, GUIDs as text, and dates and times as ISO 8601 text
// cut to the column's fractional digits, as the bulk copy cuts them.
func inlineArg(typ string, v any) (any, bool) {
	l := strings.ToLower(typ)
	if i := strings.Index(l, " collate "); i >= 0 {
		l = l[:i]
	}
	binary := strings.HasPrefix(l, "binary") || strings.HasPrefix(l, "varbinary") || l == "image"
	if v == nil {
		return nil, true // sent as a NULL literal
	}
	switch {
	case l == "tinyint", l == "smallint", l == "int", l == "bigint":
		n, ok := v.(int64)
		if !ok {
			return nil, false
		}
		lo, hi, ranged := intRange(l)
		return n, !ranged || n >= lo && n <= hi
	case l == "bit":
		b, ok := v.(bool)
		return b, ok
	case strings.HasPrefix(l, "float"), l == "real":
		switch x := v.(type) {
		case float64:
			return x, !math.IsNaN(x) && !math.IsInf(x, 0)
		case int64:
			// Exact as a float64, so the server's conversion and the
			// driver's agree.
			return float64(x), x > -1<<53 && x < 1<<53
		}
	case strings.HasPrefix(l, "decimal"), strings.HasPrefix(l, "numeric"):
		switch x := v.(type) {
		case string:
			return x, true
		case int64:
			return strconv.FormatInt(x, 10), true
		}
	case strings.HasPrefix(l, "nvarchar"), strings.HasPrefix(l, "nchar"), l == "ntext", l == "":
		s, ok := v.(string)
		return s, ok
	case strings.HasPrefix(l, "varchar"), strings.HasPrefix(l, "char"), l == "text":
		s, ok := v.(string)
		if !ok {
			return nil, false
		}
		for i := 0; i < len(s); i++ {
			if s[i] >= 0x80 {
				return nil, false
			}
		}
		return s, true
	case binary:
		b, ok := v.([]byte)
		return b, ok
	case l == "uniqueidentifier":
		if g, ok := v.(mssql.UniqueIdentifier); ok {
			return g.String(), true
		}
	case l == "date":
		switch x := v.(type) {
		case time.Time:
			return x.Format("2006-01-02"), x.Year() >= 1 && x.Year() <= 9999
		case string: // the bulk copy parses YYYY-MM-DD
			t, err := time.Parse("2006-01-02", x)
			return x, err == nil && t.Year() >= 1
		}
	case strings.HasPrefix(l, "datetime2"), strings.HasPrefix(l, "datetimeoffset"), strings.HasPrefix(l, "time"):
		t, ok := v.(time.Time)
		if !ok || t.Year() < 1 || t.Year() > 9999 {
			return nil, false
		}
		scale := 7
		if m := timeScale.FindStringSubmatch(l); m != nil {
			scale, _ = strconv.Atoi(m[1])
		}
		frac := ""
		if scale > 0 {
			frac = "." + strings.Repeat("0", scale) // Format cuts, never rounds
		}
		switch {
		case strings.HasPrefix(l, "datetimeoffset"):
			// As a datetimeoffset parameter (the driver's for a
			// time.Time), cut to the column's digits: Babelfish has no
			// implicit conversion from text to datetimeoffset.
			if _, off := t.Zone(); off%60 != 0 {
				return nil, false
			}
			return t.Truncate(time.Duration(math.Pow10(9 - scale))), true
		case strings.HasPrefix(l, "datetime2"):
			return t.Format("2006-01-02T15:04:05" + frac), true
		default:
			return t.Format("15:04:05" + frac), true
		}
	}
	return nil, false
}

var timeScale = regexp.MustCompile(`^\w+\((\d)\)`)
