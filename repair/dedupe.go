// Package repair fixes tables damaged before exactly took over, e.g. rows
// written twice by an at-least-once pipeline. Its rule: nothing is ever
// deleted without being kept first. Every removed row is copied into a
// backup table in the same transaction that deletes it, and the plan is
// shown before anything is done.
//
// The SQL is portable (window functions ROW_NUMBER() and COUNT(*) OVER, an
// EXISTS delete, INSERT … SELECT) across PostgreSQL, SQLite, MySQL/MariaDB
// and SQL Server; what differs goes through exactly.Dialect.
package repair

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/exactly/exactly"
)

// Dedupe names a table, the columns that should identify a row, and which
// copy of a duplicated key to keep.
type Dedupe struct {
	Table string
	Key   []string
	// OrderBy names the column ranking the copies of a key; "" keeps an
	// arbitrary copy (right when copies are identical).
	OrderBy string
	// Keep is "newest" (highest OrderBy, the default) or "oldest". NULLs in
	// OrderBy rank last either way.
	Keep string
}

// Plan is what a dedupe would do, as read from the table now.
type Plan struct {
	Table    string   `json:"table"`
	Backup   string   `json:"backup"`
	Key      []string `json:"key"`
	OrderBy  string   `json:"order_by,omitempty"`
	Keep     string   `json:"keep"`
	Rows     int64    `json:"rows"`      // rows in the table
	Keys     int64    `json:"keys"`      // keys held by more than one row
	Surplus  int64    `json:"surplus"`   // rows that would be moved to the backup
	NullKeys int64    `json:"null_keys"` // rows with a NULL key column, never touched
	Samples  []Sample `json:"samples"`
	// UniqueKey is the statement --add-unique-key runs after the dedupe.
	UniqueKey string `json:"unique_key"`
}

// Sample is one duplicated key and how many rows hold it.
type Sample struct {
	Key    []string `json:"key"`
	Copies int64    `json:"copies"`
}

// Result is what an applied dedupe did.
type Result struct {
	Plan
	Removed int64 `json:"removed"` // rows moved to the backup and deleted
	Kept    int64 `json:"kept"`    // one row per duplicated key
}

// ErrChanged says the table changed while the dedupe ran: the transaction
// was rolled back and nothing was touched; run it again (after stopping
// whatever still writes duplicates).
var ErrChanged = errors.New("the table changed during the dedupe")

// ErrSpec marks a dedupe that cannot run as asked: an unknown table or
// column, a bad keep value. Nothing was read or changed.
var ErrSpec = errors.New("invalid dedupe")

// deduper holds the validated names and SQL pieces of one dedupe.
type deduper struct {
	d       exactly.Dialect
	spec    Dedupe
	table   *exactly.Table
	backup  string
	scratch string
	cols    string // quoted column list
	keys    string // quoted key list
	notNull string // every key column IS NOT NULL
	ranked  string // the table with exactly_rn and exactly_n per key
}

