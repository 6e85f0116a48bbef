package exactly

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"
)

// witness is the ledger row a transaction writes: it exists, with that
// status, if and only if the transaction committed, so it settles a COMMIT
// whose outcome the driver could not report.
type witness struct {
	what    string // "batch", "replay", "redrive", "reseed": for messages
	batchID string
	status  string
	batches []*PartitionBatch // for messages (their ranges); may be nil
}

// errNothingToCommit, returned by a transaction's body, rolls it back and
// makes inTx return nil: the body found nothing to do.
var errNothingToCommit = errors.New("nothing to commit")

// inTx is the one transaction skeleton of the ledger's writers (a flight's
// batches, replay, redrive, reseed): it begins a transaction on conn, runs
// body, and commits. An error from body rolls back. A COMMIT that returns
// an error has an unknown outcome (the COMMIT may have reached the server
// before the connection broke): it is never retried blindly; the witness
// row is read back (see settle) and decides.
func (s *Sink) inTx(ctx context.Context, conn *sql.Conn, w witness, body func(tx *Tx) error) error {
	release, err := s.writeTurn(ctx)
	if err != nil {
		return fmt.Errorf("waiting to begin %s transaction: %w", w.what, err)
	}
	sqlTx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		release()
		return fmt.Errorf("beginning %s transaction: %w", w.what, err)
	}
	done := false
	defer func() {
		if !done {
			_ = sqlTx.Rollback()
		}
		release()
	}()
	if err := body(&Tx{Tx: sqlTx, Conn: conn}); err != nil {
		if errors.Is(err, errNothingToCommit) {
			return nil
		}
		return err
	}
	err = sqlTx.Commit()
	done = true
	release() // the read-back below writes nothing
	if err == nil {
		return nil
	}
	ok, rerr := s.settle(ctx, w)
	if rerr != nil {
		return fmt.Errorf("%s commit outcome unknown (%v) and reading it back failed: %w", w.what, err, rerr)
	}
	if !ok {
		return fmt.Errorf("committing %s transaction: %w", w.what, err)
	}
	s.log.Warn("commit reported an error but the ledger shows it committed", "what", w.what, "batch_id", w.batchID, "batches", Ranges(w.batches), "err", err)
	return nil
}

// writeTurn waits until this process runs no other write transaction,
// for a SingleWriter dialect (see SingleWriter); release ends the turn
// and may be called more than once.
func (s *Sink) writeTurn(ctx context.Context) (release func(), err error) {
	if s.writeSlot == nil {
		return func() {}, nil
	}
	select {
	case s.writeSlot <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	var once sync.Once
	return func() { once.Do(func() { <-s.writeSlot }) }, nil
}

// settle reads back the outcome of a transaction whose COMMIT failed. Its
// own ledger row is the witness: it exists with its status if and only if
// the transaction committed (the offsets are not: another writer may have
// moved them on since, either way). It retries the read until ctx ends,
// because guessing either way loses or doubles.
func (s *Sink) settle(ctx context.Context, w witness) (bool, error) {
	q := s.rebind(fmt.Sprintf("SELECT COUNT(*) FROM exactly_batches WHERE %s = ? AND %s = ?",
		s.d.Quote("batch_id"), s.d.Quote("status")))
	delay := 100 * time.Millisecond
	for {
		var n int
		err := s.db.QueryRowContext(ctx, q, w.batchID, w.status).Scan(&n)
		if err == nil {
			return n > 0, nil
		}
		if ctx.Err() != nil {
			return false, err
		}
		s.log.Warn("reading back the outcome of an interrupted COMMIT", "what", w.what, "batch_id", w.batchID, "batches", Ranges(w.batches), "err", err)
		select {
		case <-ctx.Done():
			return false, err
		case <-time.After(delay):
		}
		if delay < 2*time.Second {
			delay *= 2
		}
	}
}
