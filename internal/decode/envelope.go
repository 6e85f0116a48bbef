package decode

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/exactly/exactly"
)

// This file reads Debezium's JSON envelope by hand, in two passes: the
// path of the records the one walk of walk.go gives up on, and the
// reference that walk is held to. The rule is the one of fastjson.go:
// accept and reject what the encoding/json path accepted and rejected (a
// map of the whole envelope, then its schema again into a struct), and
// return the same change, down to the Go types;
// FuzzDebeziumMatchesReference holds it to that path, kept in
// debezium_ref_test.go.
//
// Two passes. scan validates the whole value as encoding/json does and
// finds the extents of what is used: the wrapper's schema and payload,
// the payload's op, before, after, source and ts_ms (of a repeated key the
// last, as in a map). The schema's text is looked up in the decoder's
// cache, and read only when new. Then the used values are converted, in
// the order the encoding/json path converted them, so that the first
// fault it reported is the one reported.

// span is the extent b[start:end] of a JSON value; the zero span is a
// missing member.
type span struct{ start, end int }

func (s span) ok() bool { return s.end > 0 }

// payloadSpans are the payload members a change is made of.
type payloadSpans struct {
	op, before, after, source, tsMs span
}

// wrapper is what scan found in a record value or key.
type wrapper struct {
	// wrapped: the object's members are exactly schema and payload (the
	// JSON converter's schemas.enable=true).
	wrapped bool
	// schema is the last schema member; schemas counts them (encoding/json
	// merges repeated ones into one struct, which only it can redo).
	schema  span
	schemas int
	cached  *compiledSchema // the cache's schema whose text is at schema
	payload span            // the last payload member
	// members are those of the payload when wrapped, else the object's own.
	members payloadSpans
}

// Member names scan looks for.
const (
	otherName = iota
	payloadName
	schemaName
	opName
	beforeName
	afterName
	sourceName
	tsMsName
)

func memberName(key []byte) int {
	switch string(key) {
	case "payload":
		return payloadName
	case "schema":
		return schemaName
	case "op":
		return opName
	case "before":
		return beforeName
	case "after":
		return afterName
	case "source":
		return sourceName
	case "ts_ms":
		return tsMsName
	}
	return otherName
}

// scan reads a JSON object that may be a schema/payload wrapper, with
// encoding/json's rules for what it accepts (see parseObject). Schemas
// are looked up in cache. Its errors only say where b stopped being
// valid; notJSON words them.
func scan(b []byte, cache *schemaCache, last *lastSchema) (wrapper, error) {
	var w wrapper
	p := objectParser{b: b}
	p.space()
	if p.i == len(b) {
		return w, errEOF
	}
	if b[p.i] != '{' {
		return w, p.notObject()
	}
	var outer, inner payloadSpans
	var hasPayload, hasSchema, other bool
	done, err := p.open()
	for !done && err == nil {
		var key []byte
		if key, err = p.key(); err != nil {
			break
		}
		start := p.i
		switch name := memberName(key); name {
		case payloadName:
			hasPayload = true
			if b[p.i] == '{' {
				inner = payloadSpans{}
				err = p.payload(&inner, 2)
			} else {
				err = p.skipValue(1)
			}
			w.payload = span{start, p.i}
		case schemaName:
			hasSchema = true
			w.schemas++
			if w.cached = cache.prefix(last, b[p.i:]); w.cached != nil {
				p.i += len(w.cached.raw)
			} else {
				err = p.skipValue(1)
			}
			w.schema = span{start, p.i}
		default:
			other = true
			err = p.skipValue(1)
			outer.set(name, span{start, p.i})
		}
		if err == nil {
			done, err = p.next()
		}
	}
	if err != nil {
		return w, err
	}
	p.space()
	if p.i < len(b) && b[p.i] != '}' && b[p.i] != ']' {
		return w, errors.New("trailing data after the JSON value")
	}
	w.wrapped = hasPayload && hasSchema && !other
	w.members = outer
	if w.wrapped {
		w.members = inner
	}
	return w, nil
}

// set keeps a member's extent if it is one a change is made of.
func (m *payloadSpans) set(name int, s span) {
	switch name {
	case opName:
		m.op = s
	case beforeName:
		m.before = s
	case afterName:
		m.after = s
	case sourceName:
		m.source = s
	case tsMsName:
		m.tsMs = s
	}
}

