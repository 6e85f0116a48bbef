package exactly

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// StatusReseeded marks an exactly_batches row written by exactly reseed:
// next_offset moved by an operator from from_offset to to_offset, who in
// writer, why in notes. It is not part of the chain: it explains the break.
const StatusReseeded = "reseeded"

// Reseed is an operator's move of a partition's next_offset.
type Reseed struct {
	TP
	To      int64
	TopicID string // the topic's id now ("" when the broker has none)
	Who     string // OS user@host
	Why     string // --reason
}

// Reseed moves the partition's next_offset to r.To and writes an
// exactly_batches row of status reseeded (from the old next_offset to
// r.To, who, why) in one transaction. The stored leader epoch is cleared
// and the topic id replaced by r.TopicID. It returns the old next_offset
// and the ledger row's batch id.
func (s *Sink) Reseed(ctx context.Context, r Reseed) (from int64, batchID string, err error) {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return 0, "", fmt.Errorf("reseeding %s: connecting to the sink: %w", r.TP, err)
	}
	defer conn.Close()
	batchID = s.newBatchID()
	err = s.inTx(ctx, conn, witness{"reseed", batchID, StatusReseeded, nil}, func(tx *Tx) error {
		sel := s.rebind(fmt.Sprintf("SELECT next_offset FROM exactly_offsets WHERE pipeline = ? AND topic = ? AND %s = ?", s.d.Quote("partition")))
		if err := tx.QueryRowContext(ctx, sel, s.cfg.Pipeline, r.Topic, r.Partition).Scan(&from); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("reseeding %s: the pipeline %s has no exactly_offsets row for it: it starts where start_from says on its first assignment, nothing to reseed", r.TP, s.cfg.Pipeline)
			}
			return fmt.Errorf("reseeding %s: %w", r.TP, err)
		}
		now := time.Now().UTC()
		var topicID any
		if r.TopicID != "" {
			topicID = r.TopicID
		}
		upd := s.rebind(fmt.Sprintf("UPDATE exactly_offsets SET next_offset = ?, leader_epoch = NULL, topic_id = ?, writer = ?, updated_at = ? WHERE pipeline = ? AND topic = ? AND %s = ? AND next_offset = ?",
			s.d.Quote("partition")))
		res, err := tx.ExecContext(ctx, upd, r.To, topicID, r.Who, now, s.cfg.Pipeline, r.Topic, r.Partition, from)
		if err != nil {
			return fmt.Errorf("reseeding %s: %w", r.TP, err)
		}
		if n, err := res.RowsAffected(); err == nil && n != 1 {
			stored := int64(-1)
			_ = tx.QueryRowContext(ctx, sel, s.cfg.Pipeline, r.Topic, r.Partition).Scan(&stored)
			return &ReseedMovedError{TP: r.TP, Want: from, Stored: stored}
		}
		ins := s.insertSQL("exactly_batches", ledgerColumns)
		if _, err := tx.ExecContext(ctx, ins, batchID, s.cfg.Pipeline, r.Topic, r.Partition, from, r.To,
			nil, nil, 0, 0, 0, 0, 0, "", StatusReseeded, nil, r.Who, now, now, r.Why); err != nil {
			return fmt.Errorf("reseeding %s: writing the ledger row: %w", r.TP, err)
		}
		return nil
	})
	if err != nil {
		return 0, "", err
	}
	return from, batchID, nil
}
