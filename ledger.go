package exactly

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Batch statuses in exactly_batches.status.
const (
	StatusCommitted = "committed"
	StatusFailed    = "failed"
	StatusReplayed  = "replayed"
	// StatusReseeded: see Sink.Reseed (declared with it).
	// StatusPruned: see Sink.Prune (declared with it).
)

// BatchRow is one row of exactly_batches, as audit commands read it.
type BatchRow struct {
	BatchID      string
	Topic        string
	Partition    int32
	From, To     int64 // [From, To): the next_offset it started from and the one it set
	Min, Max     int64 // offsets of the records actually seen; -1 when none
	Records      int64
	Upserted     int64
	Deleted      int64
	Skipped      int64
	DeadLettered int64
	Hash         string
	Status       string
	Error        string
	Writer       string
	StartedAt    time.Time
	CommittedAt  time.Time // zero unless committed or replayed
	Notes        string    // create/evolve notes; a reseed's reason
}

// TP returns the row's topic partition.
func (b *BatchRow) TP() TP { return TP{b.Topic, b.Partition} }

// OffsetRow is one row of exactly_offsets.
type OffsetRow struct {
	TP
	Next      int64
	Writer    string
	UpdatedAt time.Time
	// TopicID is the topic's id when the row was seeded (or reseeded); ""
	// when unknown: recorded by a version without topic ids, or by a
	// broker without them, or a ledger made before the column existed.
	TopicID string
}

// Ledger reads a pipeline's ledger tables. It never writes: the audit
// commands built on it (status, verify) are read-only by contract.
type Ledger struct {
	db       *sql.DB
	d        Dialect
	pipeline string

	mu   sync.Mutex
	cols map[string]bool // whether "table.column" exists, once known
}

// NewLedger reads the ledger of pipeline through db.
func NewLedger(db *sql.DB, d Dialect, pipeline string) *Ledger {
	return &Ledger{db: db, d: d, pipeline: pipeline}
}

// Pipeline names the pipeline whose rows the ledger reads.
func (l *Ledger) Pipeline() string { return l.pipeline }

// Offsets returns every exactly_offsets row of the pipeline, ordered by
// topic and partition. A ledger made before exactly_offsets.topic_id
// existed (the read-only commands never add it) gives no topic ids.
func (l *Ledger) Offsets(ctx context.Context) ([]OffsetRow, error) {
	hasID, err := l.has(ctx, "exactly_offsets", "topic_id")
	if err != nil {
		return nil, err
	}
	id := "NULL AS " + l.d.Quote("topic_id")
	if hasID {
		id = l.d.Quote("topic_id")
	}
	q := Rebind(l.d, fmt.Sprintf("SELECT topic, %s, next_offset, writer, updated_at, %s FROM exactly_offsets WHERE pipeline = ? ORDER BY topic, %s",
		l.d.Quote("partition"), id, l.d.Quote("partition")))
	rows, err := l.db.QueryContext(ctx, q, l.pipeline)
	if err != nil {
		return nil, fmt.Errorf("reading exactly_offsets: %w", err)
	}
	defer rows.Close()
	var out []OffsetRow
	for rows.Next() {
		var o OffsetRow
		var at any
		var topicID sql.NullString
		if err := rows.Scan(&o.Topic, &o.Partition, &o.Next, &o.Writer, &at, &topicID); err != nil {
			return nil, fmt.Errorf("reading exactly_offsets: %w", err)
		}
		o.UpdatedAt, o.TopicID = asTime(at), topicID.String
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading exactly_offsets: %w", err)
	}
	return out, nil
}

var batchRowColumns = []string{"batch_id", "topic", "partition", "from_offset", "to_offset", "min_offset", "max_offset",
	"records", "upserted", "deleted", "skipped", "dead_lettered", "hash", "status", "error", "writer", "started_at", "committed_at", "notes"}

// columns returns how to write the batch row columns, each after a
// prefix ("b." for a table alias). A ledger made before notes existed
// (the read-only commands never add it) gives NULL for it.
func (l *Ledger) columns(ctx context.Context) (func(prefix string) string, error) {
	notes, err := l.has(ctx, "exactly_batches", "notes")
	if err != nil {
		return nil, err
	}
	return func(prefix string) string {
		q := make([]string, len(batchRowColumns))
		for i, c := range batchRowColumns {
			q[i] = prefix + l.d.Quote(c)
			if c == "notes" && !notes {
				q[i] = "NULL AS " + l.d.Quote(c)
			}
		}
		return strings.Join(q, ", ")
	}, nil
}

