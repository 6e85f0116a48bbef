package statuspage

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/exactly/exactly"
)

// Ledger reads one pipeline's ledger tables, read-only.
type Ledger struct {
	DB       *sql.DB
	Dialect  exactly.Dialect
	Pipeline string
}

// OffsetRow is a row of exactly_offsets.
type OffsetRow struct {
	exactly.TP
	NextOffset int64
	Writer     string
	UpdatedAt  string
}

// BatchRow is a row of exactly_batches.
type BatchRow struct {
	BatchID string
	exactly.TP
	From, To                                int64
	MinOffset, MaxOffset                    sql.NullInt64
	Records, Upserted, Deleted, Skipped, DL int64
	Hash, Status, Error, Writer             string
	StartedAt, CommittedAt                  string
}

// DeadLetterRow is a row of exactly_dead_letters (the value cut short).
type DeadLetterRow struct {
	exactly.TP
	Offset           int64
	BatchID          string
	Key, Value       string
	KeyLen, ValueLen int // bytes, before Key and Value are cut short
	Error, CreatedAt string
}

// Totals sums a partition's ledger rows.
type Totals struct {
	Committed, Failed, Replayed int64 // batch rows by status
	Records, Upserted, Deleted  int64 // of committed and replayed batches
	DeadLettered                int64
}

func (l *Ledger) q(s string) string {
	s = strings.ReplaceAll(s, `"partition"`, l.Dialect.Quote("partition"))
	s = strings.ReplaceAll(s, `"offset"`, l.Dialect.Quote("offset"))
	return exactly.Rebind(l.Dialect, s)
}

// limit keeps the first n rows of a SELECT: TOP for SQL Server, LIMIT
// elsewhere.
func (l *Ledger) limit(s string, n int) string {
	if l.Dialect.Name() == "sqlserver" {
		return strings.Replace(s, "SELECT ", "SELECT TOP ("+strconv.Itoa(n)+") ", 1)
	}
	return s + " LIMIT " + strconv.Itoa(n)
}

// Offsets returns exactly_offsets of the pipeline.
func (l *Ledger) Offsets(ctx context.Context) ([]OffsetRow, error) {
	rows, err := l.DB.QueryContext(ctx, l.q(`SELECT topic, "partition", next_offset, writer, updated_at FROM exactly_offsets WHERE pipeline = ? ORDER BY topic, "partition"`), l.Pipeline)
	if err != nil {
		return nil, fmt.Errorf("reading exactly_offsets: %w", err)
	}
	defer rows.Close()
	var out []OffsetRow
	for rows.Next() {
		var r OffsetRow
		var at any
		if err := rows.Scan(&r.Topic, &r.Partition, &r.NextOffset, &r.Writer, &at); err != nil {
			return nil, fmt.Errorf("reading exactly_offsets: %w", err)
		}
		r.UpdatedAt = timeText(at)
		out = append(out, r)
	}
	return out, rows.Err()
}

// Totals sums exactly_batches per partition.
func (l *Ledger) Totals(ctx context.Context) (map[exactly.TP]*Totals, error) {
	rows, err := l.DB.QueryContext(ctx, l.q(`SELECT topic, "partition", status, COUNT(*), SUM(records), SUM(upserted), SUM(deleted), SUM(dead_lettered)
		FROM exactly_batches WHERE pipeline = ? GROUP BY topic, "partition", status`), l.Pipeline)
	if err != nil {
		return nil, fmt.Errorf("summing exactly_batches: %w", err)
	}
	defer rows.Close()
	out := map[exactly.TP]*Totals{}
	for rows.Next() {
		var tp exactly.TP
		var status string
		var n, recs, ups, dels, dl int64
		if err := rows.Scan(&tp.Topic, &tp.Partition, &status, &n, &recs, &ups, &dels, &dl); err != nil {
			return nil, fmt.Errorf("summing exactly_batches: %w", err)
		}
		t := out[tp]
		if t == nil {
			t = &Totals{}
			out[tp] = t
		}
		switch status {
		case "committed", "replayed":
			if status == "committed" {
				t.Committed += n
			} else {
				t.Replayed += n
			}
			t.Records += recs
			t.Upserted += ups
			t.Deleted += dels
			t.DeadLettered += dl
		case "failed":
			t.Failed += n
		}
	}
	return out, rows.Err()
}

// Batches returns the newest n rows of exactly_batches.
func (l *Ledger) Batches(ctx context.Context, n int) ([]BatchRow, error) {
	rows, err := l.DB.QueryContext(ctx, l.q(l.limit(`SELECT batch_id, topic, "partition", from_offset, to_offset, min_offset, max_offset,
		records, upserted, deleted, skipped, dead_lettered, hash, status, error, writer, started_at, committed_at
		FROM exactly_batches WHERE pipeline = ? ORDER BY started_at DESC, batch_id DESC`, n)), l.Pipeline)
	if err != nil {
		return nil, fmt.Errorf("reading exactly_batches: %w", err)
	}
	defer rows.Close()
	var out []BatchRow
	for rows.Next() {
		var b BatchRow
		var errText sql.NullString
		var started, committed any
		if err := rows.Scan(&b.BatchID, &b.Topic, &b.Partition, &b.From, &b.To, &b.MinOffset, &b.MaxOffset,
			&b.Records, &b.Upserted, &b.Deleted, &b.Skipped, &b.DL, &b.Hash, &b.Status, &errText, &b.Writer, &started, &committed); err != nil {
			return nil, fmt.Errorf("reading exactly_batches: %w", err)
		}
		b.Error, b.StartedAt, b.CommittedAt = errText.String, timeText(started), timeText(committed)
		out = append(out, b)
	}
	return out, rows.Err()
}

