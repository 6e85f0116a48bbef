package exactly_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/decode"
)

// TestLedgerHasEveryDescribedColumn: the ledger a sink opens has every
// column exactly.LedgerTables describes, with its nullability, and the
// primary key it names, on every database: the dialects render one
// description, and the columns CREATE TABLE leaves out are added in place.
func TestLedgerHasEveryDescribedColumn(t *testing.T) {
	for _, c := range ddlCases() {
		t.Run(c.name, func(t *testing.T) {
			s := ddlSink(t, c, ddlConfig(t, c, "  - {topics: t.x, key: [id]}\n"))
			for _, lt := range exactly.LedgerTables() {
				tb, err := c.d.Describe(context.Background(), s.DB(), lt.Name)
				if err != nil || tb == nil {
					t.Fatalf("describing %s: %v %v", lt.Name, tb, err)
				}
				if len(tb.Columns) != len(lt.Columns) {
					t.Errorf("%s has %d columns, the description %d", lt.Name, len(tb.Columns), len(lt.Columns))
				}
				for _, col := range lt.Columns {
					got := tb.Column(col.Name)
					if got == nil {
						t.Errorf("%s lacks %s", lt.Name, col.Name)
						continue
					}
					// SQLite reports its INTEGER PRIMARY KEY (a rowid, never
					// NULL) as nullable.
					if got.Nullable != (col.Null || col.Added) && col.Type != exactly.LedgerSerial {
						t.Errorf("%s.%s nullable %v, described %v", lt.Name, col.Name, got.Nullable, col.Null)
					}
				}
				if len(tb.Key) != len(lt.Key) {
					t.Errorf("%s key %v, described %v", lt.Name, tb.Key, lt.Key)
				}
			}
		})
	}
}

// TestLedgerReadsALedgerWithoutNotes: the read-only commands (status,
// verify) never add columns, so they read a ledger made before
// exactly_batches.notes existed as it is. They selected notes anyway:
// PostgreSQL and MariaDB refused the query (column notes does not exist),
// and SQLite, which takes a double-quoted name it does not know for a
// string, gave every row the note "notes".
func TestLedgerReadsALedgerWithoutNotes(t *testing.T) {
	for _, c := range ddlCases() {
		t.Run(c.name, func(t *testing.T) {
			cfg := ddlConfig(t, c, "  - {topics: t.x, key: [id]}\n")
			db, err := c.d.Open(context.Background(), cfg.Sink)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			for _, stmt := range c.d.LedgerDDL() { // as the first release made it
				if _, err := db.Exec(stmt); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := db.Exec(exactly.Rebind(c.d, `INSERT INTO exactly_batches (batch_id, pipeline, topic, `+c.d.Quote("partition")+`, from_offset, to_offset,
				records, upserted, deleted, skipped, dead_lettered, hash, status, writer, started_at) VALUES ('old', ?, 't.x', 0, 0, 1, 1, 1, 0, 0, 0, 'h', 'committed', 'w', ?)`),
				cfg.Pipeline, time.Now().UTC()); err != nil {
				t.Fatal(err)
			}
			l := exactly.NewLedger(db, c.d, cfg.Pipeline)
			last, err := l.LastBatches(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			tp := exactly.TP{Topic: "t.x", Partition: 0}
			if b, ok := last[tp]; !ok || b.BatchID != "old" || b.Notes != "" {
				t.Errorf("last batch of an old ledger: %+v", b)
			}
			rows, err := l.Batches(context.Background(), tp)
			if err != nil || len(rows) != 1 || rows[0].Notes != "" {
				t.Errorf("batches of an old ledger: %+v %v", rows, err)
			}
		})
	}
}

// TestLookingSinkReadsPositionsOfALedgerWithoutEpochs: plan and adopt open
// the sink without bringing the ledger up to date (they write nothing), so
// on a ledger made before exactly_offsets.leader_epoch and topic_id
// existed they read its positions as unknown (no epoch, no topic id)
// instead of failing on the missing columns; so does the ledger reader of
// status and verify.
func TestLookingSinkReadsPositionsOfALedgerWithoutEpochs(t *testing.T) {
	for _, c := range ddlCases() {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			cfg := ddlConfig(t, c, "  - {topics: t.x, key: [id]}\n")
			db, err := c.d.Open(ctx, cfg.Sink)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			for _, stmt := range c.d.LedgerDDL() { // as the first release made it
				if _, err := db.Exec(stmt); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := db.Exec(exactly.Rebind(c.d, `INSERT INTO exactly_offsets (pipeline, topic, `+c.d.Quote("partition")+`, next_offset, writer, updated_at)
				VALUES (?, 't.x', 0, 5, 'w', ?)`), cfg.Pipeline, time.Now().UTC()); err != nil {
				t.Fatal(err)
			}
			s, err := exactly.OpenSink(ctx, cfg, c.d, decode.For(cfg), slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			tp := exactly.TP{Topic: "t.x", Partition: 0}
			got, err := s.LoadPositions(ctx, []exactly.TP{tp, {Topic: "t.x", Partition: 1}})
			if err != nil {
				t.Fatalf("positions of a ledger without leader_epoch and topic_id: %v", err)
			}
			if p, ok := got[tp]; len(got) != 1 || !ok || p.Next != 5 || p.Epoch != -1 || p.TopicID != "" {
				t.Errorf("positions %+v, want t.x[0] at 5 with no epoch and no topic id", got)
			}
			// The ledger reader (verify, status) neither: no topic id.
			offs, err := exactly.NewLedger(db, c.d, cfg.Pipeline).Offsets(ctx)
			if err != nil {
				t.Fatalf("ledger offsets of a ledger without topic_id: %v", err)
			}
			if len(offs) != 1 || offs[0].TP != tp || offs[0].Next != 5 || offs[0].TopicID != "" {
				t.Errorf("ledger offsets %+v, want t.x[0] at 5 with no topic id", offs)
			}
		})
	}
}
