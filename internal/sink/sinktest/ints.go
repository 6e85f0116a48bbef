package sinktest

import (
	"context"
	"fmt"
	"testing"

	"github.com/exactly/exactly"
)

// testIntegersInOtherColumns: an integer written to a decimal, float or
// text column is stored as that number, as an integer column widened by
// evolve: widen holds it. Seen on SQL Server: go-mssqldb's bulk copy sent
// an int64 as an unscaled decimal of scale 0, so 7 became 0.000007 in a
// DECIMAL(20,6), committed without an error, and an int64 for an
// NVARCHAR column as 8 raw bytes (Babelfish: "invalid UTF16 byte
// sequence", the flight retried forever).
func testIntegersInOtherColumns(t *testing.T, tg Target) {
	e := newEnv(t, tg)
	ty := tg.Types
	table := uniq("ints")
	cols := []col{{"k", ty.BigInt, kInt, true}, {"d", ty.Decimal, kDec, false}, {"f", ty.Double, kDbl, false}, {"s", ty.Text, kText, false}}
	e.table(table, cols, []string{"k"})
	e.rule("t.ints", table, "    key: [k]\n")
	s := e.sink()
	if _, err := s.SeedOffset(context.Background(), tpOf("t.ints", 0), 0); err != nil {
		t.Fatal(err)
	}
	row := func(k, v int64) map[string]any { return map[string]any{"k": k, "d": v, "f": v, "s": v} }
	want := func(k int64, v string) map[string]any {
		return map[string]any{"k": k, "d": exactly.Decimal(v), "f": v, "s": v}
	}
	o := e.mustCommit(s, "t.ints", 0, 0, e.up(0, row(1, 7)), e.up(1, row(2, -123456)), e.up(2, row(3, 0)))
	if len(o.Batch.DeadLetters) > 0 {
		t.Fatalf("dead letters: %v", o.Batch.DeadLetters[0].Err)
	}
	got := e.rows(table, cols, []string{"k"})
	if w := expect(cols, []string{"k"}, want(1, "7"), want(2, "-123456"), want(3, "0")); fmt.Sprint(got) != fmt.Sprint(w) {
		t.Errorf("integers in decimal, float and text columns:\n got %v\nwant %v", got, w)
	}
}
