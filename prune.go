package exactly

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/zeebo/blake3"
)

// StatusPruned marks the one exactly_batches row per partition that
// stands for the ledger rows exactly prune deleted (the marker):
// from_offset is the first pruned committed row's from_offset, to_offset
// the first kept one's, records (and upserted, deleted, skipped,
// dead_lettered) the sums of the pruned committed rows (capped at the
// column's 2^31-1; notes has the exact sums), hash a digest of the pruned
// rows in chain order (PruneDigest), started_at the first pruned row's,
// committed_at the last one's, writer who pruned last and notes a
// PruneNotes in JSON. Like a reseeded row it is not a batch: the chain
// starts at its to_offset.
//
// The rule prune keeps: every transaction that deletes ledger rows
// replaces the marker in the same transaction, so at every commit the
// marker and the rows left form one unbroken chain. Rows deleted without
// a marker are found by verify as before (a gap, a next_offset mismatch).
const StatusPruned = "pruned"

// PruneNotes is the marker's notes column, in JSON: what the prunes that
// made it deleted (exact sums: the integer columns are 32-bit), when and
// why.
type PruneNotes struct {
	Committed    int64     `json:"committed"` // committed rows folded into the marker
	Failed       int64     `json:"failed"`    // failed rows deleted (their range inside the marker's)
	Replayed     int64     `json:"replayed"`  // replayed rows deleted (likewise)
	Records      int64     `json:"records"`   // of the committed rows
	Upserted     int64     `json:"upserted"`
	Deleted      int64     `json:"deleted"`
	Skipped      int64     `json:"skipped"`
	DeadLettered int64     `json:"dead_lettered"`
	Before       time.Time `json:"before"` // the last prune's cut
	At           time.Time `json:"at"`     // when the last prune ran
	Prunes       int64     `json:"prunes"` // runs of exactly prune that extended the marker
	Reason       string    `json:"reason,omitempty"`
}

// Rows is how many ledger rows the marker stands for.
func (n PruneNotes) Rows() int64 { return n.Committed + n.Failed + n.Replayed }

// ParsePruneNotes reads a marker's notes; a marker whose notes do not
// parse (altered) gives the zero PruneNotes and the error.
func ParsePruneNotes(notes string) (PruneNotes, error) {
	var n PruneNotes
	if err := json.Unmarshal([]byte(notes), &n); err != nil {
		return PruneNotes{}, fmt.Errorf("reading the notes of a pruned marker: %w", err)
	}
	return n, nil
}

// PruneDigest extends a marker's hash with committed rows, in chain
// order, one row at a time: for each row the digest becomes "blake3:" and
// the hex BLAKE3-256 of uvarint len(digest) digest, varint from_offset,
// varint to_offset, varint records, uvarint len(hash) hash. prev is "" for
// a partition's first prune. Chunks and successive prunes compose: the
// marker's hash is the digest of every row it stands for, however they
// were cut, so an auditor who exported the rows before they were pruned
// recomputes it from the export to show the export is what was deleted.
func PruneDigest(prev string, rows []BatchRow) string {
	d := prev
	var b []byte
	for i := range rows {
		r := &rows[i]
		b = binary.AppendUvarint(b[:0], uint64(len(d)))
		b = append(b, d...)
		b = binary.AppendVarint(b, r.From)
		b = binary.AppendVarint(b, r.To)
		b = binary.AppendVarint(b, r.Records)
		b = binary.AppendUvarint(b, uint64(len(r.Hash)))
		b = append(b, r.Hash...)
		sum := blake3.Sum256(b)
		d = string(HashBLAKE3) + ":" + hex.EncodeToString(sum[:])
	}
	return d
}

// Prune is one run of exactly prune.
type Prune struct {
	// Before is the cut: committed and replayed rows committed before it,
	// failed rows started before it, may go.
	Before time.Time
	// Chunk bounds the rows one transaction deletes (default 10,000), so
	// no transaction holds locks on exactly_batches for long.
	Chunk int
	// Apply deletes; without it Prune only counts what it would delete.
	Apply bool
	// DeadLetters also deletes dead letters resolved (redriven, or
	// replayed) before Before. Open dead letters are never deleted.
	DeadLetters bool
	Who, Why    string
	// Select, when set, limits the run to the partitions it accepts.
	Select func(TP) bool
	// Progress, when set, is called after each transaction (or page of a
	// dry run) with the rows pruned so far.
	Progress func(tp TP, rows int64)
}