func newDeduper(ctx context.Context, db *sql.DB, d exactly.Dialect, spec Dedupe) (*deduper, error) {
	if spec.Keep == "" {
		spec.Keep = "newest"
	}
	if spec.Keep != "newest" && spec.Keep != "oldest" {
		return nil, fmt.Errorf("%w: keep: got %q, expected newest or oldest", ErrSpec, spec.Keep)
	}
	if len(spec.Key) == 0 {
		return nil, fmt.Errorf("%w: key: expected at least one column", ErrSpec)
	}
	t, err := d.Describe(ctx, db, spec.Table)
	if err != nil {
		return nil, fmt.Errorf("describing table %s: %w", spec.Table, err)
	}
	if t == nil {
		return nil, fmt.Errorf("%w: table %s does not exist", ErrSpec, spec.Table)
	}
	for _, k := range append(append([]string{}, spec.Key...), spec.OrderBy) {
		if k != "" && t.Column(k) == nil {
			return nil, fmt.Errorf("%w: table %s has no column %q (columns: %s)", ErrSpec, spec.Table, k, strings.Join(columnNames(t), ", "))
		}
	}
	u := &deduper{d: d, spec: spec, table: t, backup: spec.Table + "_exactly_removed", scratch: spec.Table + "_exactly_kept"}
	q := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		q[i] = d.Quote(c.Name)
	}
	u.cols = strings.Join(q, ", ")
	kq := make([]string, len(spec.Key))
	nn := make([]string, len(spec.Key))
	for i, k := range spec.Key {
		kq[i] = d.Quote(k)
		nn[i] = d.Quote(k) + " IS NOT NULL"
	}
	u.keys = strings.Join(kq, ", ")
	u.notNull = strings.Join(nn, " AND ")
	order := u.keys // constant within a key: an arbitrary copy
	if spec.OrderBy != "" {
		o := d.Quote(spec.OrderBy)
		dir := "DESC"
		if spec.Keep == "oldest" {
			dir = "ASC"
		}
		order = fmt.Sprintf("CASE WHEN %s IS NULL THEN 1 ELSE 0 END, %s %s", o, o, dir)
	}
	u.ranked = fmt.Sprintf("SELECT %s, ROW_NUMBER() OVER (PARTITION BY %s ORDER BY %s) AS exactly_rn, COUNT(*) OVER (PARTITION BY %s) AS exactly_n FROM %s WHERE %s",
		u.cols, u.keys, order, u.keys, d.Quote(spec.Table), u.notNull)
	return u, nil
}

func columnNames(t *exactly.Table) []string {
	out := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		out[i] = c.Name
	}
	return out
}

// uniqueKey is the statement that prevents duplicates from coming back.
func (u *deduper) uniqueKey() string {
	name := u.spec.Table
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		name = name[i+1:]
	}
	return fmt.Sprintf("CREATE UNIQUE INDEX %s ON %s (%s)", u.d.Quote(name+"_exactly_key"), u.d.Quote(u.spec.Table), u.keys)
}

// PlanDedupe reads the table and says what ApplyDedupe would do. It only
// reads.
func PlanDedupe(ctx context.Context, db *sql.DB, d exactly.Dialect, spec Dedupe) (*Plan, error) {
	u, err := newDeduper(ctx, db, d, spec)
	if err != nil {
		return nil, err
	}
	return u.plan(ctx, db)
}

func (u *deduper) plan(ctx context.Context, q exactly.Querier) (*Plan, error) {
	p := &Plan{Table: u.spec.Table, Backup: u.backup, Key: u.spec.Key, OrderBy: u.spec.OrderBy, Keep: u.spec.Keep,
		Samples: []Sample{}, UniqueKey: u.uniqueKey()}
	if u.spec.OrderBy == "" {
		p.Keep = "any"
	}
	var nulls sql.NullInt64
	if err := q.QueryRowContext(ctx, fmt.Sprintf("SELECT COUNT(*), SUM(CASE WHEN %s THEN 0 ELSE 1 END) FROM %s",
		u.notNull, u.d.Quote(u.spec.Table))).Scan(&p.Rows, &nulls); err != nil {
		return nil, fmt.Errorf("counting rows of %s: %w", u.spec.Table, err)
	}
	p.NullKeys = nulls.Int64
	var surplus, keys sql.NullInt64
	if err := q.QueryRowContext(ctx, fmt.Sprintf(
		"SELECT SUM(CASE WHEN exactly_rn > 1 THEN 1 ELSE 0 END), SUM(CASE WHEN exactly_rn = 1 AND exactly_n > 1 THEN 1 ELSE 0 END) FROM (%s) x",
		u.ranked)).Scan(&surplus, &keys); err != nil {
		return nil, fmt.Errorf("counting duplicates in %s: %w", u.spec.Table, err)
	}
	p.Surplus, p.Keys = surplus.Int64, keys.Int64
	if p.Keys == 0 {
		return p, nil
	}
	kx := make([]string, len(u.spec.Key))
	for i, k := range u.spec.Key {
		kx[i] = "x." + u.d.Quote(k)
	}
	rows, err := q.QueryContext(ctx, fmt.Sprintf("SELECT %s, x.exactly_n FROM (%s) x WHERE x.exactly_rn = 1 AND x.exactly_n > 1 ORDER BY x.exactly_n DESC, %s",
		strings.Join(kx, ", "), u.ranked, strings.Join(kx, ", ")))
	if err != nil {
		return nil, fmt.Errorf("sampling duplicates in %s: %w", u.spec.Table, err)
	}
	defer rows.Close()
	if p.Samples, err = scanSamples(rows, len(u.spec.Key)); err != nil {
		return nil, err
	}
	return p, nil
}

