// Package mysql is the MySQL/MariaDB dialect (go-sql-driver/mysql). A
// table's share of a batch is written with multi-row INSERT … ON DUPLICATE
// KEY UPDATE statements and multi-row DELETE … WHERE (key) IN (…)
// statements, chunked below the server's packet and placeholder limits, in
// the one transaction Sink runs. The rule: a failed statement never leaves
// its transaction to be committed — MySQL rolls back only the statement on
// a lock-wait timeout (error 1205), so every error is returned to Sink,
// which rolls the whole transaction back and retries it as a unit.
package mysql

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/secret"
)

// Dialect is the MySQL/MariaDB dialect.
type Dialect struct{}

var (
	_ exactly.Dialect      = (*Dialect)(nil)
	_ exactly.LockTimeouts = (*Dialect)(nil)
)

// Name implements exactly.Dialect.
func (*Dialect) Name() string { return "mysql" }

// FoldColumnName implements exactly.ColumnFolder: MySQL and MariaDB
// compare column names ignoring case (and, under utf8_general_ci, some
// accents, which this does not fold).
func (*Dialect) FoldColumnName(name string) string { return strings.ToLower(name) }

// Open implements exactly.Dialect. The DSN is a URL
// (mysql://user:pass@host:3306/db?param=value) or the driver's own form
// (user:pass@tcp(host:3306)/db?param=value); see Config for the settings
// that are always applied.
func (*Dialect) Open(ctx context.Context, cfg exactly.SinkConfig) (*sql.DB, error) {
	mc, err := Config(cfg.DSN)
	if err != nil {
		return nil, err
	}
	conn, err := mysql.NewConnector(mc)
	if err != nil {
		return nil, fmt.Errorf("configuring the mysql driver: %w", err)
	}
	db := sql.OpenDB(conn)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, err
	}
	if _, set := mc.Params["idle_transaction_timeout"]; set || cfg.IdleTxTimeout <= 0 {
		return db, nil
	}
	var version string
	if err := db.QueryRowContext(ctx, "SELECT VERSION()").Scan(&version); err != nil {
		db.Close()
		return nil, fmt.Errorf("reading the server version: %w", err)
	}
	if !strings.Contains(strings.ToLower(version), "mariadb") {
		return db, nil // MySQL has no idle-transaction timeout (see the README)
	}
	// A paused member (a zombie) must not hold its locks on the offsets
	// rows until wait_timeout (8 hours): MariaDB ends a transaction idle
	// this long by closing its connection, and the member that owns the
	// partitions now proceeds.
	db.Close()
	mc.Params["idle_transaction_timeout"] = strconv.FormatInt(int64(math.Ceil(cfg.IdleTxTimeout.Seconds())), 10)
	if conn, err = mysql.NewConnector(mc); err != nil {
		return nil, fmt.Errorf("configuring the mysql driver: %w", err)
	}
	db = sql.OpenDB(conn)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// fenceLockWait is the session's innodb_lock_wait_timeout unless the DSN
// sets one: how long a fence waits for an exactly_offsets row locked by
// another transaction before its partition is dropped from the flight
// (the server's default, 50 s, held every other partition of the flight
// hostage that long, on every try). Table writes wait as long; a lock
// wait timeout there retries the whole transaction.
const fenceLockWait = 10

// LockTimedOut implements exactly.LockTimeouts: 1205, lock wait timeout.
func (*Dialect) LockTimedOut(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && me.Number == 1205
}

