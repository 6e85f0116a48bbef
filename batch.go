package exactly

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// PartitionBatch is the records of one partition that one transaction
// applies: from From (the stored next_offset, inclusive) to To (the last
// record's offset + 1, exclusive). Offsets inside may be sparse.
type PartitionBatch struct {
	Topic     string
	Partition int32
	From      int64
	Records   []*Record

	// Filled by the sink while preparing the transaction.
	To          int64
	MinOffset   int64
	MaxOffset   int64
	Hash        string
	Upserted    int
	Deleted     int
	Skipped     int
	DeadLetters []DeadLetter
	BatchID     string
	StartedAt   time.Time
	// Halt, when set, says the partition stops at Halt.Offset (on_error:
	// fail): the batch holds only the records before it.
	Halt *RecordError
	// Notes say what create/evolve did to tables before this batch was
	// applied; they go to the ledger row's notes column.
	Notes []string
	// Epochs says the records carry the leader epoch they were written in
	// (the source's do): the epoch of the last one applied is stored with
	// next_offset. Records made elsewhere have 0 there, which is not
	// unknown.
	Epochs bool
	// Failed is the error the last attempt at this range failed with, set
	// by the source when it retries: the same failure again writes no
	// second failed ledger row (a missing table wrote one a second).
	Failed string
	// Resolved counts the open dead letters of the range Replay applied
	// again (their cause since fixed) and marked resolved in its
	// transaction.
	Resolved int

	changes []change
	// decodeDead is how many of DeadLetters prepare found; the rest were
	// found while writing and are found again by each attempt.
	decodeDead int
}

// DeadLetter is a record that could not be applied, and why.
type DeadLetter struct {
	Record *Record
	Err    error
}

// change is one decoded record bound for a table.
type change struct {
	rec   *Record
	rule  *TableRule
	table string
	Change
}

// errKeyMissing marks a record whose key columns are absent.
var errKeyMissing = errors.New("key missing")

// fillRange sets To, MinOffset, MaxOffset and Hash from Records.
func (b *PartitionBatch) fillRange() {
	b.To = b.From
	b.MinOffset, b.MaxOffset = -1, -1
	if n := len(b.Records); n > 0 {
		b.MinOffset, b.MaxOffset = b.Records[0].Offset, b.Records[n-1].Offset
		b.To = b.MaxOffset + 1
	}
	b.Hash = HashRecords(b.Records)
}

// recordError gives err the record's coordinates, unless it has them.
func recordError(rec *Record, err error) *RecordError {
	var re *RecordError
	if errors.As(err, &re) && re.Topic == rec.Topic && re.Partition == rec.Partition && re.Offset == rec.Offset {
		return re
	}
	return &RecordError{Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset, Err: err}
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
