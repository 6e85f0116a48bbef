package mysql

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/go-sql-driver/mysql"

	"github.com/exactly/exactly"
)

// ColumnType implements exactly.Dialect. Key columns get bounded types:
// InnoDB cannot index LONGTEXT or LONGBLOB, and an index holds at most
// 3072 bytes (VARCHAR(255) in utf8mb4 is 1020).
func (*Dialect) ColumnType(t exactly.Type, key bool) string {
	switch t.Kind {
	case exactly.KindBool:
		return "BOOLEAN"
	case exactly.KindInt16:
		return "SMALLINT"
	case exactly.KindInt32:
		return "INT"
	case exactly.KindInt64:
		return "BIGINT"
	case exactly.KindFloat32:
		return "FLOAT"
	case exactly.KindFloat64:
		return "DOUBLE"
	case exactly.KindDecimal:
		// MySQL allows 65 digits, 30 after the point. An unstated scale
		// gets the widest column; a wider schema cannot be held exactly.
		if t.Scale >= 0 && t.Scale <= 30 && t.Precision > 0 && t.Precision <= 65 && t.Scale <= t.Precision {
			return fmt.Sprintf("DECIMAL(%d,%d)", t.Precision, t.Scale)
		}
		return "DECIMAL(65,30)"
	case exactly.KindBytes:
		if key {
			return "VARBINARY(255)"
		}
		return "LONGBLOB"
	case exactly.KindDate:
		return "DATE"
	case exactly.KindTime:
		return "TIME" + frac(t.Precision)
	case exactly.KindTimestamp, exactly.KindTimestampTZ:
		// No type holds a zone: instants are stored in UTC, the session's
		// time zone (see Config).
		return "DATETIME" + frac(t.Precision)
	case exactly.KindJSON:
		if key {
			return "VARCHAR(255)"
		}
		return "JSON"
	}
	if key {
		return "VARCHAR(255)"
	}
	return "LONGTEXT"
}

// frac is the fractional-seconds precision: MySQL's default is 0 (whole
// seconds), its maximum 6.
func frac(p int) string {
	if p <= 0 || p > 6 {
		p = 6
	}
	return fmt.Sprintf("(%d)", p)
}

// CreateTable implements exactly.Dialect.
func (d *Dialect) CreateTable(table string, cols []exactly.ColumnDef, key []string) string {
	isKey := map[string]bool{}
	for _, k := range key {
		isKey[k] = true
	}
	var sb strings.Builder
	sb.WriteString("CREATE TABLE IF NOT EXISTS " + d.Quote(table) + " (")
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
		sb.WriteString(", PRIMARY KEY (" + d.list(key) + ")")
	}
	sb.WriteString(") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4")
	return sb.String()
}

// AddColumn implements exactly.Dialect. MySQL 8 has no ADD COLUMN IF NOT
// EXISTS (MariaDB has): a duplicate fails and the sink forgives it after
// describing the table again.
func (d *Dialect) AddColumn(table string, col exactly.ColumnDef) string {
	return "ALTER TABLE " + d.Quote(table) + " ADD COLUMN " + d.Quote(col.Name) + " " + d.ColumnType(col.Type, false) + " NULL"
}

// CreateTableLike implements exactly.Dialect: CREATE … SELECT copies the
// column types, not the keys or indexes.
func (d *Dialect) CreateTableLike(name, source string) string {
	return "CREATE TABLE IF NOT EXISTS " + d.Quote(name) + " AS SELECT * FROM " + d.Quote(source) + " WHERE 1 = 0"
}

// CheckColumnName implements exactly.ColumnNamer: at most 64 characters,
// no trailing space (error 1166, incorrect column name), and no character
// beyond U+FFFF (identifiers are utf8mb3: error 1300).
func (*Dialect) CheckColumnName(name string) error {
	if n := utf8.RuneCountInString(name); n > 64 {
		return fmt.Errorf("it is %d characters long and MySQL allows at most 64", n)
	}
	if strings.HasSuffix(name, " ") {
		return errors.New("it ends with a space, which MySQL refuses in a column name")
	}
	for _, r := range name {
		if r > 0xFFFF {
			// Identifiers are utf8mb3: CREATE TABLE or ADD COLUMN would
			// fail with 1300 on every try.
			return fmt.Errorf("it holds %q (U+%04X), and MySQL allows in a column name only characters up to U+FFFF", r, r)
		}
	}
	return nil
}

// Constraint implements exactly.Constraints: 1048 column cannot be null,
// 3819 (MySQL) and 4025 (MariaDB) check constraint, 1452 and 1216 foreign
// key.
func (*Dialect) Constraint(err error) (constraint, foreignKey bool) {
	var me *mysql.MySQLError
	if !errors.As(err, &me) {
		return false, false
	}
	return me.Number == 1048 || me.Number == 3819 || me.Number == 4025, me.Number == 1452 || me.Number == 1216
}

var _ exactly.Widener = (*Dialect)(nil)

// WidenColumn implements exactly.Widener: MODIFY COLUMN with the column's
// nullability (MODIFY would otherwise make it nullable). A key column
// becomes VARCHAR(255) for text, as create makes it; the primary key
// stays. MySQL converts an integer to DECIMAL(65,30), DOUBLE and text as
// it converts an integer written there.
func (d *Dialect) WidenColumn(t *exactly.Table, col string, to exactly.Type) []string {
	key := false
	for _, k := range t.Key {
		key = key || k == col
	}
	null := " NULL"
	if c := t.Column(col); c != nil && !c.Nullable {
		null = " NOT NULL"
	}
	return []string{"ALTER TABLE " + d.Quote(t.Name) + " MODIFY COLUMN " + d.Quote(col) + " " + d.ColumnType(to, key) + null}
}