// Config parses a DSN and applies the settings exactly relies on:
//
//   - clientFoundRows: the fence's UPDATE reports matched rows, not changed
//     rows, so a fence that rewrites identical values still counts as 1;
//   - parseTime with time zone UTC, and the session time_zone '+00:00', so
//     DATETIME columns hold UTC and read back as the same instant;
//   - STRICT_ALL_TABLES added to the session's sql_mode, so a bad value is
//     an error (and a dead letter) instead of a silently truncated row;
//   - innodb_lock_wait_timeout 10 (see fenceLockWait);
//   - multiStatements off;
//   - interpolateParams on unless the DSN sets it: the statements are built
//     client-side, saving the prepare and close round trips per chunk.
func Config(dsn string) (*mysql.Config, error) {
	var mc *mysql.Config
	var err error
	if strings.HasPrefix(dsn, "mysql://") || strings.HasPrefix(dsn, "mariadb://") {
		mc, err = fromURL(dsn)
	} else {
		mc, err = mysql.ParseDSN(dsn)
	}
	if err != nil {
		return nil, dsnError("mysql", "a mysql:// URL or the driver's user@tcp(host:3306)/db form", err)
	}
	mc.ClientFoundRows = true
	mc.ParseTime = true
	mc.Loc = time.UTC
	mc.MultiStatements = false
	if !strings.Contains(dsn, "interpolateParams=") {
		mc.InterpolateParams = true
	}
	if mc.Params == nil {
		mc.Params = map[string]string{}
	}
	if _, ok := mc.Params["time_zone"]; !ok {
		mc.Params["time_zone"] = "'+00:00'"
	}
	if _, ok := mc.Params["innodb_lock_wait_timeout"]; !ok {
		mc.Params["innodb_lock_wait_timeout"] = strconv.Itoa(fenceLockWait)
	}
	if _, ok := mc.Params["sql_mode"]; !ok {
		mc.Params["sql_mode"] = "CONCAT(@@sql_mode, ',STRICT_ALL_TABLES')"
	}
	if mc.Collation == "" {
		mc.Collation = "utf8mb4_general_ci"
	}
	return mc, nil
}

// fromURL converts mysql://user:pass@host:port/db?params to a driver
// configuration. The query parameters are the driver's own.
func fromURL(dsn string) (*mysql.Config, error) {
	u, err := url.Parse(dsn)
	if err != nil {
		return nil, err
	}
	host := u.Host
	if host == "" {
		host = "127.0.0.1:3306"
	} else if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "3306")
	}
	native := "tcp(" + host + ")/" + url.PathEscape(strings.TrimPrefix(u.Path, "/"))
	if u.RawQuery != "" {
		native += "?" + u.RawQuery
	}
	mc, err := mysql.ParseDSN(native)
	if err != nil {
		return nil, err
	}
	if u.User != nil {
		mc.User = u.User.Username()
		mc.Passwd, _ = u.User.Password()
	}
	return mc, nil
}

// Placeholder implements exactly.Dialect.
func (*Dialect) Placeholder(int) string { return "?" }

// Quote implements exactly.Dialect: backticks, part by part.
func (*Dialect) Quote(ident string) string {
	parts := strings.Split(ident, ".")
	for i, p := range parts {
		parts[i] = "`" + strings.ReplaceAll(p, "`", "``") + "`"
	}
	return strings.Join(parts, ".")
}

// tableOptions make the ledger tables transactional and able to hold any
// topic name; the binary collation matches topic names exactly, as Kafka
// does.
const tableOptions = " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"

// LedgerDDL implements exactly.Dialect: exactly.LedgerTables rendered.
// Indexes are declared inside CREATE TABLE: MySQL 8 has no CREATE INDEX
// IF NOT EXISTS. Names are VARCHARs of their size, so every index stays
// under InnoDB's 3072-byte limit in utf8mb4.
func (d *Dialect) LedgerDDL() []string {
	var out []string
	for _, t := range exactly.LedgerTables() {
		cols := append(t.Definitions(d.Quote, ledgerType), "PRIMARY KEY ("+d.list(t.Key)+")")
		for _, ix := range t.Indexes {
			cols = append(cols, "INDEX "+ix.Name+" ("+d.list(ix.Columns)+")")
		}
		out = append(out, "CREATE TABLE IF NOT EXISTS "+t.Name+" ("+strings.Join(cols, ", ")+")"+tableOptions)
	}
	return out
}

