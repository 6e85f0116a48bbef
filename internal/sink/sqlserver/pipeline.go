package sqlserver

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	mssql "github.com/microsoft/go-mssqldb"

	"github.com/exactly/exactly"
)

var _ exactly.Pipeliner = (*Dialect)(nil)

// Statements implements exactly.Pipeliner. A small write is one
// statement staging its rows in a table variable by multi-row INSERT …
// VALUES (plan.Inline): it travels with the flight's other statements and
// costs no round trip of its own. A larger one is bulk-copied into its
// #temp staging table now, on tx (prepare, the driver's metadata query,
// INSERT BULK and the rows: five round trips), and its UPDATE, INSERT and
// DELETE are returned.
func (d *Dialect) Statements(ctx context.Context, tx *exactly.Tx, w *exactly.TableWrite) ([]exactly.Statement, error) {
	p, err := d.plan(w)
	if err != nil {
		return nil, err
	}
	if p.Inline != nil {
		return []exactly.Statement{*p.Inline}, nil
	}
	if err := d.stage(ctx, tx, p); err != nil {
		return nil, err
	}
	out := make([]exactly.Statement, len(p.Apply))
	for i, q := range p.Apply {
		out[i] = exactly.Statement{SQL: q}
	}
	return out, nil
}

var _ exactly.MultiRowInserts = (*Dialect)(nil)

// MaxInsertRows implements exactly.MultiRowInserts: as many rows as 2,000
// parameters hold, at most the 1,000 of a VALUES list.
func (*Dialect) MaxInsertRows(columns int) int {
	return max(1, min(maxValuesRows, maxParams/max(columns, 1)))
}

// maxParams keeps a T-SQL batch under SQL Server's 2100 parameters per
// request.
const maxParams = 2000

// ExecPipeline implements exactly.Pipeliner: the statements go as T-SQL
// batches of as many statements as 2000 parameters allow (one batch for
// most flights), their parameters renumbered into one list in which equal
// values (the pipeline, the writer, the time, a topic, an offset) are sent
// once. Each statement's @@ROWCOUNT is kept in a table variable that the
// batch returns at its end, since the driver reports one count per
// request. Under XACT_ABORT ON a failing statement ends the batch and
// dooms the transaction; the error's line number names the statement
// (*exactly.StatementError), so a fence that timed out on a lock drops
// its partition alone.
func (*Dialect) ExecPipeline(ctx context.Context, tx *exactly.Tx, stmts []exactly.Statement) ([]int64, error) {
	out := make([]int64, len(stmts))
	for start := 0; start < len(stmts); {
		b := newBatch()
		end := start
		for end < len(stmts) && (end == start || b.fits(stmts[end])) {
			b.add(stmts[end])
			end++
		}
		if err := b.exec(ctx, tx, out[start:end]); err != nil {
			var se *exactly.StatementError
			if errors.As(err, &se) {
				se.Index += start
			}
			return nil, err
		}
		start = end
	}
	return out, nil
}

// batch is one T-SQL request of pipelined statements.
type batch struct {
	sb    strings.Builder
	args  []any
	index map[any]int // a value's parameter number, for values sent once
	line  int         // lines written so far
	first []int       // each statement's first line (1-based)
}

const batchHead = "DECLARE @exactly_n BIGINT; DECLARE @exactly_rc TABLE (i INT NOT NULL PRIMARY KEY, n BIGINT NOT NULL);\n"

func newBatch() *batch {
	b := &batch{index: map[any]int{}, line: 1}
	b.sb.WriteString(batchHead)
	return b
}

// fits says whether st can join the batch within maxParams.
func (b *batch) fits(st exactly.Statement) bool {
	n := len(b.args)
	seen := map[any]bool{}
	for _, a := range st.Args {
		k, ok := argKey(a)
		if ok {
			if _, dup := b.index[k]; dup || seen[k] {
				continue
			}
			seen[k] = true
		}
		n++
	}
	return n <= maxParams
}

func (b *batch) add(st exactly.Statement) {
	num := make([]int, len(st.Args))
	for j, a := range st.Args {
		k, ok := argKey(a)
		if ok {
			if n, dup := b.index[k]; dup {
				num[j] = n
				continue
			}
		}
		b.args = append(b.args, a)
		num[j] = len(b.args)
		if ok {
			b.index[k] = num[j]
		}
	}
	q := renumber(strings.TrimRight(strings.TrimSpace(st.SQL), ";"), num)
	b.first = append(b.first, b.line+1)
	fmt.Fprintf(&b.sb, "%s;\nSET @exactly_n = @@ROWCOUNT; INSERT INTO @exactly_rc (i, n) VALUES (%d, @exactly_n);\n", q, len(b.first)-1)
	b.line += strings.Count(q, "\n") + 2
}

// statementAt is the statement on a line of the batch, or -1.
func (b *batch) statementAt(line int) int {
	i := sort.SearchInts(b.first, line+1) - 1
	if i < 0 || line <= 1 {
		return -1
	}
	return i
}

