package exactly

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	mathrand "math/rand/v2"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/exactly/exactly/internal/secret"
)

// Sink is the database side of a pipeline. Commit is the one place where a
// batch's rows, its ledger row and its offset advance are written together.
type Sink struct {
	cfg    *Config
	d      Dialect
	db     *sql.DB
	log    *slog.Logger
	writer string
	decode func(*TableRule) (Decoder, error)
	mu     sync.Mutex
	tables map[string]*Table
	decs   map[*TableRule]Decoder
	// refusedSince holds, per table, when a flight writing it was first
	// held for its refused rows (see holdRefused).
	refusedSince map[string]time.Time
	// nullBytes is the NULL written to a binary column (see NullBytes).
	nullBytes any
}

// NewSink opens the sink database and creates the ledger tables.
// newDecoder builds the decoder of a table rule.
func NewSink(ctx context.Context, cfg *Config, d Dialect, newDecoder func(*TableRule) (Decoder, error), log *slog.Logger) (*Sink, error) {
	s, err := OpenSink(ctx, cfg, d, newDecoder, log)
	if err != nil {
		return nil, err
	}
	if err := s.EnsureLedger(ctx); err != nil {
		s.db.Close()
		return nil, err
	}
	return s, nil
}

// OpenSink opens the sink database without creating or changing
// anything in it, for commands that only look (exactly plan, exactly
// adopt without --apply). Commit needs the ledger: use NewSink to write.
func OpenSink(ctx context.Context, cfg *Config, d Dialect, newDecoder func(*TableRule) (Decoder, error), log *slog.Logger) (*Sink, error) {
	db, err := d.Open(ctx, cfg.Sink)
	if err != nil {
		return nil, fmt.Errorf("opening %s sink: %w", d.Name(), err)
	}
	db.SetMaxOpenConns(cfg.Sink.MaxConns + 1)
	// Keep them all: database/sql keeps 2 idle by default, so with more
	// flights in flight each one that ended closed its connection and
	// the next opened a new one (a new server process, its staging
	// tables and prepared statements made again).
	db.SetMaxIdleConns(cfg.Sink.MaxConns + 1)
	host, _ := os.Hostname()
	s := &Sink{cfg: cfg, d: d, db: db, log: log, decode: newDecoder,
		writer: fmt.Sprintf("%s:%d", host, os.Getpid()),
		tables: map[string]*Table{}, decs: map[*TableRule]Decoder{}, refusedSince: map[string]time.Time{}}
	if nb, ok := d.(NullBytes); ok {
		s.nullBytes = nb.NullBytes()
	}
	for _, rule := range cfg.Tables {
		rule := rule
		if _, err := newDecoder(&rule); err != nil {
			db.Close()
			return nil, &ConfigError{File: cfg.File, Field: "tables: " + rule.Topics, Expected: err.Error()}
		}
	}
	return s, nil
}

// HasLedger reports whether the ledger tables exist in the sink.
func (s *Sink) HasLedger(ctx context.Context) (bool, error) {
	t, err := s.d.Describe(ctx, s.db, "exactly_offsets")
	if err != nil {
		return false, fmt.Errorf("describing exactly_offsets: %w", err)
	}
	return t != nil, nil
}

// DB returns the sink's pool, for read-only audit commands and tests.
func (s *Sink) DB() *sql.DB { return s.db }

// Dialect returns the sink's dialect.
func (s *Sink) Dialect() Dialect { return s.d }

// Writer names this process in ledger rows.
func (s *Sink) Writer() string { return s.writer }

// SetWriter replaces the writer name (e.g. to add the group member).
func (s *Sink) SetWriter(w string) { s.writer = w }

// Close closes the pool.
func (s *Sink) Close() error { return s.db.Close() }