// has reports whether the ledger table has the column (one a later
// version added: the read-only commands never add it); the answer is kept
// once known.
func (l *Ledger) has(ctx context.Context, table, column string) (bool, error) {
	key := table + "." + column
	l.mu.Lock()
	defer l.mu.Unlock()
	if has, ok := l.cols[key]; ok {
		return has, nil
	}
	t, err := l.d.Describe(ctx, l.db, table)
	if err != nil {
		return false, fmt.Errorf("describing %s: %w", table, err)
	}
	if l.cols == nil {
		l.cols = map[string]bool{}
	}
	l.cols[key] = t != nil && t.Column(column) != nil
	return l.cols[key], nil
}

func scanBatch(rows *sql.Rows, extra ...any) (BatchRow, error) {
	var b BatchRow
	var minO, maxO sql.NullInt64
	var errText, notes sql.NullString
	var started, committed any
	dest := append([]any{&b.BatchID, &b.Topic, &b.Partition, &b.From, &b.To, &minO, &maxO,
		&b.Records, &b.Upserted, &b.Deleted, &b.Skipped, &b.DeadLettered, &b.Hash, &b.Status, &errText,
		&b.Writer, &started, &committed, &notes}, extra...)
	if err := rows.Scan(dest...); err != nil {
		return b, err
	}
	b.Min, b.Max = -1, -1
	if minO.Valid {
		b.Min = minO.Int64
	}
	if maxO.Valid {
		b.Max = maxO.Int64
	}
	b.Error, b.Notes = errText.String, notes.String
	b.StartedAt, b.CommittedAt = asTime(started), asTime(committed)
	return b, nil
}

// eachBatch runs q, a SELECT of the batch row columns (columns), and
// calls fn with each row in the order q gives them; what names the rows
// in errors.
func (l *Ledger) eachBatch(ctx context.Context, what, q string, args []any, fn func(*BatchRow)) error {
	rows, err := l.db.QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("reading %s: %w", what, err)
	}
	defer rows.Close()
	for rows.Next() {
		b, err := scanBatch(rows)
		if err != nil {
			return fmt.Errorf("reading %s: %w", what, err)
		}
		fn(&b)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading %s: %w", what, err)
	}
	return nil
}

// batches is eachBatch's rows, collected.
func (l *Ledger) batches(ctx context.Context, what, q string, args ...any) ([]BatchRow, error) {
	var out []BatchRow
	err := l.eachBatch(ctx, what, q, args, func(b *BatchRow) { out = append(out, *b) })
	return out, err
}

// BatchSpan returns the lowest and highest from_offset of a partition's
// exactly_batches rows and how many there are (0 when none).
func (l *Ledger) BatchSpan(ctx context.Context, tp TP) (lo, hi, n int64, err error) {
	return l.BatchSpanAfter(ctx, tp, "")
}

// BatchSpanAfter is BatchSpan of the rows whose batch_id sorts after
// after (batch ids sort by time): the rows written since a reseed.
func (l *Ledger) BatchSpanAfter(ctx context.Context, tp TP, after string) (lo, hi, n int64, err error) {
	q := Rebind(l.d, fmt.Sprintf("SELECT MIN(from_offset), MAX(from_offset), COUNT(*) FROM exactly_batches WHERE pipeline = ? AND topic = ? AND %s = ? AND batch_id > ?",
		l.d.Quote("partition")))
	var minO, maxO sql.NullInt64
	if err := l.db.QueryRowContext(ctx, q, l.pipeline, tp.Topic, tp.Partition, after).Scan(&minO, &maxO, &n); err != nil {
		return 0, 0, 0, fmt.Errorf("reading exactly_batches of %s: %w", tp, err)
	}
	return minO.Int64, maxO.Int64, n, nil
}

// Batches returns every exactly_batches row of one partition, ordered by
// from_offset, then started_at (the exactly_batches_range index).
func (l *Ledger) Batches(ctx context.Context, tp TP) ([]BatchRow, error) {
	return l.BatchesFrom(ctx, tp, 0, 1<<62)
}

// BatchesFrom returns the exactly_batches rows of one partition whose
// from_offset is in [lo, hi), ordered by from_offset, then started_at: a
// page of the partition's ledger, read with the exactly_batches_range
// index, so a long ledger is audited in bounded memory.
func (l *Ledger) BatchesFrom(ctx context.Context, tp TP, lo, hi int64) ([]BatchRow, error) {
	return l.BatchesFromAfter(ctx, tp, lo, hi, "")
}

