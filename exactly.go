// Package exactly holds the domain of the exactly-once Kafka → SQL sink:
// records, changes, partition batches, the dialect interface, and the one
// place where a batch's data, its ledger row and its offset advance are
// committed together (see Sink.Commit).
//
// The rule of this package: a record at offset o has taken effect in the
// target tables if and only if o < exactly_offsets.next_offset, because both
// are written in one database transaction. Kafka's own group offsets are
// never consulted as truth.
//
// The files follow the life of a flight, in the order Sink.Commit takes
// it: flight.go (Commit and its attempts, the failed-batch rows, the log of
// dead letters), prepare.go (decode, route, map columns), describe.go
// (the one cache of table descriptions, a flight's tables described
// together), evolve.go (create and evolve tables, the type checks, the
// case clashes, the halt at a refused record), schemachange.go (the DDL a batch
// needs, widening), collapse.go (one row per key, versions), tx.go (the
// one transaction skeleton) and write.go (fences, table writes, isolation
// of refused rows, the ledger and dead-letter rows, failpoints). batch.go
// is the batch they pass along (its range; hash.go its versioned hash),
// sink.go the Sink,
// deadletters.go the dead letters as the ledger shows them, tableplan.go
// what create and evolve would do without doing it (exactly plan),
// errors.go every typed error.
package exactly

import (
	"context"
	"fmt"
	"iter"
	"sync"
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
	// Row is the full new row image for OpUpsert, nil otherwise; or nil
	// when Values holds the image instead. Read either form through
	// Field, Fields, NumFields and HasRow.
	Row map[string]any
	// Values, when not nil, is the row image by position: Values[i] is
	// the value of field Shape.Names[i]. Shape is then set and its names
	// are distinct (Shape.Distinct), and Row is nil. A decoder fills it
	// to spare building, hashing and walking a map per record; the engine
	// reads it by the shape's positions. Whoever changes the row's fields
	// after decoding makes it a Row (see RowMap).
	Values []any
	// Version is the value of the table's version column, when configured.
	Version any
	// Schema describes Row's fields, in schema order, when the record
	// carries a schema (a Debezium/Connect JSON schema, an Avro schema):
	// auto-create and evolve then take column types from it instead of
	// inferring them from values.
	// Decoders may share one slice between records; nobody modifies it.
	// Nil when the record has no schema.
	Schema []Field
	// Shape, when not nil, stands for the set of Row's field names: two
	// changes with the same non-nil Shape have rows with the same field
	// names, so the engine compares the pointers instead of the maps.
	// Whoever changes Row's fields after decoding sets it to nil.
	Shape *Shape
}

// Shape is the field names of a decoded row, in the order read; decoders
// hand out one *Shape per distinct list (see Change.Shape).
type Shape struct {
	Names []string

	once sync.Once
	pos  map[string]int // name -> its last position, for long lists
	dup  bool           // a name is listed twice
}

// shortShape is the longest list Index searches by comparing names (the
// names of a shape are interned, so mostly by pointer) rather than by a
// map.
const shortShape = 16

func (s *Shape) index() {
	s.once.Do(func() {
		pos := make(map[string]int, len(s.Names))
		for i, n := range s.Names {
			pos[n] = i
		}
		s.dup = len(pos) != len(s.Names)
		if len(s.Names) > shortShape {
			s.pos = pos
		}
	})
}

// Index returns the position of name in Names (its last, when listed
// twice), or -1.
func (s *Shape) Index(name string) int {
	if len(s.Names) <= shortShape {
		for i := len(s.Names) - 1; i >= 0; i-- {
			if s.Names[i] == name {
				return i
			}
		}
		return -1
	}
	s.index()
	if i, ok := s.pos[name]; ok {
		return i
	}
	return -1
}

// Distinct reports whether no name is listed twice: only then may a
// change carry its row as Values.
func (s *Shape) Distinct() bool {
	s.index()
	return !s.dup
}

// HasRow reports whether the change carries a row image (Row or Values).
func (c *Change) HasRow() bool { return c.Row != nil || c.Values != nil }

// Field returns the row's value of field name, and whether the row has
// the field.
func (c *Change) Field(name string) (any, bool) {
	if c.Values != nil {
		if i := c.Shape.Index(name); i >= 0 {
			return c.Values[i], true
		}
		return nil, false
	}
	v, ok := c.Row[name]
	return v, ok
}

// NumFields is the number of the row's fields.
func (c *Change) NumFields() int {
	if c.Values != nil {
		return len(c.Values)
	}
	return len(c.Row)
}

// Fields yields the row's fields and their values, each once: in the
// shape's order for Values, in map order for Row.
func (c *Change) Fields() iter.Seq2[string, any] { return rowOf(c).all() }

// RowMap returns the row as a map: Row itself, or a new map of Values.
func (c *Change) RowMap() map[string]any {
	if c.Values == nil {
		return c.Row
	}
	m := make(map[string]any, len(c.Values))
	for i, v := range c.Values {
		m[c.Shape.Names[i]] = v
	}
	return m
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
