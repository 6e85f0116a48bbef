package sqlserver

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// TooLongError is a value longer than its column holds, found before the
// bulk copy sends it. SQL Server refuses such a value in a bulk copy with
// 4815 ("invalid column length from the bcp client", naming only a column
// number); Babelfish with an unmapped protocol error (33557097) that no
// classifier could call bad data, so the batch was retried forever. Found
// here, it is a data error naming the column on every server: the row is
// isolated and dead-lettered, never cut to fit.
type TooLongError struct {
	Table, Column string
	Length, Max   int
	Unit          string // characters, UTF-16 code units, bytes
}

func (e *TooLongError) Error() string {
	return fmt.Sprintf("value for column %s of %s is %d %s long, the column holds %d (refused, never cut)",
		e.Column, e.Table, e.Length, e.Unit, e.Max)
}

// bounded is a column type with a declared length: char(n), varchar(n),
// nchar(n), nvarchar(n), binary(n), varbinary(n). (max) is unbounded.
var bounded = regexp.MustCompile(`^(n?)(var)?(char|binary)\((\d+)\)`)

// lengthCheck returns a function telling how far a converted value
// exceeds the column's declared length, or nil when the column has none.
// It errs on the side of sending: varchar(n) counts bytes in the
// column's code page, at least one per character, so a value of more than
// n characters is certainly too long and one of fewer is left to the
// server.
func lengthCheck(typ string) func(v any) (length, max int, unit string, tooLong bool) {
	m := bounded.FindStringSubmatch(strings.ToLower(typ))
	if m == nil {
		return nil
	}
	max, err := strconv.Atoi(m[4])
	if err != nil {
		return nil
	}
	national, binary := m[1] == "n", m[3] == "binary"
	return func(v any) (int, int, string, bool) {
		switch x := v.(type) {
		case string:
			switch {
			case binary:
				return len(x), max, "bytes", len(x) > max
			case national:
				n := 0
				for _, r := range x {
					n += utf16.RuneLen(r)
				}
				return n, max, "UTF-16 code units", n > max
			default:
				n := utf8.RuneCountInString(x)
				return n, max, "characters", n > max
			}
		case []byte:
			if binary {
				return len(x), max, "bytes", len(x) > max
			}
		}
		return 0, max, "", false
	}
}
