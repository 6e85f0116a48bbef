// Package postgres is the PostgreSQL dialect (pgx v5). A table's share of a
// batch is staged with COPY into a session-local temporary table (kept for
// the session, emptied at commit, so the catalog is not churned), then
// applied with one INSERT … ON CONFLICT … DO UPDATE and one DELETE … USING.
package postgres

import (
	"bytes"
	"context"
	"crypto/sha1"
	"database/sql"
	"database/sql/driver"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/secret"
)

// Dialect is the PostgreSQL dialect.
type Dialect struct{}

var (
	_ exactly.Dialect   = (*Dialect)(nil)
	_ exactly.Pipeliner = (*Dialect)(nil)
)

// Name implements exactly.Dialect.
func (*Dialect) Name() string { return "postgres" }

// Open implements exactly.Dialect. The DSN is a libpq URL or key=value
// string; synchronous_commit is applied as a session setting.
func (*Dialect) Open(ctx context.Context, cfg exactly.SinkConfig) (*sql.DB, error) {
	cc, err := pgx.ParseConfig(cfg.DSN)
	if err != nil {
		return nil, dsnError("postgres", "a postgres:// URL or host=… user=… dbname=…", err)
	}
	if cc.RuntimeParams == nil {
		cc.RuntimeParams = map[string]string{}
	}
	if _, ok := cc.RuntimeParams["application_name"]; !ok {
		cc.RuntimeParams["application_name"] = "exactly"
	}
	// Each table's upsert is a prepared statement; 800 tables on one
	// connection must not evict each other from pgx's cache (default 512).
	cc.StatementCacheCapacity = 4096
	if cfg.SynchronousCommit != "" {
		cc.RuntimeParams["synchronous_commit"] = cfg.SynchronousCommit
	}
	// A paused member (a zombie) must not hold its locks on the offsets
	// rows forever: the server ends a transaction idle this long, and the
	// member that owns the partitions now proceeds.
	if _, ok := cc.RuntimeParams["idle_in_transaction_session_timeout"]; !ok && cfg.IdleTxTimeout > 0 {
		cc.RuntimeParams["idle_in_transaction_session_timeout"] = strconv.FormatInt(cfg.IdleTxTimeout.Milliseconds(), 10)
	}
	if cfg.StatementTimeout > 0 {
		cc.RuntimeParams["statement_timeout"] = strconv.FormatInt(cfg.StatementTimeout.Milliseconds(), 10)
	}
	db := stdlib.OpenDB(*cc)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// Placeholder implements exactly.Dialect.
func (*Dialect) Placeholder(n int) string { return "$" + strconv.Itoa(n) }

// Quote implements exactly.Dialect.
func (*Dialect) Quote(ident string) string {
	parts := strings.Split(ident, ".")
	for i, p := range parts {
		parts[i] = `"` + strings.ReplaceAll(p, `"`, `""`) + `"`
	}
	return strings.Join(parts, ".")
}

// LedgerDDL implements exactly.Dialect: exactly.LedgerTables rendered.
func (d *Dialect) LedgerDDL() []string {
	var out []string
	for _, t := range exactly.LedgerTables() {
		cols := append(t.Definitions(d.Quote, ledgerType), "PRIMARY KEY ("+d.list(t.Key, "")+")")
		out = append(out, "CREATE TABLE IF NOT EXISTS "+t.Name+" (\n\t"+strings.Join(cols, ",\n\t")+")")
		for _, ix := range t.Indexes {
			// Only when missing: CREATE INDEX takes a SHARE lock on the
			// table before it looks whether the index exists, so an
			// instance starting while a member's flight holds the ledger
			// (a frozen member: until the idle-transaction timeout) waited
			// there saying nothing, and every other member's flight queued
			// behind its lock request.
			out = append(out, "DO $$ BEGIN IF to_regclass('"+ix.Name+"') IS NULL THEN CREATE INDEX IF NOT EXISTS "+
				ix.Name+" ON "+t.Name+" ("+d.list(ix.Columns, "")+"); END IF; END $$")
		}
	}
	return out
}

// ledgerType is a ledger column's type and nullability in PostgreSQL:
// text has no length to bound.
func ledgerType(c exactly.LedgerColumn) string {
	typ := map[exactly.LedgerType]string{
		exactly.LedgerKey: "text", exactly.LedgerString: "text", exactly.LedgerText: "text", exactly.LedgerBytes: "bytea",
		exactly.LedgerInt32: "integer", exactly.LedgerInt64: "bigint", exactly.LedgerTime: "timestamptz", exactly.LedgerSerial: "bigserial",
	}[c.Type]
	if !c.Null {
		typ += " NOT NULL"
	}
	return typ
}

// InsertIfAbsent implements exactly.Dialect.
func (d *Dialect) InsertIfAbsent(table string, columns []string) string {
	ph := make([]string, len(columns))
	for i := range ph {
		ph[i] = "?"
	}
	return "INSERT INTO " + d.Quote(table) + " (" + d.list(columns, "") + ") VALUES (" + strings.Join(ph, ", ") + ") ON CONFLICT DO NOTHING"
}

func (d *Dialect) list(cols []string, prefix string) string {
	q := make([]string, len(cols))
	for i, c := range cols {
		q[i] = prefix + d.Quote(c)
	}
	return strings.Join(q, ", ")
}

// Describe implements exactly.Dialect.
func (d *Dialect) Describe(ctx context.Context, q exactly.Querier, table string) (*exactly.Table, error) {
	return exactly.DescribeColumns(ctx, q, table, `
		SELECT `+describeColumns+`
		FROM pg_attribute a `+describeJoins+`
		WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
		ORDER BY a.attnum`, d.Quote(table))
}

// describeColumns and describeJoins are what Describe and DescribeMany
// read of a column. int2vector subscripts start at 0: array_position
// counts from 0.
const (
	describeColumns = `a.attname, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull,
		       array_position(i.indkey::int2[], a.attnum),
		       CASE WHEN a.attcollation <> ty.typcollation
		            THEN quote_ident(cn.nspname) || '.' || quote_ident(co.collname) END`
	describeJoins = `
		JOIN pg_type ty ON ty.oid = a.atttypid
		LEFT JOIN pg_collation co ON co.oid = a.attcollation
		LEFT JOIN pg_namespace cn ON cn.oid = co.collnamespace
		LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND i.indisprimary`
)

// DescribeMany implements exactly.ManyDescriber: Describe's query over
// the names, as one array, each resolved by to_regclass as Describe
// resolves it.
func (d *Dialect) DescribeMany(ctx context.Context, q exactly.Querier, tables []string) (map[string]*exactly.Table, error) {
	quoted := make([]string, len(tables))
	for i, t := range tables {
		quoted[i] = d.Quote(t)
	}
	return exactly.DescribeManyColumns(ctx, q, tables, `
		SELECT n.i - 1, `+describeColumns+`
		FROM unnest($1::text[]) WITH ORDINALITY AS n(name, i)
		JOIN pg_attribute a ON a.attrelid = to_regclass(n.name) `+describeJoins+`
		WHERE a.attnum > 0 AND NOT a.attisdropped
		ORDER BY n.i, a.attnum`, quoted)
}

// copyThreshold is the size of a table's write from which staging with
// COPY beats sending the rows as arrays to one INSERT … SELECT FROM unnest
// (see BenchmarkWritePath: below it, the extra round trips and catalog
// lookups of the staging table cost more than COPY's faster encoding
// saves).
var copyThreshold = 1000

// Apply implements exactly.Dialect: the statements of Statements, one by
// one.
func (d *Dialect) Apply(ctx context.Context, tx *exactly.Tx, w *exactly.TableWrite) error {
	stmts, err := d.Statements(ctx, tx, w)
	if err != nil {
		return err
	}
	for _, st := range stmts {
		if _, err := tx.ExecContext(ctx, st.SQL, st.Args...); err != nil {
			return err
		}
	}
	return nil
}

// Statements implements exactly.Pipeliner. A small write is one INSERT …
// SELECT FROM unnest($1::text[], …) ON CONFLICT and one DELETE … USING
// unnest(…), the rows travelling as text arrays in the statement's
// parameters; a large one is first COPYed into the session's staging table.
func (d *Dialect) Statements(ctx context.Context, tx *exactly.Tx, w *exactly.TableWrite) ([]exactly.Statement, error) {
	if len(w.Upserts)+len(w.Deletes) >= copyThreshold {
		return d.staged(ctx, tx, w)
	}
	var out []exactly.Statement
	t := d.Quote(w.Table.Name)
	cast := func(c string) string { return "s." + d.Quote(c) + "::" + castType(w.Table.Column(c).Type) }
	if len(w.Upserts) > 0 {
		arrays := make([]any, len(w.Columns))
		params := make([]string, len(w.Columns))
		sel := make([]string, len(w.Columns))
		for i, c := range w.Columns {
			col := make([]pgtype.Text, len(w.Upserts))
			for j, r := range w.Upserts {
				col[j] = textValue(r[i])
			}
			arrays[i] = col
			params[i] = "$" + strconv.Itoa(i+1) + "::text[]"
			sel[i] = cast(c)
		}
		q := "INSERT INTO " + t + " AS t (" + d.list(w.Columns, "") + ") SELECT " + strings.Join(sel, ", ") +
			" FROM unnest(" + strings.Join(params, ", ") + ") AS s(" + d.list(w.Columns, "") + ")" + d.onConflict(w)
		out = append(out, exactly.Statement{SQL: q, Args: arrays})
	}
	if len(w.Deletes) > 0 {
		cols := append([]string(nil), w.Keys...)
		if w.Version != "" {
			cols = append(cols, w.Version)
		}
		arrays := make([]any, len(cols))
		params := make([]string, len(cols))
		for i := range cols {
			col := make([]pgtype.Text, len(w.Deletes))
			for j, k := range w.Deletes {
				if i < len(w.Keys) {
					col[j] = textValue(k[i])
				} else {
					col[j] = textValue(w.DeleteVersions[j])
				}
			}
			arrays[i] = col
			params[i] = "$" + strconv.Itoa(i+1) + "::text[]"
		}
		q := "DELETE FROM " + t + " AS t USING unnest(" + strings.Join(params, ", ") + ") AS s(" + d.list(cols, "") + ") WHERE " + d.deleteWhere(w, cast)
		out = append(out, exactly.Statement{SQL: q, Args: arrays})
	}
	return out, nil
}

// onConflict is the upsert clause, with the version guard when set.
func (d *Dialect) onConflict(w *exactly.TableWrite) string {
	if w.Append {
		return ""
	}
	set := make([]string, len(w.Columns))
	for i, c := range w.Columns {
		set[i] = d.Quote(c) + " = EXCLUDED." + d.Quote(c)
	}
	q := " ON CONFLICT (" + d.list(w.Keys, "") + ") DO UPDATE SET " + strings.Join(set, ", ")
	if w.Version != "" {
		v := d.Quote(w.Version)
		q += " WHERE EXCLUDED." + v + " IS NULL OR t." + v + " IS NULL OR t." + v + " <= EXCLUDED." + v
	}
	return q
}

// deleteWhere matches target rows t to the delete rows s.
func (d *Dialect) deleteWhere(w *exactly.TableWrite, cast func(string) string) string {
	var where []string
	for _, k := range w.Keys {
		where = append(where, "t."+d.Quote(k)+" = "+cast(k))
	}
	q := strings.Join(where, " AND ")
	if w.Version != "" {
		v := d.Quote(w.Version)
		q += " AND (s." + v + " IS NULL OR t." + v + " IS NULL OR t." + v + " <= " + cast(w.Version) + ")"
	}
	return q
}

// ExecPipeline implements exactly.Pipeliner with a pgx batch: every
// statement in one round trip (plus one to prepare statements the
// connection has not seen yet).
func (*Dialect) ExecPipeline(ctx context.Context, tx *exactly.Tx, stmts []exactly.Statement) ([]int64, error) {
	out := make([]int64, len(stmts))
	err := tx.Conn.Raw(func(dc any) error {
		pc := dc.(*stdlib.Conn).Conn()
		b := &pgx.Batch{}
		for _, st := range stmts {
			b.Queue(st.SQL, st.Args...)
		}
		br := pc.SendBatch(ctx, b)
		for i, st := range stmts {
			ct, err := br.Exec()
			if err != nil {
				br.Close()
				// A statement the server cannot prepare (a column an
				// operator dropped) fails the batch before anything runs,
				// and the error surfaces at the first statement: name the
				// one that failed, not UPDATE exactly_offsets.
				var pe pgx.ErrPreprocessingBatch
				if errors.As(err, &pe) {
					if j := slices.IndexFunc(stmts, func(s exactly.Statement) bool { return s.SQL == pe.SQL() }); j >= 0 {
						i, st = j, stmts[j]
					}
				}
				q := st.SQL
				if len(q) > 120 {
					q = q[:120] + "…"
				}
				return fmt.Errorf("statement %d of %d (%s): %w", i+1, len(stmts), q, err)
			}
			out[i] = ct.RowsAffected()
		}
		return br.Close()
	})
	return out, err
}

// staged COPYs a large write into the session's staging table for the
// table and returns the statements applying it from there.
func (d *Dialect) staged(ctx context.Context, tx *exactly.Tx, w *exactly.TableWrite) ([]exactly.Statement, error) {
	cols := w.StageColumns()
	stage := stageName(w.Table.Name, cols, w.Part)
	var def strings.Builder
	def.WriteString(`CREATE TEMP TABLE IF NOT EXISTS ` + d.Quote(stage) + ` (exactly_op "char" NOT NULL`)
	for _, c := range cols {
		def.WriteString(", " + d.Quote(c) + " text")
	}
	def.WriteString(") ON COMMIT DELETE ROWS")
	// Rows of an earlier call in this transaction (Sink isolating a bad
	// row calls Apply again with subsets) must not be applied twice.
	def.WriteString("; DELETE FROM " + d.Quote(stage))
	if _, err := tx.ExecContext(ctx, def.String()); err != nil {
		return nil, fmt.Errorf("creating staging table: %w", err)
	}
	copySQL := "COPY " + d.Quote(stage) + " (exactly_op, " + d.list(cols, "") + ") FROM STDIN (FORMAT binary)"
	err := withCopyData(w, cols, func(data []byte) error {
		return tx.Conn.Raw(func(dc any) error {
			pc := dc.(*stdlib.Conn).Conn()
			_, err := pc.PgConn().CopyFrom(ctx, bytes.NewReader(data), copySQL)
			return err
		})
	})
	if err != nil {
		return nil, fmt.Errorf("copying into staging table: %w", err)
	}
	t := d.Quote(w.Table.Name)
	cast := func(c string) string { return "s." + d.Quote(c) + "::" + castType(w.Table.Column(c).Type) }
	var out []exactly.Statement
	if len(w.Upserts) > 0 {
		sel := make([]string, len(w.Columns))
		for i, c := range w.Columns {
			sel[i] = cast(c)
		}
		q := "INSERT INTO " + t + " AS t (" + d.list(w.Columns, "") + ") SELECT " + strings.Join(sel, ", ") +
			" FROM " + d.Quote(stage) + " s WHERE s.exactly_op = 'u'" + d.onConflict(w)
		out = append(out, exactly.Statement{SQL: q})
	}
	if len(w.Deletes) > 0 {
		q := "DELETE FROM " + t + " AS t USING " + d.Quote(stage) + " s WHERE s.exactly_op = 'd' AND " + d.deleteWhere(w, cast)
		out = append(out, exactly.Statement{SQL: q})
	}
	return out, nil
}

// CopyData calls send with the binary COPY stream staged sends for w into
// its staging table (columns w.StageColumns(), after an op column), as
// staged encodes it: the encoding alone, without the database, for the
// record-path benchmark (BenchmarkRecordPath) to count with the rest of
// the pipeline's CPU. data is valid only during send.
func CopyData(w *exactly.TableWrite, send func(data []byte) error) error {
	return withCopyData(w, w.StageColumns(), send)
}

// copyBuffers recycles COPY streams: one per large write, each about the
// size of its rows (~200 KB for 1,000 rows of 200 bytes), was a sixth of
// the bytes a flight allocated, and cleared before use. Streams over
// maxCopyBuffer are left to the collector.
var copyBuffers = sync.Pool{New: func() any { return new([]byte) }}

const maxCopyBuffer = 4 << 20

// withCopyData encodes w's rows into a recycled buffer and calls send
// with it; send must not keep it.
func withCopyData(w *exactly.TableWrite, cols []string, send func([]byte) error) error {
	p := copyBuffers.Get().(*[]byte)
	buf := copyData((*p)[:0], w, cols)
	err := send(buf)
	// A failed send may return before pgx's goroutine writing the
	// stream to the connection has stopped reading it (CopyFrom on a
	// broken connection): such a buffer is left to the collector.
	if err == nil && cap(buf) <= maxCopyBuffer {
		*p = buf[:0]
		copyBuffers.Put(p)
	}
	return err
}

// copyData appends w's rows to buf as binary COPY into a staging table of
// cols. Every staging column is text (whose binary form is its UTF-8
// bytes) and the op a "char", so nothing needs pgx's per-value type
// planning.
func copyData(buf []byte, w *exactly.TableWrite, cols []string) []byte {
	pos := make(map[string]int, len(cols))
	for i, c := range cols {
		pos[c] = i
	}
	// Where each staging column's value comes from, looked up once per
	// write: upFrom[k] is its index in an upsert row, delFrom[k] in a
	// delete's key (len(w.Keys): the delete's version); -1 for NULL.
	upFrom, delFrom := make([]int, len(cols)), make([]int, len(cols))
	for k := range cols {
		upFrom[k], delFrom[k] = -1, -1
	}
	for j, c := range w.Columns {
		upFrom[pos[c]] = j
	}
	for j, c := range w.Keys {
		delFrom[pos[c]] = j
	}
	if w.Version != "" {
		delFrom[pos[w.Version]] = len(w.Keys)
	}
	buf = append(buf, copyHeader...)
	row := func(op byte, from []int, vals []any, version any) {
		buf = binary.BigEndian.AppendUint16(buf, uint16(len(cols)+1))
		buf = append(buf, 0, 0, 0, 1, op)
		for _, j := range from {
			switch {
			case j < 0:
				buf = appendCopyText(buf, nil)
			case j == len(vals):
				buf = appendCopyText(buf, version)
			default:
				buf = appendCopyText(buf, vals[j])
			}
		}
	}
	for i, r := range w.Upserts {
		row('u', upFrom, r, nil)
		if i == 0 { // the rest are about as long as the first
			buf = slices.Grow(buf, (len(buf)-len(copyHeader))*(len(w.Upserts)+len(w.Deletes)))
		}
	}
	for i, k := range w.Deletes {
		var version any
		if w.Version != "" {
			version = w.DeleteVersions[i]
		}
		row('d', delFrom, k, version)
	}
	return append(buf, 0xff, 0xff) // trailer: a field count of -1
}

// lengthType matches the length modifier of the types whose explicit
// cast cuts a value to fit instead of failing: character varying(n),
// character(n), bit(n), bit varying(n) (and arrays of them).
var lengthType = regexp.MustCompile(`^(character varying|character|bit varying|bit)\(\d+\)`)

// castType is the type staged text is cast to for a column of type typ:
// the column's own type, but without a length. An explicit cast to
// character varying(5) silently keeps the first 5 characters of a longer
// value (and two long keys become one row); cast to the base type, the
// INSERT's assignment to the column checks the length and refuses a
// long value with SQLSTATE 22001, which dead-letters its record. Numeric
// scale and time precision are kept: assignment rounds them the same way.
func castType(typ string) string {
	m := lengthType.FindStringSubmatch(typ)
	if m == nil {
		return typ
	}
	base := m[1]
	switch base {
	case "character":
		base = "bpchar" // "character" alone means character(1)
	case "bit":
		base = "bit varying" // "bit" alone means bit(1)
	}
	return base + typ[len(m[0]):]
}

// stageName names the staging table of a table's write: by its columns,
// and by its part (see TableWrite.Part): parts are staged before any of
// their statements runs in the pipeline, so two must never share one.
func stageName(table string, cols []string, part int) string {
	h := sha1.Sum([]byte(table + "\x00" + strings.Join(cols, "\x00") + "\x00" + strconv.Itoa(part)))
	return "exactly_stage_" + hex.EncodeToString(h[:8])
}

// copyHeader starts a binary COPY: the signature, no flags, no extension.
var copyHeader = []byte("PGCOPY\n\xff\r\n\x00\x00\x00\x00\x00\x00\x00\x00\x00")

// appendCopyText appends v as a binary COPY field of a text column: its
// length, then its text form (see text); -1 for NULL.
func appendCopyText(buf []byte, v any) []byte {
	if v == nil {
		return append(buf, 0xff, 0xff, 0xff, 0xff)
	}
	at := len(buf)
	buf = append(buf, 0, 0, 0, 0)
	switch x := v.(type) {
	case string:
		buf = append(buf, x...)
	case int64:
		buf = strconv.AppendInt(buf, x, 10)
	case exactly.Decimal:
		buf = append(buf, x...)
	case exactly.JSON:
		buf = append(buf, x...)
	default:
		buf = append(buf, text(v).(string)...)
	}
	binary.BigEndian.PutUint32(buf[at:], uint32(len(buf)-at-4))
	return buf
}

// textValue is text as a text array element.
func textValue(v any) pgtype.Text {
	if v == nil {
		return pgtype.Text{}
	}
	return pgtype.Text{String: text(v).(string), Valid: true}
}

// text renders a value in PostgreSQL's text input form; the apply
// statement casts it to the column's type.
func text(v any) any {
	switch x := v.(type) {
	case nil:
		return nil
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case []byte:
		return `\x` + hex.EncodeToString(x)
	case time.Time:
		return x.Format(time.RFC3339Nano)
	case exactly.Decimal:
		return string(x)
	case exactly.JSON:
		return string(x)
	}
	return fmt.Sprint(v)
}

// SharedTables implements exactly.SharedTables: concurrent upserts of
// disjoint keys do not block each other.
func (*Dialect) SharedTables() bool { return true }

// Savepoint implements exactly.Dialect.
func (*Dialect) Savepoint(name string) (set, rollback, release string) {
	return "SAVEPOINT " + name, "ROLLBACK TO SAVEPOINT " + name, "RELEASE SAVEPOINT " + name
}

// Classify implements exactly.Dialect. A server error is classified by its
// SQLSTATE. Of the rest, only what says the connection failed or timed out
// is ErrConnection: a dial error, the network, pgconn's own errors of the
// wire and of the connection's state, database/sql's bad connection. The
// caller's cancellation, a value pgx cannot encode, a scan, a
// configuration error and the sink's own errors are ErrOther: taken for a
// lost connection, start-up waited two minutes for a database that was
// there all along.
func (*Dialect) Classify(err error) exactly.ErrorKind {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return classifyServer(pe)
	}
	var (
		ce   *pgconn.ConnectError
		ne   net.Error
		wire interface{ SafeToRetry() bool } // implemented by pgconn's own errors only
	)
	switch {
	case errors.Is(err, context.Canceled):
		return exactly.ErrOther
	case errors.As(err, &ce), pgconn.Timeout(err), errors.Is(err, context.DeadlineExceeded), errors.As(err, &wire),
		errors.As(err, &ne), errors.Is(err, net.ErrClosed), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EPIPE),
		errors.Is(err, driver.ErrBadConn), errors.Is(err, sql.ErrConnDone):
		return exactly.ErrConnection
	}
	return exactly.ErrOther
}

// classifyServer classifies an error the server reported, by its SQLSTATE.
func classifyServer(pe *pgconn.PgError) exactly.ErrorKind {
	switch {
	case pe.Code == "40P01" || pe.Code == "40001":
		return exactly.ErrConflict
	case strings.HasPrefix(pe.Code, "22") || strings.HasPrefix(pe.Code, "23"),
		// 21000: "ON CONFLICT DO UPDATE command cannot affect row a
		// second time", two rows of one write the same row to the
		// database. Sink asks SameKeys so that it does not happen;
		// should it still, isolating rows ends it, where "other"
		// retried the flight forever.
		pe.Code == "21000":
		return exactly.ErrData
	case strings.HasPrefix(pe.Code, "08") || pe.Code == "57P01" || pe.Code == "57P02" || pe.Code == "57P03":
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