// ledgerType is a ledger column's type and nullability in MySQL: names
// are VARCHARs of their size.
func ledgerType(c exactly.LedgerColumn) string {
	typ := map[exactly.LedgerType]string{exactly.LedgerText: "LONGTEXT", exactly.LedgerBytes: "LONGBLOB",
		exactly.LedgerInt32: "INT", exactly.LedgerInt64: "BIGINT", exactly.LedgerTime: "DATETIME(6)",
		exactly.LedgerSerial: "BIGINT NOT NULL AUTO_INCREMENT"}[c.Type]
	if c.Type == exactly.LedgerKey || c.Type == exactly.LedgerString {
		typ = "VARCHAR(" + strconv.Itoa(c.Size) + ")"
	}
	switch {
	case c.Type == exactly.LedgerSerial: // NOT NULL already
	case c.Null:
		typ += " NULL"
	default:
		typ += " NOT NULL"
	}
	return typ
}

// InsertIfAbsent implements exactly.Dialect. It is not INSERT IGNORE,
// which would also turn bad values into warnings.
func (d *Dialect) InsertIfAbsent(table string, columns []string) string {
	first := d.Quote(columns[0])
	return "INSERT INTO " + d.Quote(table) + " (" + d.list(columns) + ") VALUES (" + marks(len(columns)) +
		") ON DUPLICATE KEY UPDATE " + first + " = " + first
}

func (d *Dialect) list(cols []string) string {
	q := make([]string, len(cols))
	for i, c := range cols {
		q[i] = d.Quote(c)
	}
	return strings.Join(q, ", ")
}

func marks(n int) string { return strings.TrimSuffix(strings.Repeat("?, ", n), ", ") }

// Describe implements exactly.Dialect. A dotted name is database.table;
// otherwise the connection's current database.
func (d *Dialect) Describe(ctx context.Context, q exactly.Querier, table string) (*exactly.Table, error) {
	var schema any
	name := table
	if i := strings.LastIndexByte(table, '.'); i >= 0 {
		schema, name = table[:i], table[i+1:]
	}
	return exactly.DescribeColumns(ctx, q, table, `
		SELECT `+describeColumns+describeFrom+`
		WHERE c.TABLE_SCHEMA = COALESCE(?, DATABASE()) AND c.TABLE_NAME = ? AND c.COLUMN_NAME <> ''
		ORDER BY c.ORDINAL_POSITION`, schema, name)
}

// describeColumns and describeFrom are what Describe and DescribeMany
// read of a column.
const (
	describeColumns = `c.COLUMN_NAME, c.COLUMN_TYPE, c.IS_NULLABLE = 'YES', s.SEQ_IN_INDEX, c.COLLATION_NAME`
	describeFrom    = `
		FROM information_schema.COLUMNS c
		LEFT JOIN information_schema.STATISTICS s
		  ON s.TABLE_SCHEMA = c.TABLE_SCHEMA AND s.TABLE_NAME = c.TABLE_NAME
		 AND CAST(s.TABLE_SCHEMA AS BINARY) = CAST(c.TABLE_SCHEMA AS BINARY)
		 AND CAST(s.TABLE_NAME AS BINARY) = CAST(c.TABLE_NAME AS BINARY)
		 AND s.COLUMN_NAME = c.COLUMN_NAME AND s.INDEX_NAME = 'PRIMARY'`
)

