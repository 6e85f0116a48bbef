package postgres

import (
	"fmt"
	"math"
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/exactly/exactly"
)

var _ exactly.ValueChecker = (*Dialect)(nil)

// ValueCheck implements exactly.ValueChecker. Every value reaches
// PostgreSQL as text cast to the column's type (see text), so a value is
// refused exactly when the type's input function refuses its text form.
// Decided in Go: boolean (boolin's spellings), smallint/integer/bigint
// (decimal digits and range; PostgreSQL 16's 0x/0o/0b prefixes and
// underscores are left to the database), date and timestamp (a
// YYYY-MM-DD prefix naming no calendar day, or text with no digit that is
// none of PostgreSQL's special words), and text, varchar(n) and char(n)
// (a NUL byte; more than n characters unless the excess is spaces, which
// PostgreSQL trims). Anything else is left to the database.
func (*Dialect) ValueCheck(col *exactly.Column) func(any) string {
	typ := col.Type
	if strings.HasSuffix(typ, "]") {
		return nil // arrays
	}
	switch {
	case typ == "boolean":
		return checkBool
	case typ == "smallint":
		return checkInt16
	case typ == "integer":
		return checkInt32
	case typ == "bigint":
		return checkInt64
	case typ == "date" || strings.HasPrefix(typ, "timestamp"):
		return checkDate
	case typ == "text" || typ == "character varying":
		return checkText
	case typ == "numeric":
		return checkNumeric(0, 0)
	}
	if rest, ok := strings.CutPrefix(typ, "numeric("); ok {
		var p, sc int
		if _, err := fmt.Sscanf(rest, "%d,%d)", &p, &sc); err == nil && p > 0 && sc >= 0 && sc <= p {
			return checkNumeric(p, sc)
		}
	}
	for _, p := range []string{"character varying(", "character("} {
		if rest, ok := strings.CutPrefix(typ, p); ok {
			if n, err := strconv.Atoi(strings.TrimSuffix(rest, ")")); err == nil && n > 0 {
				return textOf(n)
			}
		}
	}
	return nil
}

// isSpace is the C isspace PostgreSQL's input functions trim with.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

func trim(s string) string {
	for len(s) > 0 && isSpace(s[0]) {
		s = s[1:]
	}
	for len(s) > 0 && isSpace(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}

// textForm is v's text as the apply statement sends it; strings and
// integers without allocating.
func textForm(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case exactly.Decimal:
		return string(x)
	}
	return text(v).(string)
}

// checkBool follows boolin (parse_bool_with_len): after trimming, a
// non-empty case-insensitive prefix of true, false, yes or no; on, of or
// off (at least two letters); 1 or 0.
func checkBool(v any) string {
	switch v.(type) {
	case bool:
		return ""
	case int64:
		if x := v.(int64); x == 0 || x == 1 {
			return ""
		}
		return "not a boolean (PostgreSQL takes 0 and 1, not other integers)"
	}
	s := trim(textForm(v))
	ok := false
	if s != "" {
		prefix := func(word string, min int) bool {
			return len(s) >= min && len(s) <= len(word) && strings.EqualFold(s, word[:len(s)])
		}
		switch s[0] | 0x20 {
		case 't':
			ok = prefix("true", 1)
		case 'f':
			ok = prefix("false", 1)
		case 'y':
			ok = prefix("yes", 1)
		case 'n':
			ok = prefix("no", 1)
		case 'o':
			ok = prefix("on", 2) || prefix("off", 2)
		case '1', '0':
			ok = len(s) == 1 && (s[0] == '1' || s[0] == '0')
		}
	}
	if ok {
		return ""
	}
	return "not a boolean: " + quote(s) + " (PostgreSQL takes true/false, yes/no, on/off, 1/0 and their prefixes)"
}

func checkInt16(v any) string { return checkInt(v, math.MinInt16, math.MaxInt16) }
func checkInt32(v any) string { return checkInt(v, math.MinInt32, math.MaxInt32) }
func checkInt64(v any) string { return checkInt(v, math.MinInt64, math.MaxInt64) }

// checkInt follows int2in/int4in/int8in: optional whitespace and sign,
// decimal digits, within the type's range.
func checkInt(v any, lo, hi int64) string {
	if x, ok := v.(int64); ok {
		if x < lo || x > hi {
			return "out of range for the column's integer type"
		}
		return ""
	}
	s := trim(textForm(v))
	digits := strings.TrimLeft(s, "+-")
	if len(s)-len(digits) > 1 {
		return "not an integer: " + quote(s)
	}
	if len(digits) > 1 && digits[0] == '0' && strings.ContainsAny(digits[1:2], "xXoObB") || strings.Contains(digits, "_") {
		return "" // PostgreSQL 16 reads these; older versions do not
	}
	if digits == "" || strings.TrimLeft(digits, "0123456789") != "" {
		return "not an integer: " + quote(s)
	}
	x, err := strconv.ParseInt(s, 10, 64)
	if err != nil || x < lo || x > hi {
		return "out of range for the column's integer type: " + quote(s)
	}
	return ""
}

