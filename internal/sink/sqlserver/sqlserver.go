// Package sqlserver is the SQL Server / Azure SQL dialect
// (microsoft/go-mssqldb). A table's share of a batch is staged — a small
// one as VALUES lists of parameters inside the flight's T-SQL batch, a
// larger one bulk-copied into a session-local #temp table — then applied
// set-based (UPDATE … FROM the stage, INSERT … WHERE NOT EXISTS … WITH
// (UPDLOCK, HOLDLOCK), DELETE … JOIN), in the one transaction Sink runs. The rule: every session runs with
// XACT_ABORT ON and NOCOUNT OFF, so a failed statement dooms its whole
// transaction (never a partial batch) and the fence's UPDATE reports the
// rows it matched.
//
// The generated SQL is pinned by testdata/*.golden; the conformance suite
// runs live against the server EXACTLY_TEST_SQLSERVER_DSN names — in CI,
// Babelfish for PostgreSQL (T-SQL over TDS), which is not SQL Server: see
// the README's SQL Server section for what that does and does not show.
package sqlserver

import (
	"cmp"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"

	mssql "github.com/microsoft/go-mssqldb"
	"github.com/microsoft/go-mssqldb/azuread"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/secret"
)

// Dialect is the SQL Server / Azure SQL dialect.
type Dialect struct{}

var _ exactly.Dialect = (*Dialect)(nil)

// Name implements exactly.Dialect.
func (*Dialect) Name() string { return "sqlserver" }

// FoldColumnName implements exactly.ColumnFolder: column names compare
// under the database's collation, case-insensitive by default (SQL
// Server's and Azure SQL's SQL_Latin1_General_CP1_CI_AS); under a
// case-sensitive one this refuses a field the database would take.
func (*Dialect) FoldColumnName(name string) string { return strings.ToLower(name) }

// sessionSQL is run on every new connection and after every pool reset
// (sp_reset_connection restores the defaults). LOCK_TIMEOUT bounds a wait
// for a lock (SQL Server's default is forever): a paused zombie holding
// its exactly_offsets rows in an open transaction would otherwise block
// the partition's new owner at the fence for as long as it stays paused —
// SQL Server has no idle-in-transaction timeout to end the zombie's
// session. The wait ends with 1222 (see LockTimedOut).
const sessionSQL = "SET XACT_ABORT ON; SET NOCOUNT OFF; SET LOCK_TIMEOUT 10000;"

