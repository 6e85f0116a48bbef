package exactly

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/exactly/exactly/internal/secret"
)

// isolate applies items under a savepoint. When the database refuses them
// for their data (ErrData: a bad value, a constraint), it rolls back to the
// savepoint and bisects until each refused row stands alone; that row's
// record becomes a dead letter (or halts its partition: on_error: fail)
// and the other rows are applied, all in the batch's transaction, so
// exactly-once holds for both. Cost: O(bad rows · log rows) statements.
func (s *Sink) isolate(ctx context.Context, tx *Tx, w *write, items []*item, rc *refusals) error {
	err := s.underSavepoint(ctx, tx, func() error { return s.d.Apply(ctx, tx, w.sub(items)) })
	if err == nil || s.d.Classify(err) != ErrData {
		return err
	}
	if len(items) > 1 {
		mid := len(items) / 2
		if err := s.isolate(ctx, tx, w, items[:mid], rc); err != nil {
			return err
		}
		return s.isolate(ctx, tx, w, items[mid:], rc)
	}
	it := items[0]
	if it.merged {
		// The row holds fields of several records: which one the database
		// refuses is found by applying them one by one, from the first
		// after the delete the batch applied before (if any).
		it.count(-1)
		var chain []*item
		for p := it; p != nil && p != it.pre; p = p.prev {
			chain = append(chain, p)
		}
		for i := len(chain) - 1; i >= 0; i-- {
			one := &item{b: chain[i].b, c: chain[i].c, key: chain[i].key, row: rowOf(&chain[i].c.Change)}
			if one.c.Op != OpUpsert {
				one.row = rowImage{}
			}
			if chain[i] != it {
				one.b.Skipped--
			}
			one.count(+1)
			if err := s.isolate(ctx, tx, w.alone(one), []*item{one}, rc); err != nil {
				return err
			}
		}
		return nil
	}
	re := recordError(it.c.rec, fmt.Errorf("writing table %s: %w", w.Table.Name, err))
	if it.c.rule.OnError == "fail" {
		return &haltError{b: it.b, err: re}
	}
	rc.n++
	if rc.first == nil {
		rc.first = re
	}
	if cs, ok := s.d.(Constraints); ok {
		constraint, fk := cs.Constraint(err)
		if constraint || fk {
			rc.constraint++
		}
		rc.fk = rc.fk || fk
	}
	it.count(-1)
	it.b.DeadLetters = append(it.b.DeadLetters, DeadLetter{Record: it.c.rec, Err: re})
	if it.skips && w.all != nil && !it.alone && it.c.Op == OpUpsert {
		// Under a version guard the batch skipped the key's changes older
		// than this one, which would have won; refused, it sets nothing,
		// and one by one they may apply: {ver:15, bad} then {ver:10} left
		// the row as it was, one a batch {ver:10}.
		return s.afterRefused(ctx, tx, w, it, rc)
	}
	if p := it.prev; p != nil && p != it.pre {
		// What the key held before the refused change is what applying
		// the records one by one would have left (a delete the batch
		// applied first is done already).
		p.b.Skipped--
		p.count(+1)
		return s.isolate(ctx, tx, w.alone(p), []*item{p}, rc)
	}
	return nil
}

// afterRefused applies, after the refused upsert it of a guarded write,
// the other changes of its key since the delete applied before it (if
// any), each alone, in order, each guarded: what one by one leaves. The
// batch wrote none of them (the key's last change is it).
func (s *Sink) afterRefused(ctx context.Context, tx *Tx, w *write, it *item, rc *refusals) error {
	since := it.pre == nil
	for _, p := range w.all {
		if p == it.pre {
			since = true
			continue
		}
		if !since || p == it || p.slot != it.slot {
			continue
		}
		one := &item{b: p.b, c: p.c, key: p.key, slot: p.slot, alone: true}
		if p.c.Op == OpUpsert {
			one.row = rowOf(&p.c.Change)
		}
		p.b.Skipped--
		one.count(+1)
		if err := s.isolate(ctx, tx, w.alone(one), []*item{one}, rc); err != nil {
			return err
		}
	}
	return nil
}

// refusals counts the rows the database refused in one table write.
type refusals struct {
	n          int
	constraint int  // refused by a NOT NULL, CHECK or foreign key
	fk         bool // one was refused by a foreign key
	first      *RecordError
}