// EnsureLedger creates the ledger tables if they are missing, and adds
// the columns later versions introduced to ledgers made by earlier ones
// (exactly_batches.notes), so an existing ledger keeps working.
//
// Instances starting together on an empty database all succeed: the
// statements are idempotent, and one that loses a race with another
// instance's (PostgreSQL: two CREATE TABLE IF NOT EXISTS at once, and the
// second fails with duplicate key value violates unique constraint
// "pg_type_typname_nsp_index") is run again once the winner committed.
func (s *Sink) EnsureLedger(ctx context.Context) error {
	for _, stmt := range s.d.LedgerDDL() {
		if err := s.execDDL(ctx, stmt); err != nil {
			return fmt.Errorf("creating ledger tables: %w (statement: %s)", err, stmt)
		}
	}
	for _, c := range ledgerMigrations {
		t, err := s.d.Describe(ctx, s.db, c.table)
		if err != nil || t == nil {
			return fmt.Errorf("describing ledger table %s: %v", c.table, err)
		}
		if t.Column(c.col.Name) != nil {
			continue
		}
		stmt := s.d.AddColumn(c.table, c.col)
		if _, err := s.db.ExecContext(ctx, stmt); err != nil {
			// Another instance may have added it first.
			if t, derr := s.d.Describe(ctx, s.db, c.table); derr != nil || t == nil || t.Column(c.col.Name) == nil {
				return fmt.Errorf("adding column %s to ledger table %s: %w (statement: %s)", c.col.Name, c.table, err, stmt)
			}
		}
	}
	return nil
}

// execDDL runs one idempotent DDL statement, again after a short random
// pause when it fails, up to ddlAttempts times: a concurrent creator of
// the same object makes it fail once, and the next try finds the object.
func (s *Sink) execDDL(ctx context.Context, stmt string) error {
	var err error
	for attempt := 1; ; attempt++ {
		if _, err = s.db.ExecContext(ctx, stmt); err == nil {
			return nil
		}
		if attempt == ddlAttempts || ctx.Err() != nil {
			return err
		}
		s.log.Debug("DDL failed, perhaps racing another instance; trying again", "statement", stmt, "err", err, "attempt", attempt)
		pause := time.Duration(50+mathrand.IntN(200*attempt)) * time.Millisecond
		select {
		case <-ctx.Done():
			return err
		case <-time.After(pause):
		}
	}
}

// ddlAttempts bounds execDDL: enough for a crowd of instances starting at
// once, few enough that a real error (no privilege) is reported in seconds.
const ddlAttempts = 8

// ledgerMigrations are ledger columns added after the first release,
// always nullable, added in place by EnsureLedger.
var ledgerMigrations = []struct {
	table string
	col   ColumnDef
}{
	// notes: what create/evolve did to tables before the batch.
	{"exactly_batches", ColumnDef{Name: "notes", Type: Type{Kind: KindText}, Nullable: true}},
	// resolved_*: who redrove a dead letter, when, in which batch (NULL
	// while it is open).
	{"exactly_dead_letters", ColumnDef{Name: "resolved_at", Type: Type{Kind: KindTimestampTZ, Precision: 6}, Nullable: true}},
	{"exactly_dead_letters", ColumnDef{Name: "resolved_by", Type: Type{Kind: KindText}, Nullable: true}},
	{"exactly_dead_letters", ColumnDef{Name: "resolved_batch", Type: Type{Kind: KindText}, Nullable: true}},
	// leader_epoch: of the last record applied below next_offset (KIP-320:
	// a restart seeks with it and sees a log truncated meanwhile).
	{"exactly_offsets", ColumnDef{Name: "leader_epoch", Type: Type{Kind: KindInt32}, Nullable: true}},
	// topic_id: the topic's id when the row was seeded (a recreated topic
	// has another).
	{"exactly_offsets", ColumnDef{Name: "topic_id", Type: Type{Kind: KindText}, Nullable: true}},
}

func (s *Sink) decoder(rule *TableRule) Decoder {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.decs[rule]
	if d == nil {
		d, _ = s.decode(rule) // validated in NewSink
		s.decs[rule] = d
	}
	return d
}

// TP names a topic partition.
type TP struct {
	Topic     string
	Partition int32
}

func (tp TP) String() string { return fmt.Sprintf("%s[%d]", tp.Topic, tp.Partition) }

