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

var _ exactly.Widener = (*Dialect)(nil)

// WidenColumn implements exactly.Widener. SQLite cannot change a
// column's type: the table is rebuilt (a new table with the new declared
// type, the rows copied with the column CAST to it, the old table dropped,
// the new one renamed), in the transaction Sink runs the statements in.
// The CAST matters: a declared type only sets the affinity of later
// writes, and an integer 12 kept as an integer in a column now TEXT would
// not be the "12" a direct write stores. A table with indexes or triggers
// of its own is refused (the rebuild would drop them): the guard's CHECK
// fails, naming why.
func (d *Dialect) WidenColumn(t *exactly.Table, col string, to exactly.Type) []string {
	tmp := t.Name + "_exactly_widen"
	var defs, names, sel []string
	for _, c := range t.Columns {
		typ := c.Type
		if c.Name == col {
			typ = d.ColumnType(to, false)
			sel = append(sel, "CAST("+d.Quote(c.Name)+" AS "+typ+")")
		} else {
			sel = append(sel, d.Quote(c.Name))
		}
		def := d.Quote(c.Name) + " " + typ
		if !c.Nullable {
			def += " NOT NULL"
		}
		defs = append(defs, def)
		names = append(names, d.Quote(c.Name))
	}
	if len(t.Key) > 0 {
		defs = append(defs, "PRIMARY KEY ("+d.list(t.Key)+")")
	}
	lit := "'" + strings.ReplaceAll(t.Name, "'", "''") + "'"
	return []string{
		`CREATE TEMP TABLE IF NOT EXISTS exactly_widen_guard (n INTEGER CONSTRAINT "the table has indexes or triggers of its own, which rebuilding it to widen a column would drop" CHECK (n = 0))`,
		"INSERT INTO temp.exactly_widen_guard SELECT COUNT(*) FROM sqlite_master WHERE tbl_name = " + lit + " AND type IN ('index', 'trigger') AND sql IS NOT NULL",
		"DELETE FROM temp.exactly_widen_guard",
		"DROP TABLE IF EXISTS " + d.Quote(tmp),
		"CREATE TABLE " + d.Quote(tmp) + " (" + strings.Join(defs, ", ") + ")",
		"INSERT INTO " + d.Quote(tmp) + " (" + strings.Join(names, ", ") + ") SELECT " + strings.Join(sel, ", ") + " FROM " + d.Quote(t.Name),
		"DROP TABLE " + d.Quote(t.Name),
		"ALTER TABLE " + d.Quote(tmp) + " RENAME TO " + d.Quote(t.Name),
	}
}