// PrunedPartition is what a prune did (or, dry, would do) to a partition.
type PrunedPartition struct {
	TP
	// Committed, Failed, Replayed count the ledger rows deleted by this
	// run; Records the records of the committed ones.
	Committed, Failed, Replayed, Records int64
	// From, To: the offsets of the committed rows deleted by this run
	// ([From, To); From == To when none).
	From, To int64
	// Marker is the marker after the run (dry: as it would be); nil when
	// the partition has none.
	Marker *BatchRow
	// DeadLetters counts the resolved dead letters deleted.
	DeadLetters int64
	// Stopped says why the committed rows older than the cut were not all
	// pruned, when it is a problem of the ledger (a chain break, several
	// markers): a finding for exactly verify. "" otherwise.
	Stopped string
}

// Rows is the ledger rows pruned.
func (p *PrunedPartition) Rows() int64 { return p.Committed + p.Failed + p.Replayed }

// PruneMovedError is a prune transaction that found the ledger changed
// since it read it: another exactly prune, or a reseed, ran meanwhile.
type PruneMovedError struct {
	TP   TP
	What string
}

func (e *PruneMovedError) Error() string {
	return fmt.Sprintf("pruning %s: %s since this prune read the ledger (another exactly prune or a reseed ran meanwhile): nothing of this transaction was deleted; run exactly prune again", e.TP, e.What)
}

// defaultPruneChunk is Prune.Chunk's default.
const defaultPruneChunk = 10000

// deleteIDs bounds the batch ids of one DELETE: SQL Server takes 2,100
// parameters, and escalates a statement's row locks to a table lock
// (which would hold the pipeline's inserts) at 5,000 locks.
const deleteIDs = 1000

// Prune deletes, per partition of the pipeline, the ledger rows older
// than p.Before that are no longer needed to show the chain is unbroken:
// the committed rows of the chain's prefix (never the partition's newest
// committed row, never past a break of the chain, which stays for verify
// to report), and the failed and replayed rows whose range lies below the
// marker. Rows before the partition's last reseed and its redriven rows
// are left alone. It never takes the exactly_offsets row the pipeline's
// flights fence on, and deletes by primary key in transactions of at most
// p.Chunk rows, so it runs beside a running pipeline.
func (s *Sink) Prune(ctx context.Context, p Prune) ([]PrunedPartition, error) {
	if p.Chunk <= 0 {
		p.Chunk = defaultPruneChunk
	}
	// A page is Chunk+1 rows: no overflow into a negative LIMIT, and a
	// TOP SQL Server takes.
	p.Chunk = min(p.Chunk, math.MaxInt32-1)
	l := NewLedger(s.db, s.d, s.cfg.Pipeline)
	tps, err := l.Partitions(ctx)
	if err != nil {
		return nil, err
	}
	reseeds, err := l.Reseeds(ctx)
	if err != nil {
		return nil, err
	}
	markers, err := l.Markers(ctx)
	if err != nil {
		return nil, err
	}
	lastReseed := map[TP]*BatchRow{}
	for i := range reseeds {
		lastReseed[reseeds[i].TP()] = &reseeds[i]
	}
	var out []PrunedPartition
	for _, tp := range tps {
		if p.Select != nil && !p.Select(tp) {
			continue
		}
		after := ""
		reseed := lastReseed[tp]
		if reseed != nil {
			after = reseed.BatchID
		}
		var cur []BatchRow // the partition's markers since its last reseed
		for _, m := range markers {
			if m.TP() == tp && m.BatchID > after {
				cur = append(cur, m)
			}
		}
		r := PrunedPartition{TP: tp}
		pr := &pruner{s: s, l: l, p: p, tp: tp, after: after, reseed: reseed, res: &r}
		switch len(cur) {
		case 0:
		case 1:
			m := cur[0]
			pr.marker, pr.read = &m, m.BatchID
			n, nerr := ParsePruneNotes(m.Notes)
			if nerr != nil {
				r.Stopped = fmt.Sprintf("the marker %s has unreadable notes (%v): nothing pruned", m.BatchID, nerr)
			}
			pr.notes = n
		default:
			r.Stopped = fmt.Sprintf("%d pruned markers since the last reseed, where exactly prune keeps one: nothing pruned", len(cur))
		}
		var perr error
		if r.Stopped == "" {
			perr = pr.run(ctx)
		}
		if perr == nil && p.DeadLetters {
			perr = pr.deadLetters(ctx)
		}
		r.Marker = pr.marker
		out = append(out, r) // with what was committed before an error
		if perr != nil {
			return out, perr
		}
	}
	return out, nil
}

