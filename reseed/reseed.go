// Package reseed decides where halted partitions resume when an operator
// moves their next_offset (exactly reseed): --to resolved against each
// partition's log, and a move back on a log that still holds what was
// applied refused unless the operator says the log was rewritten. The
// command checks ownership, writes through exactly.Sink.Reseed and prints.
package reseed

import (
	"fmt"

	"github.com/exactly/exactly"
)

// RangeError says an offset given to --to is outside a partition's log.
type RangeError struct {
	TP                  exactly.TP
	Offset, Start, Last int64 // Last: the last stable offset
}

func (e *RangeError) Error() string {
	return fmt.Sprintf("--to %d: %s holds offsets %d..%d (log start %d, last stable offset %d); reseed within them", e.Offset, e.TP, e.Start, e.Last, e.Start, e.Last)
}

// RewindError says a move would go back on a log that still holds the
// records in between: they would be applied a second time.
type RewindError struct {
	TP         exactly.TP
	To, Next   int64
	Start, End int64
}

func (e *RewindError) Error() string {
	return fmt.Sprintf("%s: --to %d is below next_offset %d, and the log (offsets %d..%d, the same topic) still holds what was applied: records %d..%d would be applied a second time (duplicates in append tables, older values in upsert tables without a version). This partition is not beyond its log's end; to re-apply a range use exactly replay. If the log was truncated and rewritten after an unclean leader election, pass --rewind",
		e.TP, e.To, e.Next, e.Start, e.End, e.To, e.Next-1)
}

// Targets resolves --to for each partition: "earliest" is its log start,
// "latest" its last stable offset (latest), anything else offset, which
// must lie between the two (*RangeError).
func Targets(tps []exactly.TP, to string, offset int64, bounds map[exactly.TP]exactly.Bounds, latest map[exactly.TP]int64) (map[exactly.TP]int64, error) {
	out := map[exactly.TP]int64{}
	for _, tp := range tps {
		b := bounds[tp]
		switch {
		case to == "earliest":
			out[tp] = b.Start
		case to == "latest":
			out[tp] = latest[tp]
		case offset < b.Start || offset > latest[tp]:
			return nil, &RangeError{TP: tp, Offset: offset, Start: b.Start, Last: latest[tp]}
		default:
			out[tp] = offset
		}
	}
	return out, nil
}

// CheckRewind refuses (*RewindError) to move a partition's next_offset
// back while its log, of the same topic (topicID, when both ids are
// known), still holds it, unless rewind: the records in between would be
// applied a second time.
func CheckRewind(tps []exactly.TP, stored map[exactly.TP]exactly.Position, bounds map[exactly.TP]exactly.Bounds, topicID string, to map[exactly.TP]int64, rewind bool) error {
	if rewind {
		return nil
	}
	for _, tp := range tps {
		st, b := stored[tp], bounds[tp]
		sameTopic := st.TopicID == "" || topicID == "" || st.TopicID == topicID
		if sameTopic && st.Next <= b.End && to[tp] < st.Next {
			return &RewindError{TP: tp, To: to[tp], Next: st.Next, Start: b.Start, End: b.End}
		}
	}
	return nil
}
