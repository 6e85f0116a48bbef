package decode

import (
	"bytes"
	"strings"
)

// This file decodes the Debezium JSON envelopes connectors write in one
// walk over the record: the schema member skipped by comparing its text
// with the topic's last schema (see schemaCache.prefix), the payload's
// before, after, source, op and ts_ms converted where they stand, an
// image's members matched to the schema's fields in schema order (the
// order the JSON converter writes them in) rather than hashed. The
// two-pass path of envelope.go validated the whole value first and then
// walked the images again; it read a third of a record's time twice.
//
// The walk takes only the common road. Whatever else it meets (an error
// of any kind, a schema not in the cache, a wrapper whose payload comes
// before its schema, a member repeated, an image's members out of schema
// order) makes it give up, and the two-pass path reads the record from
// the start: it says what is wrong, and what it decides is what the walk
// would have. So the walk must never accept what the two-pass path
// refuses, nor decode differently: FuzzWalkMatchesTwoPass holds it to that.
//
// Nesting depth is the one rule of validity that depends on where a value
// is read from: the two-pass path counted a nested value's levels from the
// top of the record, and a converter counts them from the value. The walk
// validates a nested value at the record's depth before converting it.

// walkEnvelope decodes the Debezium JSON value b into env and says whether
// it could (see above); last is the topic's last value schema.
func (d *Debezium) walkEnvelope(b []byte, last *lastSchema, env *envelope) bool {
	p := objectParser{b: b}
	p.space()
	if p.i == len(b) || b[p.i] != '{' {
		return false
	}
	if done, _ := p.open(); done {
		return false
	}
	if q := p; isWrapperMember(&q) {
		if !d.walkWrapper(&p, last, env) {
			return false
		}
	} else if !d.walkPayload(&p, nil, 1, env) { // schemas.enable=false: the object is the payload
		return false
	}
	p.space()
	return p.i == len(b)
}

// isWrapperMember says whether the member at p.i is named schema or
// payload: an object whose first member is neither is no wrapper.
func isWrapperMember(p *objectParser) bool {
	key, err := p.key()
	name := memberName(key)
	return err == nil && (name == schemaName || name == payloadName)
}

// walkWrapper reads the members of a schema/payload wrapper, the schema
// first, up to its closing brace.
func (d *Debezium) walkWrapper(p *objectParser, last *lastSchema, env *envelope) bool {
	var schema *compiledSchema
	var hasSchema bool
	for {
		key, err := p.key()
		if err != nil {
			return false
		}
		switch memberName(key) {
		case schemaName:
			if hasSchema {
				return false
			}
			hasSchema = true
			var ok bool
			if schema, ok = walkSchema(p, &d.values, last); !ok {
				return false
			}
			if schema != nil && schema.schema.Type != "struct" {
				return false
			}
		case payloadName:
			if !hasSchema || p.b[p.i] != '{' {
				return false
			}
			p.i++
			if !d.walkPayload(p, schema, 2, env) {
				return false
			}
			if schema != nil {
				env.fields, env.sourceFields, env.tsType = schema.afterFields, schema.sourceFields, schema.tsType
			}
			// The payload is the wrapper's last member.
			p.space()
			if p.i == len(p.b) || p.b[p.i] != '}' {
				return false
			}
			p.i++
			return true
		default:
			return false
		}
		if done, err := p.next(); done || err != nil {
			return false
		}
	}
}

// walkSchema reads over a wrapper's schema member at p.i and returns it
// from cache: the last one looked up, else the one of the same text; ok is
// false when the cache has none.
func walkSchema(p *objectParser, cache *schemaCache, last *lastSchema) (s *compiledSchema, ok bool) {
	if s = cache.prefix(last, p.b[p.i:]); s != nil {
		p.i += len(s.raw)
		return s, true
	}
	if p.b[p.i] == 'n' {
		return nil, p.literal("null") == nil
	}
	start := p.i
	if p.skipValue(1) != nil {
		return nil, false
	}
	s = cache.get(last, p.b[start:p.i])
	return s, s != nil
}

