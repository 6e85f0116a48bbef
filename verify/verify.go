// Package verify audits a pipeline's ledger against Kafka. Its rule: it only
// reads. It never writes to the sink or to Kafka, so an auditor can run it
// against production at any time.
//
// What it checks, per partition:
//   - the chain of committed batches: each from_offset equals the previous
//     to_offset (a gap means offsets never applied, an overlap offsets
//     applied twice), and the last to_offset equals exactly_offsets.next_offset;
//   - every committed or replayed range re-read from Kafka (read_committed,
//     like the pipeline) still holds the same number of records with the
//     same RangeHash, of the scheme the row's hash names (blake3: or the
//     legacy bare SHA-256; an unknown one is a finding);
//   - offsets Kafka deleted (retention, DeleteRecords) before they were
//     applied: real loss upstream, told apart from ranges deleted after they
//     were applied (only unverifiable) and from compacted topics;
//   - batches left failed and never covered by a committed batch;
//   - dead letters left open (not redriven): records the tables lack;
//   - a topic deleted and created again since its offsets row was seeded
//     (another topic id): its ranges are not re-read from the new topic;
//   - a ledger pruned by exactly prune: the chain starts at the marker
//     (status pruned) and its first kept row must begin where the marker
//     ends; the marker's range is noted, not re-read.
package verify

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"slices"
	"sort"
	"time"

	"github.com/exactly/exactly"
)

// Kind names a finding.
type Kind string

const (
	// Gap: consecutive committed batches leave offsets [From, To) unapplied.
	Gap Kind = "gap"
	// Overlap: two committed batches both applied [From, To).
	Overlap Kind = "overlap"
	// NextOffsetMismatch: exactly_offsets.next_offset is not where the last
	// committed batch ends.
	NextOffsetMismatch Kind = "next_offset_mismatch"
	// HashMismatch: the range re-read from Kafka has the ledger's record
	// count but another hash.
	HashMismatch Kind = "hash_mismatch"
	// CountMismatch: the range re-read from Kafka holds another number of
	// records than the ledger counted.
	CountMismatch Kind = "count_mismatch"
	// RetentionLoss: Kafka deleted offsets [From, To) before they were
	// applied; they can never be applied.
	RetentionLoss Kind = "retention_loss"
	// FailedUnresolved: a failed batch whose range no committed batch covers.
	// Reported whatever Options.Since says when the range reaches beyond
	// next_offset: its records are still not applied.
	FailedUnresolved Kind = "failed_unresolved"
	// UnknownHashScheme: the ledger's hash names a scheme (the prefix
	// before ':') this version does not know, so the range cannot be
	// re-hashed: the row was written by a newer exactly, or altered.
	UnknownHashScheme Kind = "unknown_hash_scheme"
	// DeadLetters: records in [From, To) sit in exactly_dead_letters,
	// open (not redriven): the ledger counts them as handled, the tables do
	// not hold them. Reported whatever Options.Since says: an open dead
	// letter stays a problem until it is redriven.
	DeadLetters Kind = "dead_letters"
	// TopicRecreated: the topic's id is not the one the partition's
	// offsets row was seeded in: the topic was deleted and created again,
	// next_offset counts records of the old topic (the pipeline halts the
	// partition on assignment) and the ledger's ranges are not re-read
	// from the new one (noted as DeletedAfterApply). One per partition,
	// whatever Options.Since says; exactly reseed records the new id.
	TopicRecreated Kind = "topic_recreated"
	// AlteredMarker: a marker of exactly prune that does not agree with
	// itself (notes that do not parse, a records count other than its
	// notes' sum, a hash that is not a prune digest, an empty range), or
	// another marker of the same partition since its last reseed, where
	// exactly prune keeps one. The chain still starts at the newest.
	AlteredMarker Kind = "altered_marker"

	// Notes, not findings: ranges that cannot be re-hashed.

	// DeletedAfterApply: retention removed (part of) a range after it was
	// applied; normal, but the range can no longer be re-hashed.
	DeletedAfterApply Kind = "deleted_after_apply"
	// Compacted: the topic is compacted and the range lost records to it.
	Compacted Kind = "compacted"
	// Reseeded: an operator moved next_offset with exactly reseed (a
	// recreated topic, a reset cluster, a truncated log); the ledger row
	// says who, why, from and to. The chain is checked from there: the
	// rows before it were written against the log as it was then.
	Reseeded Kind = "reseeded"
	// Pruned: exactly prune deleted the ledger rows of the range (the
	// marker row says how many, who, when, why); the chain starts at its
	// end. Not re-read from Kafka: usually gone to retention by then.
	Pruned Kind = "pruned"
)

