package decode

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/exactly/exactly"
)

// Avro decodes records in the Confluent wire format: a magic byte 0, a
// 4-byte big-endian schema id, then Avro binary written with that schema,
// which comes from the schema registry. With mode cdc the value is
// Debezium's Avro envelope (before/after/source/op/ts_ms) and is applied
// like the JSON one (see Debezium); otherwise the value record is the row
// and a tombstone deletes by key. A record key may itself be Confluent
// Avro (Debezium's key struct), JSON or plain text.
//
// Schemas are fetched in Prepare, before the batch is decoded, so Decode
// does no I/O on the normal path. A registry that cannot be reached fails
// the batch (it is retried); so does a schema id the registry answers 404
// for, until it has done so for Registry.notFoundFor: a registry replica
// behind its leader, or one restored from a backup, answers 404 for a
// schema a producer has just registered. Only then are the records with
// that id dead letters, and the registry is asked again on every later
// batch, so a schema that comes back is read again.
type Avro struct {
	cdc
	mode string
	reg  *Registry
	keys schemaCache // of JSON record keys
}

var (
	_ exactly.Decoder  = (*Avro)(nil)
	_ exactly.Preparer = (*Avro)(nil)
)

// NewAvro returns the Avro decoder of a rule, resolving schemas in reg.
func NewAvro(rule *exactly.TableRule, reg *Registry) *Avro {
	return &Avro{cdc: cdc{Key: rule.Key, KeyFrom: rule.KeyFrom, Version: rule.Version}, mode: rule.Mode, reg: reg}
}

// Registry resolves Confluent schema ids through a schema registry and
// keeps every schema it has parsed: a schema id never changes meaning.
type Registry struct {
	cl  *sr.Client
	url string

	// notFoundFor is how long a schema id may be answered 404 before its
	// records are dead letters (source.schema_registry.retry_not_found).
	notFoundFor time.Duration

	mu      sync.RWMutex
	schemas map[int]avro.Schema
	bad     map[int]error // schemas that are not Avro, use references or do not parse: the id's meaning never changes
	// missing holds when the registry first answered 404 for an id, in the
	// current run of 404s; gone the error of an id answered 404 for longer
	// than notFoundFor (its records are dead letters until it is found).
	missing map[int]time.Time
	gone    map[int]error
}

// NewRegistry returns a registry client for the configured URL.
func NewRegistry(cfg exactly.SchemaRegistryConfig) (*Registry, error) {
	opts := []sr.ClientOpt{sr.URLs(cfg.URL), sr.HTTPClient(&http.Client{Timeout: 10 * time.Second})}
	if cfg.Username != "" {
		opts = append(opts, sr.BasicAuth(cfg.Username, cfg.Password))
	}
	cl, err := sr.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("creating schema registry client for %s: %w", cfg.URL, err)
	}
	wait := cfg.RetryNotFound.D()
	if wait == 0 {
		wait = DefaultRetryNotFound
	}
	return &Registry{cl: cl, url: cfg.URL, notFoundFor: wait, schemas: map[int]avro.Schema{}, bad: map[int]error{},
		missing: map[int]time.Time{}, gone: map[int]error{}}, nil
}

// DefaultRetryNotFound is how long a schema id the registry answers 404 for
// fails the batch before its records are dead letters, when
// source.schema_registry.retry_not_found is not set.
const DefaultRetryNotFound = 5 * time.Minute

// NotFoundError is a schema id the registry has answered 404 for, for less
// than the configured time: the batch fails and is retried (issue 15.9: one
// 404 was remembered for the life of the process, and every later record
// with that id was dead-lettered).
type NotFoundError struct {
	ID       int
	URL      string
	Since    time.Time
	RetryFor time.Duration
	Err      error
}

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("schema id %d is not in the schema registry %s (404 for %s): the batch is retried; its records become dead letters if it is still missing after %s (source.schema_registry.retry_not_found): %v",
		e.ID, e.URL, time.Since(e.Since).Round(time.Second), e.RetryFor, e.Err)
}