func (b *batch) exec(ctx context.Context, tx *exactly.Tx, affected []int64) (err error) {
	defer func() {
		var me mssql.Error
		if err != nil && errors.As(err, &me) {
			if i := b.statementAt(errorLine(me)); i >= 0 {
				err = &exactly.StatementError{Index: i, Err: err}
			}
		}
	}()
	b.sb.WriteString("SELECT i, n FROM @exactly_rc ORDER BY i;")
	rows, err := tx.QueryContext(ctx, b.sb.String(), b.args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	seen := 0
	for rows.Next() {
		var i int
		var n int64
		if err := rows.Scan(&i, &n); err != nil {
			return err
		}
		if i >= 0 && i < len(affected) {
			affected[i] = n
			seen++
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if err := rows.Close(); err != nil {
		return err
	}
	if seen != len(b.first) {
		return fmt.Errorf("the batch of %d statements reported %d row counts", len(b.first), seen)
	}
	return nil
}

// errorLine is the line of the batch the error was raised on: the first
// error of severity 11 or more the server sent (a batch aborted under
// XACT_ABORT may add its own errors after the cause), or 0 (no statement)
// when that error was raised inside a module (ProcName: a trigger on the
// target table, a function), whose line numbers count the module's lines,
// not the batch's: a lock timeout on line 3 of a trigger was the fence on
// line 2-3, and dropped partition 0 as a fence that timed out.
func errorLine(me mssql.Error) int {
	first := me
	for _, e := range me.All {
		if e.Class >= 11 {
			first = e
			break
		}
	}
	if first.ProcName != "" {
		return 0
	}
	return int(first.LineNo)
}

// argKey is the identity under which a parameter value is sent once per
// batch, and whether it has one: equal values of one Go type are the
// same parameter (the driver declares a parameter's type from its Go
// type and value). Values of other types are sent as they come.
func argKey(v any) (any, bool) {
	switch x := v.(type) {
	case nil:
		return nullKey{}, true
	case string, int64, int, int32, int16, int8, bool, sql.NullString, mssql.UniqueIdentifier:
		return x, true
	case float64:
		// By its bits: -0.0 == 0.0 as a map key, and a -0.0 sent as an
		// earlier 0.0's parameter lost its sign (NaN is never == itself).
		return floatKey(math.Float64bits(x)), true
	case time.Time:
		// Equal instants in different zones are different
		// datetimeoffset values.
		return timeKey(x.Format(time.RFC3339Nano)), true
	case []byte:
		if x == nil {
			return nullBytesKey{}, true
		}
		return bytesKey(x), true
	}
	return nil, false
}

type (
	nullKey      struct{}
	nullBytesKey struct{}
	timeKey      string
	floatKey     uint64
	bytesKey     string
)

// renumber rewrites parameter @pN of q as @p{num[N-1]}, outside string
// literals, [quoted] and "quoted" identifiers and comments: a column
// named [x@p1] is a name, not a parameter.
func renumber(q string, num []int) string {
	var sb strings.Builder
	for i := 0; i < len(q); {
		c := q[i]
		switch {
		case c == '\'' || c == '[' || c == '"':
			end := byte(c)
			if c == '[' {
				end = ']'
			}
			j := i + 1
			for j < len(q) {
				if q[j] == end {
					if j+1 < len(q) && q[j+1] == end { // doubled: escaped
						j += 2
						continue
					}
					break
				}
				j++
			}
			j = min(j+1, len(q))
			sb.WriteString(q[i:j])
			i = j
		case c == '-' && strings.HasPrefix(q[i:], "--"):
			j := strings.IndexByte(q[i:], '\n')
			if j < 0 {
				j = len(q) - i
			}
			sb.WriteString(q[i : i+j])
			i += j
		case c == '/' && strings.HasPrefix(q[i:], "/*"):
			j := strings.Index(q[i+2:], "*/")
			if j < 0 {
				j = len(q) - i - 2
			} else {
				j += 2
			}
			sb.WriteString(q[i : i+2+j])
			i += 2 + j
		case c == '@' && strings.HasPrefix(q[i:], "@p") && (i == 0 || !isIdent(q[i-1])):
			j := i + 2
			for j < len(q) && q[j] >= '0' && q[j] <= '9' {
				j++
			}
			if n, err := strconv.Atoi(q[i+2 : j]); err == nil && n >= 1 && n <= len(num) && (j == len(q) || !isIdent(q[j])) {
				sb.WriteString("@p" + strconv.Itoa(num[n-1]))
			} else {
				sb.WriteString(q[i:j])
			}
			i = j
		default:
			sb.WriteByte(c)
			i++
		}
	}
	return sb.String()
}

func isIdent(c byte) bool {
	return c == '_' || c == '@' || c == '#' || c == '$' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
}