// BatchesFromAfter is BatchesFrom of the rows whose batch_id sorts after
// after: the rows written since a reseed.
func (l *Ledger) BatchesFromAfter(ctx context.Context, tp TP, lo, hi int64, after string) ([]BatchRow, error) {
	cols, err := l.columns(ctx)
	if err != nil {
		return nil, err
	}
	q := Rebind(l.d, fmt.Sprintf("SELECT %s FROM exactly_batches WHERE pipeline = ? AND topic = ? AND %s = ? AND from_offset >= ? AND from_offset < ? AND batch_id > ? ORDER BY from_offset, started_at, batch_id",
		cols(""), l.d.Quote("partition")))
	return l.batches(ctx, "exactly_batches of "+tp.String(), q, l.pipeline, tp.Topic, tp.Partition, lo, hi, after)
}

// Reseeds returns the pipeline's reseeded rows (exactly reseed), oldest
// first (by batch id, which sorts by time).
func (l *Ledger) Reseeds(ctx context.Context) ([]BatchRow, error) {
	cols, err := l.columns(ctx)
	if err != nil {
		return nil, err
	}
	q := Rebind(l.d, fmt.Sprintf("SELECT %s FROM exactly_batches WHERE pipeline = ? AND status = ? ORDER BY batch_id", cols("")))
	return l.batches(ctx, "reseeded rows", q, l.pipeline, StatusReseeded)
}

// Partitions returns every partition that has an offsets row or a batch
// row, sorted.
func (l *Ledger) Partitions(ctx context.Context) ([]TP, error) {
	q := Rebind(l.d, fmt.Sprintf("SELECT DISTINCT topic, %s FROM exactly_batches WHERE pipeline = ?", l.d.Quote("partition")))
	rows, err := l.db.QueryContext(ctx, q, l.pipeline)
	if err != nil {
		return nil, fmt.Errorf("reading exactly_batches partitions: %w", err)
	}
	seen := map[TP]bool{}
	for rows.Next() {
		var tp TP
		if err := rows.Scan(&tp.Topic, &tp.Partition); err != nil {
			rows.Close()
			return nil, fmt.Errorf("reading exactly_batches partitions: %w", err)
		}
		seen[tp] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading exactly_batches partitions: %w", err)
	}
	offs, err := l.Offsets(ctx)
	if err != nil {
		return nil, err
	}
	for _, o := range offs {
		seen[o.TP] = true
	}
	out := make([]TP, 0, len(seen))
	for tp := range seen {
		out = append(out, tp)
	}
	SortTPs(out)
	return out, nil
}

// LastBatches returns the most recent batch row (by started_at) of every
// partition of the pipeline, in one query: ROW_NUMBER() over the
// exactly_batches_recent index, portable to every supported database.
func (l *Ledger) LastBatches(ctx context.Context) (map[TP]BatchRow, error) {
	cols, err := l.columns(ctx)
	if err != nil {
		return nil, err
	}
	p := l.d.Quote("partition")
	q := Rebind(l.d, fmt.Sprintf(`SELECT %s FROM (
		SELECT %s, ROW_NUMBER() OVER (PARTITION BY b.topic, b.%s ORDER BY b.started_at DESC, b.batch_id DESC) AS exactly_rn
		FROM exactly_batches b WHERE b.pipeline = ?) x WHERE x.exactly_rn = 1`, cols("x."), cols("b."), p))
	out := map[TP]BatchRow{}
	err = l.eachBatch(ctx, "the last batches", q, []any{l.pipeline}, func(b *BatchRow) { out[b.TP()] = *b })
	if err != nil {
		return nil, err
	}
	return out, nil
}

// SortTPs sorts partitions by topic, then partition.
func SortTPs(tps []TP) {
	sort.Slice(tps, func(i, j int) bool {
		if tps[i].Topic != tps[j].Topic {
			return tps[i].Topic < tps[j].Topic
		}
		return tps[i].Partition < tps[j].Partition
	})
}

// timeLayouts are the text forms timestamps come back in from databases
// that store them as text (SQLite).
var timeLayouts = []string{
	"2006-01-02 15:04:05.999999999-07:00",
	time.RFC3339Nano,
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999",
}

// asTime converts a scanned timestamp (time.Time, or its text) to UTC; an
// unreadable or NULL value is the zero time.
func asTime(v any) time.Time {
	var s string
	switch t := v.(type) {
	case time.Time:
		return t.UTC()
	case string:
		s = t
	case []byte:
		s = string(t)
	case int64: // unix seconds
		return time.Unix(t, 0).UTC()
	default:
		return time.Time{}
	}
	for _, layout := range timeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC()
		}
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(n, 0).UTC()
	}
	return time.Time{}
}

// Bounds are a partition's offsets as the broker reports them now.
type Bounds struct {
	Start  int64 // log start offset: everything below was deleted (retention, DeleteRecords)
	End    int64 // high watermark
	Stable int64 // last stable offset: what a read_committed consumer can reach
}

// Ping checks that the ledger's database answers.
func (l *Ledger) Ping(ctx context.Context) error { return l.db.PingContext(ctx) }

