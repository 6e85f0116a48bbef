package sqlserver

import (
	"errors"
	"fmt"
	"math"
	"strings"

	mssql "github.com/microsoft/go-mssqldb"

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

var _ exactly.Constraints = (*Dialect)(nil)

// Constraint implements exactly.Constraints: 515 cannot insert NULL (a
// NOT NULL), 547 a conflict with a FOREIGN KEY or a CHECK constraint,
// told apart by the message, which names the kind of constraint (SQL
// Server: "conflicted with the FOREIGN KEY constraint"; Babelfish, which
// maps PostgreSQL's 23503 and 23514 to 547 with PostgreSQL's text:
// "violates foreign key constraint").
func (*Dialect) Constraint(err error) (constraint, foreignKey bool) {
	var me mssql.Error
	if !errors.As(err, &me) {
		return false, false
	}
	nums := []mssql.Error{me}
	nums = append(nums, me.All...)
	for _, e := range nums {
		switch e.Number {
		case 515:
			constraint = true
		case 547:
			if strings.Contains(strings.ToLower(e.Message), "foreign key") {
				foreignKey = true
			} else {
				constraint = true
			}
		}
	}
	return constraint, foreignKey
}
