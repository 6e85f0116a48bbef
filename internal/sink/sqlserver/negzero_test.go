package sqlserver_test

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/sink/sqlserver"
	"github.com/exactly/exactly/internal/testenv"
)

// TestNegativeZeroSharesNoParameter: one pipelined batch writes 0.0
// to one table and -0.0 to another. -0.0 == 0.0 as a Go map key, so the
// value sharing sent both as the first parameter: the -0.0 stored depended
// on what else its flight carried (stored as 0 on Babelfish before the
// fix; sent as its own parameter it keeps its sign).
func TestNegativeZeroSharesNoParameter(t *testing.T) {
	dsn := testenv.SQLServerDSN(t)
	ctx := context.Background()
	d := &sqlserver.Dialect{}
	db, err := d.Open(ctx, exactly.SinkConfig{Driver: "sqlserver", DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	prefix := fmt.Sprintf("r17nz%d_", time.Now().UnixNano()%1e6)
	var writes []*exactly.TableWrite
	for i, v := range []any{0.0, math.Copysign(0, -1)} {
		table := fmt.Sprintf("%s%d", prefix, i)
		if _, err := db.ExecContext(ctx, "CREATE TABLE "+table+" (id BIGINT NOT NULL PRIMARY KEY, v FLOAT NULL)"); err != nil {
			t.Fatal(err)
		}
		defer db.ExecContext(ctx, "DROP TABLE "+table)
		tb, err := d.Describe(ctx, db, table)
		if err != nil {
			t.Fatal(err)
		}
		writes = append(writes, &exactly.TableWrite{Table: tb, Keys: []string{"id"}, Columns: []string{"id", "v"}, Upserts: [][]any{{int64(7), v}}})
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var stmts []exactly.Statement
	for _, w := range writes {
		st, err := d.Statements(ctx, &exactly.Tx{Tx: tx, Conn: conn}, w)
		if err != nil {
			t.Fatal(err)
		}
		stmts = append(stmts, st...)
	}
	if _, err := d.ExecPipeline(ctx, &exactly.Tx{Tx: tx, Conn: conn}, stmts); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	var f float64
	if err := db.QueryRowContext(ctx, "SELECT v FROM "+prefix+"1").Scan(&f); err != nil {
		t.Fatal(err)
	}
	if !math.Signbit(f) {
		t.Errorf("-0.0 pipelined after a 0.0 was stored as %v (sign bit lost)", f)
	}
}
