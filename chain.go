package exactly

import (
	"context"
	"fmt"
)

// The chain rule, the one every audit applies (verify, exactly status, the
// status page, the workload checker): per partition, the committed
// batches in from_offset order follow each other without gap or overlap
// (each from_offset is the previous to_offset), and the last one ends at
// exactly_offsets.next_offset. A replayed row re-applies a committed range
// by design and a failed row applied nothing: neither is in the chain. A
// reseeded row restarts it where exactly reseed moved next_offset; the
// rows written before it (against the log as it was then) are not in it.
// A pruned row (exactly prune's marker, newer than the last reseed)
// stands for the chain's pruned prefix: the chain starts at its
// to_offset, and the first committed row left must begin there.

// ChainBreakKind names a break in a partition's chain.
type ChainBreakKind string

const (
	// ChainGap: offsets [From, To) are in no committed batch.
	ChainGap ChainBreakKind = "gap"
	// ChainOverlap: offsets [From, To) are in two committed batches.
	ChainOverlap ChainBreakKind = "overlap"
	// ChainNextOffset: next_offset is not where the last committed batch
	// ends; [From, To) lies between the two.
	ChainNextOffset ChainBreakKind = "next_offset"
)

// ChainBreak is a break in a partition's chain of committed batches.
type ChainBreak struct {
	TP
	Kind     ChainBreakKind
	From, To int64 // the offsets concerned, [From, To)
	// End is where the chain ended before the break: the highest
	// to_offset of the committed batches before Batch.
	End int64
	// Next is exactly_offsets.next_offset (ChainNextOffset only).
	Next int64
	// Prev is the committed (or reseeded) row the chain ended with before
	// the break; Batch the row that breaks it (nil for ChainNextOffset).
	Prev, Batch *BatchRow
}

// Problem says what the break means, in a sentence.
func (b ChainBreak) Problem() string {
	switch b.Kind {
	case ChainGap:
		return fmt.Sprintf("gap: offsets %d..%d are in no committed batch", b.From, b.To-1)
	case ChainOverlap:
		return fmt.Sprintf("overlap: a batch starts at %d but the previous one ended at %d (offsets applied twice?)", b.From, b.End)
	}
	return fmt.Sprintf("next_offset is %d but the last committed batch ends at %d", b.Next, b.End)
}

func (b ChainBreak) String() string { return fmt.Sprintf("%s: %s", b.TP, b.Problem()) }

// Chain follows one partition's chain of committed batches, one row at a
// time, so a ledger of any length is checked in bounded memory.
type Chain struct {
	tp      TP
	started bool
	end     int64     // the highest to_offset so far
	last    *BatchRow // the last committed or reseeded row taken
}

// NewChain starts the chain of tp at the to_offset of a row that restarts
// it (its last reseeded row or its pruned marker: ChainStart), or, when
// reseed is nil, at its first committed batch.
func NewChain(tp TP, reseed *BatchRow) *Chain {
	c := &Chain{tp: tp}
	if reseed != nil {
		r := *reseed
		c.started, c.end, c.last = true, r.To, &r
	}
	return c
}

// NewChainFrom starts the chain of tp at offset start: the first committed
// batch must begin there (a topic read from its beginning).
func NewChainFrom(tp TP, start int64) *Chain {
	return &Chain{tp: tp, started: true, end: start}
}

// Started reports whether the chain has an end yet: a committed batch or
// a reseed was taken, or it was started at an offset.
func (c *Chain) Started() bool { return c.started }

// End is the highest to_offset of the committed batches taken.
func (c *Chain) End() int64 { return c.end }

// Last is the last committed (or reseeded) row the chain took; nil before
// the first.
func (c *Chain) Last() *BatchRow { return c.last }

// Add takes the partition's next committed batch (in from_offset order)
// and returns the break it makes, if any. Rows of another status must not
// be given (see the rule above).
func (c *Chain) Add(b *BatchRow) (ChainBreak, bool) {
	brk, broke := ChainBreak{TP: c.tp, End: c.end, Prev: c.last, Batch: b}, false
	if c.started {
		switch {
		case b.From > c.end:
			brk.Kind, brk.From, brk.To, broke = ChainGap, c.end, b.From, true
		case b.From < c.end:
			brk.Kind, brk.From, brk.To, broke = ChainOverlap, b.From, min(c.end, b.To), true
		}
	}
	if !c.started || b.To > c.end {
		c.end = b.To
	}
	c.started = true
	r := *b
	c.last = &r
	return brk, broke
}

// Close checks that the chain ends at next_offset. A chain that never
// started has nothing to compare.
func (c *Chain) Close(next int64) (ChainBreak, bool) {
	if !c.started || next == c.end {
		return ChainBreak{}, false
	}
	return ChainBreak{TP: c.tp, Kind: ChainNextOffset, From: min(next, c.end), To: max(next, c.end),
		End: c.end, Next: next, Prev: c.last}, true
}

// CheckChains checks the chain of every partition of the pipeline and
// returns its breaks and how many committed rows it followed. offsets
// must have been read before (Offsets): a row starting at or past a
// partition's next_offset was committed after that read by a running
// pipeline and is left for the next check, so a live ledger does not look
// broken. Rows are read in from_offset order, one partition after
// another, without holding them.
func (l *Ledger) CheckChains(ctx context.Context, offsets []OffsetRow) ([]ChainBreak, int64, error) {
	return l.CheckChainsOf(ctx, offsets, nil)
}

