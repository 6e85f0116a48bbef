package exactly

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"
)

// Replay re-applies records of one partition that the pipeline already
// committed, in one transaction: the records go through the same prepare,
// create/evolve, plan and Dialect.Apply as Commit, and a ledger row with
// status "replayed" records the range and its hash. b.From is where the
// replayed range starts; b.Records are the partition's records from there,
// in offset order, as read with read_committed.
//
// Replay never moves next_offset. next is the partition's next_offset
// when the replay began (at least the range's end). In its transaction
// Replay updates the partition's exactly_offsets row (only updated_at)
// under the condition next_offset = next: that takes the same row lock as
// Commit's fence, so a replay and a pipeline's batch serialize, and it
// refuses the transaction with a *ReplayMovedError when a pipeline
// committed anything since the replay began (its newer values would be
// overwritten with older ones; a condition next_offset >= the range's end
// would let exactly that through). A range beyond next_offset
// is refused with a *ReplayRangeError. Dead letters are not written again (the first apply
// wrote them); the ledger row counts them. A record whose rule says
// on_error: fail stops the replay with its *RecordError; a record routed to
// an append-mode table stops it with ErrReplayAppend.
//
// Upserts and deletes are idempotent, but not time-travel safe: replaying
// an older range over newer rows writes the older values back unless the
// table has a version column. Replaying up to next_offset ends at the
// current state.
func (s *Sink) Replay(ctx context.Context, b *PartitionBatch, next int64) error {
	if err := s.prepare(ctx, b); err != nil {
		return fmt.Errorf("replaying %s[%d]: %w", b.Topic, b.Partition, err)
	}
	b.BatchID = s.newBatchID()
	if b.Halt != nil {
		return fmt.Errorf("replaying %s[%d]: %w", b.Topic, b.Partition, b.Halt)
	}
	for _, c := range b.changes {
		if c.rule.Mode == "append" && c.Op == OpUpsert {
			return fmt.Errorf("replaying %s[%d]@%d into table %s: %w; repair it with exactly dedupe instead",
				b.Topic, b.Partition, c.rec.Offset, c.table, ErrReplayAppend)
		}
	}
	if len(b.Records) == 0 {
		return nil
	}
	if err := s.ensureTables(ctx, []*PartitionBatch{b}); err != nil {
		return fmt.Errorf("replaying %s[%d]: preparing tables: %w", b.Topic, b.Partition, err)
	}
	if b.Halt != nil { // a type conflict under on_error: fail
		return fmt.Errorf("replaying %s[%d]: %w", b.Topic, b.Partition, b.Halt)
	}
	b.decodeDead = len(b.DeadLetters)
	var err error
	for attempt := 0; attempt < 6; attempt++ {
		if err = s.replayOnce(ctx, b, next); err == nil {
			return nil
		}
		var re *ReplayRangeError
		var me *ReplayMovedError
		if errors.As(err, &re) || errors.As(err, &me) || s.d.Classify(err) != ErrConflict || ctx.Err() != nil {
			break
		}
	}
	return err
}

