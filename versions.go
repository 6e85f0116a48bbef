package exactly

import (
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"
)

// compareVersionsAs orders two versions as a column of family fam
// compares them after the write's conversion: in a numeric column "10"
// and 9 are numbers (compared as text, "10" < "9" let the older change
// win inside a batch, where one by one the guard kept the newer), in a
// text column numbers are their decimal text.
func compareVersionsAs(fam Kind, a, b any) int {
	switch fam {
	case KindInt64, KindDecimal:
		if x, ok := numberOrText(a); ok {
			if y, ok := numberOrText(b); ok {
				return x.Cmp(y)
			}
		}
	case KindText:
		if x, ok := versionText(a); ok {
			if y, ok := versionText(b); ok {
				return strings.Compare(x, y)
			}
		}
	}
	return compareVersions(a, b)
}

// numberOrText reads a number, or decimal text, exactly.
func numberOrText(v any) (*big.Rat, bool) {
	if s, ok := v.(string); ok {
		return ratOf(strings.TrimSpace(s))
	}
	return number(v)
}

// versionText is a version as a text column holds it.
func versionText(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case Decimal:
		return string(x), true
	case int64:
		return strconv.FormatInt(x, 10), true
	}
	return "", false
}

// compareVersions orders two version values: -1, 0 or +1. nil (unknown)
// orders before everything; numbers compare exactly, times as instants,
// anything else as text.
func compareVersions(a, b any) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return -1
	case b == nil:
		return 1
	}
	if x, ok := number(a); ok {
		if y, ok := number(b); ok {
			return x.Cmp(y)
		}
	}
	if x, ok := a.(time.Time); ok {
		if y, ok := b.(time.Time); ok {
			return x.Compare(y)
		}
	}
	return strings.Compare(fmt.Sprint(a), fmt.Sprint(b))
}

// number reads an integer, float or decimal version exactly.
func number(v any) (*big.Rat, bool) {
	switch x := v.(type) {
	case int64:
		return new(big.Rat).SetInt64(x), true
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, false
		}
		return new(big.Rat).SetFloat64(x), true
	case Decimal:
		return ratOf(string(x))
	}
	return nil, false
}

// ratOf parses decimal text exactly, refusing exponents beyond ±1000:
// big.Rat would expand "1e999999999" digit by digit, and one such value in
// a record must not stall the sink.
func ratOf(s string) (*big.Rat, bool) {
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		exp, err := strconv.Atoi(strings.TrimPrefix(s[i+1:], "+"))
		if err != nil || exp < -1000 || exp > 1000 {
			return nil, false
		}
	}
	return new(big.Rat).SetString(s)
}
