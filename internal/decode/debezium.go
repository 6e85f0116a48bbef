package decode

import (
	"errors"
	"fmt"
	"strings"

	"github.com/exactly/exactly"
)

// Debezium decodes Debezium change events written by the JSON converter,
// with the schema/payload wrapper (schemas.enable=true) or without it.
//
//   - op c (create), r (snapshot read) and u (update) upsert the after image;
//   - op d deletes by the record key, or by the before image's key columns;
//   - a tombstone (null value) deletes by the record key (see tombstone);
//   - op t (truncate) is refused (a dead letter): truncating a target table
//     is left to a person.
//
// With a schema, values are read by their Connect types (dates as days,
// timestamps in ms/µs/ns, zoned timestamps, decimals as base64 bytes with
// a scale, …); without one they stay as JSON gives them (see Value).
// Schemas are read once per distinct text and kept (see schemaCache).
type Debezium struct {
	cdc
	// values and keys keep the schemas of record values and keys.
	values, keys schemaCache
	// shape is the last after image's (see shapes).
	shape lastShape
}

var _ exactly.Decoder = (*Debezium)(nil)

// NewDebezium returns the Debezium JSON decoder for a rule.
func NewDebezium(rule *exactly.TableRule) *Debezium {
	return &Debezium{cdc: cdc{Key: rule.Key, KeyFrom: rule.KeyFrom, Version: rule.Version}}
}

// Decode implements exactly.Decoder.
func (d *Debezium) Decode(r *exactly.Record) (exactly.Change, error) {
	ch, err := d.decode(r)
	if err != nil {
		return exactly.Change{}, recordError(r, err)
	}
	return ch, nil
}

func (d *Debezium) decode(r *exactly.Record) (exactly.Change, error) {
	var env envelope
	recordKey := func() (map[string]any, error) { return d.recordKey(r.Key, r.Topic, &env) }
	if r.Value == nil {
		return tombstone(recordKey)
	}
	// One walk for the events connectors write; the two passes of
	// jsonEnvelope for the rest, and to say what is wrong.
	if !d.walkEnvelope(r.Value, d.values.lastOf(r.Topic), &env) {
		e, err := d.jsonEnvelope(r.Value, r.Topic)
		if err != nil {
			return exactly.Change{}, err
		}
		env = *e
	}
	return d.change(&env, isObject(r.Key), recordKey)
}

// recordKey reads a record key as connectKey does, in one walk when it
// can (see walkKey); env is the record's envelope.
func (d *Debezium) recordKey(key []byte, topic string, env *envelope) (map[string]any, error) {
	if m, ok := walkKey(key, d.Key, &d.keys, topic, env); ok {
		return m, nil
	}
	return connectKey(key, d.Key, &d.keys, topic)
}

// envelope is a Debezium change event with its images converted to
// exactly.Change values.
type envelope struct {
	op     string
	before map[string]any
	after  map[string]any
	// values is the after image by position instead of after, in the
	// order of shape's names (see exactly.Change.Values).
	values []any
	source map[string]any
	tsMs   any // converted only for a version column ts_ms
	// shape is after's (see exactly.Change.Shape), nil when unknown.
	shape *exactly.Shape
	// fields describe the after image and the source block, in schema
	// order, when the event carries a schema; tsType is ts_ms's type.
	fields, sourceFields []exactly.Field
	tsType               *exactly.Type
}

// field returns the value of the field name of the envelope's image: the
// after image's, else the before image's.
func (env *envelope) field(name string) (any, bool) {
	if env.values != nil && env.shape != nil {
		for i, n := range env.shape.Names {
			if n == name {
				return env.values[i], true
			}
		}
		return nil, false
	}
	if env.after != nil {
		v, ok := env.after[name]
		return v, ok
	}
	v, ok := env.before[name]
	return v, ok
}

// cdc turns envelopes into changes; the JSON and Avro decoders share it.
type cdc struct {
	Key     []string
	KeyFrom string
	// Version is the rule's version column. Its value is the image's field
	// of that name; when the image has none, ts_ms is the event's ts_ms and
	// source_X is the source block's field X (source_lsn, source_ts_ms,
	// source_change_lsn, …), and it is added to the row so the stored
	// version is what the next change is compared with.
	Version string
}

