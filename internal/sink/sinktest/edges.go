package sinktest

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"

	"github.com/exactly/exactly"
)

// runEdges runs the suite's tests of the edges issues 14 and 15 found:
// start-up races, schema drift, poison names, silent truncation and
// refusals that are not about the row.
func runEdges(t *testing.T, tg Target) {
	t.Run("StartupRace", func(t *testing.T) { testStartupRace(t, tg) })
}

// testStartupRace: instances starting together on an empty database all
// create (or find) the ledger. Seen on PostgreSQL: two concurrent CREATE
// TABLE IF NOT EXISTS, and one fails with duplicate key value violates
// unique constraint "pg_type_typname_nsp_index" (a Kubernetes first
// roll-out with replicas > 1).
func testStartupRace(t *testing.T, tg Target) {
	e := newEnv(t, tg)
	e.rule("t.items", uniq("unused"), "    key: [id]\n")
	const n = 6
	sinks := make([]*exactly.Sink, n)
	for i := range sinks {
		s, err := exactly.OpenSink(context.Background(), e.config(), e.d,
			func(*exactly.TableRule) (exactly.Decoder, error) { return e.fx, nil },
			slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatalf("opening sink %d: %v", i, err)
		}
		t.Cleanup(func() { s.Close() })
		// A connection each, opened now, so the DDL starts together.
		if err := s.DB().PingContext(context.Background()); err != nil {
			t.Fatal(err)
		}
		sinks[i] = s
	}
	for round := 0; round < 3; round++ {
		var wg sync.WaitGroup
		start := make(chan struct{})
		errs := make([]error, n)
		for i, s := range sinks {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				errs[i] = s.EnsureLedger(context.Background())
			}()
		}
		close(start)
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("round %d: instance %d of %d starting together: %v", round, i, n, err)
			}
		}
		if t.Failed() {
			return
		}
		if round == 0 {
			// The ledger works for all of them.
			got, err := sinks[n-1].SeedOffset(context.Background(), tpOf("t.items", 0), 3)
			if err != nil || got != 3 {
				t.Fatalf("seeding after a racing start: %d, %v", got, err)
			}
		}
	}
}
