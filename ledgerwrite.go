package exactly

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/exactly/exactly/internal/secret"
)

// fenceStatements advance each batch's offset row from From to To, only if
// it still says From.
// The leader epoch of the last record below To is stored with it (kept
// when no record carries one).
func (s *Sink) fenceStatements(batches []*PartitionBatch, now time.Time) []Statement {
	where := fmt.Sprintf(" WHERE %s = ? AND %s = ? AND %s = ? AND %s = ?",
		s.d.Quote("pipeline"), s.d.Quote("topic"), s.d.Quote("partition"), s.d.Quote("next_offset"))
	q := s.rebind(fmt.Sprintf("UPDATE exactly_offsets SET %s = ?, %s = ?, %s = ?", s.d.Quote("next_offset"), s.d.Quote("writer"), s.d.Quote("updated_at")) + where)
	qe := s.rebind(fmt.Sprintf("UPDATE exactly_offsets SET %s = ?, %s = ?, %s = ?, %s = ?", s.d.Quote("next_offset"), s.d.Quote("writer"), s.d.Quote("updated_at"), s.d.Quote("leader_epoch")) + where)
	out := make([]Statement, len(batches))
	for i, b := range batches {
		if e := lastEpoch(b); e >= 0 {
			out[i] = Statement{SQL: qe, Args: []any{b.To, s.writer, now, e, s.cfg.Pipeline, b.Topic, b.Partition, b.From}}
			continue
		}
		out[i] = Statement{SQL: q, Args: []any{b.To, s.writer, now, s.cfg.Pipeline, b.Topic, b.Partition, b.From}}
	}
	return out
}

// lastEpoch is the leader epoch of the batch's last record below To, -1
// when none carries one.
func lastEpoch(b *PartitionBatch) int32 {
	if !b.Epochs {
		return -1
	}
	for i := len(b.Records) - 1; i >= 0; i-- {
		if r := b.Records[i]; r.Offset < b.To {
			return r.LeaderEpoch
		}
	}
	return -1
}

// fenced names the batches whose fence matched no row (affected[i] is the
// rows the i-th fence changed), with the offset the database holds.
func (s *Sink) fenced(ctx context.Context, q Querier, batches []*PartitionBatch, affected []int64) map[TP]*FencedError {
	var out map[TP]*FencedError
	for i, b := range batches {
		if affected[i] == 1 {
			continue
		}
		stored := int64(-1)
		sel := s.rebind(fmt.Sprintf("SELECT %s FROM exactly_offsets WHERE %s = ? AND %s = ? AND %s = ?",
			s.d.Quote("next_offset"), s.d.Quote("pipeline"), s.d.Quote("topic"), s.d.Quote("partition")))
		_ = q.QueryRowContext(ctx, sel, s.cfg.Pipeline, b.Topic, b.Partition).Scan(&stored)
		if out == nil {
			out = map[TP]*FencedError{}
		}
		out[TP{b.Topic, b.Partition}] = &FencedError{Topic: b.Topic, Partition: b.Partition, Want: b.From, Stored: stored}
	}
	return out
}

var ledgerColumns = []string{"batch_id", "pipeline", "topic", "partition", "from_offset", "to_offset",
	"min_offset", "max_offset", "records", "upserted", "deleted", "skipped", "dead_lettered",
	"hash", "status", "error", "writer", "started_at", "committed_at", "notes"}

func (s *Sink) ledgerStatements(batches []*PartitionBatch, status, errText string, now time.Time) []Statement {
	return s.insertStatements("exactly_batches", ledgerColumns, s.ledgerRows(batches, status, errText, now), nil)
}

// insertStatements inserts rows (aligned with cols) into table: one
// statement per row, or multi-row statements of as many rows as multi
// allows.
func (s *Sink) insertStatements(table string, cols []string, rows [][]any, multi MultiRowInserts) []Statement {
	per := 1
	if multi != nil {
		per = max(multi.MaxInsertRows(len(cols)), 1)
	}
	var out []Statement
	for start := 0; start < len(rows); start += per {
		chunk := rows[start:min(start+per, len(rows))]
		var args []any
		for _, r := range chunk {
			args = append(args, r...)
		}
		out = append(out, Statement{SQL: s.insertSQLRows(table, cols, len(chunk)), Args: args})
	}
	return out
}

func (s *Sink) ledgerRows(batches []*PartitionBatch, status, errText string, now time.Time) [][]any {
	out := make([][]any, len(batches))
	for i, b := range batches {
		var committedAt any
		if status == "committed" || status == "replayed" {
			committedAt = now
		}
		var errv any
		if errText != "" {
			errv = errText
		}
		var notes any
		if len(b.Notes) > 0 {
			notes = strings.Join(b.Notes, "\n")
		}
		out[i] = []any{b.BatchID, s.cfg.Pipeline, b.Topic, b.Partition, b.From, b.To,
			nullOffset(b.MinOffset), nullOffset(b.MaxOffset), len(b.Records), b.Upserted, b.Deleted, b.Skipped,
			len(b.DeadLetters), b.Hash, status, errv, s.writer, b.StartedAt, committedAt, notes}
	}
	return out
}