// change turns an envelope into a change. recordKey reads the record key;
// structKey says whether it is a struct (a JSON object, an Avro record).
// Which key names the row follows key_from: record_key takes the record
// key, value the images, and the default the record key when it is a
// struct (Debezium's key struct) and the images otherwise, since a scalar
// record key may be only a partitioning hint. A delete without a before
// image falls back to the record key in any form: nothing else names the
// row.
func (c *cdc) change(env *envelope, structKey bool, recordKey func() (map[string]any, error)) (exactly.Change, error) {
	var ch exactly.Change
	useKey := c.KeyFrom == "record_key" || (c.KeyFrom == "" && structKey)
	switch env.op {
	case "c", "r", "u":
		if env.after == nil && env.values == nil {
			return ch, fmt.Errorf("op %q without an after image", env.op)
		}
		if useKey {
			key, err := recordKey()
			if err != nil && c.KeyFrom == "record_key" {
				return ch, err
			}
			ch.Key = key // nil when unreadable: the after image decides
		}
		ch.Op, ch.Row, ch.Values, ch.Schema, ch.Shape = exactly.OpUpsert, env.after, env.values, env.fields, env.shape
		if c.Version != "" { // env.values is nil: see walkPayload
			if v, ok := c.version(env, env.after); ok {
				ch.Version = v
				if _, in := env.after[c.Version]; !in {
					env.after[c.Version] = v
					ch.Shape = nil // a field more than the shape named
					if f, ok := c.versionField(env); ok {
						ch.Schema = append(env.fields[:len(env.fields):len(env.fields)], f)
					}
				}
			}
		}
		return ch, nil
	case "d":
		ch.Op = exactly.OpDelete
		switch {
		case c.KeyFrom == "record_key" || env.before == nil:
			key, err := recordKey()
			if err != nil {
				if env.before == nil && c.KeyFrom != "record_key" {
					return ch, fmt.Errorf("delete without a before image: %w", err)
				}
				return ch, err
			}
			ch.Key = key
		default:
			ch.Key = make(map[string]any, len(env.before))
			for k, v := range env.before {
				ch.Key[k] = v
			}
			if useKey {
				key, err := recordKey()
				if err == nil {
					for k, v := range key { // the record key wins over the image
						ch.Key[k] = v
					}
				}
			}
		}
		if c.Version != "" {
			ch.Version, _ = c.version(env, env.before)
		}
		return ch, nil
	case "t":
		return ch, errors.New("op \"t\" (truncate) is not applied: truncate the target table by hand if that is intended")
	case "":
		return ch, errors.New("not a Debezium change event: no op field")
	}
	return ch, fmt.Errorf("unknown Debezium op %q (expected c, r, u or d)", truncate([]byte(env.op)))
}

// tombstone is the change of a Debezium tombstone (a null value): a delete
// by the record key. Debezium writes one right after each op d so that log
// compaction can drop the key; once compaction has removed the d, the
// tombstone is the only trace of the delete left (issue 15.7: it was
// skipped, and a pipeline reading a compacted topic kept deleted rows).
// In offset order it is a no-op after its d, and a later re-create of the
// key comes after it.
//
// A tombstone carries no version. With a version column it deletes
// whatever version the table holds (the guard lets a delete without a
// version through, as within a batch a change without a version
// supersedes): in offset order the row it meets is the one its d deleted
// or, after compaction, the one the d would have deleted.
func tombstone(recordKey func() (map[string]any, error)) (exactly.Change, error) {
	key, err := recordKey()
	if err != nil {
		return exactly.Change{}, fmt.Errorf("tombstone: %w", err)
	}
	if len(key) == 0 {
		return exactly.Change{}, errors.New("tombstone without a key: cannot tell which row to delete")
	}
	return exactly.Change{Op: exactly.OpDelete, Key: key}, nil
}

// version finds the version of a change: the image's own field, else the
// envelope's ts_ms or a source_X field.
func (c *cdc) version(env *envelope, image map[string]any) (any, bool) {
	if v, ok := image[c.Version]; ok {
		return v, true
	}
	if c.Version == "ts_ms" {
		return env.tsMs, env.tsMs != nil
	}
	if f, ok := strings.CutPrefix(c.Version, "source_"); ok {
		v, ok := env.source[f]
		return v, ok
	}
	return nil, false
}

// versionField describes a version column taken from the envelope.
func (c *cdc) versionField(env *envelope) (exactly.Field, bool) {
	if env.fields == nil {
		return exactly.Field{}, false
	}
	if c.Version == "ts_ms" && env.tsType != nil {
		return exactly.Field{Name: c.Version, Type: *env.tsType, Nullable: true}, true
	}
	if f, ok := strings.CutPrefix(c.Version, "source_"); ok {
		for _, sf := range env.sourceFields {
			if sf.Name == f {
				return exactly.Field{Name: c.Version, Type: sf.Type, Nullable: true}, true
			}
		}
	}
	return exactly.Field{}, false
}

// fieldsOf describes a struct schema's fields as logical column types.
func fieldsOf(s *connectSchema) []exactly.Field {
	if s == nil {
		return nil
	}
	out := make([]exactly.Field, 0, len(s.Fields))
	for _, f := range s.Fields {
		if f == nil {
			continue
		}
		out = append(out, exactly.Field{Name: f.Field, Type: connectType(f.Type, f.Name, f.Parameters), Nullable: f.Optional})
	}
	return out
}

// recordError gives a decoding error the record's coordinates.
func recordError(r *exactly.Record, err error) error {
	var re *exactly.RecordError
	if errors.As(err, &re) {
		return err
	}
	return &exactly.RecordError{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Err: err}
}