// Finding is one problem, with its coordinates.
type Finding struct {
	Kind      Kind   `json:"kind"`
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	From      int64  `json:"from"` // inclusive
	To        int64  `json:"to"`   // exclusive
	BatchID   string `json:"batch_id,omitempty"`
	// OtherBatchID is the batch on the other side of a gap or overlap.
	OtherBatchID string `json:"other_batch_id,omitempty"`
	// Batches counts the ledger rows a merged note covers.
	Batches int    `json:"batches,omitempty"`
	Ledger  string `json:"ledger,omitempty"` // what the ledger says (count, hash, next_offset)
	Kafka   string `json:"kafka,omitempty"`  // what Kafka says now
	Detail  string `json:"detail"`
}

func (f Finding) String() string {
	s := fmt.Sprintf("%s %s[%d] offsets %d..%d", f.Kind, f.Topic, f.Partition, f.From, f.To-1)
	if f.To <= f.From {
		s = fmt.Sprintf("%s %s[%d] at offset %d", f.Kind, f.Topic, f.Partition, f.From)
	}
	if f.BatchID != "" {
		s += " batch " + f.BatchID
	}
	return s + ": " + f.Detail
}

// Report is the outcome of a verification.
type Report struct {
	Pipeline   string    `json:"pipeline"`
	Since      time.Time `json:"since,omitzero"`
	Partitions int       `json:"partitions"`
	Batches    int       `json:"batches"`  // ledger rows examined
	Rehashed   int       `json:"rehashed"` // ranges re-read from Kafka and compared
	Records    int64     `json:"records"`  // records re-read that fall in a checked range
	// PrunedRows and PrunedRecords sum the markers of exactly prune the
	// chains start at: ledger rows deleted, and the records they counted.
	PrunedRows    int64     `json:"pruned_rows"`
	PrunedRecords int64     `json:"pruned_records"`
	Findings      []Finding `json:"findings"`
	// Notes are ranges that could not be re-hashed, for the record.
	Notes []Finding `json:"notes"`
}

// Clean is true when there are no findings.
func (r *Report) Clean() bool { return len(r.Findings) == 0 }

// Log is the Kafka side verify reads: internal/kafka.Client.
type Log interface {
	// Bounds returns the current offsets of partitions; partitions of
	// missing topics are absent.
	Bounds(ctx context.Context, tps []exactly.TP) (map[exactly.TP]exactly.Bounds, error)
	// Read delivers the committed records with from <= offset < to in
	// offset order; from is not below the log start offset.
	Read(ctx context.Context, tp exactly.TP, from, to int64, fn func(*exactly.Record) error) error
	// Compacted reports whether the topic is compacted.
	Compacted(ctx context.Context, topic string) (bool, error)
	// TopicIDs returns the ids of the topics that have one.
	TopicIDs(ctx context.Context, topics []string) (map[string]string, error)
}

// Options tune a verification.
type Options struct {
	// Since limits the checks to batches started at or after it (the chain
	// is checked from the first such batch). Zero checks everything.
	Since time.Time
	// Select, when set, limits the verification to the partitions it
	// returns true for (exactly verify --topic/--table).
	Select func(exactly.TP) bool
	// Progress, when set, is called after each partition.
	Progress func(tp exactly.TP, done, total int, records int64)
	// File is the configuration file, named in the exactly reseed command
	// a TopicRecreated finding gives.
	File string
}

