package exactly

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Dialect produces SQL and maps types for one database. It holds no
// exactly-once logic: Sink runs the transaction, the fence and the ledger
// rows, so no dialect can get exactly-once subtly wrong.
type Dialect interface {
	// Name is the driver name used in configuration: postgres, sqlite, …
	Name() string

	// Open returns a pool for the configured sink. It applies the session
	// settings the dialect needs (SQLite: BEGIN IMMEDIATE; PostgreSQL:
	// synchronous_commit).
	Open(ctx context.Context, cfg SinkConfig) (*sql.DB, error)

	// Placeholder returns the n-th (1-based) bind parameter.
	Placeholder(n int) string

	// Quote quotes an identifier; a dotted name is quoted part by part.
	Quote(ident string) string

	// LedgerDDL returns idempotent statements creating the ledger tables
	// and their indexes. Sink runs them once at start.
	LedgerDDL() []string

	// InsertIfAbsent returns an INSERT of the given columns that does
	// nothing when a row with the same primary key exists.
	InsertIfAbsent(table string, columns []string) string

	// Describe returns the target table's columns and primary key, or
	// (nil, nil) when the table does not exist. Called once per table and
	// cached by Sink.
	Describe(ctx context.Context, q Querier, table string) (*Table, error)

	// Apply writes one table's collapsed changes inside tx, set-based.
	// Called once per table per transaction, except while Sink isolates
	// rows the database refused: then it is called again, under savepoints,
	// with subsets of the rows, and each call must write exactly the rows
	// it is given (nothing left over from an earlier call). It must not
	// commit or roll back.
	Apply(ctx context.Context, tx *Tx, w *TableWrite) error

	// Savepoint returns the statements that set a savepoint named name
	// inside a transaction, roll back to it, and release it. release is ""
	// for databases without one (SQL Server). Sink uses them to isolate a
	// row that fails with ErrData without losing the rest of the batch.
	Savepoint(name string) (set, rollback, release string)

	// Classify says what an error means for retrying.
	Classify(err error) ErrorKind

	// ColumnType maps a logical type to this database's column type, as
	// CREATE TABLE and ADD COLUMN write it. key is true for primary key
	// columns (MySQL and SQL Server cannot index unbounded text).
	ColumnType(t Type, key bool) string

	// CreateTable returns one statement creating the table with the
	// columns and primary key (none when key is empty), doing nothing
	// when a table of that name exists. Sink runs it outside any batch
	// transaction (DDL commits implicitly in MySQL) and describes the
	// table again afterwards; a failure caused by a concurrent creator is
	// forgiven when the table then exists.
	CreateTable(table string, cols []ColumnDef, key []string) string

	// AddColumn returns one statement adding a nullable column, doing
	// nothing when the column exists where the database allows it. Sink
	// runs it outside any batch transaction and forgives a failure when
	// describing the table again shows the column.
	AddColumn(table string, col ColumnDef) string

	// CreateTableLike returns one statement creating table name, when it
	// does not exist, with the columns (names and types; no keys, no
	// constraints, no rows) of table source. exactly dedupe runs it,
	// outside any transaction, for its backup and scratch tables.
	CreateTableLike(name, source string) string
}

// ManyDescriber is an optional Dialect capability: it describes many
// tables in one catalog query, so a flight's first commit after a start
// asks the catalog once for its hundreds of tables, not once per table
// (800 round trips cost seconds on Azure SQL at every restart).
type ManyDescriber interface {
	// DescribeMany returns the description of each of tables (at most
	// DescribeManyLimit distinct names) that exists, keyed by its name as
	// given, each as Describe would return it; a table that does not
	// exist is absent.
	DescribeMany(ctx context.Context, q Querier, tables []string) (map[string]*Table, error)
}

// DescribeManyLimit is the most names Sink passes to one DescribeMany.
const DescribeManyLimit = 500

// ColumnNamer is an optional Dialect capability: the database's own
// limits on a column name (PostgreSQL: 63 bytes, MySQL: 64 characters,
// SQL Server: 128), checked before create or evolve makes a column for a
// field. Empty names, NUL characters, dots and invalid UTF-8 are refused
// for every dialect (see ColumnNameError).
type ColumnNamer interface {
	// CheckColumnName says why name cannot be a column, or returns nil.
	CheckColumnName(name string) error
}