// numberText is numeric_in's plain form: sign, digits with an optional
// point, an optional exponent (after trimming).
var numberText = regexp.MustCompile(`^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$`)

// checkNumeric follows numeric_in and apply_typmod: text that is not a
// number (22P02), and, for numeric(p,s), a value that rounded to s
// fraction digits has more than p-s integer digits ("numeric field
// overflow", 22003); more fraction digits are rounded, not refused.
// NaN is taken; Infinity only by an unconstrained numeric.
func checkNumeric(p, scale int) func(any) string {
	return func(v any) string {
		if _, ok := v.(bool); ok {
			return "not a number: a boolean"
		}
		s := trim(textForm(v))
		switch strings.ToLower(strings.TrimLeft(s, "+-")) {
		case "nan":
			if strings.ContainsAny(s, "+-") {
				return "not a number: " + quote(s)
			}
			return ""
		case "infinity", "inf":
			if p > 0 {
				return "numeric field overflow: " + quote(s) + " in numeric(" + strconv.Itoa(p) + "," + strconv.Itoa(scale) + ")"
			}
			return ""
		}
		if !numberText.MatchString(s) {
			return "not a number: " + quote(s)
		}
		if p == 0 {
			return ""
		}
		r, ok := new(big.Rat).SetString(s)
		if !ok {
			return "" // numeric_in's own reading
		}
		// Round half away from zero to scale digits, then count the
		// integer digits.
		pow := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scale)), nil)
		scaled := new(big.Rat).Mul(new(big.Rat).Abs(r), new(big.Rat).SetInt(pow))
		q, m := new(big.Int).QuoRem(scaled.Num(), scaled.Denom(), new(big.Int))
		if new(big.Int).Mul(m, big.NewInt(2)).Cmp(scaled.Denom()) >= 0 {
			q.Add(q, big.NewInt(1))
		}
		intPart := new(big.Int).Quo(q, pow)
		digits := 0
		if intPart.Sign() != 0 {
			digits = len(intPart.String())
		}
		if digits > p-scale {
			return "numeric field overflow: " + quote(s) + " has " + strconv.Itoa(digits) + " integer digits, numeric(" + strconv.Itoa(p) + "," + strconv.Itoa(scale) + ") holds " + strconv.Itoa(p-scale)
		}
		return ""
	}
}

// checkDate refuses, for date and timestamp columns, what PostgreSQL
// refuses and Go can tell for certain: text starting with YYYY-MM-DD
// that names no calendar day (month 13, February 30, year 0), and text
// with no digit at all that is not one of the special inputs. Other
// spellings (month names, other orders) are left to the database.
func checkDate(v any) string {
	switch v.(type) {
	case time.Time:
		return ""
	case int64, float64, exactly.Decimal:
		return ""
	}
	s := trim(textForm(v))
	if len(s) >= 10 && (len(s) == 10 || s[10] == 'T' || s[10] == 't' || s[10] == ' ') && s[4] == '-' && s[7] == '-' {
		y, ey := strconv.Atoi(s[0:4])
		m, em := strconv.Atoi(s[5:7])
		d, ed := strconv.Atoi(s[8:10])
		if ey == nil && em == nil && ed == nil && s[0] != '+' && s[5] != '+' && s[8] != '+' && s[0] != '-' && s[5] != '-' && s[8] != '-' {
			if y == 0 || m < 1 || m > 12 || d < 1 || d > time.Date(y, time.Month(m)+1, 0, 0, 0, 0, 0, time.UTC).Day() {
				return "not a calendar date: " + quote(s)
			}
			return ""
		}
	}
	if strings.ContainsAny(s, "0123456789") {
		return ""
	}
	switch strings.ToLower(s) {
	case "epoch", "infinity", "+infinity", "-infinity", "now", "today", "tomorrow", "yesterday":
		return ""
	}
	return "not a date: " + quote(s)
}

func checkText(v any) string {
	if s, ok := v.(string); ok && strings.IndexByte(s, 0) >= 0 {
		return "text with a NUL byte (PostgreSQL text cannot hold one)"
	}
	return ""
}

// textOf checks varchar(n) and char(n): the INSERT's assignment refuses
// more than n characters (SQLSTATE 22001) unless the excess is all
// spaces, which it trims.
func textOf(n int) func(any) string {
	return func(v any) string {
		if why := checkText(v); why != "" {
			return why
		}
		var s string
		switch x := v.(type) {
		case string:
			s = x
		case int64:
			if n >= 20 {
				return ""
			}
			s = strconv.FormatInt(x, 10)
		default:
			s = textForm(v)
		}
		if len(s) <= n {
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

func quote(s string) string {
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return strconv.Quote(s)
}