// walkPayload reads a change event's members, past the '{', up to and
// including its closing brace, into env; depth is the depth the two-pass
// path read its members at.
func (d *Debezium) walkPayload(p *objectParser, schema *compiledSchema, depth int, env *envelope) bool {
	var before, after, source *structSchema
	if schema != nil {
		before, after, source = schema.before, schema.after, schema.source
	}
	var sourceField keep
	sourceField.name, sourceField.one = strings.CutPrefix(d.Version, "source_")
	var seen uint // bits by member name
	var beforeAt span
	var beforeChecked bool
	var buf [32]member
	afterNames := buf[:0]
	var afterValues []any // the after image by position
	p.space()
	if p.i < len(p.b) && p.b[p.i] == '}' {
		p.i++
		return true
	}
	for {
		key, err := p.key()
		if err != nil {
			return false
		}
		name := memberName(key)
		if name >= opName {
			if seen&(1<<name) != 0 {
				return false // the last of them counts: left to the two-pass path
			}
			seen |= 1 << name
		}
		start := p.i
		var ok bool
		switch name {
		case opName:
			if ok = p.skipValue(depth) == nil; ok {
				env.op, err = op(p.b[start:p.i])
				ok = err == nil
			}
		case beforeName:
			// Converted when a delete is known to use it; else only
			// checked, and converted at the end if the op is d.
			beforeChecked = env.op != "d"
			k := keep{all: !beforeChecked}
			env.before, _, ok = p.walkImage(before, k, depth, false, nil, nil, nil)
			beforeAt = span{start, p.i}
		case afterName:
			// Converted whole: the ops that use it are the common ones.
			// Without a schema, its names are most likely the last
			// shape's (see objectParser.hint).
			if last := d.shape.p.Load(); after == nil && last != nil {
				p.hint, p.n = last.Names, 0
			}
			env.after, afterNames, ok = p.walkImage(after, keep{all: true}, depth, true, afterNames, &afterValues, nil)
			p.hint = nil
		case sourceName:
			env.source, _, ok = p.walkImage(source, sourceField, depth, false, nil, nil, nil)
		case tsMsName:
			var tsMs *connectSchema
			if schema != nil {
				tsMs = schema.tsMs
			}
			if ok = p.skipValue(depth) == nil; ok {
				q := objectParser{b: p.b[:p.i], i: start}
				if d.Version == "ts_ms" { // else only checked, as jsonEnvelope does
					env.tsMs, err = q.connectValue(tsMs)
				} else {
					err = q.check(tsMs)
				}
				ok = err == nil
			}
		default:
			ok = p.skipValue(depth) == nil
		}
		if !ok {
			return false
		}
		done, err := p.next()
		if err != nil {
			return false
		}
		if done {
			break
		}
	}
	switch env.op {
	case "c", "r", "u":
		if afterValues != nil {
			// By position (see exactly.Change.Values) when it can be:
			// not with a name repeated (the map keeps the last value),
			// nor with a version column taken from the envelope, which
			// is added to the row.
			env.shape = shapes.get(afterNames, &d.shape)
			if env.shape != nil && len(afterValues) > 0 && d.Version == "" && env.shape.Distinct() {
				env.values = afterValues
				break
			}
			env.after = make(map[string]any, len(afterValues))
			for i, kv := range afterNames {
				env.after[kv.key] = afterValues[i]
			}
		} else if env.after != nil {
			env.shape = shapes.get(afterNames, &d.shape)
		}
	default:
		env.after = nil // checked only
	}
	if env.op != "d" {
		env.before = nil
	} else if beforeChecked {
		q := objectParser{b: p.b[:beforeAt.end], i: beforeAt.start}
		var ok bool
		if env.before, _, ok = q.walkImage(before, keep{all: true}, depth, false, nil, nil, nil); !ok {
			return false
		}
	}
	return true
}

