package exactly

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// PipelineRow is a pipeline's exactly_pipelines row: when it was first
// started and with which start_from. start_from applies only to the
// partitions that existed then (their offsets rows are seeded in the same
// transaction as this row); a partition created later, or a topic
// matching a pattern created later, starts at its beginning.
type PipelineRow struct {
	Pipeline  string
	StartedAt time.Time
	StartFrom string
	Writer    string
	Notes     string
}

// FirstStart returns the pipeline's exactly_pipelines row, nil when the
// pipeline was never started (or was last run by a version without it).
func (s *Sink) FirstStart(ctx context.Context) (*PipelineRow, error) {
	return s.firstStart(ctx, s.db)
}

func (s *Sink) firstStart(ctx context.Context, q Querier) (*PipelineRow, error) {
	sel := s.rebind("SELECT started_at, start_from, writer, notes FROM exactly_pipelines WHERE pipeline = ?")
	r := &PipelineRow{Pipeline: s.cfg.Pipeline}
	var at any
	var notes sql.NullString
	err := q.QueryRowContext(ctx, sel, s.cfg.Pipeline).Scan(&at, &r.StartFrom, &r.Writer, &notes)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading exactly_pipelines: %w", err)
	}
	r.StartedAt, r.Notes = asTime(at), notes.String
	return r, nil
}

// RecordFirstStart writes the pipeline's exactly_pipelines row unless one
// exists and, in the same transaction, seeds the offsets rows of the
// partitions that exist now at seeds (start_from resolved by the caller),
// so an instance that sees the row also sees every seed. A ledger that
// already holds offsets rows of the pipeline (made by a version without
// exactly_pipelines, or by exactly adopt) is not seeded: its partitions
// without a row were created after its first start, and start at their
// beginning. It returns the stored row (another instance's, when it won).
func (s *Sink) RecordFirstStart(ctx context.Context, startFrom string, seeds map[TP]int64) (*PipelineRow, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("recording the first start: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit a no-op
	// Read first, then a plain INSERT: an insert-if-absent that finds
	// the row dooms the transaction on SQL Server (XACT_ABORT ON), and
	// an instance racing this one fails on the primary key instead, then
	// reads the winner's row (see kafka.Source).
	if row, err := s.firstStart(ctx, tx); err != nil || row != nil {
		return row, err
	}
	now := time.Now().UTC()
	var existing int64
	cnt := s.rebind("SELECT COUNT(*) FROM exactly_offsets WHERE pipeline = ?")
	if err := tx.QueryRowContext(ctx, cnt, s.cfg.Pipeline).Scan(&existing); err != nil {
		return nil, fmt.Errorf("recording the first start: counting offsets rows: %w", err)
	}
	var notes any
	if existing > 0 {
		notes = fmt.Sprintf("recorded on a ledger that already had %d offsets rows: start_from was applied to them when first assigned; partitions without a row start at their beginning", existing)
	}
	ins := s.insertSQL("exactly_pipelines", []string{"pipeline", "started_at", "start_from", "writer", "notes"})
	if _, err := tx.ExecContext(ctx, ins, s.cfg.Pipeline, now, startFrom, s.writer, notes); err != nil {
		return nil, fmt.Errorf("recording the first start in exactly_pipelines: %w", err)
	}
	if existing == 0 {
		q := s.insertSQL("exactly_offsets", []string{"pipeline", "topic", "partition", "next_offset", "writer", "updated_at"})
		for _, tp := range sortedTPs(seeds) {
			if _, err := tx.ExecContext(ctx, q, s.cfg.Pipeline, tp.Topic, tp.Partition, seeds[tp], s.writer, now); err != nil {
				return nil, fmt.Errorf("seeding exactly_offsets for %s at %d: %w", tp, seeds[tp], err)
			}
		}
	}
	row, err := s.firstStart(ctx, tx)
	if err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("recording the first start: %w", err)
	}
	if row == nil {
		return nil, errors.New("recording the first start: exactly_pipelines row missing after insert")
	}
	return row, nil
}

func sortedTPs(m map[TP]int64) []TP {
	out := make([]TP, 0, len(m))
	for tp := range m {
		out = append(out, tp)
	}
	SortTPs(out)
	return out
}