// ApplyDedupe moves every surplus copy of a duplicated key into the backup
// table <table>_exactly_removed and deletes it, in one transaction: after
// it each key is held by exactly one row, and the backup holds exactly the
// rows removed. Rows with a NULL key column are left alone.
//
// Every row of a duplicated key is copied once, ranked, into
// <table>_exactly_kept (the rank computed a single time, so ties in
// --order-by can never make two statements disagree about which copy is
// kept), with the row's identity: PostgreSQL's ctid, SQLite's rowid, else
// the table's primary key. The surplus copies go to the backup from there
// and only they are deleted, by that identity: the copy kept is never
// touched, so rows referencing it (ON DELETE CASCADE) stay. Nothing may be
// deleted that the backup does not hold, so the dedupe is refused
// (ErrBeyondBackup, nothing changed) when a delete trigger is on the table
// or a child row references a surplus copy.
//
// Without an identity (MySQL or SQL Server without a primary key) it
// deletes every copy of a duplicated key and inserts the kept copy back;
// then it is refused when any foreign key references the table or an
// insert or delete trigger is on it.
//
// The transaction (REPEATABLE READ where the database has it) checks that
// it deleted exactly the rows it copied, and rolls back with ErrChanged if
// a concurrent writer changed those keys. Stop whatever writes the table
// first. The backup and scratch tables are created before the transaction
// (DDL commits implicitly in MySQL); the scratch table is empty after the
// commit and dropped.
func ApplyDedupe(ctx context.Context, db *sql.DB, d exactly.Dialect, spec Dedupe) (*Result, error) {
	u, err := newDeduper(ctx, db, d, spec)
	if err != nil {
		return nil, err
	}
	id, refs, err := u.reach(ctx, db)
	if err != nil {
		return nil, err
	}
	if err := u.prepareTables(ctx, db, id); err != nil {
		return nil, err
	}
	defer db.ExecContext(context.WithoutCancel(ctx), "DROP TABLE "+d.Quote(u.scratch)) //nolint:errcheck // best effort, it is empty

	tx, err := db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead})
	if err != nil {
		return nil, fmt.Errorf("beginning dedupe transaction: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	res := &Result{Plan: Plan{Table: spec.Table, Backup: u.backup, Key: spec.Key, OrderBy: spec.OrderBy, Keep: u.spec.Keep,
		Samples: []Sample{}, UniqueKey: u.uniqueKey()}}
	if spec.OrderBy == "" {
		res.Keep = "any"
	}
	var nulls sql.NullInt64
	if err := tx.QueryRowContext(ctx, fmt.Sprintf("SELECT COUNT(*), SUM(CASE WHEN %s THEN 0 ELSE 1 END) FROM %s",
		u.notNull, d.Quote(spec.Table))).Scan(&res.Rows, &nulls); err != nil {
		return nil, fmt.Errorf("counting rows of %s: %w", spec.Table, err)
	}
	res.NullKeys = nulls.Int64
	exec := func(what, q string) (int64, error) {
		r, err := tx.ExecContext(ctx, q)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", what, err)
		}
		n, err := r.RowsAffected()
		if err != nil {
			return 0, fmt.Errorf("%s: %w", what, err)
		}
		return n, nil
	}
	sq, bq := d.Quote(u.scratch), d.Quote(u.backup)
	rn := d.Quote(rankColumn)
	if _, err = exec("emptying "+u.scratch, "DELETE FROM "+sq); err != nil {
		return nil, err
	}
	cols, ranked := u.cols, u.ranked
	if id != nil && id.expr != "" {
		cols += ", " + d.Quote(rowIDColumn)
		ranked = strings.Replace(ranked, " ROW_NUMBER() OVER", fmt.Sprintf(" %s AS %s, ROW_NUMBER() OVER", id.expr, rowIDColumn), 1)
	}
	copied, err := exec("copying duplicated keys to "+u.scratch, fmt.Sprintf(
		"INSERT INTO %s (%s, %s) SELECT %s, x.exactly_rn FROM (%s) x WHERE x.exactly_n > 1", sq, cols, rn, cols, ranked))
	if err != nil {
		return nil, err
	}
	if copied == 0 {
		return res, tx.Commit()
	}
	if res.Samples, err = u.samples(ctx, tx); err != nil {
		return nil, err
	}
	if res.Removed, err = exec("copying surplus rows to "+u.backup, fmt.Sprintf(
		"INSERT INTO %s (%s) SELECT %s FROM %s WHERE %s > 1", bq, u.cols, u.cols, sq, rn)); err != nil {
		return nil, err
	}
	if id == nil {
		if res.Kept, err = u.replaceAll(exec, copied, res.Removed); err != nil {
			return nil, err
		}
	} else {
		if err := u.refuseReferenced(ctx, tx, refs); err != nil {
			return nil, err
		}
		deleted, err := exec("deleting surplus rows from "+spec.Table, u.deleteSurplus(id))
		if err != nil {
			return nil, err
		}
		if deleted != res.Removed {
			return nil, fmt.Errorf("dedupe of %s: backed up %d surplus rows but the delete matched %d: %w; rolled back, nothing changed",
				spec.Table, res.Removed, deleted, ErrChanged)
		}
		res.Kept = copied - res.Removed
	}
	res.Keys, res.Surplus = res.Kept, res.Removed
	if _, err = exec("emptying "+u.scratch, "DELETE FROM "+sq); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("committing dedupe of %s: %w", spec.Table, err)
	}
	return res, nil
}