// DescribeMany implements exactly.ManyDescriber: Describe's query over
// one database's names at a time (one query for the usual undotted
// names). IN picks the rows, FIELD the table they describe, both by
// exact name: once MariaDB scans the catalog (three names or more) it
// compares them under the catalog's case-insensitive collation, and under
// lower_case_table_names=0 "Foo" and "foo" are two tables, as databases
// are (Describe's = looks each up as the server resolves names). A name
// the catalog spells otherwise (lower_case_table_names=1 stores it
// lowercased) is left to Describe.
func (d *Dialect) DescribeMany(ctx context.Context, q exactly.Querier, tables []string) (map[string]*exactly.Table, error) {
	type group struct {
		schema any
		tables []string // as given
		names  []string // their last part
	}
	var groups []*group
	bySchema := map[string]*group{}
	for _, table := range tables {
		var schema any
		key, name := "", table
		if i := strings.LastIndexByte(table, '.'); i >= 0 {
			schema, name, key = table[:i], table[i+1:], "."+table[:i]
		}
		g := bySchema[key]
		if g == nil {
			g = &group{schema: schema}
			bySchema[key] = g
			groups = append(groups, g)
		}
		g.tables = append(g.tables, table)
		g.names = append(g.names, name)
	}
	out := map[string]*exactly.Table{}
	for _, g := range groups {
		// FIELD's names, the database twice, IN's names twice.
		args := make([]any, 0, 2*len(g.names)+1)
		for _, n := range g.names {
			args = append(args, n)
		}
		args = append(args, g.schema, g.schema)
		args = append(args, args[:len(g.names)]...)
		args = append(args, args[:len(g.names)]...)
		got, err := exactly.DescribeManyColumns(ctx, q, g.tables, `
			SELECT FIELD(CAST(c.TABLE_NAME AS BINARY), `+marks(len(g.names))+`) - 1, `+describeColumns+describeFrom+`
			WHERE c.TABLE_SCHEMA = COALESCE(?, DATABASE()) AND CAST(c.TABLE_SCHEMA AS BINARY) = CAST(COALESCE(?, DATABASE()) AS BINARY)
			  AND c.TABLE_NAME IN (`+marks(len(g.names))+`) AND CAST(c.TABLE_NAME AS BINARY) IN (`+marks(len(g.names))+`)
			  AND c.COLUMN_NAME <> ''
			ORDER BY 1, c.ORDINAL_POSITION`, args...)
		if err != nil {
			return nil, err
		}
		maps.Copy(out, got)
	}
	return out, nil
}

// Savepoint implements exactly.Dialect.
func (*Dialect) Savepoint(name string) (set, rollback, release string) {
	return "SAVEPOINT " + name, "ROLLBACK TO SAVEPOINT " + name, "RELEASE SAVEPOINT " + name
}

// Classify implements exactly.Dialect. A deadlock (1213) rolls the whole
// transaction back; a lock-wait timeout (1205) only the statement — both
// mean "retry the whole transaction", which Sink does after rolling back.
func (*Dialect) Classify(err error) exactly.ErrorKind {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		switch me.Number {
		case 1213, 1205, 1020: // deadlock, lock wait timeout, record changed (MariaDB snapshot isolation)
			return exactly.ErrConflict
		case 1040, 1053, 1077, 1078, 1079, 1080, 1152, 1153, 1154, 1155, 1156, 1157, 1158, 1159, 1160, 1161,
			1184, 1927, 2006, 2013: // too many connections, shutdown, aborted or killed connection, network
			return exactly.ErrConnection
		case 1048, // column cannot be null
			1062, 1586, // duplicate entry
			1136,                   // column count does not match (a row of the wrong shape)
			1216, 1217, 1451, 1452, // foreign key
			1264, 1690, // out of range
			1265,       // data truncated
			1292,       // incorrect datetime / truncated incorrect value
			1364,       // field has no default
			1366, 1367, // incorrect value for column
			1406,       // data too long
			1411,       // incorrect value for function
			1416,       // cannot get geometry object
			1918,       // MariaDB: cannot convert character
			3140, 3819, // invalid JSON, check constraint (MySQL 8)
			4025, 4078: // MariaDB: constraint failed, illegal value in a JSON column
			return exactly.ErrData
		}
		return exactly.ErrOther
	}
	var ne net.Error
	switch {
	case errors.Is(err, mysql.ErrInvalidConn), errors.Is(err, driver.ErrBadConn), errors.Is(err, sql.ErrConnDone),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EPIPE), errors.As(err, &ne):
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
