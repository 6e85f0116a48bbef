// Package exactly holds the domain of the exactly-once Kafka → SQL sink:
// records, changes, partition batches, the dialect interface, and the one
// place where a batch's data, its ledger row and its offset advance are
// committed together (see Sink.Commit).
//
// The rule of this package: a record at offset o has taken effect in the
// target tables if and only if o < exactly_offsets.next_offset, because both
// are written in one database transaction. Kafka's own group offsets are
// never consulted as truth.
package exactly

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Record is one Kafka record as read from a partition.
type Record struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       []byte
	Value     []byte // nil for a tombstone
	Headers   []Header
	Timestamp time.Time
	// LeaderEpoch is the partition leader's epoch when the record was
	// written (-1 unknown): stored with next_offset, so a restart can
	// tell a truncated log (KIP-320).
	LeaderEpoch int32
}

// Header is a Kafka record header.
type Header struct {
	Key   string
	Value []byte
}

// Op is what a decoded record does to its target row.
type Op uint8

const (
	// OpUpsert inserts the row or replaces the row with the same key.
	OpUpsert Op = iota + 1
	// OpDelete deletes the row with the key.
	OpDelete
	// OpSkip means the record carries no change (a tombstone after a
	// Debezium delete, a heartbeat); it still counts as seen.
	OpSkip
)

