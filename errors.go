package exactly

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

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

// ConfigError names the file (and line, when the file sets the field),
// the field and what is expected.
type ConfigError struct {
	File     string
	Line     int // 0: not known, or the field is not in the file
	Field    string
	Value    string
	Expected string
	// Problem, when set, is said instead of got/expected: "unknown field;
	// did you mean max_records?".
	Problem string
}

func (e *ConfigError) Error() string {
	file := e.File
	if file == "" {
		file = "configuration"
	}
	if e.Line > 0 {
		file += ":" + strconv.Itoa(e.Line)
	}
	switch {
	case e.Problem != "" && e.Field == "yaml": // the text, not a field
		return fmt.Sprintf("%s: %s", file, e.Problem)
	case e.Problem != "":
		return fmt.Sprintf("%s: %s: %s", file, e.Field, e.Problem)
	case e.Value != "":
		return fmt.Sprintf("%s: %s: got %q, expected %s", file, e.Field, e.Value, e.Expected)
	}
	return fmt.Sprintf("%s: %s: expected %s", file, e.Field, e.Expected)
}

// RouteError is a topic whose rule maps it to a table name that is
// refused: topic names are untrusted input, and $1 copies them into SQL
// identifiers. Without this check a topic could name the ledger
// (shop.public.exactly_offsets moved another pipeline's next_offset) or,
// because a dotted name is quoted part by part, another schema
// (shop.public.other.users wrote "other"."users").
type RouteError struct {
	Topic, Rule, Table string
	Reason             string
}

func (e *RouteError) Error() string {
	return fmt.Sprintf("topic %q maps to table %q through the rule for %s: refused, %s; nothing is written for it", e.Topic, e.Table, e.Rule, e.Reason)
}

// ConfigErrors is every problem found in one configuration file, in line
// order: a person fixes them in one pass, not one per run.
type ConfigErrors []*ConfigError

func (es ConfigErrors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap lets errors.As find the first *ConfigError.
func (es ConfigErrors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// ColumnNameErr is a field whose name cannot become a column.
type ColumnNameErr struct {
	Name string
	Why  string
}

func (e *ColumnNameErr) Error() string {
	return fmt.Sprintf("field %q cannot become a column: %s; rename it with the rule's columns: mapping, or turn create and evolve off to leave it unwritten",
		strings.ToValidUTF8(strings.ReplaceAll(clip(e.Name), "\x00", `\x00`), "\uFFFD"), e.Why)
}

// StatementError is an ExecPipeline error the dialect traced to one of the
// statements it was given: Index is the failing statement's position in
// stmts. Sink uses it to tell which partition's fence timed out waiting
// for a lock (see LockTimeouts), so a pipelined flight drops that
// partition alone, as it does sent statement by statement.
type StatementError struct {
	Index int
	Err   error
}

func (e *StatementError) Error() string { return e.Err.Error() }

func (e *StatementError) Unwrap() error { return e.Err }

// ReplayRangeError says a replay range reaches beyond what the pipeline has
// committed: those records belong to the pipeline, which applies them (and
// records them in the chain) itself.
type ReplayRangeError struct {
	Topic     string
	Partition int32
	To        int64 // the end of the replayed range (exclusive)
	Next      int64 // exactly_offsets.next_offset; -1 when the partition has no row
}

func (e *ReplayRangeError) Error() string {
	if e.Next < 0 {
		return fmt.Sprintf("replaying %s[%d]: the pipeline has never committed this partition; nothing to replay", e.Topic, e.Partition)
	}
	return fmt.Sprintf("replaying %s[%d] up to offset %d: exactly_offsets.next_offset is %d; replay only re-applies committed offsets (below %d), the pipeline applies the rest",
		e.Topic, e.Partition, e.To-1, e.Next, e.Next)
}

// ReplayMovedError says the partition's next_offset moved while a replay
// ran: a pipeline committed newer records meanwhile, and the replayed
// (older) values would overwrite theirs. Nothing of the refused
// transaction was written.
type ReplayMovedError struct {
	Topic     string
	Partition int32
	From      int64 // the refused transaction's first offset
	Began     int64 // next_offset when the replay began
	Now       int64 // next_offset now
}

func (e *ReplayMovedError) Error() string {
	return fmt.Sprintf("replaying %s[%d] from offset %d: next_offset moved from %d to %d while the replay ran: a running pipeline committed newer records, and replaying older ones now would write older values over theirs; nothing of this transaction was written. Stop the pipeline (every member of its group), then replay again from offset %d",
		e.Topic, e.Partition, e.From, e.Began, e.Now, e.From)
}

// ErrReplayAppend says a replayed record routes to an append-mode table:
// inserting it again would duplicate the row, so replay refuses.
var ErrReplayAppend = errors.New("append-mode tables have no key to make a replay idempotent")

// ReseedMovedError is a reseed whose partition's next_offset changed
// between the read and the update (a member applied a batch meanwhile).
type ReseedMovedError struct {
	TP
	Want, Stored int64
}

func (e *ReseedMovedError) Error() string {
	return fmt.Sprintf("reseeding %s: next_offset moved from %d to %d while reseeding (a member of the pipeline is running?); nothing was changed",
		e.TP, e.Want, e.Stored)
}

// refusedError is a table write the database refused with ErrData, in a
// transaction that did not isolate rows.
type refusedError struct{ err error }

func (e *refusedError) Error() string { return e.err.Error() }

func (e *refusedError) Unwrap() error { return e.err }

// haltError is a row the database refused whose rule says on_error: fail.
type haltError struct {
	b   *PartitionBatch
	err *RecordError
}

func (e *haltError) Error() string { return e.err.Error() }

func (e *haltError) Unwrap() error { return e.err }
