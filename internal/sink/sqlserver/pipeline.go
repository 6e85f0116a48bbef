package sqlserver

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/exactly/exactly"
)

var _ exactly.Pipeliner = (*Dialect)(nil)

// Statements implements exactly.Pipeliner: the staging table is prepared
// and bulk-copied into now, on tx; the UPDATE, INSERT and DELETE that
// change the target table are returned, for ExecPipeline to send with the
// flight's other statements.
func (d *Dialect) Statements(ctx context.Context, tx *exactly.Tx, w *exactly.TableWrite) ([]exactly.Statement, error) {
	p, err := d.plan(w)
	if err != nil {
		return nil, err
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

// maxParams keeps a T-SQL batch under SQL Server's 2100 parameters per
// request.
const maxParams = 2000

var param = regexp.MustCompile(`@p(\d+)\b`)

// ExecPipeline implements exactly.Pipeliner: the statements go as T-SQL
// batches of as many statements as 2000 parameters allow (one batch for
// all but the largest flights), their parameters renumbered into one
// list. Each statement's @@ROWCOUNT is kept in a table variable that the
// batch returns at its end, since the driver reports one count per
// request. Under XACT_ABORT ON a failing statement ends the batch and
// dooms the transaction.
func (*Dialect) ExecPipeline(ctx context.Context, tx *exactly.Tx, stmts []exactly.Statement) ([]int64, error) {
	out := make([]int64, len(stmts))
	for start := 0; start < len(stmts); {
		end, params := start, 0
		for end < len(stmts) && (end == start || params+len(stmts[end].Args) <= maxParams) {
			params += len(stmts[end].Args)
			end++
		}
		if err := execBatch(ctx, tx, stmts[start:end], out[start:end]); err != nil {
			return nil, err
		}
		start = end
	}
	return out, nil
}

func execBatch(ctx context.Context, tx *exactly.Tx, stmts []exactly.Statement, affected []int64) error {
	var sb strings.Builder
	var args []any
	sb.WriteString("DECLARE @exactly_n BIGINT; DECLARE @exactly_rc TABLE (i INT NOT NULL PRIMARY KEY, n BIGINT NOT NULL);\n")
	for i, st := range stmts {
		off := len(args)
		q := strings.TrimRight(strings.TrimSpace(st.SQL), ";")
		if off > 0 {
			q = param.ReplaceAllStringFunc(q, func(m string) string {
				n, _ := strconv.Atoi(m[2:])
				return "@p" + strconv.Itoa(n+off)
			})
		}
		args = append(args, st.Args...)
		fmt.Fprintf(&sb, "%s;\nSET @exactly_n = @@ROWCOUNT; INSERT INTO @exactly_rc (i, n) VALUES (%d, @exactly_n);\n", q, i)
	}
	sb.WriteString("SELECT i, n FROM @exactly_rc ORDER BY i;")
	rows, err := tx.QueryContext(ctx, sb.String(), args...)
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
	if seen != len(stmts) {
		return fmt.Errorf("the batch of %d statements reported %d row counts", len(stmts), seen)
	}
	return nil
}