// Run verifies every partition of the ledger's pipeline.
func Run(ctx context.Context, l *exactly.Ledger, log Log, opt Options) (*Report, error) {
	rep := &Report{Pipeline: l.Pipeline(), Since: opt.Since, Findings: []Finding{}, Notes: []Finding{}}
	tps, err := l.Partitions(ctx)
	if err != nil {
		return nil, err
	}
	if opt.Select != nil {
		tps = slices.DeleteFunc(tps, func(tp exactly.TP) bool { return !opt.Select(tp) })
	}
	offs, err := l.Offsets(ctx)
	if err != nil {
		return nil, err
	}
	next := map[exactly.TP]int64{}
	seededIn := map[exactly.TP]string{}
	for _, o := range offs {
		next[o.TP] = o.Next
		if o.TopicID != "" {
			seededIn[o.TP] = o.TopicID
		}
	}
	bounds, err := log.Bounds(ctx, tps)
	if err != nil {
		return nil, err
	}
	ids, err := topicIDs(ctx, log, tps, seededIn)
	if err != nil {
		return nil, err
	}
	dead, err := l.DeadLetterCounts(ctx)
	if err != nil {
		return nil, err
	}
	reseeds := map[exactly.TP][]exactly.BatchRow{}
	rs, err := l.Reseeds(ctx)
	if err != nil {
		return nil, err
	}
	for _, r := range rs {
		reseeds[r.TP()] = append(reseeds[r.TP()], r)
	}
	markers := map[exactly.TP][]exactly.BatchRow{}
	ms, err := l.Markers(ctx)
	if err != nil {
		return nil, err
	}
	for _, m := range ms {
		markers[m.TP()] = append(markers[m.TP()], m)
	}
	compacted := map[string]bool{}
	for i, tp := range tps {
		b, known := bounds[tp]
		if _, seen := compacted[tp.Topic]; !seen && known {
			c, err := log.Compacted(ctx, tp.Topic)
			if err != nil {
				return nil, err
			}
			compacted[tp.Topic] = c
		}
		var p *partition
		for try := 0; ; try++ {
			saved, findings, notes := *rep, len(rep.Findings), len(rep.Notes)
			p = &partition{tp: tp, ledger: l, opt: opt, rep: rep, log: log, bounds: b, known: known, compacted: compacted[tp.Topic]}
			if n, ok := next[tp]; ok {
				p.next, p.hasNext = n, true
			}
			p.reseeds = reseeds[tp]
			p.markers = markers[tp]
			// A partition the new topic does not have is not reported: the
			// reseed the finding names cannot run there (its ranges are noted
			// as of a partition that no longer exists).
			if id, was := ids[tp.Topic], seededIn[tp]; id != "" && was != "" && id != was && known {
				p.recreated(was, id)
			}
			if err := p.verify(ctx); err != nil {
				return nil, err
			}
			if len(rep.Findings) == findings || try == 2 {
				break
			}
			// An exactly prune that committed since the markers were read
			// deleted rows past the marker read: a gap that is not there.
			// The partition is checked again from its marker now.
			now, err := markersOf(ctx, l, tp)
			if err != nil {
				return nil, err
			}
			if sameRows(now, markers[tp]) {
				break
			}
			markers[tp] = now
			f, n := rep.Findings[:findings], rep.Notes[:notes]
			*rep = saved
			rep.Findings, rep.Notes = f, n
		}
		if c := dead[tp]; c.Open > 0 {
			p.add(Finding{Kind: DeadLetters, From: c.First, To: c.Last + 1,
				Ledger: fmt.Sprintf("%d open dead letters, %d resolved", c.Open, c.Resolved),
				Detail: fmt.Sprintf("%d records between offsets %d and %d were dead-lettered and are not in their table: see exactly_dead_letters for why, fix the cause, then exactly redrive --topic %s --partition %d",
					c.Open, c.First, c.Last, tp.Topic, tp.Partition)})
		}
		rep.Partitions++
		if opt.Progress != nil {
			opt.Progress(tp, i+1, len(tps), rep.Records)
		}
	}
	return rep, nil
}

// markersOf returns the pruned markers of tp, oldest first.
func markersOf(ctx context.Context, l *exactly.Ledger, tp exactly.TP) ([]exactly.BatchRow, error) {
	ms, err := l.Markers(ctx)
	return slices.DeleteFunc(ms, func(m exactly.BatchRow) bool { return m.TP() != tp }), err
}

// sameRows says whether a and b are the same ledger rows (by batch id).
func sameRows(a, b []exactly.BatchRow) bool {
	return slices.EqualFunc(a, b, func(x, y exactly.BatchRow) bool { return x.BatchID == y.BatchID })
}

// partition is the verification of one partition.
type partition struct {
	tp        exactly.TP
	ledger    *exactly.Ledger
	opt       Options
	rep       *Report
	log       Log
	bounds    exactly.Bounds
	known     bool // the partition exists in Kafka
	compacted bool
	next      int64
	hasNext   bool

	links  *exactly.Chain      // the committed batches so far (exactly's chain rule)
	cover  []span              // committed ranges, merged
	failed []*exactly.BatchRow // failed batches in the window

	// reseeds are the partition's reseeded rows, oldest first: the chain
	// is checked from the last one, which explains the break.
	reseeds []exactly.BatchRow
	// markers are the partition's pruned markers, oldest first: the chain
	// starts at the last one when it is newer than the last reseed.
	markers []exactly.BatchRow
	// marker is the marker the chain starts at (nil: none).
	marker *exactly.BatchRow
	// newTopic: the topic was recreated since the offsets row was seeded
	// (recreated): what Kafka holds now says nothing of the ledger's
	// ranges.
	newTopic string
}