// LoadOffsets returns the stored next_offset of each partition that has a
// row. Partitions without a row are absent from the map.
func (s *Sink) LoadOffsets(ctx context.Context, tps []TP) (map[TP]int64, error) {
	q := s.rebind(fmt.Sprintf("SELECT %s FROM exactly_offsets WHERE %s = ? AND %s = ? AND %s = ?",
		s.d.Quote("next_offset"), s.d.Quote("pipeline"), s.d.Quote("topic"), s.d.Quote("partition")))
	out := make(map[TP]int64, len(tps))
	for _, tp := range tps {
		var next int64
		err := s.db.QueryRowContext(ctx, q, s.cfg.Pipeline, tp.Topic, tp.Partition).Scan(&next)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading exactly_offsets for %s: %w", tp, err)
		}
		out[tp] = next
	}
	return out, nil
}

// Position is a partition's exactly_offsets row as the source reads it.
type Position struct {
	Next    int64
	Epoch   int32  // leader epoch of the last record applied; -1 unknown
	TopicID string // the topic's id when the row was seeded; "" unknown
}

// LoadPositions returns the stored position of each partition that has a
// row. Partitions without a row are absent from the map.
func (s *Sink) LoadPositions(ctx context.Context, tps []TP) (map[TP]Position, error) {
	q := s.rebind(fmt.Sprintf("SELECT %s, %s, %s FROM exactly_offsets WHERE %s = ? AND %s = ? AND %s = ?",
		s.d.Quote("next_offset"), s.d.Quote("leader_epoch"), s.d.Quote("topic_id"), s.d.Quote("pipeline"), s.d.Quote("topic"), s.d.Quote("partition")))
	out := make(map[TP]Position, len(tps))
	for _, tp := range tps {
		var p Position
		var epoch sql.NullInt64
		var id sql.NullString
		err := s.db.QueryRowContext(ctx, q, s.cfg.Pipeline, tp.Topic, tp.Partition).Scan(&p.Next, &epoch, &id)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading exactly_offsets for %s: %w", tp, err)
		}
		p.Epoch, p.TopicID = -1, id.String
		if epoch.Valid {
			p.Epoch = int32(epoch.Int64)
		}
		out[tp] = p
	}
	return out, nil
}

// RecordTopicID stores the topic's id in the partition's offsets row when
// it has none (seeded by a version without topic ids, or just seeded).
func (s *Sink) RecordTopicID(ctx context.Context, tp TP, id string) error {
	q := s.rebind(fmt.Sprintf("UPDATE exactly_offsets SET %s = ? WHERE %s = ? AND %s = ? AND %s = ? AND %s IS NULL",
		s.d.Quote("topic_id"), s.d.Quote("pipeline"), s.d.Quote("topic"), s.d.Quote("partition"), s.d.Quote("topic_id")))
	if _, err := s.db.ExecContext(ctx, q, id, s.cfg.Pipeline, tp.Topic, tp.Partition); err != nil {
		return fmt.Errorf("recording the topic id of %s: %w", tp, err)
	}
	return nil
}

// SeedOffset creates the partition's offsets row at next unless a row
// exists, and returns the stored next_offset (another instance may have
// seeded it first).
func (s *Sink) SeedOffset(ctx context.Context, tp TP, next int64) (int64, error) {
	q := s.rebind(s.d.InsertIfAbsent("exactly_offsets", []string{"pipeline", "topic", "partition", "next_offset", "writer", "updated_at"}))
	if _, err := s.db.ExecContext(ctx, q, s.cfg.Pipeline, tp.Topic, tp.Partition, next, s.writer, time.Now().UTC()); err != nil {
		return 0, fmt.Errorf("seeding exactly_offsets for %s at %d: %w", tp, next, err)
	}
	got, err := s.LoadOffsets(ctx, []TP{tp})
	if err != nil {
		return 0, err
	}
	stored, ok := got[tp]
	if !ok {
		return 0, fmt.Errorf("seeding exactly_offsets for %s: row missing after insert", tp)
	}
	return stored, nil
}

