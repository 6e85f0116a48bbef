package exactly_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/sink/mysql"
	"github.com/exactly/exactly/internal/sink/postgres"
)

// describedPostgres and describedMySQL are the real dialects, counting
// their Describe calls (each one a catalog query on the database).
type describedPostgres struct {
	*postgres.Dialect
	n *atomic.Int64
}

func (d describedPostgres) Describe(ctx context.Context, q exactly.Querier, table string) (*exactly.Table, error) {
	d.n.Add(1)
	return d.Dialect.Describe(ctx, q, table)
}

type describedMySQL struct {
	*mysql.Dialect
	n *atomic.Int64
}

func (d describedMySQL) Describe(ctx context.Context, q exactly.Querier, table string) (*exactly.Table, error) {
	d.n.Add(1)
	return d.Dialect.Describe(ctx, q, table)
}

// Regression: a flight to a table that create: true has yet to make
// described it once per record (a missing table is never cached), so the
// first flight of a backlog cost one catalog query per record: 29,000
// records took MariaDB past the flight's two minutes, and exactly run,
// retrying the flight with as many records, never created the table (a
// stall; Babelfish after 19,000). A flight describes each of its tables a
// few times, whatever its size.
func TestCreateDescribesAMissingTableAFewTimesPerFlight(t *testing.T) {
	for _, c := range ddlCases() {
		var n atomic.Int64
		switch d := c.d.(type) {
		case *postgres.Dialect:
			c.d = describedPostgres{d, &n}
		case *mysql.Dialect:
			c.d = describedMySQL{d, &n}
		default:
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			table := uniq("backlog")
			cfg := ddlConfig(t, c, "  - {topics: t.backlog, table: "+table+", key: [id], create: true, evolve: widen}\n")
			s := ddlSink(t, c, cfg)
			const records = 2000
			var recs []*exactly.Record
			for i := range records {
				recs = append(recs, &exactly.Record{Topic: "t.backlog", Offset: int64(i), Value: fmt.Appendf(nil, `{"id":%d,"name":"n%d"}`, i%500, i)})
			}
			n.Store(0)
			commit(t, s, &exactly.PartitionBatch{Topic: "t.backlog", Records: recs})
			if got := n.Load(); got > 10 {
				t.Errorf("one flight of %d records to a missing table described it %d times", records, got)
			}
			var rows int
			if err := s.DB().QueryRow("SELECT COUNT(*) FROM " + table).Scan(&rows); err != nil || rows != 500 {
				t.Errorf("rows: %d %v, want 500", rows, err)
			}
		})
	}
}
