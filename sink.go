package exactly

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	mathrand "math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
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
	tables map[string]*Table // the one cache of table descriptions (see describe)
	// forgets counts Forget calls, and forgotAt holds, per table, the
	// count at its last Forget: a description read before then is not
	// cached (see remember). Guarded by mu.
	forgets  uint64
	forgotAt map[string]uint64
	// describedAt holds when each cached description was read (see
	// forgetStale). Guarded by mu.
	describedAt map[string]time.Time
	decs        map[*TableRule]Decoder
	// refusedSince holds, per table, when a flight writing it was first
	// held for its refused rows (see holdRefused).
	refusedSince map[string]time.Time
	// nullBytes is the NULL written to a binary column (see NullBytes).
	nullBytes any
	// writeSlot, for a SingleWriter dialect, is held by the write
	// transaction in progress (see inTx); nil otherwise.
	writeSlot chan struct{}
	// positionCols is how LoadPositions selects leader_epoch and topic_id
	// (see positionColumns); "" until known. Guarded by mu.
	positionCols string
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
		tables: map[string]*Table{}, forgotAt: map[string]uint64{}, describedAt: map[string]time.Time{},
		decs: map[*TableRule]Decoder{}, refusedSince: map[string]time.Time{}}
	if nb, ok := d.(NullBytes); ok {
		s.nullBytes = nb.NullBytes()
	}
	if sw, ok := d.(SingleWriter); ok && sw.SingleWriter() {
		s.writeSlot = make(chan struct{}, 1)
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
	for _, c := range ledgerMigrations() {
		t, err := s.d.Describe(ctx, s.db, c.table)
		if err != nil {
			// Wrapped, not formatted: a connection lost here is a
			// connection error, which run's start-up waits out.
			return fmt.Errorf("describing ledger table %s: %w", c.table, err)
		}
		if t == nil {
			return fmt.Errorf("describing ledger table %s: it does not exist after creating it", c.table)
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
	s.mu.Lock()
	s.positionCols = s.d.Quote("leader_epoch") + ", " + s.d.Quote("topic_id")
	s.mu.Unlock()
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

// TP names a topic partition.
type TP struct {
	Topic     string
	Partition int32
}

func (tp TP) String() string { return fmt.Sprintf("%s[%d]", tp.Topic, tp.Partition) }

// Topics are the partitions' topics, each once, sorted.
func Topics(tps []TP) []string {
	out := make([]string, 0, len(tps))
	for _, tp := range tps {
		out = append(out, tp.Topic)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

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
	cols, err := s.positionColumns(ctx)
	if err != nil {
		return nil, err
	}
	q := s.rebind(fmt.Sprintf("SELECT %s, %s FROM exactly_offsets WHERE %s = ? AND %s = ? AND %s = ?",
		s.d.Quote("next_offset"), cols, s.d.Quote("pipeline"), s.d.Quote("topic"), s.d.Quote("partition")))
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

// positionColumns is how LoadPositions selects leader_epoch and topic_id.
// EnsureLedger adds them to a ledger made before they existed; a sink
// opened only to look (OpenSink: plan, adopt without --apply) adds
// nothing, so it describes exactly_offsets once and reads a missing column
// as NULL (no epoch, no topic id), as that ledger's writer knew none.
func (s *Sink) positionColumns(ctx context.Context) (string, error) {
	s.mu.Lock()
	cols := s.positionCols
	s.mu.Unlock()
	if cols != "" {
		return cols, nil
	}
	t, err := s.d.Describe(ctx, s.db, "exactly_offsets")
	if err != nil {
		return "", fmt.Errorf("describing exactly_offsets: %w", err)
	}
	q := make([]string, 2)
	for i, c := range []string{"leader_epoch", "topic_id"} {
		q[i] = s.d.Quote(c)
		if t != nil && t.Column(c) == nil {
			q[i] = "NULL AS " + q[i]
		}
	}
	cols = strings.Join(q, ", ")
	s.mu.Lock()
	s.positionCols = cols
	s.mu.Unlock()
	return cols, nil
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