// payload reads over the object at p.i, at depth, noting the extents of
// its members.
func (p *objectParser) payload(m *payloadSpans, depth int) error {
	done, err := p.open()
	for !done && err == nil {
		var key []byte
		if key, err = p.key(); err != nil {
			return err
		}
		start := p.i
		if err = p.skipValue(depth); err != nil {
			return err
		}
		m.set(memberName(key), span{start, p.i})
		done, err = p.next()
	}
	return err
}

// open reads the '{' at p.i and says whether the object is empty ("{}").
func (p *objectParser) open() (empty bool, err error) {
	p.i++
	p.space()
	if p.i < len(p.b) && p.b[p.i] == '}' {
		p.i++
		return true, nil
	}
	return false, nil
}

// key reads a member's key and the colon after it, leaving p.i at the
// value. The key is unquoted as encoding/json does; without escapes it is
// b's own bytes.
func (p *objectParser) key() ([]byte, error) {
	if p.i == len(p.b) {
		return nil, errEOF
	}
	if p.b[p.i] != '"' {
		return nil, p.unexpected("looking for beginning of object key string")
	}
	p.i++
	start := p.i
	var key []byte
	for i := start; ; i++ {
		if i == len(p.b) {
			p.i = i
			return nil, errEOF
		}
		c := p.b[i]
		if c == '"' {
			p.i = i + 1
			key = p.b[start:i]
			break
		}
		if c == '\\' || c < ' ' || c >= 0x80 {
			p.i = i
			if err := p.skipString(); err != nil {
				return nil, err
			}
			key = unquote(p.b[start : p.i-1])
			break
		}
	}
	if err := p.colon(); err != nil {
		return nil, err
	}
	if p.i == len(p.b) {
		return nil, errEOF
	}
	return key, nil
}

// colon reads the colon after a member's key, and the white space around
// it.
func (p *objectParser) colon() error {
	p.space()
	if p.i == len(p.b) {
		return errEOF
	}
	if p.b[p.i] != ':' {
		return p.unexpected("after object key")
	}
	p.i++
	p.space()
	return nil
}

// next reads what follows a member's value: a ',' (and the white space
// after it) or the closing '}', done.
func (p *objectParser) next() (done bool, err error) {
	p.space()
	if p.i == len(p.b) {
		return false, errEOF
	}
	switch p.b[p.i] {
	case ',':
		p.i++
		p.space()
		return false, nil
	case '}':
		p.i++
		return true, nil
	}
	return false, p.unexpected("after object key:value pair")
}

// notJSON words why scan refused b, a record value, in encoding/json's
// terms, as the encoding/json path did.
func notJSON(b []byte, scanErr error) error {
	var top map[string]any
	if err := unmarshal(b, &top); err != nil {
		return fmt.Errorf("value is not JSON: %v", err)
	}
	if top == nil {
		return errors.New("value is JSON null, not a Debezium change event")
	}
	return fmt.Errorf("value is not JSON: %v", scanErr) // not reached while scan and encoding/json agree
}

// kindOf describes the valid JSON value raw for an error, as jsonKind.
func kindOf(raw []byte) string {
	var v any
	if err := unmarshal(raw, &v); err != nil {
		return "invalid JSON"
	}
	return jsonKind(v)
}

// schemaOf returns the wrapper's schema: the cached one, or the one read
// by encoding/json into a struct from all of b (the record value or key)
// and kept for the next record whose schema has the same text. Schema
// errors are prefixed with what.
func schemaOf(b []byte, w *wrapper, cache *schemaCache, last *lastSchema, what string) (*compiledSchema, error) {
	raw := b[w.schema.start:w.schema.end]
	if w.schemas == 1 {
		if w.cached != nil {
			return w.cached, nil
		}
		if string(raw) == "null" {
			return nil, nil
		}
		if s := cache.get(last, raw); s != nil {
			return s, nil
		}
	}
	var ws struct {
		Schema *connectSchema `json:"schema"`
	}
	if err := unmarshal(b, &ws); err != nil {
		return nil, fmt.Errorf("%s: %v", what, err)
	}
	s := compile(string(raw), ws.Schema)
	if s != nil && w.schemas == 1 {
		s = cache.put(last, s)
	}
	return s, nil
}