// ColumnFolder is an optional Dialect capability: a database that does
// not tell column names apart by case (SQLite for ASCII letters,
// MySQL/MariaDB, SQL Server under its usual case-insensitive collation)
// gives the form under which it compares two names. create and evolve
// refuse a field that differs only in case from a column or from another
// field (see Sink.badField): one CREATE TABLE naming both "Name" and
// "name" fails as a duplicate column on every try.
type ColumnFolder interface {
	FoldColumnName(name string) string
}

// ValueChecker is an optional Dialect capability: it tells in Go, per
// column, whether the database would refuse a value (PostgreSQL: "maybe"
// for a boolean, 2024-13-45 for a date, 70000 for a smallint, eight
// characters for a varchar(5)). Sink checks every record of a batch with
// it before collapsing the batch to the last change per key, so a refused
// record is dead-lettered even when a later change of its key supersedes
// it and it never reaches the database: without it, the same record was a
// dead letter or a silent skip depending on where batches were cut.
type ValueChecker interface {
	// ValueCheck returns the check of one column's values, or nil when
	// the dialect can tell nothing for the column's type. Called once per
	// table description; the check is called once per value, must not
	// allocate in the common case, and returns why the database would
	// refuse v (never nil), or "" when it takes v or when Go cannot tell
	// (the database then has the last word when the record is written).
	ValueCheck(col *Column) func(v any) string
}

// LockTimeouts is an optional Dialect capability: it recognises a lock
// wait that timed out (MySQL 1205, SQL Server 1222). When a partition's
// fence times out waiting for its exactly_offsets row, held by another
// transaction (a paused zombie), Sink drops that partition from the
// flight, as it drops a fenced one, and commits the rest.
type LockTimeouts interface {
	LockTimedOut(err error) bool
}

// Constraints is an optional Dialect capability: it recognises a row
// refused by a table's constraint rather than for its own value — a NOT
// NULL or CHECK (which an operator may have added: then every row is
// refused) or a foreign key (a child before its parent, which another
// topic may bring a little later). Sink holds such refusals for
// sink.refused_wait before it dead-letters them (see RefusedError); a bad
// value (too long, out of range, malformed) is a dead letter at once.
type Constraints interface {
	Constraint(err error) (constraint, foreignKey bool)
}

// Statement is one SQL statement and its arguments.
type Statement struct {
	SQL  string
	Args []any
}

// Pipeliner is an optional Dialect capability, for drivers that can send
// many statements in one round trip (PostgreSQL's extended protocol). When a
// dialect implements it, Sink sends a transaction's fences, table writes,
// dead letters and ledger rows as one pipeline instead of a round trip per
// statement. The exactly-once logic does not change: Sink still checks every
// fence's rows affected before it sends COMMIT.
type Pipeliner interface {
	// Statements returns, in order, the statements that write w inside
	// tx. It may do preparatory work on tx itself (PostgreSQL: COPY a large
	// write into a session staging table), but every change to a target
	// table is left to the returned statements. Called once per table per
	// transaction attempt.
	Statements(ctx context.Context, tx *Tx, w *TableWrite) ([]Statement, error)

	// ExecPipeline executes stmts in order inside tx, in as few round
	// trips as the driver allows, and returns the rows each affected. The
	// first error stops it; Sink then rolls the transaction back.
	ExecPipeline(ctx context.Context, tx *Tx, stmts []Statement) ([]int64, error)
}

// MultiRowInserts is an optional Pipeliner capability: Sink sends a
// flight's ledger rows and dead letters as multi-row INSERT … VALUES
// statements of at most MaxInsertRows(columns) rows each, instead of one
// statement per row (SQL Server: 2,100 parameters per request and 1,000
// rows per VALUES list bound them).
type MultiRowInserts interface {
	MaxInsertRows(columns int) int
}

// RoundTripCounter is implemented by a driver connection (reached through
// sql.Conn.Raw) that counts its round trips to the database: Sink reports
// the round trips of each flight's transactions in Outcome.RoundTrips and
// at debug level.
type RoundTripCounter interface {
	RoundTrips() int64
}

// NullBytes is implemented by a dialect whose driver needs a typed NULL
// for binary columns: Sink writes NullBytes() instead of nil into
// exactly_dead_letters.record_key/record_value. (go-mssqldb sends an
// untyped nil as nvarchar, which SQL Server refuses to convert to
// varbinary.)
type NullBytes interface {
	NullBytes() any
}

// SharedTables is implemented by dialects whose concurrent transactions
// write disjoint keys of one table without locking each other out
// (PostgreSQL's INSERT … ON CONFLICT takes no gap or range locks), so the
// partitions of one table may commit in parallel transactions. Without
// it a table is written by one transaction at a time: InnoDB's next-key
// locks and SQL Server's UPDLOCK, HOLDLOCK range locks deadlock even on
// disjoint keys.
type SharedTables interface {
	SharedTables() bool
}

