package sqlserver

import (
	"fmt"
	"math"
	"strings"

	"github.com/exactly/exactly"
)

var _ exactly.ValueChecker = (*Dialect)(nil)

// ValueCheck implements exactly.ValueChecker with the checks the bulk
// copy needs anyway (see typeCheck, lengthCheck), made on every record
// before its batch is collapsed: a value converted for the column that
// the bulk copy cannot send (a string into an int or a varbinary, "maybe"
// for a bit, a fraction finer than a decimal's scale), that is longer
// than the column, or an integer outside a tinyint, smallint or int. They
// were made only on the rows left after the collapse, so a refused record
// that a later change of its key superseded was counted skipped, not
// dead-lettered, and the dead letters depended on where batches were cut.
func (*Dialect) ValueCheck(col *exactly.Column) func(any) string {
	cv := converter(col)
	tc := typeCheck(col.Type)
	lc := lengthCheck(col.Type)
	lo, hi, ranged := intRange(col.Type)
	if tc == nil && lc == nil && !ranged {
		return nil
	}
	return func(v any) string {
		v = cv(v)
		if v == nil {
			return ""
		}
		if tc != nil && !tc(v) {
			return fmt.Sprintf("a %T cannot be stored as %s", v, col.Type)
		}
		if lc != nil {
			if n, max, unit, long := lc(v); long {
				return fmt.Sprintf("%d %s long, the column holds %d (refused, never cut)", n, unit, max)
			}
		}
		if x, ok := v.(int64); ok && ranged && (x < lo || x > hi) {
			return fmt.Sprintf("%d is out of range for %s", x, col.Type)
		}
		return ""
	}
}

// intRange is the range of a tinyint, smallint or int column (a bigint
// holds every int64).
func intRange(typ string) (lo, hi int64, ok bool) {
	switch strings.ToLower(typ) {
	case "tinyint":
		return 0, math.MaxUint8, true
	case "smallint":
		return math.MinInt16, math.MaxInt16, true
	case "int":
		return math.MinInt32, math.MaxInt32, true
	}
	return 0, 0, false
}
