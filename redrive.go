package exactly

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"
)

// StatusRedriven is the ledger status of a batch that re-applied dead
// letters. Its range is sparse (only the dead letters' offsets), so verify
// neither chains nor re-hashes it.
const StatusRedriven = "redriven"

// RecordReader reads a partition's committed records (internal/kafka.Client).
type RecordReader interface {
	Read(ctx context.Context, tp TP, from, to int64, fn func(*Record) error) error
}

// RedriveResult is what Redrive did with one partition's dead letters.
type RedriveResult struct {
	TP      TP
	BatchID string // the redriven ledger row; "" when nothing was applied
	// Resolved are the offsets applied and marked resolved.
	Resolved []int64
	// Superseded maps a dead letter's offset to the offset of a newer
	// change of the same key the pipeline applied since: re-applying the
	// dead letter would write an older state over it, so it stays open.
	Superseded map[int64]int64
	// Failing maps a dead letter's offset to why it still cannot be
	// applied (the cause is not fixed); it stays open.
	Failing map[int64]string
}

// ErrRedriveMoving says the pipeline kept advancing the partition while
// redrive checked for newer changes, five times in a row.
var ErrRedriveMoving = errors.New("the pipeline advanced the partition during each of 5 attempts; retry when it is quieter")

// Redrive re-applies open dead letters of one partition (dls, in offset
// order, all of tp), after their cause was fixed, in one transaction that
// also marks them resolved (by, now, the batch id) and writes a ledger row
// with status "redriven". The records go through the same prepare,
// create/evolve, plan and Dialect.Apply as Commit; a record that still
// fails stays open, with its new error in Failing.
//
// A dead letter is older than what the pipeline applied after it. Redrive
// reads the partition from the dead letter to next_offset and leaves open
// any dead letter whose key the pipeline changed again since (Superseded):
// writing it would bring back an older state. On a table with a version
// column a later upsert does not supersede it: the version guard decides
// (an older version never replaces a newer one); a later delete does,
// since a deleted row keeps no version to compare with, and so does any
// later change when either carries no version (a tombstone). The transaction locks the
// partition's exactly_offsets row at the next_offset that read ended at,
// so a batch the pipeline commits meanwhile cannot slip in between; if it
// did commit first, the check is redone.
func (s *Sink) Redrive(ctx context.Context, tp TP, dls []DeadLetterRow, later RecordReader, by string) (*RedriveResult, error) {
	rule, table, ok := s.cfg.Route(tp.Topic)
	if !ok {
		return nil, fmt.Errorf("redriving %s: no table rule matches topic %q", tp, tp.Topic)
	}
	for attempt := 0; attempt < 5; attempt++ {
		next, err := s.LoadOffsets(ctx, []TP{tp})
		if err != nil {
			return nil, err
		}
		n, ok := next[tp]
		if !ok {
			return nil, fmt.Errorf("redriving %s: the pipeline %s has no exactly_offsets row for it", tp, s.cfg.Pipeline)
		}
		res := &RedriveResult{TP: tp, Superseded: map[int64]int64{}, Failing: map[int64]string{}}
		todo := dls
		if rule.Mode != "append" && len(dls) > 0 {
			if todo, err = s.unsuperseded(ctx, tp, rule, table, dls, n, later, res); err != nil {
				return nil, fmt.Errorf("redriving %s: %w", tp, err)
			}
		}
		if len(todo) == 0 {
			return res, nil
		}
		err = s.redriveOnce(ctx, tp, todo, n, by, res)
		if errors.Is(err, errOffsetMoved) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("redriving %s: %w", tp, err)
		}
		return res, nil
	}
	return nil, fmt.Errorf("redriving %s: %w", tp, ErrRedriveMoving)
}

var errOffsetMoved = errors.New("next_offset moved")