func (e *NotFoundError) Unwrap() error { return e.Err }

// Fetch makes sure every id is known, asking the registry for the ones
// that are not. A schema that is not Avro, uses references or does not
// parse is remembered as bad (its records are dead letters). An id the
// registry answers 404 for is a *NotFoundError (the batch is retried)
// until it has been answered 404 for notFoundFor; then its records are
// dead letters, but it is asked for again on every Fetch. Any other
// failure is returned.
func (g *Registry) Fetch(ctx context.Context, ids []int) error {
	for _, id := range ids {
		g.mu.RLock()
		_, ok := g.schemas[id]
		_, isBad := g.bad[id]
		g.mu.RUnlock()
		if ok || isBad {
			continue
		}
		s, err := g.cl.SchemaByID(ctx, id)
		var re *sr.ResponseError
		if errors.As(err, &re) && re.StatusCode == http.StatusNotFound {
			if err := g.notFound(id, err); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("fetching schema id %d from %s: %w", id, g.url, err)
		}
		if s.Type != sr.TypeAvro {
			g.remember(id, nil, fmt.Errorf("schema id %d is %s, not Avro", id, s.Type))
			continue
		}
		if len(s.References) > 0 {
			g.remember(id, nil, fmt.Errorf("schema id %d uses schema references, which are not supported", id))
			continue
		}
		// Each schema gets its own name cache: two versions of one record
		// name (a column added) must not meet in a shared one.
		parsed, err := avro.ParseWithCache(s.Schema, "", &avro.SchemaCache{})
		if err != nil {
			g.remember(id, nil, fmt.Errorf("schema id %d does not parse: %v", id, err))
			continue
		}
		g.remember(id, parsed, nil)
	}
	return nil
}

// notFound records a 404 for id: a *NotFoundError while the id has been
// missing for less than notFoundFor, else nil with the id marked gone.
func (g *Registry) notFound(id int, err error) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	first, ok := g.missing[id]
	if !ok {
		first = time.Now()
		g.missing[id] = first
	}
	if time.Since(first) < g.notFoundFor {
		return &NotFoundError{ID: id, URL: g.url, Since: first, RetryFor: g.notFoundFor, Err: err}
	}
	g.gone[id] = fmt.Errorf("schema id %d is not in the schema registry %s (404 for %s): %v", id, g.url, time.Since(first).Round(time.Second), err)
	return nil
}

func (g *Registry) remember(id int, s avro.Schema, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.missing, id)
	delete(g.gone, id)
	if err != nil {
		g.bad[id] = err
		return
	}
	g.schemas[id] = s
}

// schema returns a known schema, fetching it when Prepare has not (plan
// and other tools that decode a sample without a batch).
func (g *Registry) schema(id int) (avro.Schema, error) {
	g.mu.RLock()
	s, ok := g.schemas[id]
	err := g.bad[id]
	if err == nil {
		err = g.gone[id] // asked again by the next Fetch
	}
	g.mu.RUnlock()
	if ok {
		return s, nil
	}
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := g.Fetch(ctx, []int{id}); err != nil {
		return nil, err
	}
	return g.schema(id)
}

// schemaID reads the Confluent framing: ok is false when b is not framed.
func schemaID(b []byte) (int, bool) {
	if len(b) < 5 || b[0] != 0 {
		return 0, false
	}
	return int(binary.BigEndian.Uint32(b[1:5])), true
}

// Prepare implements exactly.Preparer: it fetches the schemas of the
// records' keys and values.
func (d *Avro) Prepare(ctx context.Context, recs []*exactly.Record) error {
	seen := map[int]bool{}
	var ids []int
	for _, r := range recs {
		for _, b := range [][]byte{r.Key, r.Value} {
			if id, ok := schemaID(b); ok && !seen[id] {
				seen[id] = true
				ids = append(ids, id)
			}
		}
	}
	sort.Ints(ids)
	return d.reg.Fetch(ctx, ids)
}

