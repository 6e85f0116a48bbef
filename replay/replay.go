// Package replay re-applies committed offset ranges of partitions from
// Kafka through exactly.Sink.Replay: it checks every range against the
// ledger and the log before anything is written, then reads each range
// and applies it in transactions of at most batch.max_records records.
// The command selects partitions and prints; this package decides.
package replay

import (
	"context"
	"errors"
	"fmt"

	"github.com/exactly/exactly"
)

// Log is the Kafka side a replay reads: internal/kafka.Reader.
type Log interface {
	// Bounds returns the current offsets of partitions; partitions of
	// missing topics are absent.
	Bounds(ctx context.Context, tps []exactly.TP) (map[exactly.TP]exactly.Bounds, error)
	// Read delivers the committed records with from <= offset < to in
	// offset order.
	Read(ctx context.Context, tp exactly.TP, from, to int64, fn func(*exactly.Record) error) error
	// TopicIDs returns the ids of the topics that have one.
	TopicIDs(ctx context.Context, topics []string) (map[string]string, error)
}

// Range is one partition's range to replay: [From, To), Next its
// next_offset when the replay began.
type Range struct {
	TP             exactly.TP
	From, To, Next int64
	// TopicID is the topic's id exactly_offsets recorded; "" unknown.
	TopicID string
}

// EmptyError says the requested range holds no committed offset: in the
// one selected partition (Selected 1), or in none of them.
type EmptyError struct {
	TP       exactly.TP
	From, To int64
	Selected int
}

func (e *EmptyError) Error() string {
	if e.Selected == 1 {
		return fmt.Sprintf("%s --from %d --to %d: the range is empty", e.TP, e.From, e.To)
	}
	return fmt.Sprintf("--from %d: none of the %d selected partitions has committed offsets in the range", e.From, e.Selected)
}

// Ranges checks [from, to) against each selected partition's next_offset
// (next); to < 0 means each partition's next_offset. A range reaching
// beyond next_offset is refused with a *exactly.ReplayRangeError; a
// partition with nothing committed in the range is skipped (returned in
// skipped, also with an error: the command says so), unless it is the only
// one or all are (*EmptyError).
func Ranges(tps []exactly.TP, next map[exactly.TP]int64, from, to int64) (ranges, skipped []Range, err error) {
	for _, tp := range tps {
		r := Range{TP: tp, From: from, To: to, Next: next[tp]}
		if to < 0 {
			r.To = r.Next
		}
		switch {
		case r.To > r.Next:
			return nil, skipped, &exactly.ReplayRangeError{Topic: tp.Topic, Partition: tp.Partition, To: r.To, Next: r.Next}
		case r.From >= r.To && len(tps) == 1:
			return nil, skipped, &EmptyError{TP: tp, From: r.From, To: r.To, Selected: 1}
		case r.From >= r.To:
			skipped = append(skipped, r)
			continue
		}
		ranges = append(ranges, r)
	}
	if len(ranges) == 0 {
		return nil, skipped, &EmptyError{From: from, Selected: len(tps)}
	}
	return ranges, skipped, nil
}

// Partitions are the ranges' partitions.
func Partitions(ranges []Range) []exactly.TP {
	tps := make([]exactly.TP, len(ranges))
	for i, r := range ranges {
		tps[i] = r.TP
	}
	return tps
}