// reach finds how the dedupe tells a table's rows apart (nil: it cannot,
// and replaces every copy of a duplicated key) and the foreign keys that
// reference the table, and refuses a dedupe whose effects would reach
// beyond its backup: triggers on the delete, or foreign keys acting on
// rows it deletes and inserts back.
func (u *deduper) reach(ctx context.Context, db *sql.DB) (*identity, []reference, error) {
	id := identityOf(ctx, db, u.d, u.table)
	refs, triggers, err := references(ctx, db, u.d, u.table, id == nil)
	if err != nil {
		return nil, nil, err
	}
	if len(triggers) > 0 {
		return nil, nil, fmt.Errorf("%w: %s has triggers that fire on the delete (%s), and what they change is in no backup; disable them for the dedupe (and enable them after), then run it again",
			ErrBeyondBackup, u.spec.Table, strings.Join(triggers, ", "))
	}
	if id == nil && len(refs) > 0 {
		return nil, nil, fmt.Errorf("%w: %s has no primary key, so the dedupe would delete every copy of a duplicated key and insert one back, and the foreign key %s of %s would act on the rows referencing it; add a primary key (e.g. an auto-increment column) so only the surplus copies are deleted",
			ErrBeyondBackup, u.spec.Table, refs[0].name, refs[0].child)
	}
	return id, refs, nil
}

// deleteSurplus deletes the rows the scratch table ranks after the first,
// by their identity.
func (u *deduper) deleteSurplus(id *identity) string {
	d := u.d
	tq, sq, rn := d.Quote(u.spec.Table), d.Quote(u.scratch), d.Quote(rankColumn)
	if id.expr != "" {
		return fmt.Sprintf("DELETE FROM %s WHERE %s IN (SELECT %s FROM %s WHERE %s > 1)", tq, id.expr, d.Quote(rowIDColumn), sq, rn)
	}
	eq := make([]string, len(id.key))
	for i, k := range id.key {
		eq[i] = fmt.Sprintf("s.%s = %s.%s", d.Quote(k), tq, d.Quote(k))
	}
	return fmt.Sprintf("DELETE FROM %s WHERE EXISTS (SELECT 1 FROM %s s WHERE s.%s > 1 AND %s)", tq, sq, rn, strings.Join(eq, " AND "))
}