// Open implements exactly.Dialect. The DSN is any form the driver takes:
// sqlserver://user:pass@host:1433?database=db, ADO
// ("server=…;user id=…") or ODBC. With a fedauth parameter
// (fedauth=ActiveDirectoryDefault, ActiveDirectoryManagedIdentity,
// ActiveDirectoryServicePrincipal, …) the driver's azuread package gets an
// Azure AD (Entra ID) token instead of using SQL authentication.
func (*Dialect) Open(ctx context.Context, cfg exactly.SinkConfig) (*sql.DB, error) {
	var c *mssql.Connector
	var err error
	if UsesAzureAD(cfg.DSN) {
		c, err = azuread.NewConnector(cfg.DSN)
	} else {
		c, err = mssql.NewConnector(cfg.DSN)
	}
	if err != nil {
		return nil, dsnError("sqlserver", "a sqlserver:// URL, an ADO or an ODBC string", err)
	}
	c.SessionInitSQL = sessionSQL
	c.Dialer = newCountingDialer(cfg.DSN)
	db := sql.OpenDB(&connector{c})
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// UsesAzureAD reports whether a DSN asks for Azure AD authentication.
func UsesAzureAD(dsn string) bool { return strings.Contains(strings.ToLower(dsn), "fedauth=") }

// connector runs sessionSQL on each new connection; the driver's
// SessionInitSQL only runs when a pooled connection is reset.
type connector struct{ *mssql.Connector }

func (c *connector) Connect(ctx context.Context) (driver.Conn, error) {
	trips := new(atomic.Int64)
	dc, err := c.Connector.Connect(context.WithValue(ctx, tripsKey{}, trips))
	if err != nil {
		return nil, err
	}
	if err := initSession(ctx, dc); err != nil {
		dc.Close()
		return nil, fmt.Errorf("setting session options: %w", err)
	}
	if mc, ok := dc.(*mssql.Conn); ok {
		return &conn{Conn: mc, trips: trips}, nil
	}
	return dc, nil
}

// conn is the driver's connection with its round trips counted (see
// roundtrips.go) and nil parameters typed.
type conn struct {
	*mssql.Conn
	trips *atomic.Int64
}

// BeginTx implements driver.ConnBeginTx.
func (c *conn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	start := c.trips.Load()
	tx, err := c.Conn.BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	return &countedTx{Tx: tx, c: c, start: start}, nil
}

// typedNullStmt sends a nil statement parameter as a NULL nvarchar: the
// driver sends it as TDS type NULLTYPE (0x1F) declared nvarchar(1), which
// SQL Server takes and Babelfish refuses ("Data type 0x1F is unknown",
// 8009, on every ledger row with a NULL column). Declared nvarchar either
// way, so SQL Server converts the NULL exactly as before. Bulk copies
// (mssql.CopyIn) keep their nils: the bulk protocol types each column
// from the table.
func (c *conn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	stmt, err := c.Conn.PrepareContext(ctx, query)
	if err != nil || strings.HasPrefix(query, "INSERTBULK") {
		return stmt, err
	}
	return &typedNullStmt{stmt.(*mssql.Stmt), c.Conn}, nil
}

type typedNullStmt struct {
	*mssql.Stmt
	conn *mssql.Conn
}

// CheckNamedValue implements driver.NamedValueChecker.
func (s *typedNullStmt) CheckNamedValue(nv *driver.NamedValue) error {
	if nv.Value == nil {
		nv.Value = sql.NullString{}
		return nil
	}
	return s.conn.CheckNamedValue(nv)
}

// initSession runs sessionSQL on a fresh driver connection. go-mssqldb's
// *Conn has no ExecContext (it was required here once, and every
// connection was refused, to any server): a prepared statement is what it
// offers, and the driver sends a statement without parameters as a plain
// batch.
func initSession(ctx context.Context, conn driver.Conn) error {
	pc, ok := conn.(driver.ConnPrepareContext)
	if !ok {
		return errors.New("driver connection cannot prepare statements")
	}
	stmt, err := pc.PrepareContext(ctx, sessionSQL)
	if err != nil {
		return err
	}
	defer stmt.Close()
	ex, ok := stmt.(driver.StmtExecContext)
	if !ok {
		return errors.New("driver statement cannot execute with a context")
	}
	_, err = ex.ExecContext(ctx, nil)
	return err
}

// Placeholder implements exactly.Dialect.
func (*Dialect) Placeholder(n int) string { return "@p" + strconv.Itoa(n) }

// Quote implements exactly.Dialect: brackets, part by part.
func (*Dialect) Quote(ident string) string {
	parts := strings.Split(ident, ".")
	for i, p := range parts {
		parts[i] = "[" + strings.ReplaceAll(p, "]", "]]") + "]"
	}
	return strings.Join(parts, ".")
}

// literal is an N'…' string literal.
func literal(s string) string { return "N'" + strings.ReplaceAll(s, "'", "''") + "'" }

// keyText is the collation of pipeline and topic names: binary, because
// Kafka topic names are case-sensitive and the database default usually
// is not.
const keyText = " COLLATE Latin1_General_100_BIN2"

// LedgerDDL implements exactly.Dialect: exactly.LedgerTables rendered.
// SQL Server has no CREATE TABLE IF NOT EXISTS; each statement checks the
// catalog first. Key columns stay under the 900-byte clustered index
// limit: the pipeline name is NVARCHAR(100) here (keyWidth), and
// NVARCHAR(100) + NVARCHAR(249) + INT is 702 bytes.
func (d *Dialect) LedgerDDL() []string {
	var out []string
	for _, t := range exactly.LedgerTables() {
		cols := append(t.Definitions(d.Quote, ledgerType), "CONSTRAINT "+t.Name+"_pk PRIMARY KEY ("+d.list(t.Key, "")+")")
		out = append(out, "IF OBJECT_ID("+literal(t.Name)+", N'U') IS NULL CREATE TABLE "+t.Name+" ("+strings.Join(cols, ", ")+")")
		for _, ix := range t.Indexes {
			// The index is looked up by prefix: Babelfish lists an index
			// in sys.indexes under its name with the table's name and a
			// hash appended (exactly_batches_rangeexactly_ba418f…), so an
			// equality test never found it and the second start failed
			// with 2714. On SQL Server the prefix matches the exact name;
			// no other index on these tables starts with it.
			out = append(out, "IF NOT EXISTS (SELECT 1 FROM sys.indexes WHERE object_id = OBJECT_ID("+literal(t.Name)+
				") AND name LIKE "+literal(strings.ReplaceAll(ix.Name, "_", "[_]")+"%")+") CREATE INDEX "+ix.Name+" ON "+
				t.Name+" ("+d.list(ix.Columns, "")+")")
		}
	}
	return out
}

// keyWidth narrows ledger names that are part of a primary key beyond
// what the description says (see LedgerDDL).
var keyWidth = map[string]int{"pipeline": 100}

// ledgerType is a ledger column's type and nullability in SQL Server.
// Names compare with keyText's binary collation.
func ledgerType(c exactly.LedgerColumn) string {
	typ := map[exactly.LedgerType]string{exactly.LedgerText: "NVARCHAR(MAX)", exactly.LedgerBytes: "VARBINARY(MAX)",
		exactly.LedgerInt32: "INT", exactly.LedgerInt64: "BIGINT", exactly.LedgerTime: "DATETIME2(6)",
		exactly.LedgerSerial: "BIGINT IDENTITY(1,1)"}[c.Type]
	switch c.Type {
	case exactly.LedgerKey:
		typ = "NVARCHAR(" + strconv.Itoa(cmp.Or(keyWidth[c.Name], c.Size)) + ")" + keyText
	case exactly.LedgerString:
		typ = "NVARCHAR(" + strconv.Itoa(c.Size) + ")"
	}
	if c.Null {
		return typ + " NULL"
	}
	return typ + " NOT NULL"
}

// InsertIfAbsent implements exactly.Dialect: the insert, with a duplicate
// key (2627 primary key, 2601 unique index) swallowed and anything else
// re-raised.
func (d *Dialect) InsertIfAbsent(table string, columns []string) string {
	return "BEGIN TRY INSERT INTO " + d.Quote(table) + " (" + d.list(columns, "") + ") VALUES (" + marks(len(columns)) +
		") END TRY BEGIN CATCH IF ERROR_NUMBER() NOT IN (2627, 2601) THROW; END CATCH"
}

// NullBytes implements the optional exactly.NullBytes: an untyped NULL is
// sent as nvarchar, which SQL Server refuses to convert to varbinary.
func (*Dialect) NullBytes() any { return []byte(nil) }

func (d *Dialect) list(cols []string, prefix string) string {
	q := make([]string, len(cols))
	for i, c := range cols {
		q[i] = prefix + d.Quote(c)
	}
	return strings.Join(q, ", ")
}

func marks(n int) string { return strings.TrimSuffix(strings.Repeat("?, ", n), ", ") }

// describeSQL lists a table's columns with their full type (length,
// precision, scale, and a collation other than the database's), their
// position in the primary key and their collation (the database's
// included, for KeyEquality). The name comes from INFORMATION_SCHEMA:
// Babelfish's sys.columns gives it lowercased (MixedCase as mixedcase,
// and the column was never written); on SQL Server both are the name as
// created.
const describeSQL = `SELECT ` + describeColumns + `
WHERE c.object_id = OBJECT_ID(@p1)
ORDER BY c.column_id`

// describeColumns is what Describe and DescribeMany read of a column, up
// to their WHERE.
const describeColumns = `COALESCE(isc.COLUMN_NAME, c.name),
  CASE WHEN ty.name IN ('varchar', 'char', 'varbinary', 'binary')
         THEN ty.name + '(' + CASE WHEN c.max_length = -1 THEN 'max' ELSE CAST(c.max_length AS varchar(10)) END + ')'
       WHEN ty.name IN ('nvarchar', 'nchar')
         THEN ty.name + '(' + CASE WHEN c.max_length = -1 THEN 'max' ELSE CAST(c.max_length / 2 AS varchar(10)) END + ')'
       WHEN ty.name IN ('decimal', 'numeric')
         THEN ty.name + '(' + CAST(c.precision AS varchar(10)) + ',' + CAST(c.scale AS varchar(10)) + ')'
       WHEN ty.name IN ('datetime2', 'datetimeoffset', 'time')
         THEN ty.name + '(' + CAST(c.scale AS varchar(10)) + ')'
       ELSE ty.name END
  + CASE WHEN c.collation_name IS NOT NULL
          AND c.collation_name <> CAST(DATABASEPROPERTYEX(DB_NAME(), 'Collation') AS sysname)
         THEN ' COLLATE ' + c.collation_name ELSE '' END,
  c.is_nullable, NULLIF(ic.key_ordinal, 0), c.collation_name
FROM sys.columns c
JOIN sys.types ty ON ty.user_type_id = c.user_type_id
LEFT JOIN sys.indexes i ON i.object_id = c.object_id AND i.is_primary_key = 1
LEFT JOIN sys.index_columns ic ON ic.object_id = i.object_id AND ic.index_id = i.index_id AND ic.column_id = c.column_id
LEFT JOIN INFORMATION_SCHEMA.COLUMNS isc ON isc.TABLE_SCHEMA = OBJECT_SCHEMA_NAME(c.object_id)
  AND isc.TABLE_NAME = OBJECT_NAME(c.object_id) AND isc.COLUMN_NAME = c.name`

// Describe implements exactly.Dialect. A dotted name is schema.table.
func (d *Dialect) Describe(ctx context.Context, q exactly.Querier, table string) (*exactly.Table, error) {
	return exactly.DescribeColumns(ctx, q, table, describeSQL, d.Quote(table))
}

// DescribeMany implements exactly.ManyDescriber: Describe's query over
// the names, one parameter each in a VALUES list (at most 500 of SQL
// Server's 2,100 parameters), each resolved by OBJECT_ID as Describe
// resolves it.
func (d *Dialect) DescribeMany(ctx context.Context, q exactly.Querier, tables []string) (map[string]*exactly.Table, error) {
	var sb strings.Builder
	args := make([]any, len(tables))
	for i, t := range tables {
		if i > 0 {
			sb.WriteString(", ")
		}
		fmt.Fprintf(&sb, "(%d, @p%d)", i, i+1)
		args[i] = d.Quote(t)
	}
	return exactly.DescribeManyColumns(ctx, q, tables, `SELECT n.i, `+describeColumns+`
JOIN (VALUES `+sb.String()+`) AS n(i, name) ON c.object_id = OBJECT_ID(n.name)
ORDER BY n.i, c.column_id`, args...)
}

// Savepoint implements exactly.Dialect. With XACT_ABORT ON every error
// dooms the transaction, and a doomed transaction cannot roll back to a
// savepoint; while Sink isolates a refused row the session runs with
// XACT_ABORT OFF, where constraint, NULL, truncation and overflow errors
// end only their statement. An error that still dooms the transaction
// makes ROLLBACK TRANSACTION fail (3931), and Sink rolls everything back.
// release restores XACT_ABORT ON.
func (*Dialect) Savepoint(name string) (set, rollback, release string) {
	return "SET XACT_ABORT OFF; SAVE TRANSACTION " + name, "ROLLBACK TRANSACTION " + name, "SET XACT_ABORT ON"
}

// Error numbers by what they mean for a retry.
var (
	// conflicts: the transaction lost a race; retry it at once.
	conflicts = map[int32]bool{
		1205:  true,                                        // chosen as deadlock victim
		1222:  true,                                        // lock request time out
		3960:  true,                                        // snapshot isolation update conflict
		41302: true, 41305: true, 41325: true, 41301: true, // In-Memory OLTP conflicts
	}
	// transient: the server or the connection went away or is throttling
	// (Azure SQL reconfiguration, failover, resource limits). The outcome
	// of an in-flight COMMIT is unknown: Sink reads the ledger back.
	transient = map[int32]bool{
		40613: true,              // database not currently available
		40501: true,              // service is busy
		40197: true,              // service error processing the request (failover)
		40540: true,              // service encountered an error
		40544: true,              // database reached its size quota (eased by a scale-up or cleanup)
		40143: true,              // connection could not be initialized
		49918: true,              // not enough resources to process the request
		49919: true,              // too many create or update operations
		49920: true,              // too many operations in progress
		4060:  true,              // cannot open database (during failover)
		4221:  true,              // login to read-secondary failed (long wait on HADR_DATABASE_WAIT_FOR_TRANSITION_TO_VERSIONING)
		10928: true,              // resource limit reached
		10929: true,              // resource minimum guarantee not met
		42108: true, 42109: true, // serverless database paused or resuming
		233: true, 64: true, 10053: true, 10054: true, 10060: true, // transport-level errors
		596:  true, // session in the kill state
		6005: true, // SHUTDOWN in progress
	}
	// bad data: a row's value or a constraint; the row is at fault.
	badData = map[int32]bool{
		515:  true,             // cannot insert NULL
		2627: true, 2601: true, // duplicate key
		547:  true,             // constraint conflict (foreign key, check)
		8114: true, 8115: true, // conversion, arithmetic overflow
		220: true, 232: true, // arithmetic overflow for a type
		8152: true, 2628: true, // string or binary data would be truncated
		241: true, 242: true, 9806: true, // date/time conversion, out of range
		245: true, 248: true, 257: true, 8169: true, // conversion failed
		8134:  true, // divide by zero
		13609: true, // JSON text is not properly formatted
		4815:  true, // bulk copy: invalid column length (a value too long for its column)
		// MERGE updating one row twice: two staged keys one row under a
		// CI collation. Isolating rows ends it; "other" retried forever.
		8672: true,
	}
)

var _ exactly.LockTimeouts = (*Dialect)(nil)

// LockTimedOut implements exactly.LockTimeouts: 1222, lock request time
// out period exceeded. A fence that times out drops its partition from the
// flight: sent statement by statement, Sink knows the fence; pipelined,
// ExecPipeline names it by the error's line in the batch
// (exactly.StatementError). (Babelfish reports its lock timeout as
// 33557097 with PostgreSQL's text, not 1222.)
func (*Dialect) LockTimedOut(err error) bool {
	var me mssql.Error
	return errors.As(err, &me) && me.Number == 1222
}

// Classify implements exactly.Dialect.
func (*Dialect) Classify(err error) exactly.ErrorKind {
	var tl *TooLongError
	if errors.As(err, &tl) {
		return exactly.ErrData
	}
	var te *TypeError
	if errors.As(err, &te) {
		return exactly.ErrData
	}
	var me mssql.Error
	if errors.As(err, &me) {
		// A batch may carry several errors; the most telling decides.
		nums := []int32{me.Number}
		for _, e := range me.All {
			nums = append(nums, e.Number)
		}
		for _, n := range nums {
			if transient[n] {
				return exactly.ErrConnection
			}
		}
		for _, n := range nums {
			if conflicts[n] {
				return exactly.ErrConflict
			}
		}
		for _, n := range nums {
			if badData[n] {
				return exactly.ErrData
			}
		}
		return exactly.ErrOther
	}
	var ne net.Error
	switch {
	case errors.Is(err, driver.ErrBadConn), errors.Is(err, sql.ErrConnDone), errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.EPIPE), errors.As(err, &ne):
		return exactly.ErrConnection
	}
	var se mssql.ServerError // a fatal server error: the session is gone
	var st mssql.StreamError // the TDS stream is broken
	if errors.As(err, &se) || errors.As(err, &st) {
		return exactly.ErrConnection
	}
	return exactly.ErrOther
}

// dsnError is a DSN that does not parse: a configuration error (exit 2 at
// once), never a connection error. The parser's error is kept as text
// only, scrubbed: a *url.Error quotes the whole DSN, password included,
// and satisfies net.Error, so wrapping it made Classify call it a
// connection error that start-up retried, and logged, for two minutes.
func dsnError(driver, forms string, err error) error {
	return &exactly.ConfigError{Field: "sink.dsn", Expected: "a " + driver + " DSN: " + forms + " (parsing it: " + secret.Error(err) + ")"}
}
