package mysql

import (
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/exactly/exactly"
)

var _ exactly.ValueChecker = (*Dialect)(nil)

// ValueCheck implements exactly.ValueChecker for the session's strict
// mode (STRICT_ALL_TABLES, see Open): it tells in Go what MySQL/MariaDB
// would refuse, so a refused record is a dead letter even when a later
// change of its key supersedes it inside its batch. Decided in Go:
// integer columns (an integer or canonical integer text out of the
// type's range, signed or unsigned; text without a digit, such as "maybe"
// for a BOOLEAN, which is a tinyint(1)), DECIMAL(p,s) (more integer
// digits than p-s), CHAR/VARCHAR(n) (more than n characters, unless the
// excess is spaces, which MySQL drops with a note), TINYTEXT/TEXT/
// MEDIUMTEXT (more bytes than the type holds) and DATE/DATETIME (a
// YYYY-MM-DD prefix naming no calendar day, such as 2024-13-45). Other
// spellings are left to the database, which has the last word when the
// record is written.
func (*Dialect) ValueCheck(col *exactly.Column) func(any) string {
	typ := strings.ToLower(col.Type)
	unsigned := strings.Contains(typ, "unsigned")
	base := typ
	if i := strings.IndexAny(base, "( "); i >= 0 {
		base = base[:i]
	}
	switch base {
	case "tinyint":
		return intCheck(math.MinInt8, math.MaxInt8, 255, unsigned)
	case "smallint":
		return intCheck(math.MinInt16, math.MaxInt16, math.MaxUint16, unsigned)
	case "mediumint":
		return intCheck(-1<<23, 1<<23-1, 1<<24-1, unsigned)
	case "int", "integer":
		return intCheck(math.MinInt32, math.MaxInt32, math.MaxUint32, unsigned)
	case "bigint":
		return intCheck(math.MinInt64, math.MaxInt64, math.MaxInt64, unsigned) // beyond int64: left to the database
	case "decimal", "numeric":
		if m := decimalType.FindStringSubmatch(typ); m != nil {
			p, _ := strconv.Atoi(m[1])
			s := 0
			if m[2] != "" {
				s, _ = strconv.Atoi(m[2])
			}
			return decimalCheck(p-s, unsigned)
		}
	case "char", "varchar":
		if m := lengthType.FindStringSubmatch(typ); m != nil {
			n, _ := strconv.Atoi(m[1])
			return charCheck(n)
		}
	case "tinytext":
		return bytesCheck(255)
	case "text":
		return bytesCheck(65535)
	case "mediumtext":
		return bytesCheck(1<<24 - 1)
	case "date", "datetime", "timestamp":
		return dateCheck
	}
	return nil
}

var (
	decimalType = regexp.MustCompile(`^(?:decimal|numeric)\((\d+)(?:,(\d+))?\)`)
	lengthType  = regexp.MustCompile(`^(?:var)?char\((\d+)\)`)
)

// textOf is a value's text as the driver sends it, for strings and
// decimals; ok is false for other types.
func textOf(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case exactly.Decimal:
		return string(x), true
	}
	return "", false
}

func intCheck(lo, hi, uhi int64, unsigned bool) func(any) string {
	if unsigned {
		lo, hi = 0, uhi
	}
	return func(v any) string {
		var n int64
		switch x := v.(type) {
		case int64:
			n = x
		case bool:
			return ""
		default:
			s, ok := textOf(v)
			if !ok {
				return ""
			}
			s = strings.TrimSpace(s)
			if !strings.ContainsAny(s, "0123456789") {
				return "not an integer: " + quote(s)
			}
			p, ok := exactly.IntText(s)
			if !ok {
				if !numericText.MatchString(s) {
					// "12abc", "0x1F", "1 2": strict mode's 1265/1366.
					return "not an integer: " + quote(s)
				}
				return "" // "1.5", "1e3": MySQL rounds them
			}
			n, _ = strconv.ParseInt(p, 10, 64)
		}
		if n < lo || n > hi {
			return "out of range for the column's integer type: " + strconv.FormatInt(n, 10)
		}
		return ""
	}
}