// topicIDs returns the current ids of the topics of tps whose offsets row
// recorded one (seededIn); nil when none did.
func topicIDs(ctx context.Context, log Log, tps []exactly.TP, seededIn map[exactly.TP]string) (map[string]string, error) {
	var topics []string
	for _, tp := range tps {
		if seededIn[tp] != "" && !slices.Contains(topics, tp.Topic) {
			topics = append(topics, tp.Topic)
		}
	}
	if len(topics) == 0 {
		return nil, nil
	}
	return log.TopicIDs(ctx, topics)
}

// recreated reports that the partition's topic has id now, not the id
// its offsets row was seeded in (was): one finding for the partition, not
// a count or hash mismatch per range re-read from another topic.
func (p *partition) recreated(was, now string) {
	p.newTopic = now
	kafka := fmt.Sprintf("topic id %s, log %d..%d", now, p.bounds.Start, p.bounds.End)
	p.add(Finding{Kind: TopicRecreated, From: p.next, To: p.next,
		Ledger: fmt.Sprintf("next_offset %d, seeded in topic id %s", p.next, was), Kafka: kafka,
		Detail: fmt.Sprintf("the topic was deleted and created again since the offsets row was seeded (topic id %s then, %s now): next_offset %d counts records of the old topic and the ledger's ranges cannot be re-read from the new one, which does not mean the ledger was altered; %s",
			was, now, p.next, exactly.ReseedHint(p.opt.File, p.tp.Topic, p.tp.Partition, "earliest"))})
}

type span struct{ from, to int64 }

// pageRows is about how many ledger rows one page holds: verify's memory
// does not grow with the length of the ledger.
var pageRows int64 = 5000

func (p *partition) in(b *exactly.BatchRow) bool {
	return p.opt.Since.IsZero() || !b.StartedAt.Before(p.opt.Since)
}

func (p *partition) add(f Finding) {
	f.Topic, f.Partition = p.tp.Topic, p.tp.Partition
	p.rep.Findings = append(p.rep.Findings, f)
}

// note records a range that cannot be re-hashed; adjacent ranges of the
// same kind merge into one note (a year of ledger past the topic's
// retention is one line, not millions).
func (p *partition) note(f Finding) {
	f.Topic, f.Partition = p.tp.Topic, p.tp.Partition
	f.Batches = 1
	// A reseed or a prune is an operator's act with its own who and why:
	// never merged.
	if n := len(p.rep.Notes); n > 0 && f.Kind != Reseeded && f.Kind != Pruned {
		last := &p.rep.Notes[n-1]
		if last.Kind == f.Kind && last.Topic == f.Topic && last.Partition == f.Partition && f.From <= last.To {
			last.To = max(last.To, f.To)
			last.Batches++
			if f.Kind == Compacted {
				last.Ledger, last.Kafka = "", ""
			}
			return
		}
	}
	p.rep.Notes = append(p.rep.Notes, f)
}