// jsonEnvelope reads a Debezium JSON value, with or without the
// schema/payload wrapper, converting values by the schema when present.
func (d *Debezium) jsonEnvelope(b []byte, topic string) (*envelope, error) {
	last := d.values.lastOf(topic)
	w, err := scan(b, &d.values, last)
	if err != nil {
		return nil, notJSON(b, err)
	}
	var schema *compiledSchema
	if w.wrapped {
		if b[w.payload.start] != '{' {
			return nil, fmt.Errorf("payload is %s, not a change event object", kindOf(b[w.payload.start:w.payload.end]))
		}
		if schema, err = schemaOf(b, &w, &d.values, last, "schema"); err != nil {
			return nil, err
		}
		if schema != nil && schema.schema.Type != "struct" {
			return nil, fmt.Errorf("schema: expected a struct schema, got type %q", schema.schema.Type)
		}
	}
	m := &w.members
	env := &envelope{}
	if m.op.ok() {
		if env.op, err = op(b[m.op.start:m.op.end]); err != nil {
			return nil, err
		}
	}
	var before, after, source *structSchema
	var tsMs *connectSchema
	if schema != nil {
		before, after, source, tsMs = schema.before, schema.after, schema.source, schema.tsMs
	}
	// A change uses the before image of a delete, the after image of an
	// upsert, and of the source block the version field, if any; the rest
	// is only checked.
	var sourceField keep
	sourceField.name, sourceField.one = strings.CutPrefix(d.Version, "source_")
	for _, f := range []struct {
		name   string
		at     span
		schema *structSchema
		keep   keep
		dst    *map[string]any
	}{
		{"before", m.before, before, keep{all: env.op == "d"}, &env.before},
		{"after", m.after, after, keep{all: env.op == "c" || env.op == "r" || env.op == "u"}, &env.after},
		{"source", m.source, source, sourceField, &env.source},
	} {
		var shape *exactly.Shape
		if *f.dst, shape, err = image(b, f.at, f.schema, f.keep, f.dst == &env.after, &d.shape); err != nil {
			return nil, fmt.Errorf("%s: %w", f.name, err)
		}
		if f.dst == &env.after {
			env.shape = shape
		}
	}
	if m.tsMs.ok() {
		// Converted for a version column of that name (see cdc.version),
		// else only checked.
		p := objectParser{b: b[:m.tsMs.end], i: m.tsMs.start}
		if d.Version == "ts_ms" {
			env.tsMs, err = p.connectValue(tsMs)
		} else {
			err = p.check(tsMs)
		}
		if err != nil {
			return nil, fmt.Errorf("ts_ms: %w", err)
		}
	}
	if schema != nil {
		env.fields, env.sourceFields, env.tsType = schema.afterFields, schema.sourceFields, schema.tsType
	}
	return env, nil
}

// op reads the op member's value.
func op(raw []byte) (string, error) {
	if raw[0] != '"' {
		return "", fmt.Errorf("op is %s, not a string", kindOf(raw))
	}
	switch string(raw) { // Debezium's, without making a string
	case `"c"`:
		return "c", nil
	case `"u"`:
		return "u", nil
	case `"d"`:
		return "d", nil
	case `"r"`:
		return "r", nil
	case `""`:
		return "", errors.New("op is empty")
	}
	p := objectParser{b: raw}
	s, err := p.string()
	if err == nil && s == "" {
		err = errors.New("op is empty")
	}
	return s, err
}

// connectKey reads a record key: a JSON object (with or without a
// schema/payload wrapper, typed by the schema when present, which is kept
// in cache), or a scalar for a single key column.
func connectKey(key []byte, cols []string, cache *schemaCache, topic string) (map[string]any, error) {
	last := cache.lastOf(topic)
	t := bytes.TrimSpace(key)
	if len(t) == 0 || t[0] != '{' {
		return RecordKey(key, cols)
	}
	w, err := scan(t, cache, last)
	if err != nil {
		var top map[string]any
		if uerr := unmarshal(t, &top); uerr != nil {
			err = uerr
		}
		return nil, fmt.Errorf("record key: not a JSON object: %v", err)
	}
	if !w.wrapped {
		m, err := parseObject(t)
		if err != nil {
			return nil, fmt.Errorf("record key: %w", err)
		}
		return m, nil
	}
	schema, err := schemaOf(t, &w, cache, last, "record key schema")
	if err != nil {
		return nil, err
	}
	if schema != nil && schema.schema.Type != "struct" {
		// A primitive key schema: the single key column.
		p := objectParser{b: t[:w.payload.end], i: w.payload.start}
		v, err := p.connectValue(schema.schema)
		if err != nil {
			return nil, fmt.Errorf("record key: %w", err)
		}
		if len(cols) != 1 {
			return nil, fmt.Errorf("record key is a %s and the rule has %d key columns", schema.schema.Type, len(cols))
		}
		return map[string]any{cols[0]: v}, nil
	}
	var fields *structSchema
	if schema != nil {
		fields = schema.fields
	}
	m, _, err := image(t, w.payload, fields, keep{all: true}, false, nil)
	if err != nil {
		return nil, fmt.Errorf("record key: %w", err)
	}
	if m == nil {
		return nil, errors.New("record key payload is null")
	}
	return m, nil
}