// SingleWriter is implemented by dialects whose database runs one write
// transaction at a time (SQLite: BEGIN IMMEDIATE takes the file's write
// lock). Sink then lets its write transactions (inTx) begin one at a
// time, in the order they asked: one waiting on the database's lock
// instead polls for it (SQLite's busy handler sleeps 1 ms, 2 ms, … up to
// 100 ms between tries), and the lock stood free for much of each sleep.
// Another process's writer is still waited for by the database's own
// busy timeout.
type SingleWriter interface {
	SingleWriter() bool
}

// KeyEquality is an optional Dialect capability: it tells Sink which key
// values the database holds to be the same row, so that a batch is
// collapsed by the database's own equality and not by Go text. Without it,
// keys "abc" and "ABC" under a case-insensitive collation (or numeric 1 and
// 1.0, or SQLite's "01" and 1 in an INTEGER column) were two changes in Go
// and one row in the table: a delete of one and an upsert of the other were
// applied in the wrong order, or the database refused the statement
// (PostgreSQL 21000) and the flight was retried forever.
//
// Sink calls KeyClass once per key column per table write, and the
// function it returns once per record. It calls SameKeys only when a class
// function cannot decide (KeyUnknown), or when two different values share
// a KeyBucket: the common case (integer keys, text under a binary
// collation) costs no round trip.
type KeyEquality interface {
	// KeyClass returns the class function of key column col of t, or nil
	// when the dialect cannot tell anything about it (Sink then asks
	// SameKeys for every write with more than one distinct key).
	KeyClass(t *Table, col string) KeyClassFunc

	// SameKeys groups key tuples (values aligned with cols, all distinct
	// as Go values) by the database's own equality after the conversion a
	// write applies: out[i] is the smallest j with tuples[j] the same row
	// as tuples[i] (so out[i] == i for the first of each group). A tuple
	// the database cannot convert (it would refuse the row) is its own
	// group. q is a connection outside any transaction; SameKeys may
	// create session-local (temporary) tables on it. It must not change
	// any other table.
	SameKeys(ctx context.Context, q Querier, t *Table, cols []string, tuples [][]any) ([]int, error)
}

// KeyClassFunc gives a key value's identity as the database compares it
// after a write's conversion, and how far that identity can be trusted.
// For one column, KeyExact identities and KeyBucket identities are of one
// domain: two values the database holds equal get equal identities either
// way.
type KeyClassFunc func(v any) (id string, m KeyMatch)

// KeyMatch says what a key identity proves.
type KeyMatch uint8

const (
	// KeyUnknown: only the database can tell (a non-canonical spelling,
	// a type or collation the dialect does not model). id is ignored.
	KeyUnknown KeyMatch = iota
	// KeyBucket: the same row implies the same id, not conversely (a
	// case-insensitive collation folded conservatively).
	KeyBucket
	// KeyExact: the same id if and only if the same row.
	KeyExact
)

// ErrorKind is what an error means for retrying.
type ErrorKind int

const (
	// ErrOther is anything not recognised: the batch is retried after a pause.
	ErrOther ErrorKind = iota
	// ErrConflict is a deadlock or serialization failure: retry at once.
	ErrConflict
	// ErrConnection means the connection broke: the outcome of an in-flight
	// COMMIT is unknown and must be read back from the ledger.
	ErrConnection
	// ErrData is a bad value or a constraint violation caused by a row: the
	// offending record is isolated and dead-lettered.
	ErrData
)

// Querier is what Describe needs: a pool, a connection or a transaction.
type Querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// Tx is one batch transaction: the transaction and the connection it runs
// on, for dialects that need the driver connection (PostgreSQL COPY).
type Tx struct {
	*sql.Tx
	Conn *sql.Conn
}

// Table describes a target table.
type Table struct {
	Name    string
	Columns []Column
	Key     []string // primary key columns, in key order
}

// Column is one column of a target table.
type Column struct {
	Name     string
	Type     string // the database's own type name, e.g. "bigint", "numeric(12,2)"
	Nullable bool
	// Collation is the column's collation as the dialect's Describe
	// reports it ("" when it has none of its own), for KeyEquality.
	Collation string
}

// Column returns the named column, or nil.
func (t *Table) Column(name string) *Column {
	for i := range t.Columns {
		if t.Columns[i].Name == name {
			return &t.Columns[i]
		}
	}
	return nil
}