// numericText is a number as MySQL reads one from text without a
// warning: sign, digits, a fraction, an exponent.
var numericText = regexp.MustCompile(`^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$`)

var plainDecimal = regexp.MustCompile(`^[+-]?(\d*)(?:\.\d*)?$`)

// decimalCheck refuses a number with more integer digits than the column
// holds (MySQL error 1264); more fraction digits are rounded, not refused.
func decimalCheck(intDigits int, unsigned bool) func(any) string {
	return func(v any) string {
		var s string
		switch x := v.(type) {
		case int64:
			s = strconv.FormatInt(x, 10)
		default:
			t, ok := textOf(v)
			if !ok {
				return ""
			}
			s = strings.TrimSpace(t)
			if !strings.ContainsAny(s, "0123456789") {
				return "not a number: " + quote(s)
			}
		}
		m := plainDecimal.FindStringSubmatch(s)
		if m == nil {
			if !numericText.MatchString(s) {
				return "not a number: " + quote(s) // "12abc", "0x1F": 1265
			}
			return "" // exponents: MySQL's own reading
		}
		if unsigned && strings.HasPrefix(s, "-") && strings.Trim(s, "-0.") != "" {
			return "out of range for an unsigned decimal: " + quote(s)
		}
		if d := len(strings.TrimLeft(m[1], "0")); d > intDigits {
			return "out of range: " + strconv.Itoa(d) + " integer digits, the column holds " + strconv.Itoa(intDigits)
		}
		return ""
	}
}

// charCheck refuses more than n characters (error 1406) unless the excess
// is spaces.
func charCheck(n int) func(any) string {
	return func(v any) string {
		s, ok := textOf(v)
		if !ok || len(s) <= n {
			return ""
		}
		i, count := 0, 0
		for i < len(s) && count < n {
			_, w := utf8.DecodeRuneInString(s[i:])
			i += w
			count++
		}
		if strings.TrimLeft(s[i:], " ") == "" {
			return ""
		}
		return "too long: " + strconv.Itoa(utf8.RuneCountInString(s)) + " characters, the column holds " + strconv.Itoa(n)
	}
}

func bytesCheck(n int) func(any) string {
	return func(v any) string {
		s, ok := textOf(v)
		if !ok || len(s) <= n {
			return ""
		}
		return "too long: " + strconv.Itoa(len(s)) + " bytes, the column holds " + strconv.Itoa(n)
	}
}

// dateCheck refuses text starting with YYYY-MM-DD that names no calendar
// day (MySQL error 1292 in strict mode): a month 13, February 30. A zero
// date or month (0000-00-00) is left to the session's sql_mode.
func dateCheck(v any) string {
	s, ok := v.(string)
	if !ok {
		return ""
	}
	s = strings.TrimSpace(s)
	if len(s) < 10 || s[4] != '-' || s[7] != '-' || (len(s) > 10 && s[10] != 'T' && s[10] != ' ') {
		return ""
	}
	y, ey := strconv.Atoi(s[0:4])
	m, em := strconv.Atoi(s[5:7])
	d, ed := strconv.Atoi(s[8:10])
	if ey != nil || em != nil || ed != nil || strings.ContainsAny(s[:10], "+ ") || s[0] == '-' || s[5] == '-' || s[8] == '-' {
		return ""
	}
	if y == 0 || m == 0 || d == 0 {
		return ""
	}
	if m > 12 || d > time.Date(y, time.Month(m)+1, 0, 0, 0, 0, 0, time.UTC).Day() {
		return "not a calendar date: " + quote(s)
	}
	return ""
}

func quote(s string) string {
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return strconv.Quote(s)
}
