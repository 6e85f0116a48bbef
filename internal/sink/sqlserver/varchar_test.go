package sqlserver_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/sink/sqlserver"
	"github.com/exactly/exactly/internal/testenv"
)

// TestNonASCIITextIntoVarcharIsNotMojibake: go-mssqldb's bulk copy sends
// a Go string to a varchar column as its UTF-8 bytes, which the server
// reads in the column's code page: 'café' (63 61 66 C3 A9) was stored as
// 'cafÃ©' under the default SQL_Latin1_General_CP1_CI_AS (code page
// 1252), silently, by every write the bulk copy carried (a large write, or
// one holding non-ASCII text for a varchar column: the inline path takes
// ASCII alone there). Seen live on Babelfish: 489 of 1,883 rows of a
// stream held 'cafÃ©'. The write is bulk-copied and inline alike.
func TestNonASCIITextIntoVarcharIsNotMojibake(t *testing.T) {
	dsn := testenv.SQLServerDSN(t)
	ctx := context.Background()
	d := &sqlserver.Dialect{}
	db, err := d.Open(ctx, exactly.SinkConfig{Driver: "sqlserver", DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	table := fmt.Sprintf("vc%d", time.Now().UnixNano()%1e9)
	if _, err := db.ExecContext(ctx, "CREATE TABLE "+table+" (k VARCHAR(20) NOT NULL PRIMARY KEY, v VARCHAR(20) NULL, c CHAR(6) NULL, x VARCHAR(MAX) NULL)"); err != nil {
		t.Fatal(err)
	}
	defer db.ExecContext(ctx, "DROP TABLE "+table)
	tb, err := d.Describe(ctx, db, table)
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("ü", 3000)
	rows := [][]any{{"café", "naïve", "façade", long}, {"plain", "ascii", "ab", "x"}, {int64(7), "Ünïcödé", "é", "ß"}}
	for round := range 2 { // an insert, then an update of the same keys
		conn, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		up := make([][]any, len(rows))
		for i, r := range rows {
			up[i] = append([]any(nil), r...)
			if round == 1 && i == 1 {
				up[i][1] = "über"
			}
		}
		w := &exactly.TableWrite{Table: tb, Keys: []string{"k"}, Columns: []string{"k", "v", "c", "x"}, Upserts: up}
		if err := d.Apply(ctx, &exactly.Tx{Tx: tx, Conn: conn}, w); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		conn.Close()
	}
	want := map[string][3]string{"café": {"naïve", "façade", long}, "plain": {"über", "ab    ", "x"}, "7": {"Ünïcödé", "é     ", "ß"}}
	r, err := db.QueryContext(ctx, "SELECT k, v, c, x FROM "+table)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	n := 0
	for r.Next() {
		var k, v, c, x string
		if err := r.Scan(&k, &v, &c, &x); err != nil {
			t.Fatal(err)
		}
		n++
		w, ok := want[k]
		if !ok || v != w[0] || c != w[1] || x != w[2] {
			t.Errorf("stored k=%q v=%q c=%q x=%.12q…, want %q", k, v, c, x, w)
		}
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	if n != len(want) {
		t.Errorf("%d rows, want %d", n, len(want))
	}
}