// Decode implements exactly.Decoder.
func (d *Avro) Decode(r *exactly.Record) (exactly.Change, error) {
	ch, err := d.decode(r)
	if err != nil {
		return exactly.Change{}, recordError(r, err)
	}
	return ch, nil
}

func (d *Avro) decode(r *exactly.Record) (exactly.Change, error) {
	_, keyIsAvro := schemaID(r.Key)
	recordKey := func() (map[string]any, error) { return d.key(r.Key) }
	if r.Value == nil {
		if d.mode == "cdc" {
			return tombstone(recordKey)
		}
		k, err := recordKey()
		if err != nil {
			return exactly.Change{}, fmt.Errorf("tombstone: %w", err)
		}
		return exactly.Change{Op: exactly.OpDelete, Key: k}, nil
	}
	v, s, err := d.value(r.Value)
	if err != nil {
		return exactly.Change{}, fmt.Errorf("value: %w", err)
	}
	rec, ok := s.(*avro.RecordSchema)
	m, _ := v.(map[string]any)
	if !ok || m == nil {
		return exactly.Change{}, fmt.Errorf("value: schema is %s, not a record", s.Type())
	}
	structKey := keyIsAvro || isObject(r.Key)
	if d.mode == "cdc" {
		env, err := avroEnvelope(rec, m)
		if err != nil {
			return exactly.Change{}, err
		}
		return d.change(env, structKey, recordKey)
	}
	ch := exactly.Change{Op: exactly.OpUpsert, Row: row(m), Schema: avroFields(rec)}
	if d.KeyFrom == "record_key" || (d.KeyFrom == "" && structKey) {
		k, err := recordKey()
		if err != nil && d.KeyFrom == "record_key" {
			return exactly.Change{}, err
		}
		ch.Key = k
	}
	if d.Version != "" {
		ch.Version = ch.Row[d.Version]
	}
	return ch, nil
}

// value decodes a Confluent-framed Avro datum.
func (d *Avro) value(b []byte) (any, avro.Schema, error) {
	id, ok := schemaID(b)
	if !ok {
		return nil, nil, fmt.Errorf("not Confluent Avro: expected magic byte 0 and a 4-byte schema id, got %d bytes starting %q", len(b), truncate(b[:min(len(b), 8)]))
	}
	s, err := d.reg.schema(id)
	if err != nil {
		return nil, nil, err
	}
	v, err := readDatum(s, b[5:])
	if err != nil {
		return nil, nil, fmt.Errorf("schema id %d: %w", id, err)
	}
	return v, s, nil
}

// key reads a record key: Confluent Avro (a record gives its fields, a
// primitive the single key column), else JSON or text (see RecordKey).
func (d *Avro) key(b []byte) (map[string]any, error) {
	if _, ok := schemaID(b); !ok {
		return connectKey(b, d.Key, &d.keys, "")
	}
	v, s, err := d.value(b)
	if err != nil {
		return nil, fmt.Errorf("record key: %w", err)
	}
	if m, ok := v.(map[string]any); ok && s.Type() == avro.Record {
		return row(m), nil
	}
	if len(d.Key) != 1 {
		return nil, fmt.Errorf("record key is a %s and the rule has %d key columns", s.Type(), len(d.Key))
	}
	return map[string]any{d.Key[0]: column(v)}, nil
}

// avroEnvelope reads Debezium's Avro envelope.
func avroEnvelope(s *avro.RecordSchema, m map[string]any) (*envelope, error) {
	env := &envelope{}
	if op, ok := m["op"].(string); ok {
		env.op = op
	}
	for _, f := range []struct {
		name string
		dst  *map[string]any
	}{{"before", &env.before}, {"after", &env.after}, {"source", &env.source}} {
		v, ok := m[f.name]
		if !ok || v == nil {
			continue
		}
		img, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s: expected a record, got %T", f.name, v)
		}
		*f.dst = row(img)
	}
	env.tsMs = m["ts_ms"]
	for _, f := range s.Fields() {
		switch f.Name() {
		case "after":
			if rs, ok := recordOf(f.Type()); ok {
				env.fields = avroFields(rs)
			}
		case "source":
			if rs, ok := recordOf(f.Type()); ok {
				env.sourceFields = avroFields(rs)
			}
		case "ts_ms":
			t := avroField(f).Type
			env.tsType = &t
		}
	}
	return env, nil
}