// holdRefused decides whether the rows the database refused in a table
// write become dead letters now, or fail the flight to be retried: when
// more than sink.refused_share of the write's rows were refused by a NOT
// NULL or CHECK constraint (see Constraints; a circuit
// breaker: a NOT NULL or CHECK an operator added refuses every row, and
// dead-lettering them all while next_offset moves on would lose the
// stream into the dead letters), or when one was refused by a foreign key
// (a child before its parent, which another topic may still bring). The
// flight is failed and retried for sink.refused_wait from the first such
// flight of the table; after that the refused rows are dead letters, until
// a flight writes the table without tripping the hold.
func (s *Sink) holdRefused(w *write, rc *refusals, batches []*PartitionBatch) error {
	rows := len(w.upserts) + len(w.deletes)
	table := w.Table.Name
	// At least two: one bad row alone in its flight is the row's fault
	// far more often than the table's, and must not hold the partition.
	trip := rc.fk || (rc.constraint >= 2 && float64(rc.constraint) > s.cfg.Sink.RefusedShare*float64(rows))
	s.mu.Lock()
	defer s.mu.Unlock()
	since, held := s.refusedSince[table]
	if !trip {
		delete(s.refusedSince, table)
		return nil
	}
	now := time.Now()
	if !held {
		since = now
		s.refusedSince[table] = now
	}
	wait := s.cfg.Sink.RefusedWait.D()
	if now.Sub(since) >= wait {
		if wait > 0 {
			s.log.Warn("the database kept refusing rows; they are dead letters now", "table", table,
				"refused", rc.n, "rows", rows, "held_for", now.Sub(since).Round(time.Second), "first", rc.first)
		}
		return nil
	}
	return &RefusedError{Table: table, Refused: rc.n, Rows: rows, ForeignKey: rc.fk, First: rc.first, Until: since.Add(wait)}
}

// underSavepoint runs fn inside a savepoint, rolling back to it when fn
// fails. Savepoints are never nested: each is released before the next.
func (s *Sink) underSavepoint(ctx context.Context, tx *Tx, fn func() error) error {
	set, rollback, release := s.d.Savepoint("exactly_isolate")
	if _, err := tx.ExecContext(ctx, set); err != nil {
		return fmt.Errorf("setting savepoint: %w", err)
	}
	ferr := fn()
	if ferr != nil {
		if _, err := tx.ExecContext(ctx, rollback); err != nil {
			return fmt.Errorf("rolling back to savepoint after %v: %w", ferr, err)
		}
	}
	if release != "" {
		if _, err := tx.ExecContext(ctx, release); err != nil {
			return fmt.Errorf("releasing savepoint: %w", err)
		}
	}
	return ferr
}

// writeFlight writes a flight in its transaction: the fences first, then
// the tables, dead letters and ledger rows. It returns the partitions a
// fence found moved on (the transaction must roll back).
func (s *Sink) writeFlight(ctx context.Context, tx *Tx, batches []*PartitionBatch, writes []*write, isolate bool) (map[TP]*FencedError, error) {
	Failpoint("before_write")
	// The fence first: it locks the offset rows in a fixed order, so a
	// zombie holding a stale From blocks here, then finds 0 rows and rolls
	// back instead of applying its batch a second time.
	now := time.Now().UTC()
	fences := s.fenceStatements(batches, now)
	if pl, ok := s.d.(Pipeliner); ok && !isolate {
		// One round trip: fences, writes, dead letters and ledger rows.
		// A fenced partition's writes run too, and are rolled back with
		// the transaction before anything commits.
		stmts := fences
		for _, w := range writes {
			st, err := pl.Statements(ctx, tx, w.TableWrite)
			if err != nil {
				err = fmt.Errorf("staging table %s: %w", w.Table.Name, err)
				if s.d.Classify(err) == ErrData {
					return nil, &refusedError{err}
				}
				return nil, err
			}
			stmts = append(stmts, st...)
		}
		var multi MultiRowInserts
		if mr, ok := s.d.(MultiRowInserts); ok {
			multi = mr
		}
		stmts = append(stmts, s.insertStatements("exactly_dead_letters", deadLetterColumns, s.deadLetterRows(batches), multi)...)
		stmts = append(stmts, s.insertStatements("exactly_batches", ledgerColumns, s.ledgerRows(batches, "committed", "", now), multi)...)
		n, err := pl.ExecPipeline(ctx, tx, stmts)
		if err != nil {
			var se *StatementError
			if lt, ok := s.d.(LockTimeouts); ok && lt.LockTimedOut(err) && errors.As(err, &se) && se.Index >= 0 && se.Index < len(batches) {
				// The fence of this partition waited too long for its
				// offsets row: dropped alone, as sent statement by statement.
				b := batches[se.Index]
				return nil, &LockTimeoutError{Topic: b.Topic, Partition: b.Partition, From: b.From, Err: err}
			}
			err = fmt.Errorf("writing batch transaction: %w", err)
			if s.d.Classify(err) == ErrData {
				return nil, &refusedError{err}
			}
			return nil, err
		}
		if fenced := s.fenced(ctx, tx, batches, n[:len(batches)]); fenced != nil {
			return fenced, nil
		}
	} else {
		n := make([]int64, len(fences))
		for i, st := range fences {
			res, err := tx.ExecContext(ctx, st.SQL, st.Args...)
			if err == nil {
				n[i], err = res.RowsAffected()
			}
			if err != nil {
				b := batches[i]
				if lt, ok := s.d.(LockTimeouts); ok && lt.LockTimedOut(err) {
					return nil, &LockTimeoutError{Topic: b.Topic, Partition: b.Partition, From: b.From, Err: err}
				}
				return nil, fmt.Errorf("advancing offset of %s[%d] from %d to %d: %w", b.Topic, b.Partition, b.From, b.To, err)
			}
		}
		if fenced := s.fenced(ctx, tx, batches, n); fenced != nil {
			return fenced, nil
		}
		for _, w := range writes {
			if isolate {
				var rc refusals
				if err := s.isolate(ctx, tx, w, w.items(), &rc); err != nil {
					return nil, err
				}
				if err := s.holdRefused(w, &rc, batches); err != nil {
					return nil, err
				}
				continue
			}
			if err := s.d.Apply(ctx, tx, w.TableWrite); err != nil {
				err = fmt.Errorf("writing table %s: %w", w.Table.Name, err)
				if s.d.Classify(err) == ErrData {
					return nil, &refusedError{err}
				}
				return nil, err
			}
		}
		if err := s.execAll(ctx, tx, s.deadLetterStatements(batches)); err != nil {
			return nil, fmt.Errorf("writing dead letters: %w", err)
		}
		if err := s.execAll(ctx, tx, s.ledgerStatements(batches, "committed", "", now)); err != nil {
			return nil, fmt.Errorf("writing ledger rows: %w", err)
		}
	}
	return nil, nil
}