// Outcome is what happened to one partition batch in Commit.
type Outcome struct {
	Batch *PartitionBatch
	// Committed is true when the batch's rows, ledger row and offset
	// advance are durable.
	Committed bool
	// Err says why not: a *FencedError, a halt (*RecordError), or the
	// transaction's error.
	Err error
	// RoundTrips are the round trips to the database the Commit call's
	// batch transactions took, every attempt counted (the same for every
	// outcome of the call), when the driver counts them
	// (RoundTripCounter); 0 otherwise.
	RoundTrips int64
}

// Commit applies the batches in one transaction: per partition the fence
// (the offset row must still say From), then every table's rows, the dead
// letters, the ledger rows and the offset advance to To. A fenced
// partition is dropped and the rest retried, so one stale partition does
// not cost the others their cycle. A transaction that fails is recorded as
// failed in the ledger and its batches reported as not committed; the
// caller re-reads them from the stored offsets.
//
// ctx bounds the whole call; a transaction in flight when ctx ends is
// rolled back by the database, and its outcome is read back from the
// ledger before Commit returns.
func (s *Sink) Commit(ctx context.Context, batches []*PartitionBatch) (out []Outcome) {
	var trips int64
	counted := false
	defer func() {
		if !counted {
			return
		}
		for i := range out {
			out[i].RoundTrips = trips
		}
		s.log.Debug("flight round trips", "round_trips", trips, "partitions", len(batches))
	}()
	sort.Slice(batches, func(i, j int) bool {
		if batches[i].Topic != batches[j].Topic {
			return batches[i].Topic < batches[j].Topic
		}
		return batches[i].Partition < batches[j].Partition
	})
	live := make([]*PartitionBatch, 0, len(batches))
	for _, b := range batches {
		b.BatchID = s.newBatchID()
		if err := s.prepare(ctx, b); err != nil {
			s.recordFailed([]*PartitionBatch{b}, err)
			out = append(out, Outcome{Batch: b, Err: err})
			continue
		}
		if len(b.Records) == 0 {
			// Nothing before the halting record: nothing to commit.
			out = append(out, Outcome{Batch: b, Err: b.Halt})
			continue
		}
		live = append(live, b)
	}
	if err := s.ensureTables(ctx, live); err != nil {
		s.log.Error("preparing tables (create/evolve)", "batches", Ranges(live), "err", err)
		s.recordFailed(live, err)
		s.forgetTables(live)
		for _, b := range live {
			out = append(out, Outcome{Batch: b, Err: err})
		}
		return out
	}
	keep := live[:0]
	for _, b := range live {
		b.decodeDead = len(b.DeadLetters) // with ensureTables' type conflicts
		if len(b.Records) == 0 {
			// A type conflict under on_error: fail at the first record:
			// nothing before it to commit.
			out = append(out, Outcome{Batch: b, Err: b.Halt})
			continue
		}
		keep = append(keep, b)
	}
	live = keep
	isolate := false
	for attempt := 0; len(live) > 0; attempt++ {
		fenced, n, err := s.commitOnce(ctx, live, isolate)
		if n >= 0 {
			trips += n
			counted = true
		}
		if err == nil {
			for _, b := range live {
				var e error
				if b.Halt != nil {
					e = b.Halt
				}
				out = append(out, Outcome{Batch: b, Committed: true, Err: e})
				s.logDeadLetters(b)
			}
			return out
		}
		if len(fenced) > 0 {
			keep := live[:0]
			for _, b := range live {
				if fe, ok := fenced[TP{b.Topic, b.Partition}]; ok {
					// The audit trail shows the stale attempt and who won.
					s.recordFailed([]*PartitionBatch{b}, fe)
					out = append(out, Outcome{Batch: b, Err: fe})
				} else {
					keep = append(keep, b)
				}
			}
			live = keep
			continue
		}
		var locked *LockTimeoutError
		if errors.As(err, &locked) {
			// Another transaction holds the partition's offsets row past
			// the lock wait: a paused zombie, most likely. Drop the
			// partition as a fenced one is dropped, so it does not hold
			// the rest of the flight hostage; it is read again and retried.
			keep := live[:0]
			for _, b := range live {
				if b.Topic == locked.Topic && b.Partition == locked.Partition {
					s.log.Warn("offsets row locked by another transaction; dropping the partition from this flight",
						"topic", b.Topic, "partition", b.Partition, "from", b.From, "err", locked.Err)
					s.recordFailed([]*PartitionBatch{b}, locked)
					out = append(out, Outcome{Batch: b, Err: locked})
				} else {
					keep = append(keep, b)
				}
			}
			live = keep
			attempt--
			continue
		}
		var refused *refusedError
		if !isolate && errors.As(err, &refused) {
			// A row the database refuses for its data: redo the whole
			// transaction with each table write under a savepoint, so the
			// row is found and dead-lettered and the rest still applies.
			s.log.Debug("the database refused a row; isolating it", "err", err)
			isolate = true
			attempt--
			continue
		}
		var he *haltError
		if errors.As(err, &he) {
			// on_error: fail for a row the database refused: the batch ends
			// before that record and the partition halts there.
			b := he.b
			keep := b.Records[:0]
			for _, r := range b.Records {
				if r.Offset < he.err.Offset {
					keep = append(keep, r)
				}
			}
			b.Records = keep
			perr := s.prepare(ctx, b)
			if perr == nil {
				perr = s.ensureTables(ctx, []*PartitionBatch{b})
				b.decodeDead = len(b.DeadLetters)
			}
			if b.Halt == nil || b.Halt.Offset >= he.err.Offset {
				b.Halt = he.err
			}
			if perr != nil || len(b.Records) == 0 {
				if perr == nil {
					perr = b.Halt
				}
				out = append(out, Outcome{Batch: b, Err: perr})
				next := live[:0]
				for _, x := range live {
					if x != b {
						next = append(next, x)
					}
				}
				live = next
			}
			attempt--
			continue
		}
		if s.d.Classify(err) == ErrConflict && attempt < 5 && ctx.Err() == nil {
			s.log.Debug("retrying batch transaction after a conflict", "err", err, "attempt", attempt+1)
			continue
		}
		s.recordFailed(live, err)
		s.forgetTables(live)
		for _, b := range live {
			out = append(out, Outcome{Batch: b, Err: err})
		}
		return out
	}
	return out
}