// walkImage converts the image (a before, after or source struct, or a
// key's payload) at p.i by its schema s, as image does: without s its
// values stay as JSON gives them; only the fields k names are converted
// and returned, the others checked; null is nil. depth is the depth the
// two-pass path read the image at. With named, the names of the members
// converted are appended to names, in their order, for the image's shape.
// With values and named, a whole image is returned there, in the order of
// names, instead of as a map (out is nil then). known, if not nil, is
// the envelope a record key's image may take values from (see
// knownValue). ok is false when the two-pass path must read it.
func (p *objectParser) walkImage(s *structSchema, k keep, depth int, named bool, names []member, values *[]any, known *envelope) (out map[string]any, _ []member, ok bool) {
	if p.i == len(p.b) {
		return nil, nil, false
	}
	switch p.b[p.i] {
	case 'n':
		return nil, names, p.literal("null") == nil
	case '{':
	default:
		return nil, nil, false
	}
	if s == nil && !k.all && !k.one {
		if p.b[p.i] == '{' && p.skipFlat() {
			return nil, names, true // checked only, as connectors write it
		}
		return nil, names, p.skipValue(depth) == nil
	}
	if s != nil && !k.all && !k.one && p.b[p.i] == '{' && p.checkFields(s) {
		return nil, names, true // checked only, as connectors write it
	}
	// Without a schema, a whole image's members are collected first so
	// that the map is made at its size, as parseRow does.
	collect := s == nil && k.all
	var members []member
	if collect {
		members = make([]member, 0, 16)
	}
	byPosition := values != nil && s != nil && k.all && named
	// Without a schema, a whole image by position is boxed in a block
	// too, once its width is known: its text and integers are noted
	// (see imageBlock.later) and boxed at its end.
	later := collect && values != nil && named
	var block imageBlock
	var ib *imageBlock // the row's values and their boxes (see box.go)
	switch {
	case byPosition && len(s.order) <= maxBlock:
		ib = &block
		ib.init(len(s.order))
		*values = ib.values
	case byPosition:
		*values = make([]any, 0, len(s.order))
	case k.all && !collect:
		out = make(map[string]any, len(s.byName))
	}
	p.i++
	p.space()
	if p.i < len(p.b) && p.b[p.i] == '}' {
		p.i++
		switch {
		case byPosition || collect && values != nil && named:
			*values = []any{}
		case collect:
			out = map[string]any{}
		}
		return out, names, true
	}
	next := 0 // the schema field the next member is expected to be
	for {
		if p.i == len(p.b) || p.b[p.i] != '"' {
			return nil, nil, false
		}
		var f *connectSchema
		var kind fieldKind
		var name string
		if s != nil && next < len(s.order) && p.at(s.member[next]) {
			// The member the schema says comes next, as most do.
			f, kind = s.order[next], s.kind[next]
			next++
			name = f.Field
			if p.space(); p.i == len(p.b) {
				return nil, nil, false
			}
		} else if s != nil {
			key, err := p.key()
			if err != nil {
				return nil, nil, false
			}
			for j := next; j < len(s.order); j++ {
				if s.order[j].Field == string(key) {
					f, kind, next = s.order[j], s.kind[j], j+1
					break
				}
			}
			if f == nil {
				return nil, nil, false // unknown, repeated or out of order
			}
			name = f.Field
		} else {
			var err error
			if name, err = p.name(); err != nil || p.colon() != nil || p.i == len(p.b) {
				return nil, nil, false
			}
			p.n++
		}
		// A nested value is checked at the depth the two-pass path
		// read it at: converting it counts levels from the value.
		if c := p.b[p.i]; c == '{' || c == '[' {
			start := p.i
			if p.skipValue(depth+1) != nil {
				return nil, nil, false
			}
			p.i = start
		}
		switch {
		case k.field(name):
			var v any
			var err error
			switch {
			case p.b[p.i] == 'n': // connectValue takes null as read
				err = p.literal("null")
			case later && block.later(p, len(members)):
				// v is boxed at the end
			case ib != nil:
				v, err = p.boxedValue(f, kind, ib)
			case known != nil && f != nil:
				v, err = p.knownValue(f, kind, known)
			default:
				v, err = p.connectValue(f)
			}
			if err != nil {
				return nil, nil, false
			}
			if named {
				names = append(names, member{key: name})
			}
			if byPosition {
				*values = append(*values, v)
				break
			}
			if collect {
				members = append(members, member{name, v})
				break
			}
			if out == nil {
				out = make(map[string]any, 1)
			}
			out[name] = v // without s, a repeated member's last value, as image
		case f != nil:
			if p.checkKind(f, kind) != nil {
				return nil, nil, false
			}
		default:
			if p.skipValue(depth+1) != nil {
				return nil, nil, false
			}
		}
		p.space()
		if p.i == len(p.b) {
			return nil, nil, false
		}
		switch p.b[p.i] {
		case ',':
			p.i++
			p.space()
		case '}':
			p.i++
			switch {
			case ib != nil:
				ib.done(p.b)
			case later:
				*values = block.boxLater(p.b, members)
			case collect:
				out = make(map[string]any, len(members))
				for _, kv := range members {
					out[kv.key] = kv.value // a repeated member's last value
				}
			}
			return out, names, true
		default:
			return nil, nil, false
		}
	}
}

