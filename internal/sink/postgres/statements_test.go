package postgres_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/sink/postgres"
)

// BenchmarkStatementsUnnest: turning a 300-row table write into the
// unnest upsert's text arrays (no database: the Go side of the write
// path).
func BenchmarkStatementsUnnest(b *testing.B) {
	t := &exactly.Table{Name: "w", Key: []string{"id"}, Columns: []exactly.Column{{Name: "id", Type: "bigint"},
		{Name: "name", Type: "text"}, {Name: "amount", Type: "numeric(12,2)"}, {Name: "payload", Type: "text"}}}
	w := &exactly.TableWrite{Table: t, Keys: []string{"id"}, Columns: []string{"id", "name", "amount", "payload"}}
	pad := strings.Repeat("p", 150)
	for i := 0; i < 300; i++ {
		w.Upserts = append(w.Upserts, []any{int64(i), fmt.Sprintf("name-%d", i), exactly.Decimal("12.50"), pad})
	}
	d := &postgres.Dialect{}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.Statements(context.Background(), nil, w); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(300*b.N)/b.Elapsed().Seconds(), "rows/s")
}