// pruner prunes one partition.
type pruner struct {
	s      *Sink
	l      *Ledger
	p      Prune
	tp     TP
	after  string    // the last reseed's batch id: rows before it are left alone
	reseed *BatchRow // the last reseed (nil: none): without a marker the chain starts at its to_offset
	marker *BatchRow // the marker as committed (dry: as it would be)
	read   string    // the batch id of the marker in the ledger as this run left it or read it ("": none)
	notes  PruneNotes
	ran    bool // this run extended the marker already (PruneNotes.Prunes)
	res    *PrunedPartition
}

func (pr *pruner) run(ctx context.Context) error {
	// The committed rows of the chain's prefix, a chunk at a time.
	for {
		rows, err := pr.nextCommitted(ctx)
		if err != nil {
			return err
		}
		if len(rows) == 0 {
			break
		}
		if err := pr.commit(ctx, rows, nil); err != nil {
			return err
		}
	}
	if pr.marker == nil {
		return nil // nothing below a marker to prune
	}
	return pr.others(ctx)
}

// nextCommitted returns the next chunk of committed rows to prune: the
// chain's next rows after the marker, committed before the cut, without a
// break, and never the partition's newest committed row.
func (pr *pruner) nextCommitted(ctx context.Context) ([]BatchRow, error) {
	cols, err := pr.l.columns(ctx)
	if err != nil {
		return nil, err
	}
	from := int64(math.MinInt64)
	if pr.marker != nil {
		from = pr.marker.To
	}
	n := pr.p.Chunk
	q := Rebind(pr.s.d, pr.l.limit(fmt.Sprintf("SELECT %s FROM exactly_batches WHERE pipeline = ? AND topic = ? AND %s = ? AND status = ? AND batch_id > ? AND from_offset >= ? ORDER BY from_offset, started_at, batch_id",
		cols(""), pr.s.d.Quote("partition")), n+1))
	page, err := pr.l.batches(ctx, "exactly_batches of "+pr.tp.String(), q, pr.s.cfg.Pipeline, pr.tp.Topic, pr.tp.Partition, StatusCommitted, pr.after, from)
	if err != nil {
		return nil, err
	}
	// The chain starts at the marker, or at the last reseed: a gap
	// between the reseed and the first row left is a break too.
	chain := NewChain(pr.tp, ChainStart(pr.reseed, pr.marker))
	var take []BatchRow
	for i := range page {
		b := &page[i]
		// A break is told even where the prune would stop anyway (the
		// newest row, a row after the cut): the marker's own end is the
		// place a deletion behind it shows.
		if brk, broke := chain.Add(b); broke {
			// Another prune that replaced the marker since this one read
			// it leaves the rows past it: not a break of the chain.
			if err := pr.sameMarker(ctx); err != nil {
				return nil, err
			}
			pr.res.Stopped = fmt.Sprintf("%s at ledger row %s: the rows from there on are kept (exactly verify tells what Kafka holds there)", brk.Problem(), b.BatchID)
			break
		}
		if i == n || i == len(page)-1 {
			break // the newest committed row (or the one proving the chunk's are not)
		}
		if !b.CommittedAt.Before(pr.p.Before) {
			break
		}
		take = append(take, *b)
	}
	return take, nil
}