// recordOf finds the record schema of a field, looking through a nullable
// union.
func recordOf(s avro.Schema) (*avro.RecordSchema, bool) {
	s = deref(s)
	if u, ok := s.(*avro.UnionSchema); ok {
		for _, t := range u.Types() {
			if rs, ok := deref(t).(*avro.RecordSchema); ok {
				return rs, true
			}
		}
	}
	rs, ok := s.(*avro.RecordSchema)
	return rs, ok
}

func deref(s avro.Schema) avro.Schema {
	if r, ok := s.(*avro.RefSchema); ok {
		return r.Schema()
	}
	return s
}

// avroFields describes a record's fields as logical column types.
func avroFields(rs *avro.RecordSchema) []exactly.Field {
	out := make([]exactly.Field, 0, len(rs.Fields()))
	for _, f := range rs.Fields() {
		out = append(out, avroField(f))
	}
	return out
}

func avroField(f *avro.Field) exactly.Field {
	s := deref(f.Type())
	nullable := false
	if u, ok := s.(*avro.UnionSchema); ok {
		nullable = u.Nullable()
		for _, t := range u.Types() {
			if t.Type() != avro.Null {
				s = deref(t)
				break
			}
		}
	}
	return exactly.Field{Name: f.Name(), Type: avroType(s), Nullable: nullable}
}

// avroType prefers the Connect name Debezium's Avro converter records.
func avroType(s avro.Schema) exactly.Type {
	if name, params := connectName(s); name != "" {
		if t := connectType(connectPrimitive(s.Type()), name, params); t.Kind != exactly.KindUnknown {
			return t
		}
	}
	logical, precision, scale := "", 0, 0
	if lt, ok := s.(avro.LogicalTypeSchema); ok && lt.Logical() != nil {
		logical = string(lt.Logical().Type())
		if dl, ok := lt.Logical().(*avro.DecimalLogicalSchema); ok {
			precision, scale = dl.Precision(), dl.Scale()
		}
	}
	return avroLogicalType(string(s.Type()), logical, precision, scale)
}

func connectPrimitive(t avro.Type) string {
	switch t {
	case avro.Int:
		return "int32"
	case avro.Long:
		return "int64"
	case avro.Float:
		return "float32"
	case avro.Double:
		return "float64"
	case avro.Record:
		return "struct"
	case avro.Enum:
		return "string"
	}
	return string(t)
}

// connectName returns the schema's connect.name and connect.parameters.
func connectName(s avro.Schema) (string, map[string]string) {
	ps, ok := s.(avro.PropertySchema)
	if !ok {
		return "", nil
	}
	name, _ := ps.Prop("connect.name").(string)
	var params map[string]string
	if raw, ok := ps.Prop("connect.parameters").(map[string]any); ok {
		params = make(map[string]string, len(raw))
		for k, v := range raw {
			if str, ok := v.(string); ok {
				params[k] = str
			}
		}
	}
	return name, params
}

// row turns a decoded record into column values: nested records, arrays
// and maps become JSON text.
func row(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = column(v)
	}
	return out
}

func column(v any) any {
	switch v.(type) {
	case map[string]any, []any:
		b, err := json.Marshal(v)
		if err != nil {
			return exactly.JSON(strconv.Quote(fmt.Sprint(v)))
		}
		return exactly.JSON(b)
	}
	return v
}

// maxItems bounds the array and map items one datum may hold: a block
// count is read from the data, and items of type null take no bytes.
const maxItems = 1 << 20

