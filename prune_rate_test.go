package exactly_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/decode"
	"github.com/exactly/exactly/internal/sink/postgres"
	"github.com/exactly/exactly/internal/testenv"
)

// TestPruneRate measures exactly prune on PostgreSQL: a ledger of
// EXACTLY_PRUNE_RATE_ROWS committed rows of one partition, three days
// old, pruned in transactions of 10,000 rows (skipped without the
// variable: a measurement, not a check).
func TestPruneRate(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("EXACTLY_PRUNE_RATE_ROWS"))
	if n <= 0 {
		t.Skip("EXACTLY_PRUNE_RATE_ROWS not set")
	}
	ctx := context.Background()
	dsn := testenv.PostgresSchema(t)
	y := fmt.Sprintf("pipeline: rate\nsource: {brokers: ['127.0.0.1:1']}\nsink: {driver: postgres, dsn: '%s'}\ntables:\n  - topics: t\n    table: t\n    key: [id]\n", dsn)
	cfg, err := exactly.ParseConfig(strings.NewReader(y), "rate.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s, err := exactly.NewSink(ctx, cfg, &postgres.Dialect{}, decode.For(cfg), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	old := time.Now().UTC().Add(-72 * time.Hour)
	if _, err := s.DB().Exec(`INSERT INTO exactly_batches (batch_id, pipeline, topic, "partition", from_offset, to_offset, min_offset, max_offset,
		records, upserted, deleted, skipped, dead_lettered, hash, status, error, writer, started_at, committed_at)
		SELECT lpad(to_hex(i), 13, '0') || '-rate-000000', 'rate', 't', 0, i*10, i*10+10, i*10, i*10+9, 10, 10, 0, 0, 0,
			'blake3:' || md5(i::text) || md5(i::text), 'committed', NULL, 'w', $1::timestamptz + i * interval '1 ms', $1::timestamptz + i * interval '1 ms'
		FROM generate_series(0, $2 - 1) i`, old, n); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DB().Exec(`INSERT INTO exactly_offsets (pipeline, topic, "partition", next_offset, writer, updated_at) VALUES ('rate', 't', 0, $1, 'w', now())`, n*10); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DB().Exec("ANALYZE exactly_batches"); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	res, err := s.Prune(ctx, exactly.Prune{Before: time.Now().Add(-24 * time.Hour), Apply: true, Who: "rate"})
	took := time.Since(began)
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Committed != int64(n-1) {
		t.Fatalf("pruned %d rows, want %d", res[0].Committed, n-1)
	}
	t.Logf("pruned %d rows in %s: %.0f rows/s", n-1, took, float64(n-1)/took.Seconds())
	breaks, _, err := exactly.NewLedger(s.DB(), &postgres.Dialect{}, "rate").CheckChains(ctx, []exactly.OffsetRow{{TP: exactly.TP{Topic: "t"}, Next: int64(n * 10)}})
	if err != nil || len(breaks) != 0 {
		t.Fatalf("chain after the prune: %v %v", breaks, err)
	}
}