func (s *Sink) replayOnce(ctx context.Context, b *PartitionBatch, next int64) error {
	batches := []*PartitionBatch{b}
	tables, err := s.describeAll(ctx, batches)
	if err != nil {
		return err
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("connecting to the sink: %w", err)
	}
	defer conn.Close()
	writes, err := s.plan(ctx, conn, batches, tables)
	if err != nil {
		return err
	}
	if b.To > next {
		return &ReplayRangeError{Topic: b.Topic, Partition: b.Partition, To: b.To, Next: next}
	}
	resolved := 0
	err = s.inTx(ctx, conn, witness{"replay", b.BatchID, StatusReplayed, batches}, func(tx *Tx) error {
		now := time.Now().UTC()
		// The same row lock as Commit's fence; the condition is
		// re-evaluated on the row a concurrent batch committed, so a
		// pipeline that moved on while this transaction waited for the
		// lock refuses it.
		if err := s.lockOffsets(ctx, tx, TP{b.Topic, b.Partition}, next, now); err != nil {
			if !errors.Is(err, errOffsetMoved) {
				return fmt.Errorf("locking offsets of %s[%d] for replay: %w", b.Topic, b.Partition, err)
			}
			got, lerr := s.LoadOffsets(ctx, []TP{{b.Topic, b.Partition}})
			if lerr != nil {
				return lerr
			}
			now, ok := got[TP{b.Topic, b.Partition}]
			if !ok {
				return &ReplayRangeError{Topic: b.Topic, Partition: b.Partition, To: b.To, Next: -1}
			}
			return &ReplayMovedError{Topic: b.Topic, Partition: b.Partition, From: b.From, Began: next, Now: now}
		}
		for _, w := range writes {
			// Rows the database refuses were dead-lettered by the first
			// apply: isolated again here, they are counted, not written
			// twice.
			if err := s.isolate(ctx, tx, w, w.items(), &refusals{}); err != nil {
				return err
			}
		}
		n, err := s.resolveReplayed(ctx, tx, b, now)
		if err != nil {
			return err
		}
		resolved = n
		return s.insertLedger(ctx, tx, batches, StatusReplayed, "", now)
	})
	if err != nil {
		return err
	}
	b.Resolved = resolved
	return nil
}

// lockOffsets takes the row lock of Commit's fence on a partition's
// exactly_offsets row, at the next_offset the caller read: errOffsetMoved
// when another writer moved it since (the caller's reads are stale).
func (s *Sink) lockOffsets(ctx context.Context, tx *Tx, tp TP, next int64, now time.Time) error {
	lock := s.rebind(fmt.Sprintf("UPDATE exactly_offsets SET %s = ? WHERE %s = ? AND %s = ? AND %s = ? AND %s = ?",
		s.d.Quote("updated_at"), s.d.Quote("pipeline"), s.d.Quote("topic"), s.d.Quote("partition"), s.d.Quote("next_offset")))
	res, err := tx.ExecContext(ctx, lock, now, s.cfg.Pipeline, tp.Topic, tp.Partition, next)
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n != 1 {
		return errOffsetMoved
	}
	return nil
}

// resolveReplayed marks resolved, by the replay's ledger row, the open
// dead letters at the offsets of b the replay applied: a record dead-
// lettered by the pipeline whose cause was fixed since is in its table
// now, and an open dead letter would have status and verify say it is
// not (and redrive apply it again). The offsets that failed again stay
// open. It sets b.Resolved when the transaction commits.
func (s *Sink) resolveReplayed(ctx context.Context, tx *Tx, b *PartitionBatch, now time.Time) (int, error) {
	if len(b.Records) == 0 {
		return 0, nil
	}
	_, resolvable, err := NewLedger(s.db, s.d, s.cfg.Pipeline).resolvable(ctx)
	if err != nil || !resolvable {
		return 0, err
	}
	failing := make([]int64, 0, len(b.DeadLetters))
	for _, dl := range b.DeadLetters {
		failing = append(failing, dl.Record.Offset)
	}
	sort.Slice(failing, func(i, j int) bool { return failing[i] < failing[j] })
	mark := s.rebind(fmt.Sprintf("UPDATE exactly_dead_letters SET resolved_at = ?, resolved_by = ?, resolved_batch = ? WHERE %s = ? AND %s = ? AND %s = ? AND %s >= ? AND %s < ? AND resolved_at IS NULL",
		s.d.Quote("pipeline"), s.d.Quote("topic"), s.d.Quote("partition"), s.d.Quote("offset"), s.d.Quote("offset")))
	n := 0
	lo, end := b.Records[0].Offset, b.Records[len(b.Records)-1].Offset+1
	for _, hi := range append(failing, end) {
		if hi > lo {
			r, err := tx.ExecContext(ctx, mark, now, s.writer, b.BatchID, s.cfg.Pipeline, b.Topic, b.Partition, lo, hi)
			if err != nil {
				return 0, fmt.Errorf("marking the dead letters replay applied in %s[%d] resolved: %w", b.Topic, b.Partition, err)
			}
			k, _ := r.RowsAffected()
			n += int(k)
		}
		lo = max(lo, hi+1)
	}
	return n, nil
}
