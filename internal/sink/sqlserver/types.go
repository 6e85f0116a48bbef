package sqlserver

import (
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"

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
		scale := 0
		if m := decimalType.FindStringSubmatch(l); m != nil && m[1] != "" {
			scale, _ = strconv.Atoi(m[1])
		}
		return func(v any) bool {
			switch x := v.(type) {
			case int, int8, int16, int32, int64, float32, float64:
				return true
			case string:
				// The driver parses the text itself and refuses a
				// fraction finer than the column's scale (it never rounds).
				m := decimalText.FindStringSubmatch(x)
				return m != nil && len(m[1])+len(m[2]) <= scale
			}
			return false
		}
	case strings.HasPrefix(l, "binary"), strings.HasPrefix(l, "varbinary"), l == "image":
		return func(v any) bool { _, ok := v.([]byte); return ok }
	}
	return nil
}

var (
	decimalType = regexp.MustCompile(`^(?:decimal|numeric)\s*\(\s*\d+\s*(?:,\s*(\d+)\s*)?\)`)
	decimalText = regexp.MustCompile(`^[+-]?(?:\d+(?:\.(\d*))?|\.(\d+))$`)
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