// checkFields reads over the object at p.i, a struct of schema s whose
// fields are only checked (a source block, a before image not used), when
// it is written as connectors write one: every member in schema order,
// keys and text without escapes, integers and text of the kinds any
// value of converts (see fieldKind), nulls, no white space. It says
// whether it did; if not, p.i is where it was and walkImage reads the
// object (to say what is wrong, or to read what this does not: walkImage
// takes whatever this takes, and checks it the same).
func (p *objectParser) checkFields(s *structSchema) bool {
	b, i := p.b, p.i+1
	for next := 0; ; next++ {
		if next == len(s.order) {
			return false
		}
		m := s.member[next]
		if m == "" || len(b)-i <= len(m) || string(b[i:i+len(m)]) != m {
			return false
		}
		i += len(m)
		switch c, kind := b[i], s.kind[next]; {
		case c == 'n':
			if len(b)-i < 4 || string(b[i:i+4]) != "null" {
				return false
			}
			i += 4
		case c == '"' && kind == kindText:
			if i = plainEnd(b, i); i < 0 {
				return false
			}
		case kind == kindInt && (c == '-' || '0' <= c && c <= '9'):
			if c == '-' {
				i++
			}
			start := i
			if i < len(b) && b[i] == '0' {
				i++
			} else {
				for i < len(b) && '0' <= b[i] && b[i] <= '9' {
					i++
				}
			}
			if i == start || i-start > 18 || i == len(b) || b[i] == '.' || b[i] == 'e' || b[i] == 'E' {
				return false // not an integer that surely fits
			}
		default:
			return false
		}
		var closed bool
		if i, closed = afterMember(b, i); i < 0 {
			return false
		}
		if closed {
			p.i = i
			return true
		}
	}
}

// skipFlat reads over the object at p.i, only checked, when it is written
// as connectors write a source block without a schema: no white space,
// keys and text without escapes, numbers, true, false and null, no
// nested value. It says whether it did; if not, p.i is where it was and
// skipValue reads the object (what this takes, skipValue takes, to the
// same end).
func (p *objectParser) skipFlat() bool {
	b, i := p.b, p.i+1
	if i < len(b) && b[i] == '}' {
		p.i = i + 1
		return true
	}
	for {
		if i == len(b) || b[i] != '"' {
			return false
		}
		if i = plainEnd(b, i); i < 0 || i+1 >= len(b) || b[i] != ':' {
			return false
		}
		i++
		switch c := b[i]; {
		case c == '"':
			if i = plainEnd(b, i); i < 0 {
				return false
			}
		case c == 'n' || c == 't' || c == 'f':
			word := "null"
			if c == 't' {
				word = "true"
			} else if c == 'f' {
				word = "false"
			}
			if len(b)-i < len(word) || string(b[i:i+len(word)]) != word {
				return false
			}
			i += len(word)
		case c == '-' || '0' <= c && c <= '9':
			if i = numberEnd(b, i); i < 0 {
				return false
			}
		default:
			return false
		}
		var closed bool
		if i, closed = afterMember(b, i); i < 0 {
			return false
		}
		if closed {
			p.i = i
			return true
		}
	}
}

// afterMember reads the separator after a member's value at b[i]: the
// index past a ',' (closed false) or past the object's '}' (closed true),
// or -1 for anything else.
func afterMember(b []byte, i int) (next int, closed bool) {
	if i < len(b) {
		switch b[i] {
		case ',':
			return i + 1, false
		case '}':
			return i + 1, true
		}
	}
	return -1, false
}

// plainEnd returns the index past the string at b[i] (its opening quote)
// when it has no escape nor control character, else -1.
func plainEnd(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return i + 1
		case c == '\\' || c < ' ':
			return -1
		}
	}
	return -1
}

