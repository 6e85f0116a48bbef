package chaos

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/decode"
	"github.com/exactly/exactly/internal/sink/postgres"
	"github.com/exactly/exactly/internal/testenv"
)

// TestAmbiguousReseedCommitIsReadBack: the connection is cut right after
// the COMMIT of an exactly reseed reached PostgreSQL, and the database
// stays unreachable for 2 s. The reseed committed; it must say so, read back
// from its ledger row once the database returns, as a flight's COMMIT is
// (one transaction skeleton, Sink.inTx). It returned the driver's error,
// and the operator's retry was refused as "next_offset moved … a member of
// the pipeline is running?".
func TestAmbiguousReseedCommitIsReadBack(t *testing.T) {
	t.Parallel()
	dsn := testenv.PostgresSchema(t)
	proxy, err := newPGProxy("127.0.0.1:5432")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.close)
	cfg := &exactly.Config{Pipeline: "settle", Sink: exactly.SinkConfig{
		DSN: strings.Replace(dsn, "127.0.0.1:5432", proxy.addr(), 1), MaxConns: 1}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	s, err := exactly.OpenSink(ctx, cfg, &postgres.Dialect{}, decode.For(cfg), log)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.EnsureLedger(ctx); err != nil {
		t.Fatal(err)
	}
	tp := exactly.TP{Topic: "orders", Partition: 0}
	if _, err := s.SeedOffset(ctx, tp, 40); err != nil {
		t.Fatal(err)
	}
	proxy.downAfterCut.Store(int64(2 * time.Second))
	proxy.cutAfter.Store(1)
	from, id, err := s.Reseed(ctx, exactly.Reseed{TP: tp, To: 100, Who: "test", Why: "recreated"})
	if err != nil {
		t.Fatalf("a reseed that committed reported: %v", err)
	}
	if proxy.firedAfter.Load() != 1 {
		t.Fatalf("the COMMIT was not cut (fired %d)", proxy.firedAfter.Load())
	}
	if from != 40 || id == "" {
		t.Fatalf("reseed returned from %d, batch %q", from, id)
	}
	got, err := s.LoadOffsets(ctx, []exactly.TP{tp})
	if err != nil || got[tp] != 100 {
		t.Fatalf("next_offset %v (%v), want 100", got[tp], err)
	}
}