// refuseReferenced fails with ErrBeyondBackup when a child row references
// a surplus copy: its foreign key would delete it (CASCADE), change it (SET
// NULL) or fail the delete, and the backup holds none of that.
func (u *deduper) refuseReferenced(ctx context.Context, q exactly.Querier, refs []reference) error {
	d := u.d
	for _, r := range refs {
		eq := make([]string, len(r.cols))
		for i := range r.cols {
			eq[i] = fmt.Sprintf("s.%s = c.%s", d.Quote(r.parent[i]), d.Quote(r.cols[i]))
		}
		var n int64
		if err := q.QueryRowContext(ctx, fmt.Sprintf("SELECT COUNT(*) FROM %s c WHERE EXISTS (SELECT 1 FROM %s s WHERE s.%s > 1 AND %s)",
			r.child, d.Quote(u.scratch), d.Quote(rankColumn), strings.Join(eq, " AND "))).Scan(&n); err != nil {
			return fmt.Errorf("counting rows of %s referencing surplus copies: %w", r.child, err)
		}
		if n > 0 {
			return fmt.Errorf("%w: %d rows of %s reference surplus copies in %s through the foreign key %s (%s); point them at the copy kept, or remove them yourself, then run the dedupe again; rolled back, nothing changed",
				ErrBeyondBackup, n, r.child, u.spec.Table, r.name, strings.Join(r.cols, ", "))
		}
	}
	return nil
}

// replaceAll is the dedupe of a table without a row identity: it deletes
// every copy of the duplicated keys and inserts the kept copies back. The
// caller refused it when anything references the table or a trigger would
// fire. It returns the rows kept.
func (u *deduper) replaceAll(exec func(what, q string) (int64, error), copied, removed int64) (int64, error) {
	d := u.d
	tq, sq, rn := d.Quote(u.spec.Table), d.Quote(u.scratch), d.Quote(rankColumn)
	eq := make([]string, len(u.spec.Key))
	for i, k := range u.spec.Key {
		eq[i] = fmt.Sprintf("s.%s = %s.%s", d.Quote(k), tq, d.Quote(k))
	}
	deleted, err := exec("deleting duplicated keys from "+u.spec.Table, fmt.Sprintf(
		"DELETE FROM %s WHERE EXISTS (SELECT 1 FROM %s s WHERE %s)", tq, sq, strings.Join(eq, " AND ")))
	if err != nil {
		return 0, err
	}
	if deleted != copied {
		return 0, fmt.Errorf("dedupe of %s: copied %d rows of duplicated keys but the delete matched %d: %w; rolled back, nothing changed",
			u.spec.Table, copied, deleted, ErrChanged)
	}
	kept, err := exec("restoring kept rows into "+u.spec.Table, fmt.Sprintf(
		"INSERT INTO %s (%s) SELECT %s FROM %s WHERE %s = 1", tq, u.cols, u.cols, sq, rn))
	if err != nil {
		return 0, err
	}
	if kept+removed != copied {
		return 0, fmt.Errorf("dedupe of %s: kept %d and backed up %d of %d copied rows: %w; rolled back", u.spec.Table, kept, removed, copied, ErrChanged)
	}
	return kept, nil
}

// rankColumn is the scratch table's extra column: a copy's rank in its key.
const rankColumn = "exactly_rn"