// forgetTables drops the cached descriptions of the tables the batches
// write, after a failure that was neither a fence nor a conflict: an
// operator may have renamed or dropped a column, and the next try must
// see the table as it is now (the cache lived as long as the process,
// and every flight touching the table failed until a restart).
func (s *Sink) forgetTables(batches []*PartitionBatch) {
	for _, b := range batches {
		for i := range b.changes {
			s.Forget(b.changes[i].table)
		}
	}
}

// refusedError is a table write the database refused with ErrData, in a
// transaction that did not isolate rows.
type refusedError struct{ err error }

func (e *refusedError) Error() string { return e.err.Error() }
func (e *refusedError) Unwrap() error { return e.err }

// haltError is a row the database refused whose rule says on_error: fail.
type haltError struct {
	b   *PartitionBatch
	err *RecordError
}

func (e *haltError) Error() string { return e.err.Error() }
func (e *haltError) Unwrap() error { return e.err }

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
			one := &item{b: chain[i].b, c: chain[i].c, key: chain[i].key, row: chain[i].c.Row}
			if one.c.Op != OpUpsert {
				one.row = nil
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

// commitOnce runs one transaction. It returns the fenced partitions (the
// transaction then rolled back) or an error; nil, nil means committed.
//
// With isolate, every table write runs under a savepoint and rows the
// database refuses are isolated (see isolate); without it, such a refusal
// returns a *refusedError and the caller retries with isolate.
//
// trips are the round trips the transaction took, from BEGIN to COMMIT or
// ROLLBACK, when the driver counts them (RoundTripCounter), else -1.
func (s *Sink) commitOnce(ctx context.Context, batches []*PartitionBatch, isolate bool) (_ map[TP]*FencedError, trips int64, _ error) {
	trips = -1
	tables, err := s.describeAll(ctx, batches)
	if err != nil {
		return nil, trips, err
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, trips, fmt.Errorf("connecting to the sink: %w", err)
	}
	defer conn.Close()
	fenced, err := s.commitOn(ctx, conn, batches, tables, isolate, &trips)
	return fenced, trips, err
}

// roundTrips reads the driver connection's round-trip counter, or -1.
func roundTrips(conn *sql.Conn) int64 {
	n := int64(-1)
	_ = conn.Raw(func(dc any) error {
		if c, ok := dc.(RoundTripCounter); ok {
			n = c.RoundTrips()
		}
		return nil
	})
	return n
}

func (s *Sink) commitOn(ctx context.Context, conn *sql.Conn, batches []*PartitionBatch, tables map[string]*Table, isolate bool, trips *int64) (map[TP]*FencedError, error) {
	// Planned on the transaction's connection, before it begins: a
	// question about key equality (KeyEquality.SameKeys) may need a
	// session-local table, and must not abort the transaction.
	writes, err := s.plan(ctx, conn, batches, tables)
	if err != nil {
		return nil, err
	}
	start := roundTrips(conn)
	if start >= 0 {
		defer func() {
			if end := roundTrips(conn); end >= start {
				*trips = end - start
			}
		}()
	}
	var fenced map[TP]*FencedError
	err = s.inTx(ctx, conn, witness{"batch", batches[0].BatchID, StatusCommitted, batches}, func(tx *Tx) error {
		var werr error
		fenced, werr = s.writeFlight(ctx, tx, batches, writes, isolate)
		if werr != nil {
			return werr
		}
		if fenced != nil {
			return errors.New("fenced")
		}
		Failpoint("before_commit")
		return nil
	})
	if err != nil {
		return fenced, err
	}
	Failpoint("after_commit")
	return nil, nil
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

func (s *Sink) describeAll(ctx context.Context, batches []*PartitionBatch) (map[string]*Table, error) {
	out := map[string]*Table{}
	for _, b := range batches {
		for _, c := range b.changes {
			if out[c.table] != nil || c.Op == OpSkip {
				continue
			}
			t, err := s.Table(ctx, c.table)
			if err != nil {
				return nil, err
			}
			out[c.table] = t
		}
	}
	return out, nil
}

// Table describes a target table, caching the answer.
func (s *Sink) Table(ctx context.Context, name string) (*Table, error) {
	s.mu.Lock()
	t := s.tables[name]
	s.mu.Unlock()
	if t != nil {
		return t, nil
	}
	t, err := s.d.Describe(ctx, s.db, name)
	if err != nil {
		return nil, fmt.Errorf("describing table %s: %w", name, err)
	}
	if t == nil {
		return nil, fmt.Errorf("table %s does not exist in the %s sink: create it, or set create: true on its table rule", name, s.d.Name())
	}
	s.mu.Lock()
	s.tables[name] = t
	s.mu.Unlock()
	return t, nil
}

// Forget drops a cached table description (after DDL changed it).
func (s *Sink) Forget(name string) {
	s.mu.Lock()
	delete(s.tables, name)
	s.mu.Unlock()
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

func (s *Sink) execAll(ctx context.Context, q Querier, stmts []Statement) error {
	for _, st := range stmts {
		if _, err := q.ExecContext(ctx, st.SQL, st.Args...); err != nil {
			return err
		}
	}
	return nil
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
// (tests, tools) used to mint the same id in the same millisecond.
func (s *Sink) newBatchID() string {
	return fmt.Sprintf("%013x-%s-%06d", time.Now().UnixMilli(), idPrefix, batchNo.Add(1)%1000000)
}

// Ranges names batches by their coordinates for logs:
// "orders[0]@100..250 orders[1]@7..9" (from inclusive, to exclusive).
func Ranges(batches []*PartitionBatch) string {
	var sb strings.Builder
	for i, b := range batches {
		if i > 0 {
			sb.WriteByte(' ')
		}
		if i == 20 {
			fmt.Fprintf(&sb, "… %d more", len(batches)-i)
			break
		}
		fmt.Fprintf(&sb, "%s[%d]@%d..%d", b.Topic, b.Partition, b.From, b.To)
	}
	return sb.String()
}

var batchNo atomic.Uint64
