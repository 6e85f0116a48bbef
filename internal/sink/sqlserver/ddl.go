package sqlserver

import (
	"fmt"
	"strings"

	"github.com/exactly/exactly"
)

// ColumnType implements exactly.Dialect. Key columns get bounded types: a
// clustered primary key holds at most 900 bytes (NVARCHAR(255) is 510).
func (*Dialect) ColumnType(t exactly.Type, key bool) string {
	switch t.Kind {
	case exactly.KindBool:
		return "BIT"
	case exactly.KindInt16:
		return "SMALLINT"
	case exactly.KindInt32:
		return "INT"
	case exactly.KindInt64:
		return "BIGINT"
	case exactly.KindFloat32:
		return "REAL"
	case exactly.KindFloat64:
		return "FLOAT"
	case exactly.KindDecimal:
		// At most 38 digits. An unstated scale gets 38 digits with 18
		// after the point; a wider schema cannot be held exactly.
		if t.Scale >= 0 && t.Precision > 0 && t.Precision <= 38 && t.Scale <= t.Precision {
			return fmt.Sprintf("DECIMAL(%d,%d)", t.Precision, t.Scale)
		}
		return "DECIMAL(38,18)"
	case exactly.KindBytes:
		if key {
			return "VARBINARY(255)"
		}
		return "VARBINARY(MAX)"
	case exactly.KindDate:
		return "DATE"
	case exactly.KindTime:
		return "TIME" + frac(t.Precision)
	case exactly.KindTimestamp:
		return "DATETIME2" + frac(t.Precision)
	case exactly.KindTimestampTZ:
		return "DATETIMEOFFSET" + frac(t.Precision)
	}
	if key { // text, JSON, unknown
		return "NVARCHAR(255)"
	}
	return "NVARCHAR(MAX)"
}

// frac is the fractional-seconds precision, at most 7 (100 ns); unstated
// means microseconds, like the other dialects.
func frac(p int) string {
	if p <= 0 {
		p = 6
	}
	return fmt.Sprintf("(%d)", min(p, 7))
}

// CreateTable implements exactly.Dialect.
func (d *Dialect) CreateTable(table string, cols []exactly.ColumnDef, key []string) string {
	isKey := map[string]bool{}
	for _, k := range key {
		isKey[k] = true
	}
	var sb strings.Builder
	sb.WriteString("IF OBJECT_ID(" + literal(d.Quote(table)) + ", N'U') IS NULL CREATE TABLE " + d.Quote(table) + " (")
	for i, c := range cols {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(d.Quote(c.Name) + " " + d.ColumnType(c.Type, isKey[c.Name]))
		if c.Nullable && !isKey[c.Name] {
			sb.WriteString(" NULL")
		} else {
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
	return "IF COL_LENGTH(" + literal(d.Quote(table)) + ", " + literal(col.Name) + ") IS NULL ALTER TABLE " +
		d.Quote(table) + " ADD " + d.Quote(col.Name) + " " + d.ColumnType(col.Type, false) + " NULL"
}

// CreateTableLike implements exactly.Dialect. SELECT … INTO copies an
// IDENTITY property; the empty UNION ALL drops it, so the copy accepts
// the source's values as they are.
func (d *Dialect) CreateTableLike(name, source string) string {
	src := d.Quote(source)
	return "IF OBJECT_ID(" + literal(d.Quote(name)) + ", N'U') IS NULL SELECT * INTO " + d.Quote(name) +
		" FROM " + src + " WHERE 1 = 0 UNION ALL SELECT * FROM " + src + " WHERE 1 = 0"
}

var _ exactly.Widener = (*Dialect)(nil)

// WidenColumn implements exactly.Widener: ALTER COLUMN, with the column's
// nullability set by the session's ANSI null default rather than a NULL
// or NOT NULL in the statement (SQL Server takes both; Babelfish refuses
// NULL and NOT NULL in ALTER COLUMN, and keeps the nullability, which is
// what the session default gives on SQL Server). SQL Server refuses to
// change a column its primary key holds (5074), so for a key column one
// batch drops the primary key constraint, widens the column and adds the
// constraint again under its own name (Sink runs it in a transaction).
// SQL Server converts an integer to DECIMAL(38,18), FLOAT and NVARCHAR as
// it converts an integer written there.
func (d *Dialect) WidenColumn(t *exactly.Table, col string, to exactly.Type) []string {
	key := false
	for _, k := range t.Key {
		key = key || k == col
	}
	null := "SET ANSI_NULL_DFLT_ON ON; "
	if c := t.Column(col); c != nil && !c.Nullable {
		null = "SET ANSI_NULL_DFLT_OFF ON; "
	}
	table := d.Quote(t.Name)
	alter := "ALTER TABLE " + table + " ALTER COLUMN " + d.Quote(col) + " " + d.ColumnType(to, key) + "; "
	if !key {
		return []string{null + alter + "SET ANSI_NULL_DFLT_ON ON"}
	}
	inner := func(s string) string { return strings.ReplaceAll(s, "'", "''") }
	return []string{null +
		"DECLARE @pk sysname = (SELECT name FROM sys.key_constraints WHERE parent_object_id = OBJECT_ID(" + literal(table) + ") AND type = 'PK'); " +
		"DECLARE @sql nvarchar(max); " +
		"IF @pk IS NOT NULL BEGIN SET @sql = N'ALTER TABLE " + inner(table) + " DROP CONSTRAINT ' + QUOTENAME(@pk); EXEC(@sql) END; " +
		alter +
		"IF @pk IS NOT NULL BEGIN SET @sql = N'ALTER TABLE " + inner(table) + " ADD CONSTRAINT ' + QUOTENAME(@pk) + N' PRIMARY KEY (" +
		inner(d.list(t.Key, "")) + ")'; EXEC(@sql) END; SET ANSI_NULL_DFLT_ON ON"}
}
