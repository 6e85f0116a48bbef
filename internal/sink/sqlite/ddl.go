package sqlite

import (
	"strings"

	"github.com/exactly/exactly"
)

// ColumnType implements exactly.Dialect. SQLite has type affinities, not
// types: the names chosen keep each value as written. Decimals are TEXT
// because NUMERIC affinity would turn "12.30" into the float 12.3.
func (*Dialect) ColumnType(t exactly.Type, _ bool) string {
	switch t.Kind {
	case exactly.KindBool:
		return "BOOLEAN"
	case exactly.KindInt16, exactly.KindInt32, exactly.KindInt64:
		return "INTEGER"
	case exactly.KindFloat32, exactly.KindFloat64:
		return "REAL"
	case exactly.KindBytes:
		return "BLOB"
	case exactly.KindDate:
		return "DATE"
	case exactly.KindTime:
		return "TIME"
	case exactly.KindTimestamp:
		return "TIMESTAMP"
	case exactly.KindTimestampTZ:
		return "TIMESTAMPTZ"
	case exactly.KindJSON:
		return "JSON"
	}
	return "TEXT" // text, decimals, unknown
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
		sb.WriteString(", PRIMARY KEY (" + d.list(key) + ")")
	}
	sb.WriteString(")")
	return sb.String()
}

// AddColumn implements exactly.Dialect. SQLite has no ADD COLUMN IF NOT
// EXISTS: a duplicate fails and the sink forgives it after describing the
// table again.
func (d *Dialect) AddColumn(table string, col exactly.ColumnDef) string {
	return "ALTER TABLE " + d.Quote(table) + " ADD COLUMN " + d.Quote(col.Name) + " " + d.ColumnType(col.Type, false)
}

// CreateTableLike implements exactly.Dialect.
func (d *Dialect) CreateTableLike(name, source string) string {
	return "CREATE TABLE IF NOT EXISTS " + d.Quote(name) + " AS SELECT * FROM " + d.Quote(source) + " WHERE 1 = 0"
}
