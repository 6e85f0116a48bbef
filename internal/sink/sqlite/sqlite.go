// Package sqlite is the SQLite dialect (modernc.org/sqlite, pure Go): the
// embedded default sink. Writes run in BEGIN IMMEDIATE transactions, so a
// second writer waits for the lock instead of failing to upgrade a read
// transaction (SQLITE_BUSY despite busy_timeout).
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"modernc.org/sqlite"

	"github.com/exactly/exactly"
)

// Dialect is the SQLite dialect.
type Dialect struct{}

var _ exactly.Dialect = (*Dialect)(nil)

// Name implements exactly.Dialect.
func (*Dialect) Name() string { return "sqlite" }

// Open opens the database file with WAL, a busy timeout and immediate
// write transactions. The DSN is a file path or a file: URI.
func (*Dialect) Open(ctx context.Context, cfg exactly.SinkConfig) (*sql.DB, error) {
	db, err := sql.Open("sqlite", DSN(cfg.DSN))
	if err != nil {
		return nil, err
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// DSN adds the settings exactly needs to a SQLite file path.
func DSN(path string) string {
	path = strings.TrimPrefix(path, "sqlite://")
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	return path + sep + "_pragma=busy_timeout(30000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_txlock=immediate&_time_format=sqlite"
}

// Placeholder implements exactly.Dialect.
func (*Dialect) Placeholder(int) string { return "?" }

// Quote implements exactly.Dialect.
func (*Dialect) Quote(ident string) string { return QuoteDotted(ident, '"') }

// QuoteDotted quotes each dot-separated part of a name with q, doubling q
// inside it.
func QuoteDotted(ident string, q byte) string {
	parts := strings.Split(ident, ".")
	for i, p := range parts {
		parts[i] = string(q) + strings.ReplaceAll(p, string(q), string(q)+string(q)) + string(q)
	}
	return strings.Join(parts, ".")
}

// LedgerDDL implements exactly.Dialect: exactly.LedgerTables rendered.
// Times are RFC 3339 text. An id the database assigns is an INTEGER
// PRIMARY KEY AUTOINCREMENT, declared on the column.
func (d *Dialect) LedgerDDL() []string {
	var out []string
	for _, t := range exactly.LedgerTables() {
		cols := t.Definitions(d.Quote, ledgerType)
		serial := slices.ContainsFunc(t.Columns, func(c exactly.LedgerColumn) bool { return c.Type == exactly.LedgerSerial })
		if !serial {
			cols = append(cols, "PRIMARY KEY ("+d.list(t.Key)+")")
		}
		out = append(out, "CREATE TABLE IF NOT EXISTS "+t.Name+" (\n\t"+strings.Join(cols, ",\n\t")+")")
		for _, ix := range t.Indexes {
			out = append(out, "CREATE INDEX IF NOT EXISTS "+ix.Name+" ON "+t.Name+" ("+d.list(ix.Columns)+")")
		}
	}
	return out
}

// ledgerType is a ledger column's type and nullability in SQLite: names,
// text and times are TEXT.
func ledgerType(c exactly.LedgerColumn) string {
	switch c.Type {
	case exactly.LedgerSerial:
		return "INTEGER PRIMARY KEY AUTOINCREMENT"
	case exactly.LedgerBytes:
		return null(c, "BLOB")
	case exactly.LedgerInt32, exactly.LedgerInt64:
		return null(c, "INTEGER")
	}
	return null(c, "TEXT")
}

func null(c exactly.LedgerColumn, typ string) string {
	if c.Null {
		return typ
	}
	return typ + " NOT NULL"
}

// InsertIfAbsent implements exactly.Dialect.
func (d *Dialect) InsertIfAbsent(table string, columns []string) string {
	return "INSERT OR IGNORE INTO " + d.Quote(table) + " (" + d.list(columns) + ") VALUES (" + marks(len(columns)) + ")"
}

func (d *Dialect) list(cols []string) string {
	q := make([]string, len(cols))
	for i, c := range cols {
		q[i] = d.Quote(c)
	}
	return strings.Join(q, ", ")
}

func marks(n int) string { return strings.TrimSuffix(strings.Repeat("?, ", n), ", ") }

// Describe implements exactly.Dialect.
func (d *Dialect) Describe(ctx context.Context, q exactly.Querier, table string) (*exactly.Table, error) {
	t, err := exactly.DescribeColumns(ctx, q, table, `SELECT name, type, "notnull" = 0, NULLIF(pk, 0), NULL FROM pragma_table_info(?)`, table)
	if err != nil || t == nil {
		return nil, err
	}
	if err := d.describeCollations(ctx, q, t); err != nil {
		return nil, err
	}
	return t, nil
}

// describeCollations sets the collation of each column a unique index
// (the primary key's first) compares with: it decides which keys are one
// row (KeyEquality). The column's declared collation is the index's
// unless the index names another.
func (d *Dialect) describeCollations(ctx context.Context, q exactly.Querier, t *exactly.Table) error {
	rows, err := q.QueryContext(ctx, `SELECT x.name, x.coll FROM pragma_index_list(?) l, pragma_index_xinfo(l.name) x
		WHERE l."unique" AND x.key AND x.name IS NOT NULL ORDER BY l.origin <> 'pk'`, t.Name)
	if err != nil {
		return fmt.Errorf("reading index collations: %w", err)
	}
	defer rows.Close()
	seen := map[string]bool{}
	for rows.Next() {
		var name, coll string
		if err := rows.Scan(&name, &coll); err != nil {
			return err
		}
		if c := t.Column(name); c != nil && !seen[name] {
			seen[name] = true
			c.Collation = coll
		}
	}
	return rows.Err()
}

// Apply implements exactly.Dialect: one prepared statement per kind,
// executed per row inside the transaction (SQLite is in-process, so a
// statement costs microseconds, not a round trip).
func (d *Dialect) Apply(ctx context.Context, tx *exactly.Tx, w *exactly.TableWrite) error {
	t := d.Quote(w.Table.Name)
	if len(w.Upserts) > 0 {
		q := "INSERT INTO " + t + " AS t (" + d.list(w.Columns) + ") VALUES (" + marks(len(w.Columns)) + ")"
		if !w.Append {
			var set []string
			for _, c := range w.Columns {
				set = append(set, d.Quote(c)+" = excluded."+d.Quote(c))
			}
			q += " ON CONFLICT (" + d.list(w.Keys) + ") DO UPDATE SET " + strings.Join(set, ", ")
			if w.Version != "" {
				v := d.Quote(w.Version)
				q += " WHERE excluded." + v + " IS NULL OR t." + v + " IS NULL OR t." + v + " <= excluded." + v
			}
		}
		stmt, err := tx.PrepareContext(ctx, q)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, row := range w.Upserts {
			if _, err := stmt.ExecContext(ctx, values(row)...); err != nil {
				return err
			}
		}
	}
	if len(w.Deletes) > 0 {
		var where []string
		for _, k := range w.Keys {
			where = append(where, d.Quote(k)+" = ?")
		}
		q := "DELETE FROM " + t + " WHERE " + strings.Join(where, " AND ")
		if w.Version != "" {
			v := d.Quote(w.Version)
			q += " AND (? IS NULL OR " + v + " IS NULL OR " + v + " <= ?)"
		}
		stmt, err := tx.PrepareContext(ctx, q)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for i, key := range w.Deletes {
			args := values(key)
			if w.Version != "" {
				v := value(w.DeleteVersions[i])
				args = append(args, v, v)
			}
			if _, err := stmt.ExecContext(ctx, args...); err != nil {
				return err
			}
		}
	}
	return nil
}

func values(row []any) []any {
	out := make([]any, len(row))
	for i, v := range row {
		out[i] = value(v)
	}
	return out
}

func value(v any) any {
	switch x := v.(type) {
	case bool:
		if x {
			return int64(1)
		}
		return int64(0)
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case exactly.Decimal:
		return string(x)
	case exactly.JSON:
		return string(x)
	}
	return v
}

// Savepoint implements exactly.Dialect.
func (*Dialect) Savepoint(name string) (set, rollback, release string) {
	return "SAVEPOINT " + name, "ROLLBACK TO SAVEPOINT " + name, "RELEASE SAVEPOINT " + name
}

// Classify implements exactly.Dialect.
func (*Dialect) Classify(err error) exactly.ErrorKind {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case 5, 6: // SQLITE_BUSY, SQLITE_LOCKED
			return exactly.ErrConflict
		case 19, 20, 25: // CONSTRAINT, MISMATCH, RANGE
			return exactly.ErrData
		}
	}
	return exactly.ErrOther
}
