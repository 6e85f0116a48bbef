package repair

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/exactly/exactly"
)

// ErrBeyondBackup says a dedupe was refused because deleting the surplus
// rows would change rows outside the table that no backup holds: child rows
// an ON DELETE CASCADE would remove, or whatever a delete trigger does.
// Nothing was changed.
var ErrBeyondBackup = errors.New("the dedupe would change rows the backup does not hold")

// identity is how a dedupe finds one physical row again: the surplus copies
// are deleted by it, so the copy kept (and the rows that reference it) is
// never touched. Without one (MySQL or SQL Server without a primary key)
// the dedupe deletes every copy of a duplicated key and inserts the kept
// copy back, which is only safe when nothing references the table.
type identity struct {
	// expr is the table's expression of the identity in the ranked query
	// (PostgreSQL ctid, SQLite rowid); "" when the identity is the primary
	// key, whose columns the scratch table already has.
	expr string
	// colType is the scratch column's type holding expr.
	colType string
	// key is the primary key used as the identity, when expr is "".
	key []string
}

// rowIDColumn is the scratch table's column holding a physical row id.
const rowIDColumn = "exactly_rowid"

// identityOf picks the row identity of the table on this database, or nil.
func identityOf(ctx context.Context, q exactly.Querier, d exactly.Dialect, t *exactly.Table) *identity {
	switch d.Name() {
	case "postgres":
		// ctid: every heap row has one, stable within the transaction
		// (a concurrent update makes the REPEATABLE READ delete fail).
		return &identity{expr: "ctid", colType: "tid"}
	case "sqlite":
		// rowid, unless the table is WITHOUT ROWID (then it has a key).
		var n int64
		if err := q.QueryRowContext(ctx, "SELECT COUNT(rowid) FROM "+d.Quote(t.Name)+" WHERE 1 = 0").Scan(&n); err == nil {
			return &identity{expr: "rowid", colType: "integer"}
		}
	}
	if len(t.Key) > 0 {
		return &identity{key: t.Key}
	}
	return nil
}

// reference is one foreign key pointing at the table: child rows in
// child (a quoted name) whose columns cols reference the table's parent.
type reference struct {
	name   string
	child  string
	cols   []string
	parent []string
}

// references lists the foreign keys that reference table, and the names of
// the enabled triggers on it that fire on DELETE (or, with inserts, on
// INSERT too).
func references(ctx context.Context, q exactly.Querier, d exactly.Dialect, t *exactly.Table, inserts bool) ([]reference, []string, error) {
	table := t.Name
	var fkSQL, trSQL string
	var args []any
	schema, name := "", table
	if i := strings.LastIndexByte(table, '.'); i >= 0 {
		schema, name = table[:i], table[i+1:]
	}
	events := "'DELETE'"
	if inserts {
		events = "'DELETE', 'INSERT'"
	}
	switch d.Name() {
	case "postgres":
		mask := 8 // TRIGGER_TYPE_DELETE
		if inserts {
			mask |= 4 // TRIGGER_TYPE_INSERT
		}
		fkSQL = `SELECT con.conname, n.nspname, c.relname, a.attname, af.attname
FROM pg_constraint con
JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN LATERAL unnest(con.conkey, con.confkey) WITH ORDINALITY AS k(ck, pk, ord)
JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.ck
JOIN pg_attribute af ON af.attrelid = con.confrelid AND af.attnum = k.pk
WHERE con.contype = 'f' AND con.confrelid = $1::regclass ORDER BY 1, 2, 3, k.ord`
		trSQL = fmt.Sprintf(`SELECT tgname FROM pg_trigger WHERE tgrelid = $1::regclass AND NOT tgisinternal AND tgenabled <> 'D' AND (tgtype & %d) <> 0 ORDER BY 1`, mask)
		args = []any{d.Quote(table)}
	case "mysql":
		sch := "DATABASE()"
		args = []any{name}
		if schema != "" {
			sch, args = "?", []any{schema, name}
		}
		fkSQL = `SELECT CONSTRAINT_NAME, TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, REFERENCED_COLUMN_NAME
FROM information_schema.KEY_COLUMN_USAGE
WHERE REFERENCED_TABLE_SCHEMA = ` + sch + ` AND REFERENCED_TABLE_NAME = ? ORDER BY 1, 2, 3, ORDINAL_POSITION`
		trSQL = `SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE EVENT_OBJECT_SCHEMA = ` + sch +
			` AND EVENT_OBJECT_TABLE = ? AND EVENT_MANIPULATION IN (` + events + `) ORDER BY 1`
	case "sqlserver":
		fkSQL = `SELECT fk.name, SCHEMA_NAME(o.schema_id), o.name, cc.name, pc.name
FROM sys.foreign_keys fk JOIN sys.foreign_key_columns fkc ON fkc.constraint_object_id = fk.object_id
JOIN sys.objects o ON o.object_id = fk.parent_object_id
JOIN sys.columns cc ON cc.object_id = fkc.parent_object_id AND cc.column_id = fkc.parent_column_id
JOIN sys.columns pc ON pc.object_id = fkc.referenced_object_id AND pc.column_id = fkc.referenced_column_id
WHERE fk.referenced_object_id = OBJECT_ID(@p1) ORDER BY 1, 2, 3, fkc.constraint_column_id`
		trSQL = `SELECT DISTINCT t.name FROM sys.triggers t JOIN sys.trigger_events e ON e.object_id = t.object_id
WHERE t.parent_id = OBJECT_ID(@p1) AND t.is_disabled = 0 AND e.type_desc IN (` + events + `) ORDER BY 1`
		args = []any{d.Quote(table)}
	case "sqlite":
		return sqliteReferences(ctx, q, d, t, inserts)
	default:
		return nil, nil, fmt.Errorf("dedupe on %s: cannot tell which foreign keys and triggers reach the table", d.Name())
	}
	rows, err := q.QueryContext(ctx, fkSQL, args...)
	if err != nil {
		return nil, nil, fmt.Errorf("listing foreign keys referencing %s: %w", table, err)
	}
	var refs []reference
	for rows.Next() {
		var con, schema, name, col, parent string
		if err := rows.Scan(&con, &schema, &name, &col, &parent); err != nil {
			rows.Close()
			return nil, nil, fmt.Errorf("listing foreign keys referencing %s: %w", table, err)
		}
		child := d.Quote(schema + "." + name)
		if n := len(refs); n == 0 || refs[n-1].name != con || refs[n-1].child != child {
			refs = append(refs, reference{name: con, child: child})
		}
		r := &refs[len(refs)-1]
		r.cols, r.parent = append(r.cols, col), append(r.parent, parent)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("listing foreign keys referencing %s: %w", table, err)
	}
	trs, err := strings1(ctx, q, trSQL, args...)
	if err != nil {
		return nil, nil, fmt.Errorf("listing triggers on %s: %w", table, err)
	}
	return refs, trs, nil
}