func (p *partition) verify(ctx context.Context) error {
	after := ""
	for i := range p.reseeds {
		r := &p.reseeds[i]
		p.note(Finding{Kind: Reseeded, From: min(r.From, r.To), To: max(r.From, r.To), BatchID: r.BatchID,
			Ledger: fmt.Sprintf("next_offset %d -> %d by %s at %s", r.From, r.To, r.Writer, r.StartedAt.Format(time.RFC3339)),
			Detail: fmt.Sprintf("exactly reseed moved next_offset from %d to %d (by %s at %s, reason: %s): the chain restarts at %d; the ledger rows before it were written against the log as it was then and are not re-checked",
				r.From, r.To, r.Writer, r.StartedAt.Format(time.RFC3339), r.Notes, r.To)})
	}
	p.links = exactly.NewChain(p.tp, nil)
	var reseed *exactly.BatchRow
	if n := len(p.reseeds); n > 0 {
		reseed = &p.reseeds[n-1]
		after, p.links = reseed.BatchID, exactly.NewChain(p.tp, reseed)
	}
	for i := range p.markers {
		m := &p.markers[i]
		p.notePruned(m, reseed)
		if exactly.ChainStart(reseed, m) == m {
			if p.marker != nil {
				p.add(Finding{Kind: AlteredMarker, From: m.From, To: m.To, BatchID: m.BatchID, OtherBatchID: p.marker.BatchID,
					Ledger: fmt.Sprintf("pruned markers %s (offsets %d..%d) and %s (offsets %d..%d)", p.marker.BatchID, p.marker.From, p.marker.To-1, m.BatchID, m.From, m.To-1),
					Detail: fmt.Sprintf("two pruned markers since the partition's last reseed, where exactly prune keeps one: a marker inserted or restored; the chain is checked from the newer, %s", m.BatchID)})
			}
			if p.marker == nil || m.BatchID > p.marker.BatchID {
				p.marker = m
			}
		}
	}
	if p.marker != nil {
		p.checkMarker(p.marker)
		// The pruned prefix: its range counts as covered (failed rows in
		// it were pruned with it), and the chain starts at its end.
		p.links = exactly.NewChain(p.tp, p.marker)
		p.cover = append(p.cover, span{p.marker.From, p.marker.To})
	}
	lo, hi, n, err := p.ledger.BatchSpanAfter(ctx, p.tp, after)
	if err != nil {
		return err
	}
	if n > 0 {
		// Pages of the offset space holding about pageRows rows each.
		width := max(1, (hi-lo+1)*pageRows/n)
		for start := lo; start <= hi; start += width {
			rows, err := p.ledger.BatchesFromAfter(ctx, p.tp, start, start+width, after)
			if err != nil {
				return err
			}
			if err := p.page(ctx, rows); err != nil {
				return err
			}
		}
	}
	p.tail()
	p.checkFailed()
	p.retention()
	return nil
}

// notePruned notes a marker of exactly prune; the one the chain starts at
// (newer than the last reseed) also counts in the report's totals.
func (p *partition) notePruned(m, reseed *exactly.BatchRow) {
	n, err := exactly.ParsePruneNotes(m.Notes)
	current := exactly.ChainStart(reseed, m) == m
	f := Finding{Kind: Pruned, From: m.From, To: m.To, BatchID: m.BatchID}
	switch {
	case err != nil:
		f.Ledger = fmt.Sprintf("%d records, notes unreadable", m.Records)
		f.Detail = fmt.Sprintf("exactly prune deleted the ledger rows of offsets %d..%d (the marker's notes do not parse: %v); the chain starts at %d; the range is not re-read",
			m.From, m.To-1, err, m.To)
	default:
		f.Ledger = fmt.Sprintf("%d ledger rows (%d committed, %d failed, %d replayed), %d records, committed before %s; by %s at %s",
			n.Rows(), n.Committed, n.Failed, n.Replayed, n.Records, n.Before.Format(time.RFC3339), m.Writer, n.At.Format(time.RFC3339))
		f.Detail = fmt.Sprintf("exactly prune deleted %d ledger rows of offsets %d..%d (%d records, committed before %s; last by %s at %s, %d prunes; reason: %s): the chain starts at %d; the range is not re-read from Kafka",
			n.Rows(), m.From, m.To-1, n.Records, n.Before.Format(time.RFC3339), m.Writer, n.At.Format(time.RFC3339), n.Prunes, n.Reason, m.To)
	}
	if !current {
		f.Detail += " (before the partition's last reseed: not part of the chain checked)"
	}
	p.note(f)
}

// checkMarker checks the marker the chain starts at against itself: its
// notes parse, its counts are their sums (capped at the 32-bit
// columns'), its hash is a prune digest and its range is not empty. A
// marker is written whole by one transaction of exactly prune: any
// disagreement is an alteration. It counts in the report's totals.
func (p *partition) checkMarker(m *exactly.BatchRow) {
	n, err := exactly.ParsePruneNotes(m.Notes)
	p.rep.PrunedRows += n.Rows()
	p.rep.PrunedRecords += n.Records
	capped := func(v int64) int64 { return min(v, math.MaxInt32) }
	var why string
	switch {
	case err != nil:
		why = fmt.Sprintf("its notes do not parse (%v)", err)
	case n.Committed < 1 || m.From >= m.To:
		why = fmt.Sprintf("it stands for %d committed rows of offsets %d..%d", n.Committed, m.From, m.To-1)
	case m.Records != capped(n.Records) || m.Upserted != capped(n.Upserted) || m.Deleted != capped(n.Deleted) ||
		m.Skipped != capped(n.Skipped) || m.DeadLettered != capped(n.DeadLettered):
		why = fmt.Sprintf("its counts (%d records, %d upserted, %d deleted, %d skipped, %d dead-lettered) are not its notes' sums (%d, %d, %d, %d, %d)",
			m.Records, m.Upserted, m.Deleted, m.Skipped, m.DeadLettered, n.Records, n.Upserted, n.Deleted, n.Skipped, n.DeadLettered)
	case !pruneDigest.MatchString(m.Hash):
		why = fmt.Sprintf("its hash %q is not a digest of exactly prune", m.Hash)
	default:
		return
	}
	p.add(Finding{Kind: AlteredMarker, From: m.From, To: m.To, BatchID: m.BatchID,
		Ledger: fmt.Sprintf("pruned marker %s of offsets %d..%d", m.BatchID, m.From, m.To-1),
		Detail: fmt.Sprintf("the marker of exactly prune %s does not agree with itself: %s; exactly prune writes it whole, so it was altered (exactly prune stops at it too)", m.BatchID, why)})
}