// KeyByPosition returns a primary key's columns in key order, from the
// ordinal position the catalog gives each key column (1-based or 0-based,
// whichever the database uses). Nil when there is none.
func KeyByPosition(pos map[int64]string) []string {
	var key []string
	for _, p := range slices.Sorted(maps.Keys(pos)) {
		key = append(key, pos[p])
	}
	return key
}

// DescribeColumns runs a dialect's catalog query for Describe, whose rows
// are, in column order: the column's name, its type, whether it is
// nullable, its position in the primary key (NULL for a column not in
// it) and its collation (NULL or empty for none). Nil when the table has no
// columns: it does not exist.
func DescribeColumns(ctx context.Context, q Querier, table, query string, args ...any) (*Table, error) {
	out, err := describeRows(ctx, q, []string{table}, false, query, args...)
	return out[table], err
}

// DescribeManyColumns runs a dialect's catalog query for DescribeMany,
// whose rows are the index (0-based) in tables of the table they describe,
// then DescribeColumns's columns; one table's rows in column order. A
// table with no rows is absent from the result: it does not exist.
func DescribeManyColumns(ctx context.Context, q Querier, tables []string, query string, args ...any) (map[string]*Table, error) {
	return describeRows(ctx, q, tables, true, query, args...)
}

// describeRows reads DescribeColumns's rows, each led by its table's
// index in tables when indexed (else all of tables[0]).
func describeRows(ctx context.Context, q Querier, tables []string, indexed bool, query string, args ...any) (map[string]*Table, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	byIndex := map[int64]*Table{}
	keyPos := map[int64]map[int64]string{}
	for rows.Next() {
		var i int64
		var c Column
		var pos sql.NullInt64
		var coll sql.NullString
		dest := []any{&c.Name, &c.Type, &c.Nullable, &pos, &coll}
		if indexed {
			dest = append([]any{&i}, dest...)
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		if i < 0 || i >= int64(len(tables)) {
			return nil, fmt.Errorf("describing tables: the catalog query gave table index %d of %d", i, len(tables))
		}
		t := byIndex[i]
		if t == nil {
			t = &Table{Name: tables[i]}
			byIndex[i] = t
			keyPos[i] = map[int64]string{}
		}
		c.Collation = coll.String
		t.Columns = append(t.Columns, c)
		if pos.Valid {
			keyPos[i][pos.Int64] = c.Name
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := make(map[string]*Table, len(byIndex))
	for i, t := range byIndex {
		t.Key = KeyByPosition(keyPos[i])
		out[t.Name] = t
	}
	return out, nil
}

// TableWrite is one table's share of a transaction, already collapsed to
// the last change per key and ordered by key.
type TableWrite struct {
	Table *Table
	// Append inserts every row; otherwise rows are upserted by Keys.
	Append bool
	// Keys are the key columns rows are matched on (upsert, delete).
	Keys []string
	// Columns are the columns written, the same for every row in Upserts.
	Columns []string
	// Upserts holds rows aligned with Columns.
	Upserts [][]any
	// Deletes holds key values aligned with Keys.
	Deletes [][]any
	// Version names the version column guarding updates and deletes, or "".
	Version string
	// DeleteVersions holds, when Version is set, the version of each delete.
	DeleteVersions []any
	// Part numbers the writes of one table in one transaction (a table
	// has several when its upserts carry different columns): a dialect
	// that stages rows in a session table before running its statements
	// must not let one part's staging overwrite another's.
	Part int
}

// StageColumns are the columns a staging table for w needs: the written
// columns, then the key and version columns a delete needs, each once.
func (w *TableWrite) StageColumns() []string {
	seen := map[string]bool{}
	var cols []string
	add := func(c string) {
		if c != "" && !seen[c] {
			seen[c] = true
			cols = append(cols, c)
		}
	}
	for _, c := range w.Columns {
		add(c)
	}
	for _, c := range w.Keys {
		add(c)
	}
	add(w.Version)
	return cols
}

// rebind turns ? placeholders into the dialect's.
func (s *Sink) rebind(q string) string { return Rebind(s.d, q) }

// Rebind turns ? placeholders into the dialect's own. The query must not
// contain ? inside string literals.
func Rebind(d Dialect, q string) string {
	if d.Placeholder(1) == "?" {
		return q
	}
	var sb strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			sb.WriteString(d.Placeholder(n))
			continue
		}
		sb.WriteRune(r)
	}
	return sb.String()
}