// unsuperseded returns the dead letters no later applied record of the
// same key supersedes, reading [first dead letter + 1, next) of the
// partition. Open dead letters among the later records were not applied,
// so they supersede nothing.
func (s *Sink) unsuperseded(ctx context.Context, tp TP, rule *TableRule, table string, dls []DeadLetterRow, next int64, later RecordReader, res *RedriveResult) ([]DeadLetterRow, error) {
	t, err := s.Table(ctx, table)
	if err != nil {
		return nil, err
	}
	keys := keyColumns(rule, t)
	dec := s.decoder(rule)
	keyOf := func(r *Record) (keyed, bool) {
		ch, err := dec.Decode(r)
		if err != nil || ch.Op == OpSkip {
			return keyed{}, false
		}
		mapColumns(&rule.Columns, rule.Key, &ch)
		kv, err := keyValues(&change{rec: r, rule: rule, table: table, Change: ch}, keys, nil, make([]any, len(keys)))
		return keyed{kv: kv, guarded: rule.Version != "" && ch.Version != nil, upsert: ch.Op == OpUpsert}, err == nil
	}
	open := map[int64]bool{}
	openRows, err := NewLedger(s.db, s.d, s.cfg.Pipeline).DeadLetters(ctx, tp, dls[0].Record.Offset, next, true)
	if err != nil {
		return nil, err
	}
	for _, d := range openRows {
		open[d.Record.Offset] = true
	}
	// The dead letters' keys first, then a chunk of later records' keys:
	// one keyIdentities call compares them as the database does.
	sc := &newerScan{s: s, t: t, keys: keys, dls: dls, newer: map[int]int64{}}
	for i := range dls {
		if k, ok := keyOf(&dls[i].Record); ok {
			sc.dlKeys, sc.dlAt, sc.dlKeyed = append(sc.dlKeys, k.kv), append(sc.dlAt, i), append(sc.dlKeyed, k)
		}
	}
	if from := dls[0].Record.Offset + 1; from < next && len(sc.dlKeys) > 0 {
		err := later.Read(ctx, tp, from, next, func(r *Record) error {
			if open[r.Offset] {
				return nil // not applied: it supersedes nothing
			}
			if k, ok := keyOf(r); ok {
				sc.chunk, sc.chunkAt, sc.chunkKeyed = append(sc.chunk, k.kv), append(sc.chunkAt, r.Offset), append(sc.chunkKeyed, k)
			}
			if len(sc.chunk) >= 5000 {
				return sc.flush(ctx)
			}
			return nil
		})
		if err == nil {
			err = sc.flush(ctx)
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s %d..%d for newer changes of the dead letters' keys: %w", tp, from, next-1, err)
		}
	}
	var out []DeadLetterRow
	for i, d := range dls {
		if o, ok := sc.newer[i]; ok {
			res.Superseded[d.Record.Offset] = o
			continue
		}
		out = append(out, d) // undecodable ones fail again below, with their error
	}
	return out, nil
}

// keyed is a record's key values and what the version guard needs of it.
type keyed struct {
	kv      []any
	guarded bool // an upsert or delete carrying a version
	upsert  bool
}

// guarded reports whether the version guard orders a later change
// against a dead letter: both carry a version and the later one is not a
// delete (a deleted row keeps no version to compare with, and a tombstone
// carries none). Without a version column nothing is.
func guarded(dl, later keyed) bool { return dl.guarded && later.guarded && later.upsert }

// newerScan finds, for each dead letter of a partition, the newest later
// applied record of the same key, comparing keys a chunk at a time as the
// database does (keyIdentities).
type newerScan struct {
	s    *Sink
	t    *Table
	keys []string
	dls  []DeadLetterRow
	// the dead letters' keys, each one's index in dls, and its keyed
	dlKeys  [][]any
	dlAt    []int
	dlKeyed []keyed
	// newer maps a dls index to the newest later applied offset of its key
	newer map[int]int64
	// the chunk of later records' keys, their offsets and keyed
	chunk      [][]any
	chunkAt    []int64
	chunkKeyed []keyed
}

// flush compares the chunk's keys with the dead letters' and empties it.
func (sc *newerScan) flush(ctx context.Context) error {
	if len(sc.chunk) == 0 || len(sc.dlKeys) == 0 {
		sc.chunk, sc.chunkAt, sc.chunkKeyed = sc.chunk[:0], sc.chunkAt[:0], sc.chunkKeyed[:0]
		return nil
	}
	ids, err := sc.s.keyIdentities(ctx, sc.s.db, sc.t, sc.keys, append(append([][]any{}, sc.dlKeys...), sc.chunk...))
	if err != nil {
		return err
	}
	byID := map[string][]int{} // key identity → indexes in dlKeys
	for j := range sc.dlKeys {
		byID[ids[j]] = append(byID[ids[j]], j)
	}
	for j, id := range ids[len(sc.dlKeys):] {
		for _, k := range byID[id] {
			i := sc.dlAt[k]
			if sc.chunkAt[j] > sc.dls[i].Record.Offset && !guarded(sc.dlKeyed[k], sc.chunkKeyed[j]) {
				sc.newer[i] = max(sc.newer[i], sc.chunkAt[j])
			}
		}
	}
	sc.chunk, sc.chunkAt, sc.chunkKeyed = sc.chunk[:0], sc.chunkAt[:0], sc.chunkKeyed[:0]
	return nil
}