// prepareTables creates the backup table and the scratch table (with the
// rank column and an index on the key), outside any transaction.
func (u *deduper) prepareTables(ctx context.Context, db *sql.DB, id *identity) error {
	d := u.d
	for _, name := range []string{u.backup, u.scratch} {
		if _, err := db.ExecContext(ctx, d.CreateTableLike(name, u.spec.Table)); err != nil {
			return fmt.Errorf("creating table %s: %w", name, err)
		}
		t, err := d.Describe(ctx, db, name)
		if err != nil || t == nil {
			return fmt.Errorf("describing table %s: %v", name, err)
		}
		for _, c := range u.table.Columns {
			if t.Column(c.Name) == nil {
				return fmt.Errorf("table %s (from an earlier dedupe) lacks column %q of %s: add the column to it, or rename it so a fresh one is made", name, c.Name, u.spec.Table)
			}
		}
		if name == u.scratch && t.Column(rankColumn) == nil {
			stmt := d.AddColumn(name, exactly.ColumnDef{Name: rankColumn, Type: exactly.Type{Kind: exactly.KindInt64}, Nullable: true})
			if _, err := db.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("adding %s to %s: %w", rankColumn, name, err)
			}
		}
		if name == u.scratch && id != nil && id.expr != "" && t.Column(rowIDColumn) == nil {
			stmt := fmt.Sprintf("ALTER TABLE %s ADD COLUMN %s %s", d.Quote(name), d.Quote(rowIDColumn), id.colType)
			if _, err := db.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("adding %s to %s: %w", rowIDColumn, name, err)
			}
		}
	}
	// The delete finds the table's rows by the scratch table's key: without
	// an index that is a scan of the scratch table per row (SQLite, MySQL).
	idx := u.scratch
	if i := strings.LastIndexByte(idx, '.'); i >= 0 {
		idx = idx[i+1:]
	}
	if _, err := db.ExecContext(ctx, fmt.Sprintf("CREATE INDEX %s ON %s (%s)", d.Quote(idx+"_key"), d.Quote(u.scratch), u.keys)); err != nil {
		// Left by an interrupted run, index included: only slower if not.
		_ = err
	}
	if id != nil && id.expr == "" { // the surplus delete finds rows by their primary key
		kq := make([]string, len(id.key))
		for i, k := range id.key {
			kq[i] = d.Quote(k)
		}
		db.ExecContext(ctx, fmt.Sprintf("CREATE INDEX %s ON %s (%s)", d.Quote(idx+"_id"), d.Quote(u.scratch), strings.Join(kq, ", "))) //nolint:errcheck // as above
	}
	return nil
}

// samples reads the most duplicated keys from the scratch table.
func (u *deduper) samples(ctx context.Context, q exactly.Querier) ([]Sample, error) {
	rows, err := q.QueryContext(ctx, fmt.Sprintf("SELECT %s, COUNT(*) FROM %s GROUP BY %s ORDER BY COUNT(*) DESC, %s",
		u.keys, u.d.Quote(u.scratch), u.keys, u.keys))
	if err != nil {
		return nil, fmt.Errorf("sampling duplicates in %s: %w", u.spec.Table, err)
	}
	defer rows.Close()
	return scanSamples(rows, len(u.spec.Key))
}

func scanSamples(rows *sql.Rows, keys int) ([]Sample, error) {
	out := []Sample{}
	for rows.Next() && len(out) < 5 {
		vals := make([]any, keys+1)
		ptrs := make([]any, len(vals))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, fmt.Errorf("sampling duplicates: %w", err)
		}
		s := Sample{}
		for _, v := range vals[:keys] {
			if b, ok := v.([]byte); ok {
				v = string(b)
			}
			s.Key = append(s.Key, fmt.Sprint(v))
		}
		fmt.Sscan(fmt.Sprint(vals[keys]), &s.Copies)
		out = append(out, s)
	}
	return out, rows.Err()
}

// AddUniqueKey creates the unique index on the key columns that keeps
// duplicates from coming back, and returns the statement it ran. It fails
// (changing nothing) while duplicates remain.
func AddUniqueKey(ctx context.Context, db *sql.DB, d exactly.Dialect, spec Dedupe) (string, error) {
	u, err := newDeduper(ctx, db, d, spec)
	if err != nil {
		return "", err
	}
	stmt := u.uniqueKey()
	if _, err := db.ExecContext(ctx, stmt); err != nil {
		return stmt, fmt.Errorf("adding unique key to %s: %w", spec.Table, err)
	}
	return stmt, nil
}
