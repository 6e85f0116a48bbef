package decode

import (
	"strings"
	"sync"
	"sync/atomic"

	"github.com/exactly/exactly"
)

// Every record of a topic written by the JSON converter with
// schemas.enable=true carries the same Connect schema, a few KB that
// encoding/json took most of a record's decoding time to read. A decoder
// keeps the schemas it has read, by their exact text, and reads a record's
// schema only when its text is new.

// compiledSchema is a wrapper's schema, read once and kept by its text.
type compiledSchema struct {
	raw    string // the schema's JSON text: an object
	schema *connectSchema
	// fields converts the struct's own fields (a record key's).
	fields *structSchema
	// For a change event's envelope: the images' and source's fields
	// (nil when the schema has no such field: their values then stay as
	// JSON gives them), ts_ms's schema, and what the envelope reports.
	before, after, source *structSchema
	tsMs                  *connectSchema
	afterFields           []exactly.Field // never nil
	sourceFields          []exactly.Field
	tsType                *exactly.Type
}

// compile prepares a schema read from raw (nil stays nil: no schema).
func compile(raw string, s *connectSchema) *compiledSchema {
	if s == nil {
		return nil
	}
	c := &compiledSchema{raw: raw, schema: s, fields: newStructSchema(s),
		before: newStructSchema(s.field("before")), after: newStructSchema(s.field("after")),
		source: newStructSchema(s.field("source")), tsMs: s.field("ts_ms"),
		afterFields: fieldsOf(s.field("after")), sourceFields: fieldsOf(s.field("source"))}
	if c.afterFields == nil {
		c.afterFields = []exactly.Field{}
	}
	if c.tsMs != nil {
		t := connectType(c.tsMs.Type, c.tsMs.Name, c.tsMs.Parameters)
		c.tsType = &t
	}
	return c
}

// structSchema is a struct schema's fields by name.
type structSchema struct {
	byName map[string]*connectSchema // the first field of a name, as connectSchema.field finds it
	// order is byName's fields in schema order: the order the JSON
	// converter writes a struct's members in, which walkImage expects.
	order []*connectSchema
	// member is, for each of order's names written as is in JSON (no
	// quote, backslash or control character, ASCII), its member's key
	// and colon as the JSON converter writes them ("name":), so that a
	// member can be compared with it byte for byte; "" for the others.
	member []string
	// kind is the kind of each of order's fields (see fieldKind).
	kind []fieldKind
}

// fieldKind is what walkImage needs to know of a field's schema, found
// once per schema rather than by comparing its type names per value.
type fieldKind uint8

const (
	kindOther fieldKind = iota
	// kindText: a string whose logical type leaves it text; any text
	// converts.
	kindText
	// kindInt: an integer whose logical type leaves it an integer; any
	// JSON integer that fits an int64 converts.
	kindInt
	// kindFloat: a floating point number.
	kindFloat
)

func fieldKindOf(f *connectSchema) fieldKind {
	switch f.Type {
	case "string":
		if f.Name != dbzZonedTimestamp && f.Name != dbzJSON {
			return kindText
		}
	case "int64", "int32", "int16", "int8":
		if plainInteger(f.Name) {
			return kindInt
		}
	case "float32", "float64", "float", "double":
		return kindFloat
	}
	return kindOther
}

func newStructSchema(s *connectSchema) *structSchema {
	if s == nil {
		return nil
	}
	st := &structSchema{byName: make(map[string]*connectSchema, len(s.Fields))}
	for _, f := range s.Fields {
		if f == nil {
			continue
		}
		if _, dup := st.byName[f.Field]; !dup {
			st.byName[f.Field] = f
			st.order = append(st.order, f)
			member := ""
			if !strings.ContainsFunc(f.Field, func(r rune) bool { return r < ' ' || r == '"' || r == '\\' || r >= 0x80 }) {
				member = `"` + f.Field + `":`
			}
			st.member = append(st.member, member)
			st.kind = append(st.kind, fieldKindOf(f))
		}
	}
	return st
}