// pruneDigest is the form of exactly.PruneDigest's result.
var pruneDigest = regexp.MustCompile(`^blake3:[0-9a-f]{64}$`)

// page checks one page of ledger rows, in from_offset order.
func (p *partition) page(ctx context.Context, rows []exactly.BatchRow) error {
	var rehash []*exactly.BatchRow
	for i := range rows {
		b := &rows[i]
		if p.in(b) {
			p.rep.Batches++
		}
		switch b.Status {
		case exactly.StatusCommitted:
			if err := p.chain(ctx, b); err != nil {
				return err
			}
		case exactly.StatusFailed:
			// Before the window too when its range reaches beyond
			// next_offset: records not applied since, a stuck partition,
			// stays a problem whatever the window (as dead letters do).
			if p.in(b) || !p.hasNext || b.To > p.next {
				c := *b // not a pointer into the page: it is dropped after
				p.failed = append(p.failed, &c)
			}
		}
		if (b.Status == exactly.StatusCommitted || b.Status == exactly.StatusReplayed) && p.in(b) {
			rehash = append(rehash, b)
		}
	}
	if p.newTopic != "" {
		for _, b := range rehash {
			if b.To > b.From {
				p.note(Finding{Kind: DeletedAfterApply, From: b.From, To: b.To, BatchID: b.BatchID,
					Kafka:  "topic id " + p.newTopic,
					Detail: "the topic was deleted and created again after the range was applied; it cannot be re-hashed"})
			}
		}
		return nil
	}
	return p.rehash(ctx, rehash)
}

// chain checks that a committed batch follows the previous one without gap
// or overlap; a break before the window (Options.Since) is not reported.
func (p *partition) chain(ctx context.Context, b *exactly.BatchRow) error {
	// A break right after the marker is reported whatever the window:
	// rows deleted there without the marker knowing, or a marker moved.
	if brk, broke := p.links.Add(b); broke && brk.Prev != nil && (p.in(b) || brk.Prev.Status == exactly.StatusPruned) {
		prev, end := brk.Prev, brk.End
		switch brk.Kind {
		case exactly.ChainGap:
			if err := p.gap(ctx, prev, b, brk.From, brk.To); err != nil {
				return err
			}
		case exactly.ChainOverlap:
			if prev.Status == exactly.StatusPruned {
				p.add(Finding{Kind: Overlap, From: brk.From, To: brk.To, BatchID: b.BatchID, OtherBatchID: prev.BatchID,
					Ledger: fmt.Sprintf("batch %s starts at %d, the pruned marker %s ends at %d", b.BatchID, b.From, prev.BatchID, end),
					Detail: fmt.Sprintf("committed batch %s covers offsets %d..%d, which the marker %s of exactly prune says were pruned: a ledger row written or restored after the prune, or an altered marker",
						b.BatchID, brk.From, brk.To-1, prev.BatchID)})
				break
			}
			p.add(Finding{Kind: Overlap, From: brk.From, To: brk.To, BatchID: b.BatchID, OtherBatchID: prev.BatchID,
				Ledger: fmt.Sprintf("batch %s starts at %d, previous batch %s ended at %d", b.BatchID, b.From, prev.BatchID, end),
				Detail: fmt.Sprintf("offsets %d..%d were applied by two committed batches (%s and %s): their records took effect twice unless every table they touch upserts by key",
					brk.From, brk.To-1, prev.BatchID, b.BatchID)})
		}
	}
	if n := len(p.cover); n > 0 && b.From <= p.cover[n-1].to {
		p.cover[n-1].to = max(p.cover[n-1].to, b.To)
	} else {
		p.cover = append(p.cover, span{b.From, b.To})
	}
	return nil
}