// maxDepth bounds nesting (recursive schemas).
const maxDepth = 64

// readDatum decodes one Avro binary datum written with s into exactly
// values; the whole input must be consumed.
func readDatum(s avro.Schema, b []byte) (any, error) {
	r := avro.NewReader(nil, 0).Reset(b)
	items := 0
	v, err := readValue(r, s, 0, &items)
	if err != nil {
		return nil, err
	}
	if r.Error != nil {
		return nil, fmt.Errorf("decoding Avro: %v", r.Error)
	}
	if r.Peek(); r.Error == nil {
		return nil, errors.New("decoding Avro: trailing bytes after the datum (written with another schema?)")
	}
	return v, nil
}

// readValue decodes one value written with s. depth bounds nesting and
// items counts the array and map items read so far, against maxItems.
func readValue(r *avro.Reader, s avro.Schema, depth int, items *int) (any, error) {
	if depth > maxDepth {
		return nil, errors.New("decoding Avro: nested deeper than 64 levels")
	}
	if r.Error != nil {
		return nil, fmt.Errorf("decoding Avro: %v", r.Error)
	}
	s = deref(s)
	switch s.Type() {
	case avro.Null:
		return nil, nil
	case avro.Boolean:
		return r.ReadBool(), nil
	case avro.Int, avro.Long:
		return readInteger(r, s)
	case avro.Float:
		return float64(r.ReadFloat()), nil
	case avro.Double:
		return r.ReadDouble(), nil
	case avro.String:
		str := string(r.ReadBytes())
		if r.Error != nil {
			return nil, fmt.Errorf("decoding Avro: %v", r.Error)
		}
		name, _ := connectName(s)
		return text(name, str)
	case avro.Bytes, avro.Fixed:
		return readBytes(r, s)
	case avro.Enum:
		syms := s.(*avro.EnumSchema).Symbols()
		i, err := readIndex(r, int64(r.ReadInt()), len(syms), "enum")
		if err != nil {
			return nil, err
		}
		return syms[i], nil
	case avro.Union:
		types := s.(*avro.UnionSchema).Types()
		i, err := readIndex(r, r.ReadLong(), len(types), "union")
		if err != nil {
			return nil, err
		}
		return readValue(r, types[i], depth+1, items)
	case avro.Record:
		rs := s.(*avro.RecordSchema)
		if rs.Name() == dbzVarDecimal {
			v, err := readRecord(r, rs, depth, items)
			if err != nil {
				return nil, err
			}
			return avroVariableScaleDecimal(v)
		}
		return readRecord(r, rs, depth, items)
	case avro.Array, avro.Map:
		return readCollection(r, s, depth, items)
	}
	return nil, fmt.Errorf("decoding Avro: unsupported schema type %s", s.Type())
}

// logicalOf returns s's Avro logical type, or nil.
func logicalOf(s avro.Schema) avro.LogicalSchema {
	if lt, ok := s.(avro.LogicalTypeSchema); ok {
		return lt.Logical()
	}
	return nil
}

// readInteger reads an int or long: a date, time or timestamp when its
// connect.name or Avro logical type says so (connect.name first).
func readInteger(r *avro.Reader, s avro.Schema) (any, error) {
	var i int64
	if s.Type() == avro.Int {
		i = int64(r.ReadInt())
	} else {
		i = r.ReadLong()
	}
	if r.Error != nil {
		return nil, fmt.Errorf("decoding Avro: %v", r.Error)
	}
	if name, _ := connectName(s); name != "" {
		return integer(name, i)
	}
	lname := ""
	if logical := logicalOf(s); logical != nil {
		lname = string(logical.Type())
	}
	switch lname {
	case "date":
		return integer(dbzDate, i)
	case "time-millis":
		return integer(dbzTime, i)
	case "time-micros":
		return integer(dbzMicroTime, i)
	case "timestamp-millis", "local-timestamp-millis":
		return integer(dbzTimestamp, i)
	case "timestamp-micros", "local-timestamp-micros":
		return integer(dbzMicroTimestamp, i)
	case "timestamp-nanos", "local-timestamp-nanos":
		return integer(dbzNanoTimestamp, i)
	}
	return i, nil
}

