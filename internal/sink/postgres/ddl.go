package postgres

import (
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/exactly/exactly"
)

// ColumnType implements exactly.Dialect.
func (*Dialect) ColumnType(t exactly.Type, _ bool) string {
	switch t.Kind {
	case exactly.KindBool:
		return "boolean"
	case exactly.KindInt16:
		return "smallint"
	case exactly.KindInt32:
		return "integer"
	case exactly.KindInt64:
		return "bigint"
	case exactly.KindFloat32:
		return "real"
	case exactly.KindFloat64:
		return "double precision"
	case exactly.KindDecimal:
		switch {
		case t.Scale < 0:
			return "numeric" // unconstrained: keeps every value exactly
		case t.Precision > 0 && t.Precision <= 1000 && t.Scale <= t.Precision:
			return fmt.Sprintf("numeric(%d,%d)", t.Precision, t.Scale)
		default:
			return fmt.Sprintf("numeric(%d,%d)", max(38, t.Scale+1), t.Scale)
		}
	case exactly.KindBytes:
		return "bytea"
	case exactly.KindDate:
		return "date"
	case exactly.KindTime:
		return "time" + frac(t.Precision)
	case exactly.KindTimestamp:
		return "timestamp" + frac(t.Precision)
	case exactly.KindTimestampTZ:
		return "timestamptz" + frac(t.Precision)
	case exactly.KindJSON:
		return "jsonb"
	}
	return "text"
}

// frac is the fractional-seconds modifier; PostgreSQL keeps at most
// microseconds, its default.
func frac(p int) string {
	if p > 0 && p < 6 {
		return fmt.Sprintf("(%d)", p)
	}
	return ""
}

// CreateTable implements exactly.Dialect.
func (d *Dialect) CreateTable(table string, cols []exactly.ColumnDef, key []string) string {
	var sb strings.Builder
	sb.WriteString("CREATE TABLE IF NOT EXISTS " + d.Quote(table) + " (")
	for i, c := range cols {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(d.Quote(c.Name) + " " + d.ColumnType(c.Type, false))
		if !c.Nullable {
			sb.WriteString(" NOT NULL")
		}
	}
	if len(key) > 0 {
		sb.WriteString(", PRIMARY KEY (" + d.list(key, "") + ")")
	}
	sb.WriteString(")")
	return sb.String()
}

// AddColumn implements exactly.Dialect.
func (d *Dialect) AddColumn(table string, col exactly.ColumnDef) string {
	return "ALTER TABLE " + d.Quote(table) + " ADD COLUMN IF NOT EXISTS " + d.Quote(col.Name) + " " + d.ColumnType(col.Type, false)
}

// CreateTableLike implements exactly.Dialect.
func (d *Dialect) CreateTableLike(name, source string) string {
	return "CREATE TABLE IF NOT EXISTS " + d.Quote(name) + " AS SELECT * FROM " + d.Quote(source) + " WHERE 1 = 0"
}

// maxIdentifier is PostgreSQL's NAMEDATALEN-1: a longer name is cut to it
// with a NOTICE, so a column made for a longer field would never match it.
const maxIdentifier = 63

// CheckColumnName implements exactly.ColumnNamer.
func (*Dialect) CheckColumnName(name string) error {
	if len(name) > maxIdentifier {
		return fmt.Errorf("it is %d bytes long and PostgreSQL keeps at most %d (it would cut the name)", len(name), maxIdentifier)
	}
	return nil
}

// Constraint implements exactly.Constraints: 23502 not null, 23514
// check, 23503 foreign key.
func (*Dialect) Constraint(err error) (constraint, foreignKey bool) {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false, false
	}
	return pe.Code == "23502" || pe.Code == "23514", pe.Code == "23503"
}

var _ exactly.Widener = (*Dialect)(nil)

// WidenColumn implements exactly.Widener: ALTER COLUMN … TYPE with the
// cast that writes each stored value as the new type's input function
// reads its text (an integer 12 becomes numeric 12, double 12, text
// "12"). It rewrites the table under an ACCESS EXCLUSIVE lock; a key
// column's index is rebuilt with it.
func (d *Dialect) WidenColumn(t *exactly.Table, col string, to exactly.Type) []string {
	typ := d.ColumnType(to, false)
	return []string{"ALTER TABLE " + d.Quote(t.Name) + " ALTER COLUMN " + d.Quote(col) + " TYPE " + typ +
		" USING " + d.Quote(col) + "::" + typ}
}