// limit keeps the first n rows of a SELECT: TOP for SQL Server, LIMIT
// elsewhere.
func (l *Ledger) limit(s string, n int) string {
	if l.d.Name() == "sqlserver" {
		return strings.Replace(s, "SELECT ", "SELECT TOP ("+strconv.Itoa(n)+") ", 1)
	}
	return s + " LIMIT " + strconv.Itoa(n)
}

// BatchTotals sums a partition's exactly_batches rows.
type BatchTotals struct {
	Committed, Failed, Replayed int64 // rows by status
	Pruned                      int64 // markers of exactly prune (their sums count in Records…)
	Records, Upserted, Deleted  int64 // of committed and replayed batches
	DeadLettered                int64
}

// Totals sums exactly_batches per partition.
func (l *Ledger) Totals(ctx context.Context) (map[TP]*BatchTotals, error) {
	p := l.d.Quote("partition")
	q := Rebind(l.d, fmt.Sprintf(`SELECT topic, %s, status, COUNT(*), SUM(records), SUM(upserted), SUM(deleted), SUM(dead_lettered)
		FROM exactly_batches WHERE pipeline = ? GROUP BY topic, %s, status`, p, p))
	rows, err := l.db.QueryContext(ctx, q, l.pipeline)
	if err != nil {
		return nil, fmt.Errorf("summing exactly_batches: %w", err)
	}
	defer rows.Close()
	out := map[TP]*BatchTotals{}
	for rows.Next() {
		var tp TP
		var status string
		var n, recs, ups, dels, dl int64
		if err := rows.Scan(&tp.Topic, &tp.Partition, &status, &n, &recs, &ups, &dels, &dl); err != nil {
			return nil, fmt.Errorf("summing exactly_batches: %w", err)
		}
		t := out[tp]
		if t == nil {
			t = &BatchTotals{}
			out[tp] = t
		}
		switch status {
		case StatusCommitted, StatusReplayed:
			if status == StatusCommitted {
				t.Committed += n
			} else {
				t.Replayed += n
			}
			t.Records += recs
			t.Upserted += ups
			t.Deleted += dels
			t.DeadLettered += dl
		case StatusFailed:
			t.Failed += n
		case StatusPruned: // the pruned committed rows, summed (capped at 2^31-1 each)
			t.Pruned += n
			t.Records += recs
			t.Upserted += ups
			t.Deleted += dels
			t.DeadLettered += dl
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("summing exactly_batches: %w", err)
	}
	return out, nil
}

// RecentBatches returns the newest n rows of exactly_batches, of every
// partition, newest first.
func (l *Ledger) RecentBatches(ctx context.Context, n int) ([]BatchRow, error) {
	cols, err := l.columns(ctx)
	if err != nil {
		return nil, err
	}
	q := Rebind(l.d, l.limit(fmt.Sprintf("SELECT %s FROM exactly_batches WHERE pipeline = ? ORDER BY started_at DESC, batch_id DESC", cols("")), n))
	return l.batches(ctx, "exactly_batches", q, l.pipeline)
}

// RecentDeadLetters returns the newest n dead letters of every partition
// (without headers and resolution) and how many there are in all.
func (l *Ledger) RecentDeadLetters(ctx context.Context, n int) ([]DeadLetterRow, int64, error) {
	var total int64
	q := Rebind(l.d, "SELECT COUNT(*) FROM exactly_dead_letters WHERE pipeline = ?")
	if err := l.db.QueryRowContext(ctx, q, l.pipeline).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("counting exactly_dead_letters: %w", err)
	}
	p, off := l.d.Quote("partition"), l.d.Quote("offset")
	q = Rebind(l.d, l.limit(fmt.Sprintf(`SELECT id, topic, %s, %s, batch_id, record_key, record_value, error, created_at
		FROM exactly_dead_letters WHERE pipeline = ? ORDER BY created_at DESC, topic, %s, %s DESC`, p, off, p, off), n))
	rows, err := l.db.QueryContext(ctx, q, l.pipeline)
	if err != nil {
		return nil, 0, fmt.Errorf("reading exactly_dead_letters: %w", err)
	}
	defer rows.Close()
	var out []DeadLetterRow
	for rows.Next() {
		var d DeadLetterRow
		var at any
		r := &d.Record
		if err := rows.Scan(&d.ID, &r.Topic, &r.Partition, &r.Offset, &d.BatchID, &r.Key, &r.Value, &d.Error, &at); err != nil {
			return nil, 0, fmt.Errorf("reading exactly_dead_letters: %w", err)
		}
		d.CreatedAt = asTime(at)
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("reading exactly_dead_letters: %w", err)
	}
	return out, total, nil
}
