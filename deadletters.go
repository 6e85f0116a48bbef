package exactly

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"
)

// DeadLetterRow is one row of exactly_dead_letters: the record as it came
// from Kafka (without its timestamp, which is not stored), why it was not
// applied, and, once redriven, who resolved it, when and in which batch.
type DeadLetterRow struct {
	ID            int64
	BatchID       string // the batch that dead-lettered it
	Record        Record
	Error         string
	CreatedAt     time.Time
	ResolvedAt    time.Time // zero while open
	ResolvedBy    string
	ResolvedBatch string // the redriven batch that applied it
}

// Open reports whether the dead letter is not resolved yet.
func (d *DeadLetterRow) Open() bool { return d.ResolvedAt.IsZero() }

// DeadLetterCount counts a partition's dead letters.
type DeadLetterCount struct {
	Open     int64 `json:"open"`
	Resolved int64 `json:"resolved"`
	// First and Last are the lowest and highest offsets of the open ones
	// (-1 when none are open).
	First int64 `json:"first_open_offset"`
	Last  int64 `json:"last_open_offset"`
}

// resolvable reports whether exactly_dead_letters has the resolved_*
// columns (added by EnsureLedger since redrive exists). The read-only
// commands never add them: on a ledger written by an older version every
// dead letter is open.
func (l *Ledger) resolvable(ctx context.Context) (exists, resolvable bool, err error) {
	t, err := l.d.Describe(ctx, l.db, "exactly_dead_letters")
	if err != nil {
		return false, false, fmt.Errorf("describing exactly_dead_letters: %w", err)
	}
	return t != nil, t != nil && t.Column("resolved_at") != nil, nil
}

// DeadLetterCounts counts open and resolved dead letters per partition.
func (l *Ledger) DeadLetterCounts(ctx context.Context) (map[TP]DeadLetterCount, error) {
	exists, resolvable, err := l.resolvable(ctx)
	if err != nil || !exists {
		return map[TP]DeadLetterCount{}, err
	}
	p, off := l.d.Quote("partition"), l.d.Quote("offset")
	resolved, first, last := "0", "MIN("+off+")", "MAX("+off+")"
	if resolvable {
		resolved = "SUM(CASE WHEN resolved_at IS NULL THEN 0 ELSE 1 END)"
		first = "MIN(CASE WHEN resolved_at IS NULL THEN " + off + " END)"
		last = "MAX(CASE WHEN resolved_at IS NULL THEN " + off + " END)"
	}
	q := Rebind(l.d, fmt.Sprintf("SELECT topic, %s, COUNT(*), %s, %s, %s FROM exactly_dead_letters WHERE pipeline = ? GROUP BY topic, %s",
		p, resolved, first, last, p))
	rows, err := l.db.QueryContext(ctx, q, l.pipeline)
	if err != nil {
		return nil, fmt.Errorf("counting exactly_dead_letters: %w", err)
	}
	defer rows.Close()
	out := map[TP]DeadLetterCount{}
	for rows.Next() {
		var tp TP
		var all int64
		var res, lo, hi sql.NullInt64
		if err := rows.Scan(&tp.Topic, &tp.Partition, &all, &res, &lo, &hi); err != nil {
			return nil, fmt.Errorf("counting exactly_dead_letters: %w", err)
		}
		c := DeadLetterCount{Open: all - res.Int64, Resolved: res.Int64, First: -1, Last: -1}
		if lo.Valid {
			c.First, c.Last = lo.Int64, hi.Int64
		}
		out[tp] = c
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("counting exactly_dead_letters: %w", err)
	}
	return out, nil
}

// DeadLetters returns the dead letters of one partition with from <=
// offset < to, in offset order; openOnly leaves out resolved ones.
func (l *Ledger) DeadLetters(ctx context.Context, tp TP, from, to int64, openOnly bool) ([]DeadLetterRow, error) {
	exists, resolvable, err := l.resolvable(ctx)
	if err != nil || !exists {
		return nil, err
	}
	cols := "id, batch_id, " + l.d.Quote("offset") + ", record_key, record_value, headers, error, created_at"
	where := ""
	if resolvable {
		cols += ", resolved_at, resolved_by, resolved_batch"
		if openOnly {
			where = " AND resolved_at IS NULL"
		}
	}
	off := l.d.Quote("offset")
	q := Rebind(l.d, fmt.Sprintf("SELECT %s FROM exactly_dead_letters WHERE pipeline = ? AND topic = ? AND %s = ? AND %s >= ? AND %s < ?%s ORDER BY %s, id",
		cols, l.d.Quote("partition"), off, off, where, off))
	rows, err := l.db.QueryContext(ctx, q, l.pipeline, tp.Topic, tp.Partition, from, to)
	if err != nil {
		return nil, fmt.Errorf("reading exactly_dead_letters of %s: %w", tp, err)
	}
	defer rows.Close()
	var out []DeadLetterRow
	for rows.Next() {
		d := DeadLetterRow{Record: Record{Topic: tp.Topic, Partition: tp.Partition}}
		var hdr, by, batch sql.NullString
		var created, resolved any
		dest := []any{&d.ID, &d.BatchID, &d.Record.Offset, &d.Record.Key, &d.Record.Value, &hdr, &d.Error, &created}
		if resolvable {
			dest = append(dest, &resolved, &by, &batch)
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("reading exactly_dead_letters of %s: %w", tp, err)
		}
		d.CreatedAt, d.ResolvedAt = asTime(created), asTime(resolved)
		d.ResolvedBy, d.ResolvedBatch = by.String, batch.String
		if hdr.Valid && hdr.String != "" {
			var hs []map[string]string
			if err := json.Unmarshal([]byte(hdr.String), &hs); err != nil {
				return nil, fmt.Errorf("reading the headers of dead letter %s@%d: %w", tp, d.Record.Offset, err)
			}
			for _, h := range hs {
				d.Record.Headers = append(d.Record.Headers, Header{Key: h["key"], Value: []byte(h["value"])})
			}
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading exactly_dead_letters of %s: %w", tp, err)
	}
	return out, nil
}