// tail checks that the last committed batch ends at next_offset.
func (p *partition) tail() {
	if !p.hasNext || p.links.Last() == nil {
		return
	}
	brk, broke := p.links.Close(p.next)
	if !broke {
		return
	}
	end := brk.End
	f := Finding{Kind: NextOffsetMismatch, From: brk.From, To: brk.To, BatchID: brk.Prev.BatchID,
		Ledger: fmt.Sprintf("next_offset %d, last committed batch ends at %d", p.next, end)}
	if p.next > end {
		f.Detail = fmt.Sprintf("exactly_offsets.next_offset is %d but the committed batches end at %d: offsets %d..%d count as applied with no batch recording them", p.next, end, end, p.next-1)
	} else {
		f.Detail = fmt.Sprintf("exactly_offsets.next_offset is %d but committed batches reach %d: the pipeline will apply offsets %d..%d a second time", p.next, end, p.next, end-1)
	}
	p.add(f)
}

// gap reports a chain break [from, to) between prev and b, telling what
// Kafka still holds there.
func (p *partition) gap(ctx context.Context, prev, b *exactly.BatchRow, from, to int64) error {
	f := Finding{Kind: Gap, From: from, To: to, BatchID: b.BatchID, OtherBatchID: prev.BatchID,
		Ledger: fmt.Sprintf("batch %s ends at %d, next batch %s starts at %d", prev.BatchID, from, b.BatchID, to)}
	switch {
	case !p.known:
		f.Kafka = "partition not found"
		f.Detail = fmt.Sprintf("no committed batch covers offsets %d..%d; the partition no longer exists in Kafka", from, to-1)
	case p.newTopic != "":
		f.Kafka = "topic id " + p.newTopic
		f.Detail = fmt.Sprintf("no committed batch covers offsets %d..%d; the topic was deleted and created again since, what it held there can no longer be read", from, to-1)
	default:
		lo := max(from, p.bounds.Start)
		n := 0
		if lo < to {
			if err := p.log.Read(ctx, p.tp, lo, to, func(*exactly.Record) error { n++; return nil }); err != nil {
				return fmt.Errorf("re-reading gap %s %d..%d: %w", p.tp, from, to-1, err)
			}
		}
		f.Kafka = fmt.Sprintf("%d records in the gap now", n)
		f.Detail = fmt.Sprintf("no committed batch covers offsets %d..%d: Kafka still holds %d records there that were never applied", from, to-1, n)
		if n == 0 && lo == from {
			f.Detail = fmt.Sprintf("no committed batch covers offsets %d..%d; Kafka holds no records there (transaction markers or compaction), so nothing was skipped, but the ledger row is missing", from, to-1)
		}
		if p.bounds.Start > from {
			p.add(Finding{Kind: RetentionLoss, From: from, To: min(to, p.bounds.Start), BatchID: b.BatchID,
				Kafka:  fmt.Sprintf("log start offset %d", p.bounds.Start),
				Detail: fmt.Sprintf("offsets %d..%d of a ledger gap were deleted by Kafka before any batch applied them", from, min(to, p.bounds.Start)-1)})
		}
	}
	p.add(f)
	return nil
}

// checkFailed reports failed batches whose range the committed batches do
// not cover.
func (p *partition) checkFailed() {
	covered := func(from, to int64) bool {
		for _, c := range p.cover {
			if c.from <= from && to <= c.to {
				return true
			}
		}
		return false
	}
	reported := map[span]bool{}
	for _, f := range p.failed {
		if covered(f.From, f.To) || reported[span{f.From, f.To}] {
			continue
		}
		reported[span{f.From, f.To}] = true
		p.add(Finding{Kind: FailedUnresolved, From: f.From, To: f.To, BatchID: f.BatchID,
			Ledger: fmt.Sprintf("failed at %s: %s", f.StartedAt.Format(time.RFC3339), f.Error),
			Detail: fmt.Sprintf("batch %s failed and no committed batch covers offsets %d..%d since: they are not applied", f.BatchID, f.From, f.To-1)})
	}
}

// retention reports offsets deleted from Kafka before the pipeline reached
// them: the log now starts above next_offset.
func (p *partition) retention() {
	if !p.known || !p.hasNext || p.bounds.Start <= p.next || p.newTopic != "" {
		return
	}
	p.add(Finding{Kind: RetentionLoss, From: p.next, To: p.bounds.Start,
		Ledger: fmt.Sprintf("next_offset %d", p.next),
		Kafka:  fmt.Sprintf("log start offset %d", p.bounds.Start),
		Detail: fmt.Sprintf("Kafka deleted offsets %d..%d (retention or DeleteRecords) before the pipeline applied them: those records are lost upstream (if the topic is transactional, a range of a single offset may have held only a transaction marker)",
			p.next, p.bounds.Start-1)})
}