// CheckLog refuses a range part of which Kafka no longer holds (retention)
// or whose partition does not exist, a range of a log that is not the one
// the ledger counted (the topic has another id than exactly_offsets
// recorded, or its log ends below the range), and warns of each range
// that ends before next_offset on a table without a version column: keys
// changed again after it keep the replayed, older, values.
func CheckLog(ctx context.Context, cfg *exactly.Config, log Log, ranges []Range) (warnings []string, err error) {
	bounds, err := log.Bounds(ctx, Partitions(ranges))
	if err != nil {
		return nil, err
	}
	ids, err := topicIDs(ctx, log, ranges)
	if err != nil {
		return nil, err
	}
	for _, r := range ranges {
		b, ok := bounds[r.TP]
		if !ok {
			return nil, fmt.Errorf("%s does not exist in Kafka", r.TP)
		}
		if id := ids[r.TP.Topic]; id != "" && r.TopicID != "" && id != r.TopicID {
			return nil, fmt.Errorf("replaying %s: the topic was deleted and created again since next_offset %d was recorded (topic id %s then, %s now): the range's records are gone, and the new topic's would be applied in their place; exactly verify tells, exactly reseed moves next_offset",
				r.TP, r.Next, r.TopicID, id)
		}
		if r.To > b.End {
			return nil, fmt.Errorf("replaying %s to %d: Kafka's log ends at %d, below the range (next_offset %d): the topic was deleted and created again or its log truncated, so what it holds is not what was applied; exactly verify tells, exactly reseed moves next_offset",
				r.TP, r.To, b.End, r.Next)
		}
		if r.From < b.Start {
			return nil, fmt.Errorf("replaying %s from %d: Kafka's log now starts at %d, offsets %d..%d were deleted (retention) and cannot be replayed; use --from %d",
				r.TP, r.From, b.Start, r.From, b.Start-1, b.Start)
		}
		if r.To < r.Next {
			if rule, _, _ := cfg.Route(r.TP.Topic); rule != nil && rule.Version == "" {
				warnings = append(warnings, fmt.Sprintf("replaying %s up to %d while next_offset is %d and the table has no version column: keys changed again after offset %d will hold the replayed (older) values until those offsets are replayed too",
					r.TP, r.To, r.Next, r.To-1))
			}
		}
	}
	return warnings, nil
}

// Result is what one range's replay did.
type Result struct {
	Records, Upserted, Deleted, Txs, Resolved int
	// BatchIDs are the ledger rows (status replayed), one per transaction.
	BatchIDs []string
	// At is the offset the replay reached: the range's end when it
	// succeeded, the first offset not replayed when it failed.
	At int64
}

// Run replays one range through sink, in transactions of at most
// maxRecords records; progress is called after each. A range refused by
// the ledger is returned as its *exactly.ReplayRangeError; a pipeline that
// moved next_offset meanwhile as its *exactly.ReplayMovedError, wrapped
// with which offsets were replayed before when some were.
func Run(ctx context.Context, sink *exactly.Sink, log Log, r Range, maxRecords int, progress func(Result)) (Result, error) {
	res := Result{At: r.From}
	var chunk []*exactly.Record
	flush := func() error {
		if len(chunk) == 0 {
			return nil
		}
		pb := &exactly.PartitionBatch{Topic: r.TP.Topic, Partition: r.TP.Partition, From: res.At, Records: chunk}
		if err := sink.Replay(ctx, pb, r.Next); err != nil {
			return err
		}
		res.Records += len(pb.Records)
		res.Upserted += pb.Upserted
		res.Deleted += pb.Deleted
		res.Resolved += pb.Resolved
		res.Txs++
		res.BatchIDs = append(res.BatchIDs, pb.BatchID)
		res.At, chunk = pb.To, nil
		progress(res)
		return nil
	}
	err := log.Read(ctx, r.TP, r.From, r.To, func(rec *exactly.Record) error {
		chunk = append(chunk, rec)
		if len(chunk) >= maxRecords {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err == nil {
		return res, nil
	}
	var re *exactly.ReplayRangeError
	var me *exactly.ReplayMovedError
	switch {
	case errors.As(err, &re):
		return res, err
	case errors.As(err, &me) && res.At > r.From:
		return res, fmt.Errorf("replaying %s: offsets %d..%d were replayed before the pipeline moved on; rows they changed may hold older values until those offsets are replayed again: %w", r.TP, r.From, res.At-1, err)
	case errors.As(err, &me):
		return res, err
	}
	return res, fmt.Errorf("replaying %s from offset %d (offsets before it were replayed): %w", r.TP, res.At, err)
}

// topicIDs returns the current ids of the topics of the ranges that know
// theirs; nil when none does.
func topicIDs(ctx context.Context, log Log, ranges []Range) (map[string]string, error) {
	var tps []exactly.TP
	for _, r := range ranges {
		if r.TopicID != "" {
			tps = append(tps, r.TP)
		}
	}
	if len(tps) == 0 {
		return nil, nil
	}
	return log.TopicIDs(ctx, exactly.Topics(tps))
}