func (s *Sink) insertLedger(ctx context.Context, q Querier, batches []*PartitionBatch, status, errText string, now time.Time) error {
	for i, st := range s.ledgerStatements(batches, status, errText, now) {
		if _, err := q.ExecContext(ctx, st.SQL, st.Args...); err != nil {
			b := batches[i]
			return fmt.Errorf("writing ledger row for %s[%d] %d..%d: %w", b.Topic, b.Partition, b.From, b.To, err)
		}
	}
	return nil
}

func nullOffset(o int64) any {
	if o < 0 {
		return nil
	}
	return o
}

var deadLetterColumns = []string{"pipeline", "batch_id", "topic", "partition", "offset", "record_key", "record_value", "headers", "error", "created_at"}

func (s *Sink) deadLetterStatements(batches []*PartitionBatch) []Statement {
	return s.insertStatements("exactly_dead_letters", deadLetterColumns, s.deadLetterRows(batches), nil)
}

func (s *Sink) deadLetterRows(batches []*PartitionBatch) [][]any {
	var out [][]any
	now := time.Now().UTC()
	for _, b := range batches {
		for _, dl := range b.DeadLetters {
			r := dl.Record
			var hdr any
			if len(r.Headers) > 0 {
				m := make([]map[string]string, len(r.Headers))
				for i, h := range r.Headers {
					m[i] = map[string]string{"key": h.Key, "value": string(h.Value)}
				}
				j, _ := json.Marshal(m)
				hdr = string(j)
			}
			key, val := s.nullBytes, s.nullBytes
			if r.Key != nil {
				key = r.Key
			}
			if r.Value != nil {
				val = r.Value
			}
			msg := strings.ReplaceAll(strings.ToValidUTF8(secret.Error(recordError(r, dl.Err)), "\uFFFD"), "\x00", "")
			out = append(out, []any{s.cfg.Pipeline, b.BatchID, r.Topic, r.Partition, r.Offset, key, val, hdr, msg, now})
		}
	}
	return out
}

// recordFailed writes failed ledger rows in their own transaction, for the
// audit trail. It is best effort: the database may be what failed.
func (s *Sink) recordFailed(batches []*PartitionBatch, cause error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	raw := cause.Error()
	// The same failure of the same range is in the ledger already.
	batches = slices.DeleteFunc(slices.Clone(batches), func(b *PartitionBatch) bool { return b.Failed == raw })
	if len(batches) == 0 {
		return
	}
	msg := secret.Error(cause) // the ledger is read by auditors and the status page
	if len(msg) > 2000 {
		msg = msg[:2000]
	}
	if err := s.insertLedger(ctx, s.db, batches, "failed", msg, time.Now().UTC()); err != nil {
		s.log.Debug("could not record failed batch in the ledger", "err", err)
	}
	for _, b := range batches {
		b.BatchID = s.newBatchID() // the retry gets its own row
	}
}

func (s *Sink) insertSQL(table string, cols []string) string { return s.insertSQLRows(table, cols, 1) }

// insertSQLRows is an INSERT of rows rows of cols.
func (s *Sink) insertSQLRows(table string, cols []string, rows int) string {
	q := make([]string, len(cols))
	ph := make([]string, len(cols))
	for i, c := range cols {
		q[i] = s.d.Quote(c)
		ph[i] = "?"
	}
	row := "(" + strings.Join(ph, ", ") + ")"
	values := strings.TrimSuffix(strings.Repeat(row+", ", rows), ", ")
	return s.rebind(fmt.Sprintf("INSERT INTO %s (%s) VALUES %s", table, strings.Join(q, ", "), values))
}

// rebind turns ? placeholders into the dialect's.
func (s *Sink) rebind(q string) string { return Rebind(s.d, q) }

// Rebind turns ? placeholders into the dialect's own. The query must not
// contain ? inside string literals.
func Rebind(d Dialect, q string) string {
	if d.Placeholder(1) == "?" {
		return q
	}
	var sb strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			sb.WriteString(d.Placeholder(n))
			continue
		}
		sb.WriteRune(r)
	}
	return sb.String()
}

var idPrefix = func() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}()

// newBatchID returns an id that sorts by time and is unique across writers.
// The counter is the process's, not the Sink's: two sinks in one process
// (tests, tools) must not mint the same id in the same millisecond.
func (s *Sink) newBatchID() string {
	return fmt.Sprintf("%013x-%s-%06d", time.Now().UnixMilli(), idPrefix, batchNo.Add(1)%1000000)
}

var batchNo atomic.Uint64