// readBytes reads bytes or fixed: a decimal when its Avro logical type or
// its connect.name says so (the logical type first).
func readBytes(r *avro.Reader, s avro.Schema) (any, error) {
	var b []byte
	if f, ok := s.(*avro.FixedSchema); ok {
		b = make([]byte, f.Size())
		r.Read(b)
	} else {
		b = append([]byte(nil), r.ReadBytes()...)
	}
	if r.Error != nil {
		return nil, fmt.Errorf("decoding Avro: %v", r.Error)
	}
	if dl, ok := logicalOf(s).(*avro.DecimalLogicalSchema); ok {
		return DecimalFromBytes(b, dl.Scale()), nil
	}
	if name, params := connectName(s); name == connectDecimal {
		scale, err := decimalScale(params)
		if err != nil {
			return nil, err
		}
		return DecimalFromBytes(b, scale), nil
	}
	return b, nil
}

// readIndex checks an enum symbol's or union branch's index i, just read,
// against the n there are.
func readIndex(r *avro.Reader, i int64, n int, what string) (int, error) {
	if r.Error != nil {
		return 0, fmt.Errorf("decoding Avro: %v", r.Error)
	}
	if i < 0 || i >= int64(n) {
		return 0, fmt.Errorf("decoding Avro: %s index %d out of range", what, i)
	}
	return int(i), nil
}

// readCollection reads an array (as []any, never nil) or a map.
func readCollection(r *avro.Reader, s avro.Schema, depth int, items *int) (any, error) {
	if as, ok := s.(*avro.ArraySchema); ok {
		var out []any
		err := readBlocks(r, items, func() error {
			v, err := readValue(r, as.Items(), depth+1, items)
			out = append(out, v)
			return err
		})
		if out == nil {
			out = []any{}
		}
		return out, err
	}
	out := map[string]any{}
	err := readBlocks(r, items, func() error {
		k := string(r.ReadBytes())
		v, err := readValue(r, s.(*avro.MapSchema).Values(), depth+1, items)
		out[k] = v
		return err
	})
	return out, err
}

func readRecord(r *avro.Reader, rs *avro.RecordSchema, depth int, items *int) (map[string]any, error) {
	out := make(map[string]any, len(rs.Fields()))
	for _, f := range rs.Fields() {
		v, err := readValue(r, f.Type(), depth+1, items)
		if err != nil {
			return nil, fmt.Errorf("field %q: %w", f.Name(), err)
		}
		out[f.Name()] = v
	}
	return out, nil
}

// readBlocks reads Avro array/map blocks, calling item once per item.
func readBlocks(r *avro.Reader, items *int, item func() error) error {
	for {
		n, _ := r.ReadBlockHeader()
		if r.Error != nil {
			return fmt.Errorf("decoding Avro: %v", r.Error)
		}
		if n == 0 {
			return nil
		}
		if n < 0 || n > maxItems-int64(*items) {
			return fmt.Errorf("decoding Avro: more than %d array or map items", maxItems)
		}
		*items += int(n)
		for range n {
			if err := item(); err != nil {
				return err
			}
			if r.Error != nil {
				return fmt.Errorf("decoding Avro: %v", r.Error)
			}
		}
	}
}

// avroVariableScaleDecimal reads Debezium's {scale, value} decimal record.
func avroVariableScaleDecimal(m map[string]any) (any, error) {
	scale, ok := m["scale"].(int64)
	if !ok || scale < -1000 || scale > 1000 {
		return nil, errors.New("variable scale decimal without a small integer scale")
	}
	b, ok := m["value"].([]byte)
	if !ok {
		return nil, errors.New("variable scale decimal without value bytes")
	}
	return DecimalFromBytes(b, int(scale)), nil
}