func (s *Sink) redriveOnce(ctx context.Context, tp TP, dls []DeadLetterRow, next int64, by string, res *RedriveResult) error {
	// One record per offset; every open row of that offset is resolved
	// with it.
	var recs []*Record
	ids := map[int64][]int64{}
	for i := range dls {
		r := dls[i].Record
		if ids[r.Offset] == nil {
			recs = append(recs, &r)
		}
		ids[r.Offset] = append(ids[r.Offset], dls[i].ID)
	}
	sort.SliceStable(recs, func(i, j int) bool { return recs[i].Offset < recs[j].Offset })
	b := &PartitionBatch{Topic: tp.Topic, Partition: tp.Partition, From: recs[0].Offset, Records: recs}
	if err := s.prepare(ctx, b); err != nil {
		return err
	}
	b.BatchID = s.newBatchID()
	if b.Halt != nil {
		return b.Halt
	}
	if err := s.ensureTables(ctx, []*PartitionBatch{b}); err != nil {
		return fmt.Errorf("preparing tables: %w", err)
	}
	b.decodeDead = len(b.DeadLetters)
	batches := []*PartitionBatch{b}
	tables, err := s.describeAll(ctx, batches)
	if err != nil {
		return err
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("connecting to the sink: %w", err)
	}
	defer conn.Close()
	writes, err := s.plan(ctx, conn, batches, tables)
	if err != nil {
		return err
	}
	var resolved []int64
	err = s.inTx(ctx, conn, witness{"redrive", b.BatchID, StatusRedriven, batches}, func(tx *Tx) error {
		now := time.Now().UTC()
		// The same row lock as Commit's fence, at the next_offset the
		// check for newer changes read up to: a batch committed since
		// would have changed keys the check did not see.
		if err := s.lockOffsets(ctx, tx, tp, next, now); err != nil {
			if errors.Is(err, errOffsetMoved) {
				return err
			}
			return fmt.Errorf("locking offsets of %s for redrive: %w", tp, err)
		}
		for _, w := range writes {
			// A row the database still refuses is isolated and stays open.
			if err := s.isolate(ctx, tx, w, w.items(), &refusals{}); err != nil {
				return err
			}
		}
		failing := map[int64]bool{}
		for _, dl := range b.DeadLetters {
			failing[dl.Record.Offset] = true
			cause := dl.Err
			if re, ok := cause.(*RecordError); ok {
				cause = re.Err
			}
			res.Failing[dl.Record.Offset] = cause.Error()
		}
		mark := s.rebind("UPDATE exactly_dead_letters SET resolved_at = ?, resolved_by = ?, resolved_batch = ? WHERE id = ? AND resolved_at IS NULL")
		for _, rec := range b.Records {
			if failing[rec.Offset] {
				continue
			}
			for _, id := range ids[rec.Offset] {
				r, err := tx.ExecContext(ctx, mark, now, by, b.BatchID, id)
				if err != nil {
					return fmt.Errorf("marking dead letter %s@%d resolved: %w", tp, rec.Offset, err)
				}
				if n, err := r.RowsAffected(); err != nil || n != 1 {
					// Another redrive resolved it first: this one must not
					// apply it a second time.
					return fmt.Errorf("marking dead letter %s@%d resolved: another redrive resolved it meanwhile (%d rows, %v)", tp, rec.Offset, n, err)
				}
			}
			resolved = append(resolved, rec.Offset)
		}
		if len(resolved) == 0 {
			return errNothingToCommit // nothing applied: roll back, no ledger row
		}
		return s.insertLedger(ctx, tx, batches, StatusRedriven, "", now)
	})
	if err != nil || len(resolved) == 0 {
		return err
	}
	res.BatchID, res.Resolved = b.BatchID, resolved
	return nil
}