// sameMarker returns a PruneMovedError when the partition's marker in
// the ledger is no longer the one this run read or wrote.
func (pr *pruner) sameMarker(ctx context.Context) error {
	q := Rebind(pr.s.d, fmt.Sprintf("SELECT batch_id FROM exactly_batches WHERE pipeline = ? AND topic = ? AND %s = ? AND status = ? AND batch_id > ?",
		pr.s.d.Quote("partition")))
	rows, err := pr.s.db.QueryContext(ctx, q, pr.s.cfg.Pipeline, pr.tp.Topic, pr.tp.Partition, StatusPruned, pr.after)
	if err != nil {
		return fmt.Errorf("pruning %s: reading its marker: %w", pr.tp, err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return fmt.Errorf("pruning %s: reading its marker: %w", pr.tp, err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("pruning %s: reading its marker: %w", pr.tp, err)
	}
	if (pr.read == "" && len(ids) > 0) || (pr.read != "" && (len(ids) != 1 || ids[0] != pr.read)) {
		return &PruneMovedError{TP: pr.tp, What: "the marker changed"}
	}
	return nil
}

// others prunes the failed and replayed rows older than the cut whose
// range lies below the marker's to_offset (the chain there is pruned);
// they are not in the chain, only the marker's notes count them.
func (pr *pruner) others(ctx context.Context) error {
	cols, err := pr.l.columns(ctx)
	if err != nil {
		return err
	}
	last := ""
	for {
		q := Rebind(pr.s.d, pr.l.limit(fmt.Sprintf("SELECT %s FROM exactly_batches WHERE pipeline = ? AND topic = ? AND %s = ? AND status IN (?, ?) AND batch_id > ? AND batch_id > ? AND to_offset <= ? ORDER BY batch_id",
			cols(""), pr.s.d.Quote("partition")), pr.p.Chunk))
		page, err := pr.l.batches(ctx, "exactly_batches of "+pr.tp.String(), q, pr.s.cfg.Pipeline, pr.tp.Topic, pr.tp.Partition,
			StatusFailed, StatusReplayed, pr.after, last, pr.marker.To)
		if err != nil || len(page) == 0 {
			return err
		}
		var take []BatchRow
		for _, b := range page {
			at := b.CommittedAt
			if b.Status == StatusFailed || at.IsZero() {
				at = b.StartedAt
			}
			if at.Before(pr.p.Before) {
				take = append(take, b)
			}
		}
		last = page[len(page)-1].BatchID
		if len(take) > 0 {
			if err := pr.commit(ctx, nil, take); err != nil {
				return err
			}
		}
		if len(page) < pr.p.Chunk {
			return nil
		}
	}
}

// commit deletes chain (committed rows continuing the marker's chain)
// and others (failed, replayed) and replaces the marker, in one
// transaction; a dry run only counts.
func (pr *pruner) commit(ctx context.Context, chain, others []BatchRow) error {
	old := pr.marker
	next, notes := pr.extend(chain, others)
	if !pr.p.Apply {
		pr.account(chain, others, next, notes)
		return nil
	}
	s := pr.s
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("pruning %s: connecting to the sink: %w", pr.tp, err)
	}
	defer conn.Close()
	part := s.d.Quote("partition")
	err = s.inTx(ctx, conn, witness{"prune", next.BatchID, StatusPruned, nil}, func(tx *Tx) error {
		// No reseed since the ledger was read: the marker belongs to the
		// chain since the last reseed.
		var n int64
		q := s.rebind(fmt.Sprintf("SELECT COUNT(*) FROM exactly_batches WHERE pipeline = ? AND topic = ? AND %s = ? AND status = ? AND batch_id > ?", part))
		if err := tx.QueryRowContext(ctx, q, s.cfg.Pipeline, pr.tp.Topic, pr.tp.Partition, StatusReseeded, pr.after).Scan(&n); err != nil {
			return fmt.Errorf("pruning %s: %w", pr.tp, err)
		}
		if n > 0 {
			return &PruneMovedError{TP: pr.tp, What: "the partition was reseeded"}
		}
		// The old marker goes, as it was read: a concurrent prune that
		// replaced it first makes this one touch no row.
		if old != nil {
			q := s.rebind("DELETE FROM exactly_batches WHERE batch_id = ? AND status = ? AND to_offset = ?")
			res, err := tx.ExecContext(ctx, q, old.BatchID, StatusPruned, old.To)
			if err != nil {
				return fmt.Errorf("pruning %s: replacing the marker: %w", pr.tp, err)
			}
			if n, err := res.RowsAffected(); err != nil || n != 1 {
				return &PruneMovedError{TP: pr.tp, What: "the marker " + old.BatchID + " changed"}
			}
		} else {
			q := s.rebind(fmt.Sprintf("SELECT COUNT(*) FROM exactly_batches WHERE pipeline = ? AND topic = ? AND %s = ? AND status = ? AND batch_id > ?", part))
			if err := tx.QueryRowContext(ctx, q, s.cfg.Pipeline, pr.tp.Topic, pr.tp.Partition, StatusPruned, pr.after).Scan(&n); err != nil {
				return fmt.Errorf("pruning %s: %w", pr.tp, err)
			}
			if n > 0 {
				return &PruneMovedError{TP: pr.tp, What: "a marker was written"}
			}
		}
		// The rows, by primary key: each statement locks only the rows
		// it deletes (no range or gap locks where the pipeline inserts),
		// and all of them must still be there.
		for _, set := range [][]BatchRow{chain, others} {
			for len(set) > 0 {
				k := min(len(set), deleteIDs)
				ids := make([]any, 0, k)
				for _, b := range set[:k] {
					ids = append(ids, b.BatchID)
				}
				set = set[k:]
				q := s.rebind(fmt.Sprintf("DELETE FROM exactly_batches WHERE pipeline = ? AND topic = ? AND %s = ? AND status <> ? AND batch_id IN (?%s)",
					part, strings.Repeat(", ?", len(ids)-1)))
				res, err := tx.ExecContext(ctx, q, append([]any{s.cfg.Pipeline, pr.tp.Topic, pr.tp.Partition, StatusPruned}, ids...)...)
				if err != nil {
					return fmt.Errorf("pruning %s: deleting ledger rows: %w", pr.tp, err)
				}
				if n, err := res.RowsAffected(); err != nil || n != int64(len(ids)) {
					return &PruneMovedError{TP: pr.tp, What: fmt.Sprintf("%d of %d ledger rows to delete were gone", int64(len(ids))-n, len(ids))}
				}
			}
		}
		min, max := nullableOffset(next.Min), nullableOffset(next.Max)
		raw, _ := json.Marshal(notes)
		ins := s.insertSQL("exactly_batches", ledgerColumns)
		if _, err := tx.ExecContext(ctx, ins, next.BatchID, s.cfg.Pipeline, pr.tp.Topic, pr.tp.Partition, next.From, next.To,
			min, max, next.Records, next.Upserted, next.Deleted, next.Skipped, next.DeadLettered, next.Hash, StatusPruned, nil,
			next.Writer, next.StartedAt, next.CommittedAt, string(raw)); err != nil {
			return fmt.Errorf("pruning %s: writing the marker: %w", pr.tp, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	pr.account(chain, others, next, notes)
	pr.read = next.BatchID
	if s.writeSlot != nil {
		// One writer at a time (SQLite): a pipeline waiting for the lock
		// polls in sleeps of up to 100 ms; without a pause the next
		// chunk takes the lock again before it looks.
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(singleWriterPause):
		}
	}
	return nil
}

// singleWriterPause is how long Prune lets a SingleWriter database be
// between its transactions, for the pipeline's.
const singleWriterPause = 150 * time.Millisecond

// extend returns the marker that stands for the current one and chain
// and others, and its notes.
func (pr *pruner) extend(chain, others []BatchRow) (*BatchRow, PruneNotes) {
	notes := pr.notes
	old := pr.marker
	m := &BatchRow{BatchID: pr.s.newBatchID(), Topic: pr.tp.Topic, Partition: pr.tp.Partition, Status: StatusPruned,
		Min: -1, Max: -1, Writer: pr.p.Who}
	prev := ""
	if old != nil {
		m.From, m.To, m.Min, m.Max, m.StartedAt, m.CommittedAt = old.From, old.To, old.Min, old.Max, old.StartedAt, old.CommittedAt
		prev = old.Hash
	} else if len(chain) > 0 {
		m.From, m.StartedAt = chain[0].From, chain[0].StartedAt
	}
	for _, b := range chain {
		m.To, m.CommittedAt = b.To, b.CommittedAt
		if b.Min >= 0 && (m.Min < 0 || b.Min < m.Min) {
			m.Min = b.Min
		}
		m.Max = max(m.Max, b.Max)
		notes.Committed++
		notes.Records += b.Records
		notes.Upserted += b.Upserted
		notes.Deleted += b.Deleted
		notes.Skipped += b.Skipped
		notes.DeadLettered += b.DeadLettered
	}
	for _, b := range others {
		if b.Status == StatusFailed {
			notes.Failed++
		} else {
			notes.Replayed++
		}
	}
	m.Hash = PruneDigest(prev, chain)
	capped := func(n int64) int64 { return min(n, math.MaxInt32) }
	m.Records, m.Upserted, m.Deleted, m.Skipped, m.DeadLettered = capped(notes.Records), capped(notes.Upserted),
		capped(notes.Deleted), capped(notes.Skipped), capped(notes.DeadLettered)
	notes.Before, notes.At = pr.p.Before.UTC(), time.Now().UTC()
	if pr.p.Why != "" {
		notes.Reason = pr.p.Why
	}
	if !pr.ran {
		notes.Prunes++
	}
	b, _ := json.Marshal(notes)
	m.Notes = string(b)
	return m, notes
}

// account takes a committed (or dry) step: the marker is next now.
func (pr *pruner) account(chain, others []BatchRow, next *BatchRow, notes PruneNotes) {
	r := pr.res
	if len(chain) > 0 {
		if r.Committed == 0 {
			r.From = chain[0].From
		}
		r.To = chain[len(chain)-1].To
	}
	for _, b := range chain {
		r.Committed++
		r.Records += b.Records
	}
	for _, b := range others {
		if b.Status == StatusFailed {
			r.Failed++
		} else {
			r.Replayed++
		}
	}
	pr.marker, pr.notes, pr.ran = next, notes, true
	if pr.p.Progress != nil {
		pr.p.Progress(pr.tp, r.Rows())
	}
}

func nullableOffset(o int64) any {
	if o < 0 {
		return nil
	}
	return o
}

// deadLetters deletes the partition's dead letters resolved before the
// cut, in chunks; an open one is never deleted (the DELETE says so too).
func (pr *pruner) deadLetters(ctx context.Context) error {
	s := pr.s
	exists, resolvable, err := pr.l.resolvable(ctx)
	if err != nil || !exists || !resolvable {
		return err
	}
	part := s.d.Quote("partition")
	var last int64 = -1
	for {
		q := Rebind(s.d, pr.l.limit(fmt.Sprintf("SELECT id, resolved_at FROM exactly_dead_letters WHERE pipeline = ? AND topic = ? AND %s = ? AND resolved_at IS NOT NULL AND id > ? ORDER BY id", part), pr.p.Chunk))
		rows, err := s.db.QueryContext(ctx, q, s.cfg.Pipeline, pr.tp.Topic, pr.tp.Partition, last)
		if err != nil {
			return fmt.Errorf("reading exactly_dead_letters of %s: %w", pr.tp, err)
		}
		var ids []any
		seen := 0
		for rows.Next() {
			var id int64
			var at any
			if err := rows.Scan(&id, &at); err != nil {
				rows.Close()
				return fmt.Errorf("reading exactly_dead_letters of %s: %w", pr.tp, err)
			}
			seen++
			last = id
			if t := asTime(at); !t.IsZero() && t.Before(pr.p.Before) {
				ids = append(ids, id)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("reading exactly_dead_letters of %s: %w", pr.tp, err)
		}
		if pr.p.Apply && len(ids) > 0 {
			if err := pr.deleteDeadLetters(ctx, ids); err != nil {
				return err
			}
		}
		pr.res.DeadLetters += int64(len(ids))
		if seen < pr.p.Chunk {
			return nil
		}
	}
}

func (pr *pruner) deleteDeadLetters(ctx context.Context, ids []any) error {
	s := pr.s
	for len(ids) > 0 {
		k := min(len(ids), deleteIDs)
		set := ids[:k]
		ids = ids[k:]
		q := s.rebind(fmt.Sprintf("DELETE FROM exactly_dead_letters WHERE pipeline = ? AND resolved_at IS NOT NULL AND id IN (?%s)", strings.Repeat(", ?", len(set)-1)))
		if _, err := s.db.ExecContext(ctx, q, append([]any{s.cfg.Pipeline}, set...)...); err != nil {
			return fmt.Errorf("pruning the resolved dead letters of %s: %w", pr.tp, err)
		}
	}
	return nil
}

// Markers returns the pipeline's pruned markers (exactly prune), oldest
// first (by batch id).
func (l *Ledger) Markers(ctx context.Context) ([]BatchRow, error) {
	cols, err := l.columns(ctx)
	if err != nil {
		return nil, err
	}
	q := Rebind(l.d, fmt.Sprintf("SELECT %s FROM exactly_batches WHERE pipeline = ? AND status = ? ORDER BY batch_id", cols("")))
	return l.batches(ctx, "pruned markers", q, l.pipeline, StatusPruned)
}

// ChainStart is the row a partition's chain starts at: its marker when
// the marker is newer than its last reseed, else the reseed (either may
// be nil; nil when both are: the chain starts at the first committed row).
func ChainStart(reseed, marker *BatchRow) *BatchRow {
	if marker != nil && (reseed == nil || marker.BatchID > reseed.BatchID) {
		return marker
	}
	return reseed
}