// keep says which fields of an image a change uses: all, the one named,
// or none.
type keep struct {
	all, one bool
	name     string
}

func (k keep) field(name string) bool { return k.all || k.one && name == k.name }

// image converts the before/after/source struct or key payload at b's span
// by its schema; without one (no schema, or none for this struct) its
// values stay as JSON gives them. A missing or null struct is nil. Only
// the fields k names are converted and returned; the others are checked
// as converting them would, so that they fail the same. With shaped and
// k.all, the image's shape is returned too (see shapes), last tried first.
func image(b []byte, at span, s *structSchema, k keep, shaped bool, last *lastShape) (map[string]any, *exactly.Shape, error) {
	if !at.ok() || b[at.start] == 'n' {
		return nil, nil, nil
	}
	raw := b[at.start:at.end]
	if raw[0] != '{' {
		return nil, nil, fmt.Errorf("expected an object, got %s", kindOf(raw))
	}
	if s == nil && k.all {
		return parseRow(raw, shaped, last)
	}
	if s == nil && !k.one {
		return nil, nil, nil // valid JSON values never fail to convert without a schema
	}
	var buf [32]member
	named := shaped && k.all
	m, names, err := imageBySchema(raw, s, k, named, buf[:0])
	if err != nil || !named || m == nil {
		return m, nil, err
	}
	return m, shapes.get(names, last), nil
}

// imageBySchema is image of the object raw by s (or, without s, of the
// one field k names); with named, it also appends the names of the
// members it converted to names, in their order, as parseRow's members.
func imageBySchema(raw []byte, s *structSchema, k keep, named bool, names []member) (map[string]any, []member, error) {
	p := objectParser{b: raw}
	var out map[string]any
	if k.all {
		out = make(map[string]any, len(s.byName))
	}
	var failed []fieldError
	done, err := p.open()
	for !done && err == nil {
		var key []byte
		if key, err = p.key(); err != nil {
			return nil, nil, err
		}
		if s == nil { // the one field, as JSON gives it
			if string(key) == k.name {
				v, err := p.value()
				if err != nil {
					return nil, nil, err
				}
				out = map[string]any{k.name: v}
			} else if err = p.skipValue(2); err != nil {
				return nil, nil, err
			}
			done, err = p.next()
			continue
		}
		f := s.byName[string(key)]
		if f == nil {
			return nil, nil, fmt.Errorf("field %q is not in the schema", key)
		}
		start := p.i
		var cerr error
		if k.field(f.Field) {
			var v any
			if v, cerr = p.connectValue(f); cerr == nil {
				if out == nil {
					out = make(map[string]any, 1)
				}
				out[f.Field] = v
				if named {
					names = append(names, member{key: f.Field})
				}
			}
		} else {
			cerr = p.check(f)
		}
		if len(failed) > 0 {
			failed = forget(failed, f.Field)
		}
		if cerr != nil {
			// encoding/json kept only a repeated key's last value: the
			// error counts only if no later member of the name follows.
			failed = append(failed, fieldError{f.Field, fmt.Errorf("field %q: %w", f.Field, cerr)})
			p.i = start
			if err = p.skipValue(2); err != nil {
				return nil, nil, err
			}
		}
		done, err = p.next()
	}
	if err != nil {
		return nil, nil, err
	}
	if len(failed) > 0 {
		return nil, nil, failed[0].err
	}
	return out, names, nil
}

type fieldError struct {
	name string
	err  error
}

func forget(errs []fieldError, name string) []fieldError {
	out := errs[:0]
	for _, e := range errs {
		if e.name != name {
			out = append(out, e)
		}
	}
	return out
}