// A schema cache holds up to maxSchemas schemas of up to maxSchemaBytes
// of text in all, per decoder: a rule whose topic pattern matches
// hundreds of tables keeps each table's schema, and a schema that
// evolves adds one. A full cache forgets a schema at random, so that
// topics read in turn that outnumber the cache still mostly hit it (a
// least-recently-used cache would miss every time).
const (
	maxSchemas     = 1024
	maxSchemaBytes = 32 << 20
)

// schemaCache is safe for concurrent use: decoders are shared by the
// transactions in flight.
type schemaCache struct {
	// lasts holds, per topic, the schema last looked up for its records:
	// a record whose schema text starts with it skips reading the schema
	// at all. Per topic, because flights decoding different tables at
	// once would evict one shared last schema from each other at every
	// record. last serves topics beyond maxSchemas and callers without one.
	lasts  sync.Map // topic → *topicLast
	nlasts atomic.Int32
	last   lastSchema
	// recent is the topic last asked for: a flight asks for its topic's
	// twice per record, and a sync.Map load was a tenth of the walk of
	// the bench's record key (BenchmarkRecordPath/debezium).
	recent atomic.Pointer[topicLast]

	mu    sync.Mutex
	byRaw map[string]*compiledSchema
	bytes int
}

// lastSchema is where the schema last looked up for a topic is kept.
type lastSchema = atomic.Pointer[compiledSchema]

// topicLast is a topic's lastSchema.
type topicLast struct {
	topic string
	last  lastSchema
}

// lastOf returns where the last schema of topic's records is kept.
func (c *schemaCache) lastOf(topic string) *lastSchema {
	if topic == "" {
		return &c.last
	}
	if t := c.recent.Load(); t != nil && t.topic == topic {
		return &t.last
	}
	v, ok := c.lasts.Load(topic)
	if !ok {
		if c.nlasts.Load() >= maxSchemas {
			return &c.last
		}
		var loaded bool
		if v, loaded = c.lasts.LoadOrStore(topic, &topicLast{topic: topic}); !loaded {
			c.nlasts.Add(1)
		}
	}
	t := v.(*topicLast)
	c.recent.Store(t)
	return &t.last
}

// prefix returns the last schema looked up if b starts with its text.
// A JSON object ends at its closing brace, so b's value is that schema.
func (c *schemaCache) prefix(last *lastSchema, b []byte) *compiledSchema {
	s := last.Load()
	if s != nil && len(b) >= len(s.raw) && string(b[:len(s.raw)]) == s.raw {
		return s
	}
	return nil
}

// get returns the schema whose text is raw, or nil.
func (c *schemaCache) get(last *lastSchema, raw []byte) *compiledSchema {
	c.mu.Lock()
	s := c.byRaw[string(raw)]
	c.mu.Unlock()
	if s != nil {
		last.Store(s)
	}
	return s
}

// put keeps s, unless another goroutine kept one for the same text first,
// and returns the one kept.
func (c *schemaCache) put(last *lastSchema, s *compiledSchema) *compiledSchema {
	if len(s.raw) == 0 || s.raw[0] != '{' || len(s.raw) > maxSchemaBytes/8 {
		return s // not an object (prefix relies on it), or too big to keep
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if kept, ok := c.byRaw[s.raw]; ok {
		last.Store(kept)
		return kept
	}
	if c.byRaw == nil {
		c.byRaw = make(map[string]*compiledSchema)
	}
	for raw := range c.byRaw { // map order is random: a random victim
		if len(c.byRaw) < maxSchemas && c.bytes+len(s.raw) <= maxSchemaBytes {
			break
		}
		delete(c.byRaw, raw)
		c.bytes -= len(raw)
	}
	c.byRaw[s.raw] = s
	c.bytes += len(s.raw)
	last.Store(s)
	return s
}