// CheckChainsOf is CheckChains for the partitions only accepts (every
// partition when only is nil): the breaks and the count of committed rows
// followed are theirs alone.
func (l *Ledger) CheckChainsOf(ctx context.Context, offsets []OffsetRow, only func(TP) bool) ([]ChainBreak, int64, error) {
	reseeds, err := l.Reseeds(ctx)
	if err != nil {
		return nil, 0, err
	}
	last := map[TP]*BatchRow{} // the last reseed of each partition
	for i := range reseeds {
		last[reseeds[i].TP()] = &reseeds[i]
	}
	markers, err := l.Markers(ctx)
	if err != nil {
		return nil, 0, err
	}
	out, n, err := l.checkChains(ctx, offsets, only, last, markers)
	if err != nil || len(out) == 0 {
		return out, n, err
	}
	// An exactly prune that committed between the read of the markers and
	// the read of the rows deleted rows right after a marker read: a gap
	// that is not there (or, every row before next_offset pruned, a chain
	// that ends at the old marker). The marker now ending at or past the
	// break says so; a prune never runs past a real break.
	now, err := l.Markers(ctx)
	if err != nil {
		return nil, 0, err
	}
	starts := chainStarts(last, now)
	kept := out[:0]
	for _, brk := range out {
		if !prunedMeanwhile(brk, starts[brk.TP]) {
			kept = append(kept, brk)
		}
	}
	return kept, n, nil
}

// chainStarts returns where each partition's chain starts: its marker
// newer than its last reseed, or that reseed.
func chainStarts(last map[TP]*BatchRow, markers []BatchRow) map[TP]*BatchRow {
	start := map[TP]*BatchRow{}
	for tp, r := range last {
		start[tp] = r
	}
	for i := range markers {
		m := &markers[i]
		start[m.TP()] = ChainStart(start[m.TP()], m)
	}
	return start
}

// prunedMeanwhile says whether brk, a break right after the row the
// chain started at, is the rows a prune deleted since: the partition's
// marker now is newer than that row and ends past the break.
func prunedMeanwhile(brk ChainBreak, now *BatchRow) bool {
	s := brk.Prev
	if now == nil || now.Status != StatusPruned || s == nil || (s.Status != StatusPruned && s.Status != StatusReseeded) ||
		now.BatchID <= s.BatchID || brk.End != s.To {
		return false
	}
	switch brk.Kind {
	case ChainGap:
		return brk.From == s.To && brk.To <= now.To
	case ChainNextOffset:
		return brk.Next <= now.To
	}
	return false
}

// checkChains is one check of CheckChainsOf, from the last reseeds and
// the markers read.
func (l *Ledger) checkChains(ctx context.Context, offsets []OffsetRow, only func(TP) bool, last map[TP]*BatchRow, markers []BatchRow) ([]ChainBreak, int64, error) {
	start := chainStarts(last, markers) // where each partition's chain starts: its marker, or its last reseed
	next := make(map[TP]int64, len(offsets))
	for _, o := range offsets {
		next[o.TP] = o.Next
	}
	chains := map[TP]*Chain{}
	chain := func(tp TP) *Chain {
		c := chains[tp]
		if c == nil {
			c = NewChain(tp, start[tp])
			chains[tp] = c
		}
		return c
	}
	var out []ChainBreak
	var n int64
	err := l.eachCommitted(ctx, func(b *BatchRow) {
		tp := b.TP()
		if only != nil && !only(tp) {
			return
		}
		if rs := last[tp]; rs != nil && b.BatchID < rs.BatchID {
			return // written against the log as it was before the reseed
		}
		if nx, ok := next[tp]; ok && b.From >= nx && b.To > b.From {
			return // committed after the offsets were read
		}
		n++
		if brk, ok := chain(tp).Add(b); ok {
			out = append(out, brk)
		}
	})
	if err != nil {
		return nil, 0, err
	}
	for _, o := range offsets {
		if only != nil && !only(o.TP) {
			continue
		}
		if c := chains[o.TP]; c != nil {
			if brk, ok := c.Close(o.Next); ok {
				out = append(out, brk)
			}
		} else if rs := start[o.TP]; rs != nil {
			if brk, ok := NewChain(o.TP, rs).Close(o.Next); ok {
				out = append(out, brk)
			}
		}
	}
	return out, n, nil
}

// eachCommitted calls fn with every committed row of the pipeline, by
// partition, in from_offset order.
func (l *Ledger) eachCommitted(ctx context.Context, fn func(*BatchRow)) error {
	cols, err := l.columns(ctx)
	if err != nil {
		return err
	}
	p := l.d.Quote("partition")
	q := Rebind(l.d, fmt.Sprintf("SELECT %s FROM exactly_batches WHERE pipeline = ? AND status = ? ORDER BY topic, %s, from_offset, started_at, batch_id",
		cols(""), p))
	return l.eachBatch(ctx, "the batch chain", q, []any{l.pipeline, StatusCommitted}, fn)
}
