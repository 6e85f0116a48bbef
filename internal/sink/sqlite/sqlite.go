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

// FoldColumnName implements exactly.ColumnFolder: SQLite compares
// identifiers ignoring the case of ASCII letters only.
func (*Dialect) FoldColumnName(name string) string {
	return strings.Map(func(r rune) rune {
		if 'A' <= r && r <= 'Z' {
			return r + ('a' - 'A')
		}
		return r
	}, name)
}

// Open opens the database file with WAL, a busy timeout and immediate
// write transactions. The DSN is a file path or a file: URI. With
// cfg.ReadOnly the journal mode and synchronous are left as the file has
// them: setting WAL writes the header of a file in rollback-journal mode.
func (*Dialect) Open(ctx context.Context, cfg exactly.SinkConfig) (*sql.DB, error) {
	dsn := DSN(cfg.DSN)
	if cfg.ReadOnly {
		dsn = lookDSN(cfg.DSN)
	}
	db, err := sql.Open("sqlite", dsn)
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
	return withPragmas(path, "_pragma=busy_timeout(30000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_txlock=immediate&_time_format=sqlite")
}

// lookDSN is DSN for a database only read: a busy timeout, no setting
// that writes.
func lookDSN(path string) string {
	return withPragmas(path, "_pragma=busy_timeout(30000)&_txlock=immediate&_time_format=sqlite")
}

// withPragmas appends the query parameters to a SQLite file path, which
// may have some already.
func withPragmas(path, params string) string {
	path = strings.TrimPrefix(path, "sqlite://")
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	return path + sep + params
}

// SingleWriter implements exactly.SingleWriter: one write transaction
// holds the file's lock at a time.
func (*Dialect) SingleWriter() bool { return true }

var _ exactly.SingleWriter = (*Dialect)(nil)

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

// Apply implements exactly.Dialect: upserts as prepared multi-row INSERT …
// ON CONFLICT statements of up to upsertRows rows each (one statement
// prepared for the full chunks, one for the rest), deletes as one prepared
// statement executed per key, all inside the transaction.
//
// The statements run under a context without cancellation, and ctx is
// checked between them instead: with a cancellable context the driver
// starts a goroutine per execution to interrupt it (a quarter of the
// write's CPU time at one row per statement). Inside a BEGIN IMMEDIATE
// transaction no statement waits for a lock, so none runs long.
func (d *Dialect) Apply(ctx context.Context, tx *exactly.Tx, w *exactly.TableWrite) error {
	run := context.WithoutCancel(ctx)
	if len(w.Upserts) > 0 {
		per := max(min(upsertRows, maxParams/max(len(w.Columns), 1)), 1)
		var stmt *sql.Stmt
		stmtRows := 0
		defer func() {
			if stmt != nil {
				stmt.Close()
			}
		}()
		args := make([]any, 0, min(per, len(w.Upserts))*len(w.Columns))
		for start := 0; start < len(w.Upserts); start += per {
			chunk := w.Upserts[start:min(start+per, len(w.Upserts))]
			if len(chunk) != stmtRows {
				if stmt != nil {
					stmt.Close()
				}
				var err error
				if stmt, err = tx.PrepareContext(ctx, d.upsertSQL(w, len(chunk))); err != nil {
					stmt = nil
					return err
				}
				stmtRows = len(chunk)
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			args = args[:0]
			for _, row := range chunk {
				for _, v := range row {
					args = append(args, value(v))
				}
			}
			if _, err := stmt.ExecContext(run, args...); err != nil {
				return err
			}
		}
	}
	if len(w.Deletes) > 0 {
		return d.deleteRows(ctx, tx, w)
	}
	return nil
}

// upsertRows is how many rows an upsert statement carries at most, and
// maxParams how many parameters (SQLITE_MAX_VARIABLE_NUMBER, 32766 since
// SQLite 3.32).
var upsertRows = 256

const maxParams = 32766

// upsertSQL is the INSERT … ON CONFLICT DO UPDATE of rows rows of w.
func (d *Dialect) upsertSQL(w *exactly.TableWrite, rows int) string {
	row := "(" + marks(len(w.Columns)) + ")"
	q := "INSERT INTO " + d.Quote(w.Table.Name) + " AS t (" + d.list(w.Columns) + ") VALUES " +
		strings.TrimSuffix(strings.Repeat(row+", ", rows), ", ")
	if w.Append {
		return q
	}
	set := make([]string, len(w.Columns))
	for i, c := range w.Columns {
		set[i] = d.Quote(c) + " = excluded." + d.Quote(c)
	}
	q += " ON CONFLICT (" + d.list(w.Keys) + ") DO UPDATE SET " + strings.Join(set, ", ")
	if w.Version != "" {
		v := d.Quote(w.Version)
		q += " WHERE excluded." + v + " IS NULL OR t." + v + " IS NULL OR t." + v + " <= excluded." + v
	}
	return q
}

// deleteRows deletes w's keys, one prepared statement executed per key.
func (d *Dialect) deleteRows(ctx context.Context, tx *exactly.Tx, w *exactly.TableWrite) error {
	run := context.WithoutCancel(ctx)
	where := make([]string, len(w.Keys))
	for i, k := range w.Keys {
		where[i] = d.Quote(k) + " = ?"
	}
	q := "DELETE FROM " + d.Quote(w.Table.Name) + " WHERE " + strings.Join(where, " AND ")
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
		if err := ctx.Err(); err != nil {
			return err
		}
		args := values(key)
		if w.Version != "" {
			v := value(w.DeleteVersions[i])
			args = append(args, v, v)
		}
		if _, err := stmt.ExecContext(run, args...); err != nil {
			return err
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