func (o Op) String() string {
	switch o {
	case OpUpsert:
		return "upsert"
	case OpDelete:
		return "delete"
	case OpSkip:
		return "skip"
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// Change is a decoded record: what it does and to which row.
//
// Values in Row and Key are one of: nil, bool, int64, float64, string,
// []byte, time.Time, Decimal, JSON.
type Change struct {
	Op Op
	// Key holds the key columns. Decoders fill it from the record key when
	// it is a JSON object; otherwise the engine takes the table's key
	// columns from Row.
	Key map[string]any
	// Row is the full new row image for OpUpsert, nil otherwise.
	Row map[string]any
	// Version is the value of the table's version column, when configured.
	Version any
	// Schema describes Row's fields, in schema order, when the record
	// carries a schema (a Debezium/Connect JSON schema, an Avro schema):
	// auto-create and evolve then take column types from it (see
	// ConnectType, AvroType) instead of inferring them from values.
	// Decoders may share one slice between records; nobody modifies it.
	// Nil when the record has no schema.
	Schema []Field
}

// Decimal is an exact decimal number in its canonical text form ("-12.340").
type Decimal string

// JSON is a nested JSON value kept as its text.
type JSON string

// Decoder turns a record into a change. Implementations are pure and safe
// for concurrent use; an error means the record goes to the dead letters.
type Decoder interface {
	Decode(r *Record) (Change, error)
}

// Preparer is implemented by decoders that must fetch something before
// they can decode, such as an Avro schema from a registry. Sink calls
// Prepare once per batch and rule, before Decode, with the records routed
// to the rule; Decode itself then stays free of I/O. An error fails the
// batch (it is retried later), so an outage of what Prepare reaches never
// turns good records into dead letters. A record that can never be
// resolved (an unknown schema id) is not Prepare's error: Decode reports it
// and the record becomes a dead letter.
type Preparer interface {
	Prepare(ctx context.Context, recs []*Record) error
}

// RecordError names a record that could not be applied and why.
type RecordError struct {
	Topic     string
	Partition int32
	Offset    int64
	Err       error
}

func (e *RecordError) Error() string {
	return fmt.Sprintf("%s[%d]@%d: %v", e.Topic, e.Partition, e.Offset, e.Err)
}

func (e *RecordError) Unwrap() error { return e.Err }

// FencedError says another writer advanced a partition's offset first: the
// batch was rolled back and the partition must be re-read from Stored.
type FencedError struct {
	Topic     string
	Partition int32
	Want      int64 // the next_offset the batch started from
	Stored    int64 // the next_offset the database holds
}

func (e *FencedError) Error() string {
	return fmt.Sprintf("fenced: %s[%d] batch starts at %d but exactly_offsets.next_offset is %d (another writer advanced it); re-reading from %d",
		e.Topic, e.Partition, e.Want, e.Stored, e.Stored)
}

// GapError says records the ledger expects were deleted from Kafka before
// they were applied (retention, topic recreation): real upstream loss.
type GapError struct {
	Topic     string
	Partition int32
	Want      int64 // next_offset from the ledger
	Got       int64 // the partition's log start offset
	Hint      string
}

func (e *GapError) Error() string {
	return fmt.Sprintf("gap: %s[%d] needs offset %d but the log starts at %d: offsets %d..%d were deleted before they were applied; %s",
		e.Topic, e.Partition, e.Want, e.Got, e.Want, e.Got-1, e.Hint)
}

// ReseedHint is the way out of a halt that only an operator can decide:
// the copyable command, with the configuration file when known.
func ReseedHint(file, topic string, partition int32, to string) string {
	c := "exactly reseed"
	if file != "" {
		c += " -c " + shellQuote(file)
	}
	return fmt.Sprintf("the partition is halted; decide where it resumes, stop the pipeline (every member of its group), then run: %s --topic %s --partition %d --to %s --reason 'TEXT' (--to earliest, latest or an offset; the move is written to the ledger with who and why)",
		c, shellQuote(topic), partition, to)
}

func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-/:=@+,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// BeyondLogEndError says a partition's stored next_offset is beyond the
// end of its log: the topic was deleted and recreated, the cluster was
// reset or replaced, or the log was truncated. The records the ledger
// counts as applied are not the ones Kafka holds now; where to resume is
// the operator's decision (exactly reseed).
type BeyondLogEndError struct {
	Topic     string
	Partition int32
	Next      int64 // next_offset from the ledger
	End       int64 // the partition's log end (high watermark)
	Cause     string
	Hint      string
}

func (e *BeyondLogEndError) Error() string {
	return fmt.Sprintf("offsets beyond the log end: %s[%d] next_offset is %d but the log ends at %d (lag %d): %s; %s",
		e.Topic, e.Partition, e.Next, e.End, e.End-e.Next, e.Cause, e.Hint)
}

// TopicRecreatedError says the topic's id changed since the partition's
// offsets row was seeded: the topic was deleted and created again, its
// offsets start over and next_offset means nothing in it.
type TopicRecreatedError struct {
	Topic      string
	Partition  int32
	Next       int64
	End        int64 // the new topic's log end; -1 unknown
	Stored, ID string
	Hint       string
}

func (e *TopicRecreatedError) Error() string {
	end := ""
	if e.End >= 0 {
		end = fmt.Sprintf(", the new topic's log ends at %d (lag %d)", e.End, e.End-e.Next)
	}
	return fmt.Sprintf("topic recreated: %s[%d] has topic id %s, the ledger's offsets row was seeded in topic id %s (the topic was deleted and created again); next_offset %d counts records of the old topic%s; %s",
		e.Topic, e.Partition, e.ID, e.Stored, e.Next, end, e.Hint)
}

// LogTruncatedError says Kafka no longer holds records the pipeline
// applied: the log was truncated below next_offset (an unclean leader
// election, KIP-320), seen by the leader epoch stored with next_offset.
type LogTruncatedError struct {
	Topic     string
	Partition int32
	Next      int64 // what the pipeline applied up to (exclusive)
	Epoch     int32 // the leader epoch of the last applied record
	ResetTo   int64 // where the log diverged
	Hint      string
}

func (e *LogTruncatedError) Error() string {
	return fmt.Sprintf("log truncated: %s[%d] was applied up to offset %d in leader epoch %d, but the log diverged at offset %d (an unclean leader election?): offsets %d..%d the tables hold may differ from what Kafka holds now, and records written there since would be skipped; %s",
		e.Topic, e.Partition, e.Next, e.Epoch, e.ResetTo, e.ResetTo, e.Next-1, e.Hint)
}

// LockTimeoutError says a batch's fence waited too long for its
// partition's exactly_offsets row, locked by another transaction (a
// paused member, a zombie, whose transaction the database ends after
// sink's idle-transaction timeout): the partition was dropped from the
// flight and is read again from the ledger offset.
type LockTimeoutError struct {
	Topic     string
	Partition int32
	From      int64
	Err       error
}

func (e *LockTimeoutError) Error() string {
	return fmt.Sprintf("fence of %s[%d] at %d timed out waiting for its exactly_offsets row, locked by another transaction (a paused or stuck writer?); the partition was left out of this flight and will be retried: %v",
		e.Topic, e.Partition, e.From, e.Err)
}

func (e *LockTimeoutError) Unwrap() error { return e.Err }

// RefusedError says the database refused rows of a table write for a
// reason that may not be the rows' own: more than sink.refused_share of
// them (a constraint an operator added?), or a foreign key (a parent not
// written yet?). The flight was rolled back and is retried; from Until on,
// the refused rows become dead letters.
type RefusedError struct {
	Table      string
	Refused    int
	Rows       int
	ForeignKey bool
	First      *RecordError
	Until      time.Time
}

func (e *RefusedError) Error() string {
	why := fmt.Sprintf("the database refused %d of the %d rows written to %s", e.Refused, e.Rows, e.Table)
	hint := "by a NOT NULL or CHECK constraint, more than sink.refused_share of them: a constraint of the table, not the rows? fix the table"
	if e.ForeignKey {
		hint = "a foreign key: the parent row may still come; check the parent table"
	}
	return fmt.Sprintf("%s (%s); the flight is retried, and its refused rows become dead letters from %s (sink.refused_wait); first: %v",
		why, hint, e.Until.UTC().Format(time.RFC3339), e.First)
}

// Unwrap gives the database's error, not the *RecordError: the flight is
// retried, not halted at that record.
func (e *RefusedError) Unwrap() error { return e.First.Err }