// sqliteTrigger finds the event of a CREATE TRIGGER statement.
var sqliteTrigger = regexp.MustCompile(`(?is)\b(DELETE|INSERT|UPDATE)\b(\s+OF\s+.*?)?\s+ON\s`)

func sqliteReferences(ctx context.Context, q exactly.Querier, d exactly.Dialect, t *exactly.Table, inserts bool) ([]reference, []string, error) {
	table := t.Name
	tables, err := strings1(ctx, q, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY 1")
	if err != nil {
		return nil, nil, fmt.Errorf("listing tables: %w", err)
	}
	var refs []reference
	for _, child := range tables {
		rows, err := q.QueryContext(ctx, `SELECT id, "table", "from", COALESCE("to", '') FROM pragma_foreign_key_list(?) ORDER BY id, seq`, child)
		if err != nil {
			return nil, nil, fmt.Errorf("listing foreign keys of %s: %w", child, err)
		}
		for rows.Next() {
			var id int64
			var parent, col, to string
			if err := rows.Scan(&id, &parent, &col, &to); err != nil {
				rows.Close()
				return nil, nil, fmt.Errorf("listing foreign keys of %s: %w", child, err)
			}
			if !strings.EqualFold(parent, table) {
				continue
			}
			if to == "" { // the parent's primary key, column by column
				k := len(refs)
				if k > 0 && refs[k-1].name == fmt.Sprintf("%s#%d", child, id) {
					k = len(refs[k-1].cols)
				} else {
					k = 0
				}
				if k < len(t.Key) {
					to = t.Key[k]
				}
			}
			name := fmt.Sprintf("%s#%d", child, id)
			if n := len(refs); n == 0 || refs[n-1].name != name {
				refs = append(refs, reference{name: name, child: d.Quote(child)})
			}
			r := &refs[len(refs)-1]
			r.cols, r.parent = append(r.cols, col), append(r.parent, to)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, nil, fmt.Errorf("listing foreign keys of %s: %w", child, err)
		}
	}
	rows, err := q.QueryContext(ctx, "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ? COLLATE NOCASE ORDER BY 1", table)
	if err != nil {
		return nil, nil, fmt.Errorf("listing triggers on %s: %w", table, err)
	}
	defer rows.Close()
	var trs []string
	for rows.Next() {
		var name, stmt string
		if err := rows.Scan(&name, &stmt); err != nil {
			return nil, nil, fmt.Errorf("listing triggers on %s: %w", table, err)
		}
		m := sqliteTrigger.FindStringSubmatch(stmt)
		if m == nil || strings.EqualFold(m[1], "DELETE") || (inserts && strings.EqualFold(m[1], "INSERT")) {
			trs = append(trs, name) // unparsed: counted, to be safe
		}
	}
	return refs, trs, rows.Err()
}

func strings1(ctx context.Context, q exactly.Querier, query string, args ...any) ([]string, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}