func (s *Sink) execAll(ctx context.Context, q Querier, stmts []Statement) error {
	for _, st := range stmts {
		if _, err := q.ExecContext(ctx, st.SQL, st.Args...); err != nil {
			return err
		}
	}
	return nil
}

// alone returns a write of the same table shaped for one item: the key
// and the columns its row carries (isolating a refused row falls back to
// a change of another shape).
func (w *write) alone(it *item) *write {
	tw := &TableWrite{Table: w.Table, Append: w.Append, Keys: w.Keys, Version: w.Version, Part: w.Part}
	if it.c.Op == OpUpsert {
		row := it.row
		if row.isNil() {
			row = rowOf(&it.c.Change)
		}
		for _, c := range w.Table.Columns {
			if row.has(c.Name) || slices.Contains(w.Keys, c.Name) {
				tw.Columns = append(tw.Columns, c.Name)
			}
		}
		return &write{TableWrite: tw, upserts: []*item{it}}
	}
	tw.Columns = w.Keys
	return &write{TableWrite: tw, deletes: []*item{it}}
}

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

// Failpoints let crash and chaos tests stop the process at an exact point
// of the batch protocol. EXACTLY_FAILPOINT=name[:n][:action] acts the n-th
// time (default 1st) the named point is reached. Actions: kill (default)
// sends SIGKILL to this process; stop sends SIGSTOP to it, so a test can
// hold it paused mid-batch past its group session (a zombie) and resume it
// with SIGCONT. Points: before_write (transaction open, nothing written),
// before_commit (all written, COMMIT not sent), after_commit (committed,
// Kafka not told), before_kafka_commit. Unset, a failpoint costs one
// comparison.
var failpoint = parseFailpoint(os.Getenv("EXACTLY_FAILPOINT"))

type failpointSpec struct {
	name   string
	left   int
	signal syscall.Signal
}

func parseFailpoint(v string) failpointSpec {
	parts := strings.Split(v, ":")
	fp := failpointSpec{name: parts[0], left: 1, signal: syscall.SIGKILL}
	for _, p := range parts[1:] {
		if k, err := strconv.Atoi(p); err == nil && k > 0 {
			fp.left = k
		} else if p == "stop" {
			fp.signal = syscall.SIGSTOP
		}
	}
	return fp
}

var failpointMu sync.Mutex

// Failpoint kills (or stops) the process if EXACTLY_FAILPOINT names this
// point and its count is reached.
func Failpoint(name string) {
	if failpoint.name != name {
		return
	}
	failpointMu.Lock()
	defer failpointMu.Unlock()
	failpoint.left--
	if failpoint.left != 0 {
		return
	}
	_ = syscall.Kill(os.Getpid(), failpoint.signal)
	if failpoint.signal == syscall.SIGKILL {
		select {} // the signal is on its way
	}
	// The stop takes effect asynchronously: wait here, or this goroutine
	// would run on past the point (e.g. send its COMMIT) before it lands.
	time.Sleep(200 * time.Millisecond)
}