// DeadLetters returns the newest n dead letters and how many there are.
func (l *Ledger) DeadLetters(ctx context.Context, n int) ([]DeadLetterRow, int64, error) {
	var total int64
	if err := l.DB.QueryRowContext(ctx, l.q(`SELECT COUNT(*) FROM exactly_dead_letters WHERE pipeline = ?`), l.Pipeline).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("counting exactly_dead_letters: %w", err)
	}
	rows, err := l.DB.QueryContext(ctx, l.q(l.limit(`SELECT topic, "partition", "offset", batch_id, record_key, record_value, error, created_at
		FROM exactly_dead_letters WHERE pipeline = ? ORDER BY created_at DESC, topic, "partition", "offset" DESC`, n)), l.Pipeline)
	if err != nil {
		return nil, 0, fmt.Errorf("reading exactly_dead_letters: %w", err)
	}
	defer rows.Close()
	var out []DeadLetterRow
	for rows.Next() {
		var d DeadLetterRow
		var key, val []byte
		var at any
		if err := rows.Scan(&d.Topic, &d.Partition, &d.Offset, &d.BatchID, &key, &val, &d.Error, &at); err != nil {
			return nil, 0, fmt.Errorf("reading exactly_dead_letters: %w", err)
		}
		d.Key, d.Value, d.CreatedAt = cut(string(key), 80), cut(string(val), 200), timeText(at)
		d.KeyLen, d.ValueLen = len(key), len(val)
		out = append(out, d)
	}
	return out, total, rows.Err()
}

// ChainFinding is a break in a partition's chain of committed batches.
type ChainFinding struct {
	exactly.TP
	Problem string
}

// Chain checks, per partition, that committed batches follow each other
// without gap or overlap (each from_offset is the previous to_offset) and
// that the last one ends at exactly_offsets.next_offset. offsets must have
// been read before Chain is called: rows starting at or past a partition's
// next_offset were committed after that read and are left for the next
// check. It reads every committed row: callers cache it.
func (l *Ledger) Chain(ctx context.Context, offsets []OffsetRow) ([]ChainFinding, int64, error) {
	// Committed rows chain; a replayed row re-applies a committed range
	// (by design, not an overlap); a reseeded row restarts the chain where
	// exactly reseed moved next_offset, as verify reads them. batch_id
	// sorts in the order rows were written.
	rows, err := l.DB.QueryContext(ctx, l.q(`SELECT topic, "partition", from_offset, to_offset, status, batch_id FROM exactly_batches
		WHERE pipeline = ? AND status IN ('committed', 'reseeded') ORDER BY topic, "partition", from_offset, to_offset`), l.Pipeline)
	if err != nil {
		return nil, 0, fmt.Errorf("reading the batch chain: %w", err)
	}
	defer rows.Close()
	type row struct {
		tp         exactly.TP
		from, to   int64
		status, id string
	}
	var all []row
	reseed := map[exactly.TP]row{} // the last reseed of each partition
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.tp.Topic, &r.tp.Partition, &r.from, &r.to, &r.status, &r.id); err != nil {
			return nil, 0, fmt.Errorf("reading the batch chain: %w", err)
		}
		if r.status == "reseeded" {
			if last, ok := reseed[r.tp]; !ok || r.id > last.id {
				reseed[r.tp] = r
			}
			continue
		}
		all = append(all, r)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, err
	}
	var out []ChainFinding
	next := make(map[exactly.TP]int64, len(offsets))
	for _, o := range offsets {
		next[o.TP] = o.NextOffset
	}
	last := map[exactly.TP]int64{}
	for tp, r := range reseed {
		last[tp] = r.to
	}
	var n int64
	for _, r := range all {
		tp, from, to := r.tp, r.from, r.to
		if rs, ok := reseed[tp]; ok && r.id < rs.id {
			continue // written against the log as it was before the reseed
		}
		if nx, ok := next[tp]; ok && from >= nx && to > from {
			continue // committed after the offsets were read
		}
		n++
		prev, ok := last[tp]
		switch {
		case !ok:
		case from > prev:
			out = append(out, ChainFinding{tp, fmt.Sprintf("gap: offsets %d..%d are in no committed batch", prev, from-1)})
		case from < prev:
			out = append(out, ChainFinding{tp, fmt.Sprintf("overlap: a batch starts at %d but the previous one ended at %d (offsets applied twice?)", from, prev)})
		}
		if to > prev || !ok {
			last[tp] = to
		}
	}
	for _, o := range offsets {
		if end, ok := last[o.TP]; ok && end != o.NextOffset {
			out = append(out, ChainFinding{o.TP, fmt.Sprintf("next_offset is %d but the last committed batch ends at %d", o.NextOffset, end)})
		}
	}
	return out, n, nil
}

func timeText(v any) string {
	switch t := v.(type) {
	case nil:
		return ""
	case time.Time:
		return t.UTC().Format("2006-01-02 15:04:05.000")
	case []byte:
		return shortTime(string(t))
	case string:
		return shortTime(t)
	}
	return fmt.Sprint(v)
}

// shortTime reformats a stored RFC 3339-ish text time for the page.
func shortTime(s string) string {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999-07:00", "2006-01-02 15:04:05.999999999 -0700 MST", "2006-01-02 15:04:05"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC().Format("2006-01-02 15:04:05.000")
		}
	}
	return s
}

func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