// numberEnd returns the index past the JSON number at b[i], or -1 when
// it is not one: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func numberEnd(b []byte, i int) int {
	digits := func(i int) int {
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		return i
	}
	if b[i] == '-' {
		i++
	}
	switch {
	case i == len(b):
		return -1
	case b[i] == '0':
		i++
	case '1' <= b[i] && b[i] <= '9':
		i = digits(i)
	default:
		return -1
	}
	if i < len(b) && b[i] == '.' {
		if j := digits(i + 1); j > i+1 {
			i = j
		} else {
			return -1
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if j := digits(i); j > i {
			i = j
		} else {
			return -1
		}
	}
	return i
}

// walkKey reads a record key in one walk, as connectKey does; ok is false
// when connectKey must read it (see walkEnvelope). known, if not nil, is
// the record's envelope: a key field of the same value as its image's
// field of that name takes that field's value (see knownValue).
func walkKey(key []byte, cols []string, cache *schemaCache, topic string, known *envelope) (m map[string]any, ok bool) {
	t := bytes.TrimSpace(key)
	if len(t) == 0 || t[0] != '{' {
		return nil, false
	}
	p := objectParser{b: t}
	if done, _ := p.open(); done {
		return nil, false
	}
	if q := p; !isWrapperMember(&q) {
		// No wrapper (schemas.enable=false): the key's own fields.
		m, err := parseObject(t)
		return m, err == nil
	}
	var schema *compiledSchema
	var hasSchema bool
	for {
		key, err := p.key()
		if err != nil {
			return nil, false
		}
		switch memberName(key) {
		case schemaName:
			if hasSchema {
				return nil, false
			}
			hasSchema = true
			if schema, ok = walkSchema(&p, cache, cache.lastOf(topic)); !ok {
				return nil, false
			}
		case payloadName:
			if !hasSchema {
				return nil, false
			}
			if schema != nil && schema.schema.Type != "struct" {
				// A primitive key schema: the single key column.
				start := p.i
				if len(cols) != 1 || p.skipValue(1) != nil {
					return nil, false
				}
				q := objectParser{b: t[:p.i], i: start}
				v, err := q.connectValue(schema.schema)
				if err != nil {
					return nil, false
				}
				m = map[string]any{cols[0]: v}
			} else {
				var fields *structSchema
				if schema != nil {
					fields = schema.fields
				}
				if m, _, ok = p.walkImage(fields, keep{all: true}, 1, false, nil, nil, known); !ok || m == nil {
					return nil, false
				}
			}
			p.space()
			if p.i == len(t) || t[p.i] != '}' {
				return nil, false
			}
			p.i++
			p.space()
			return m, p.i == len(t)
		default:
			return nil, false
		}
		if done, err := p.next(); done || err != nil {
			return nil, false
		}
	}
}

// at reads over the member's key and colon at p.i if they are member
// (see structSchema.member), and says whether it did.
func (p *objectParser) at(member string) bool {
	if member != "" && len(p.b)-p.i >= len(member) && string(p.b[p.i:p.i+len(member)]) == member {
		p.i += len(member)
		return true
	}
	return false
}

// knownValue is connectValue of a key field that takes the value of the
// record image's field of its name when it converts to the same: an
// integer or text of no logical type that changes it, the key's copy of
// the row's id, is not made (boxed, copied) a second time.
func (p *objectParser) knownValue(s *connectSchema, kind fieldKind, known *envelope) (any, error) {
	v, ok := known.field(s.Field)
	if !ok || v == nil {
		return p.connectValue(s)
	}
	start := p.i
	c := p.b[start]
	switch kind {
	case kindInt:
		if c == '-' || '0' <= c && c <= '9' {
			if isInt, err := p.number(); err == nil {
				if i, ok := parseInt(p.b[start:p.i], isInt); ok {
					if same, ok := v.(int64); ok && same == i {
						return v, nil
					}
				}
			}
		}
	case kindText:
		if c == '"' {
			if end, ok := p.plainString(); ok {
				if same, ok := v.(string); ok && same == string(p.b[start+1:end]) {
					p.i = end + 1
					return v, nil
				}
			}
		}
	}
	p.i = start
	return p.connectValue(s)
}