// rehash re-reads the ranges in one sequential pass and compares counts
// and hashes with the ledger, each hash re-computed with the scheme the
// row was written with.
func (p *partition) rehash(ctx context.Context, rows []*exactly.BatchRow) error {
	type pending struct {
		*exactly.BatchRow
		scheme exactly.HashScheme
	}
	var todo []pending
	for _, b := range rows {
		if b.To <= b.From {
			continue
		}
		scheme, err := exactly.HashSchemeOf(b.Hash)
		switch {
		case err != nil:
			p.add(Finding{Kind: UnknownHashScheme, From: b.From, To: b.To, BatchID: b.BatchID, Ledger: b.Hash,
				Detail: fmt.Sprintf("the range cannot be re-hashed: %v", err)})
		case !p.known:
			p.note(Finding{Kind: DeletedAfterApply, From: b.From, To: b.To, BatchID: b.BatchID,
				Detail: "the partition no longer exists in Kafka; the range cannot be re-hashed"})
		case b.From < p.bounds.Start && b.Min >= 0 && b.Min < p.bounds.Start:
			p.note(Finding{Kind: DeletedAfterApply, From: b.From, To: b.To, BatchID: b.BatchID,
				Kafka:  fmt.Sprintf("log start offset %d", p.bounds.Start),
				Detail: "Kafka deleted (part of) the range after it was applied; it cannot be re-hashed"})
		default:
			todo = append(todo, pending{b, scheme})
		}
	}
	if len(todo) == 0 {
		return nil
	}
	sort.SliceStable(todo, func(i, j int) bool { return todo[i].From < todo[j].From })
	type check struct {
		b *exactly.BatchRow
		h *exactly.RangeHash
		n int64
	}
	start := func(t pending) *check { return &check{b: t.BatchRow, h: t.scheme.NewRangeHash()} }
	lo, hi := todo[0].From, int64(0)
	for _, b := range todo {
		hi = max(hi, b.To)
	}
	lo = max(lo, p.bounds.Start)
	var active []*check
	nextRow := 0
	finish := func(c *check) {
		p.rep.Rehashed++
		got := c.h.Sum()
		switch {
		case c.n != c.b.Records && p.compacted && c.n < c.b.Records:
			p.note(Finding{Kind: Compacted, From: c.b.From, To: c.b.To, BatchID: c.b.BatchID,
				Ledger: fmt.Sprintf("%d records", c.b.Records), Kafka: fmt.Sprintf("%d records", c.n),
				Detail: "the topic is compacted and the range lost records to compaction after it was applied; it cannot be re-hashed"})
		case c.n != c.b.Records:
			p.add(Finding{Kind: CountMismatch, From: c.b.From, To: c.b.To, BatchID: c.b.BatchID,
				Ledger: fmt.Sprintf("%d records", c.b.Records), Kafka: fmt.Sprintf("%d records", c.n),
				Detail: fmt.Sprintf("the ledger counted %d records in this range, Kafka holds %d now", c.b.Records, c.n)})
		case got != c.b.Hash:
			p.add(Finding{Kind: HashMismatch, From: c.b.From, To: c.b.To, BatchID: c.b.BatchID,
				Ledger: c.b.Hash, Kafka: got,
				Detail: fmt.Sprintf("the %d records Kafka holds in this range do not hash to the ledger's hash: the ledger row or the topic was altered", c.n)})
		}
	}
	err := p.log.Read(ctx, p.tp, lo, hi, func(r *exactly.Record) error {
		in := false
		for nextRow < len(todo) && todo[nextRow].From <= r.Offset {
			active = append(active, start(todo[nextRow]))
			nextRow++
		}
		keep := active[:0]
		for _, c := range active {
			if c.b.To <= r.Offset {
				finish(c)
				continue
			}
			c.h.Add(r)
			c.n++
			in = true
			keep = append(keep, c)
		}
		active = keep
		if in {
			p.rep.Records++
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("re-reading %s %d..%d: %w", p.tp, lo, hi-1, err)
	}
	for _, c := range active {
		finish(c)
	}
	for ; nextRow < len(todo); nextRow++ { // ranges no record reached
		finish(start(todo[nextRow]))
	}
	return nil
}
