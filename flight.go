package exactly

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/exactly/exactly/internal/secret"
)

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
// not cost the others their flight. A transaction that fails is recorded as
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
	live, out := s.prepareFlight(ctx, batches)
	s.forgetStale(live, time.Now())
	s.describeFlight(ctx, live)
	live, out, ok := s.evolveFlight(ctx, live, out)
	if !ok {
		return out
	}
	isolate := false
	for attempt := 0; len(live) > 0; attempt++ {
		fenced, n, err := s.commitOnce(ctx, live, isolate)
		if n >= 0 {
			trips += n
			counted = true
		}
		if err == nil {
			return append(out, s.committed(live)...)
		}
		var locked *LockTimeoutError
		var refused *refusedError
		var he *haltError
		switch {
		case len(fenced) > 0:
			live, out = s.dropFenced(live, fenced, out)
		case errors.As(err, &locked):
			// Another transaction holds the partition's offsets row past
			// the lock wait: a paused zombie, most likely. Drop the
			// partition as a fenced one is dropped, so it does not hold
			// the rest of the flight hostage; it is read again and retried.
			live, out = s.dropLocked(live, locked, out)
			attempt--
		case !isolate && errors.As(err, &refused):
			// A row the database refuses for its data: redo the whole
			// transaction with each table write under a savepoint, so the
			// row is found and dead-lettered and the rest still applies.
			s.log.Debug("the database refused a row; isolating it", "err", err)
			isolate = true
			attempt--
		case errors.As(err, &he):
			live, out = s.haltBefore(ctx, live, he, out)
			attempt--
		case s.d.Classify(err) == ErrConflict && attempt < 5 && ctx.Err() == nil:
			s.log.Debug("retrying batch transaction after a conflict", "err", err, "attempt", attempt+1)
		default:
			return append(out, s.failFlight(live, err)...)
		}
	}
	return out
}

// prepareFlight gives each batch its id and prepares it (see prepare). It
// returns the batches left to commit, and the outcomes of those that
// failed or hold nothing before their halting record.
func (s *Sink) prepareFlight(ctx context.Context, batches []*PartitionBatch) (live []*PartitionBatch, out []Outcome) {
	live = make([]*PartitionBatch, 0, len(batches))
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
	return live, out
}

// evolveFlight creates and evolves the tables the batches write (see
// ensureTables). ok is false when that failed: every batch then has its
// outcome in out. Otherwise it returns the batches still holding records.
func (s *Sink) evolveFlight(ctx context.Context, live []*PartitionBatch, out []Outcome) (_ []*PartitionBatch, _ []Outcome, ok bool) {
	if err := s.ensureTables(ctx, live); err != nil {
		s.log.Error("preparing tables (create/evolve)", "batches", Ranges(live), "err", err)
		return nil, append(out, s.failFlight(live, err)...), false
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
	return keep, out, true
}

// committed are the outcomes of a flight's committed batches; a batch
// that ends at a halting record carries it.
func (s *Sink) committed(live []*PartitionBatch) []Outcome {
	out := make([]Outcome, 0, len(live))
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

// dropFenced takes the fenced partitions out of the flight; the rest is
// tried again.
func (s *Sink) dropFenced(live []*PartitionBatch, fenced map[TP]*FencedError, out []Outcome) ([]*PartitionBatch, []Outcome) {
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
	return keep, out
}

// dropLocked takes the partition whose offsets row stayed locked out of
// the flight; the rest is tried again.
func (s *Sink) dropLocked(live []*PartitionBatch, locked *LockTimeoutError, out []Outcome) ([]*PartitionBatch, []Outcome) {
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
	return keep, out
}

// haltBefore handles on_error: fail for a row the database refused: the
// batch ends before that record and the partition halts there. The batch
// is prepared and evolved again; when nothing is left before the halt it
// leaves the flight with its outcome.
func (s *Sink) haltBefore(ctx context.Context, live []*PartitionBatch, he *haltError, out []Outcome) ([]*PartitionBatch, []Outcome) {
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
	return live, out
}

// failFlight records the batches as failed in the ledger, forgets the
// descriptions of their tables (see forgetTables) and returns their
// outcomes.
func (s *Sink) failFlight(live []*PartitionBatch, err error) []Outcome {
	s.recordFailed(live, err)
	s.forgetTables(live)
	out := make([]Outcome, 0, len(live))
	for _, b := range live {
		out = append(out, Outcome{Batch: b, Err: err})
	}
	return out
}

// forgetTables drops the cached descriptions of the tables the batches
// write, after a failure that was neither a fence nor a conflict: an
// operator may have renamed or dropped a column, and the next try must
// see the table as it is now (a description kept for the life of the
// process would fail every flight touching the table until a restart).
func (s *Sink) forgetTables(batches []*PartitionBatch) {
	for _, b := range batches {
		for i := range b.changes {
			s.Forget(b.changes[i].table)
		}
	}
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

// quoted matches a quoted run of text in an error message: where drivers
// and decoders put the offending value ('abc', "not json", PostgreSQL's
// Key (id)=(5)). A quote followed by a letter or digit does not end it:
// MySQL and PostgreSQL quote O'Brien as 'O'Brien' without escaping.
var quoted = regexp.MustCompile(`"(?:[^"\\]|\\.|"[\p{L}\p{N}])*"|'(?:[^'\\]|\\.|'[\p{L}\p{N}])*'|` + "`[^`]*`" + `|=\([^)]*\)`)

// RedactError is an error's message fit for a log line: every quoted
// run (where drivers and decoders put the offending value) is replaced by
// "…", and the message is cut at 300 bytes. The whole message stays in
// exactly_dead_letters.error, beside the record; logs carry no payload.
func RedactError(err error) string {
	s := quoted.ReplaceAllStringFunc(err.Error(), func(q string) string {
		if q[0] == '=' {
			return "=(…)"
		}
		return q[:1] + "…" + q[len(q)-1:]
	})
	if len(s) > 300 {
		s = strings.ToValidUTF8(s[:300], "") + "…"
	}
	return s
}

// logDeadLetters writes one warning per committed batch that
// dead-lettered records: how many, the first offset and its error
// (redacted), so bad input is seen without reading the ledger. Regression:
// a batch with six bad records logged nothing at all.
func (s *Sink) logDeadLetters(b *PartitionBatch) {
	if len(b.DeadLetters) == 0 {
		return
	}
	first := b.DeadLetters[0]
	for _, dl := range b.DeadLetters[1:] {
		if dl.Record.Offset < first.Record.Offset {
			first = dl
		}
	}
	cause := first.Err
	if re, ok := cause.(*RecordError); ok {
		cause = re.Err // the coordinates are in their own fields
	}
	s.log.Warn("records dead-lettered", "topic", b.Topic, "partition", b.Partition, "count", len(b.DeadLetters),
		"first_offset", first.Record.Offset, "first_error", RedactError(cause), "batch_id", b.BatchID,
		"hint", "exactly status counts them, exactly_dead_letters holds them; fix the cause, then exactly redrive")
}
