package decode

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unicode"

	"github.com/exactly/exactly"
)

// The hand-written envelope path is held to the encoding/json path it
// replaced (debezium_ref_test.go): on any record, both fail or both
// succeed; failures say the same (up to which of several bad fields of an
// image is named: the encoding/json path found them in map order), and
// changes are equal, down to the Go types. Each record is decoded twice
// by one decoder, so that its schema is read once and then taken from the
// cache, by a decoder whose cache already holds the fixtures' schemas.

// sameAsReference decodes r by both paths and fails t on a difference.
func sameAsReference(t *testing.T, rule *exactly.TableRule, r *exactly.Record, warm int) {
	t.Helper()
	want, wantErr := refDecode(NewDebezium(rule), r)
	d := NewDebezium(rule)
	warmCache(t, &d.values, r.Topic, warm)
	for pass := range 2 {
		got, gotErr := d.Decode(r)
		if msg := difference(got, gotErr, want, wantErr); msg != "" {
			t.Fatalf("pass %d, rule %+v,\nkey   %q\nvalue %q:\n%s", pass, *rule, r.Key, r.Value, msg)
		}
	}
	// The record key alone (a change reads it only on some paths), as
	// the Debezium and Avro decoders read it.
	wantKey, wantKeyErr := refConnectKey(r.Key, rule.Key)
	for pass := range 2 {
		got, gotErr := connectKey(r.Key, rule.Key, &d.keys, r.Topic)
		if msg := difference(got, gotErr, wantKey, wantKeyErr); msg != "" {
			t.Fatalf("record key, pass %d, key columns %q,\nkey %q:\n%s", pass, rule.Key, r.Key, msg)
		}
	}
}

func difference[T any](got T, gotErr error, want T, wantErr error) string {
	if (gotErr == nil) != (wantErr == nil) {
		return fmt.Sprintf("got error %v\nreference error %v\ngot %#v\nreference %#v", gotErr, wantErr, got, want)
	}
	if gotErr != nil && fault(gotErr) != fault(wantErr) {
		return fmt.Sprintf("got error %q\nreference error %q", gotErr, wantErr)
	}
	if ch, ok := any(&got).(*exactly.Change); ok {
		// The reference knows no shapes: the shape must name the row's
		// fields, and is then left out of the comparison.
		if msg := shapeFault(*ch); msg != "" {
			return msg
		}
		if ch.Values != nil { // by position: compared as the map it stands for
			ch.Row, ch.Values = ch.RowMap(), nil
		}
		ch.Shape = nil
	}
	if !reflect.DeepEqual(got, want) {
		return fmt.Sprintf("got       %#v\nreference %#v", got, want)
	}
	return ""
}

// fault is an error's text up to the field it names, if any: which of an
// image's bad fields the reference names depends on map order.
func fault(err error) string {
	s := err.Error()
	if i := strings.Index(s, `field "`); i >= 0 {
		return s[:i]
	}
	return s
}

var (
	fixtureSchemasOnce sync.Once
	fixtureSchemas     []*compiledSchema
)

// warmCache puts the schemas of the fixtures and the bench's events into c,
// the one chosen by n last (the one prefix tries for topic's records).
func warmCache(t testing.TB, c *schemaCache, topic string, n int) {
	fixtureSchemasOnce.Do(func() {
		d := NewDebezium(&exactly.TableRule{Key: []string{"id"}})
		for _, e := range realEvents(t) {
			_, _ = d.Decode(&exactly.Record{Key: e.key, Value: e.value})
		}
		for _, s := range d.values.byRaw {
			fixtureSchemas = append(fixtureSchemas, s)
		}
	})
	if n < 0 || len(fixtureSchemas) == 0 {
		return
	}
	last := c.lastOf(topic)
	for _, s := range fixtureSchemas {
		c.put(last, s)
	}
	c.put(last, fixtureSchemas[n%len(fixtureSchemas)])
}

type event struct{ key, value []byte }

// realEvents are Debezium events as connectors write them: the fixtures,
// the bench's, and FuzzDebezium's hand-written seeds.
func realEvents(tb testing.TB) []event {
	var out []event
	for _, name := range []string{"create", "update", "delete", "snapshot_read", "tombstone", "create_noschema", "add_column"} {
		r := fixture(tb, name)
		out = append(out, event{r.Key, r.Value})
	}
	for _, withSchema := range []bool{true, false} {
		k, v := orderEvent(42, withSchema)
		out = append(out, event{k, v})
		// An update with its before image (REPLICA IDENTITY FULL) and a delete.
		after := []byte(`"after":{"id":42,`)
		u := bytes.Replace(v, []byte(`"before":null,`), bytes.ReplaceAll(after, []byte("after"), []byte("before")), 1)
		u = bytes.Replace(u, []byte(`"before":{"id":42,`), []byte(`"before":{"id":42,"customer_id":4711,"order_no":"SO-2026-0000042","status":"new","quantity":2,"total":"A+g=","discount":null,"paid":false,"note":"call first","created_at":1764123331123456,"updated_at":null,"ship_date":null,"row_version":6},"after":{"id":42,`), 1)
		u = bytes.Replace(u, []byte(`"op":"c"`), []byte(`"op":"u"`), 1)
		out = append(out, event{k, u})
		del := bytes.Replace(u, []byte(`"op":"u"`), []byte(`"op":"d"`), 1)
		if i := bytes.Index(del, []byte(`"after":{"id":42,"customer_id":4711,"order_no"`)); i >= 0 {
			j := i + bytes.IndexByte(del[i:], '}')
			del = append(append(del[:i:i], `"after":null`...), del[j+1:]...)
		}
		out = append(out, event{k, del})
	}
	for _, v := range []string{
		`{"op":"c","after":{"id":1},"source":{"lsn":5},"ts_ms":1}`,
		`{"op":"d","before":{"id":1}}`,
		`{"op":"t"}`,
		`{"schema":{"type":"struct","fields":[{"field":"after","type":"struct","fields":[{"field":"d","type":"bytes","name":"org.apache.kafka.connect.data.Decimal","parameters":{"scale":"3"}},{"field":"v","type":"struct","name":"io.debezium.data.VariableScaleDecimal"},{"field":"t","type":"int64","name":"io.debezium.time.NanoTime"}]}]},"payload":{"op":"u","after":{"d":"gA==","v":{"scale":2,"value":"AQ=="},"t":1000}}}`,
		`{"schema":{"type":"int32"},"payload":{"op":"c"}}`,
	} {
		out = append(out, event{[]byte(`{"id":1}`), []byte(v)})
	}
	return out
}

// The rules a fuzzed record is decoded under.
var (
	fuzzKeyFrom  = []string{"", "record_key", "value"}
	fuzzVersions = []string{"", "source_lsn", "ts_ms", "row_version", "source_ts_ms", "id", "source_nope", "nope", "source_"}
	fuzzKeys     = [][]string{{"id"}, {"id", "name"}}
)

func fuzzRule(keyFrom, version uint8) *exactly.TableRule {
	return &exactly.TableRule{Key: fuzzKeys[version>>4%2], KeyFrom: fuzzKeyFrom[keyFrom%3], Version: fuzzVersions[int(version)%len(fuzzVersions)]}
}

// envelopeEdgeCases are values where encoding/json has a rule to copy.
var envelopeEdgeCases = []string{
	``, `null`, `null}`, `nullx`, `[]`, `"s"`, `1`, `{}`, `{} x`, `{}}`, `{"op":"c","after":{}}`, `{"op":"c","after":{}} ]`,
	`{"op":null}`, `{"op":""}`, `{"op":"\u0063","after":{"id":1}}`, `{"op":"c","op":"d","before":{"id":1}}`,
	`{"op":"c","after":{"id":1},"after":null}`, `{"op":"c","after":null,"after":{"id":1}}`, `{"o\u0070":"c","after":{"id":1}}`,
	`{"op":"c","after":[1]}`, `{"op":"c","after":"x"}`, `{"op":"c","after":{"id":1},"before":5}`, `{"op":"c","after":{"id":1},"source":[]}`,
	`{"op":"c","after":{"id":1},"ts_ms":{}}`, `{"op":"c","after":{"id":1},"ts_ms":"x"}`, `{"op":"u","after":{"a":{"b":[1,2.5]}}}`,
	`{"OP":"c","after":{"id":1}}`, "{\"op\":\"c\xff\",\"after\":{\"id\":1}}", `{"op":"c","after":{"id":1},"source":{"lsn":1e3}}`,
	// Wrappers.
	`{"schema":null,"payload":{"op":"c","after":{"id":1}}}`, `{"payload":{"op":"c","after":{"id":1}},"schema":null}`,
	`{"schema":{},"payload":{"op":"c","after":{"id":1}}}`, `{"schema":[],"payload":{"op":"c","after":{"id":1}}}`,
	`{"schema":5,"payload":{"op":"c","after":{"id":1}}}`, `{"schema":{"type":"struct"},"payload":null}`,
	`{"schema":{"type":"struct"},"payload":[]}`, `{"schema":{"type":"struct"},"payload":"x"}`, `{"schema":{"type":"struct"},"payload":7}`,
	`{"schema":{"type":"struct"},"payload":{"op":"c","after":{"id":1}}}`,
	`{"schema":{"type":"struct"},"payload":{"op":"c","after":{"id":1}},"x":1}`,
	`{"schema":{"type":"struct"},"payload":{"op":"c","after":{"id":1}},"payload":{"op":"d","before":{"id":2}}}`,
	`{"schema":{"type":"struct"},"schema":{"type":"struct","fields":[{"field":"after","type":"struct","fields":[{"field":"id","type":"int32"}]}]},"payload":{"op":"c","after":{"id":"x"}}}`,
	`{"schema":{"type":"struct","fields":[{"field":"after","type":"struct","fields":[{"field":"id","type":"int32"}]}]},"schema":{"name":"n"},"payload":{"op":"c","after":{"id":"x"}}}`,
	`{"schema":{"type":"struct","fields":[{"field":"after","type":"struct","fields":[{"field":"id","type":"int32"},{"field":"n","type":"string"}]}]},"schema":{"fields":[{"type":"int64"}]},"payload":{"op":"c","after":{"id":1,"n":"x"}}}`,
	`{"schema":{"type":"struct","fields":[{"field":"after","type":"struct","fields":[{"field":"id","type":"int32"}]}]},"schema":null,"payload":{"op":"c","after":{"id":1}}}`,
	`{"sch\u0065ma":{"type":"struct","fields":[{"field":"after","type":"struct","fields":[{"field":"id","type":"int32"}]}]},"payload":{"op":"c","after":{"id":"x"}}}`,
	`{"SCHEMA":{"type":"struct"},"payload":{"op":"c","after":{"id":1}}}`, `{"Payload":{"op":"c"},"schema":{"type":"struct"}}`,
	`{"schema":{"TYPE":"struct","FIELDS":[{"Field":"after","Type":"struct","fieldſ":[{"field":"id","type":"int64"}]}]},"payload":{"op":"c","after":{"id":1}}}`,
	`{"schema":{"type":"string"},"payload":{"op":"c","after":{"id":1}}}`, `{"schema":{"type":5},"payload":{"op":"c","after":{"id":1}}}`,
	`{"schema":{"type":"struct","fields":[null,{"field":"after","type":"struct","fields":[null,{"field":"id","type":"int32"},{"field":"id","type":"string"}]}]},"payload":{"op":"c","after":{"id":1}}}`,
	`{"schema":{"type":"struct","fields":[{"field":"after","type":"struct"}]},"payload":{"op":"c","after":{}}}`,
	`{"schema":{"type":"struct","fields":[{"field":"after","type":"struct"}]},"payload":{"op":"c","after":{"id":1}}}`,
	`{"schema":{"type":"struct","fields":[{"field":"ts_ms","type":"int64","name":"io.debezium.time.Timestamp"}]},"payload":{"op":"c","after":{"id":1},"ts_ms":5}}`,
	`{"schema":{"type":"struct","fields":[{"field":"after","type":"struct","fields":[{"field":"id","type":"int32"}]}]},"payload":{"op":"c","after":{"id":"x","id":1}}}`,
	`{"schema":{"type":"struct","fields":[{"field":"after","type":"struct","fields":[{"field":"id","type":"int32"}]}]},"payload":{"op":"c","after":{"id":1,"id":"x"}}}`,
	`{"schema":{"type":"struct","fields":[{"field":"after","type":"struct","fields":[{"field":"id","type":"int32"}]}]},"payload":{"op":"c","after":{"id":1,"i\u0064":2}}}`,
	`{"schema":{"type":"struct","fields":[{"field":"after","type":"struct","fields":[{"field":"id","type":"int32"}]}]},"payload":{"op":"c","after":{"ID":1}}}`,
	`{"schema":{"type":"struct","fields":[{"field":"after","type":"struct","fields":[{"field":"id","type":"uuid"}]}]},"payload":{"op":"c","after":{"id":null}}}`,
	// Images a change does not use are checked all the same.
	`{"schema":{"type":"struct","fields":[{"field":"before","type":"struct","fields":[{"field":"id","type":"int32"}]}]},"payload":{"op":"c","before":{"id":"x"},"after":{"id":1}}}`,
	`{"schema":{"type":"struct","fields":[{"field":"after","type":"struct","fields":[{"field":"id","type":"int32"}]}]},"payload":{"op":"d","before":{"id":1},"after":{"id":"x"}}}`,
	`{"schema":{"type":"struct","fields":[{"field":"after","type":"struct","fields":[{"field":"id","type":"int32"}]}]},"payload":{"op":"d","before":{"id":1},"after":{"x":1}}}`,
	`{"op":"d","before":{"id":1},"after":[]}`, `{"op":"c","before":"x","after":{"id":1}}`, `{"op":"t","after":{"id":1},"source":5}`,
	`{"schema":{"type":"struct","fields":[{"field":"source","type":"struct","fields":[{"field":"lsn","type":"int64"},{"field":"db","type":"string"},` +
		`{"field":"ts_ms","type":"int64","name":"io.debezium.time.Timestamp"},{"field":"z","type":"string","name":"io.debezium.time.ZonedTimestamp"},` +
		`{"field":"","type":"int64"}]}]},"payload":{"op":"c","after":{"id":1},"source":{"lsn":1,"db":"x","ts_ms":2,"z":"2023-11-14T22:13:20Z","":3}}}`,
	`{"schema":{"type":"struct","fields":[{"field":"source","type":"struct","fields":[{"field":"lsn","type":"int64"},{"field":"db","type":"string"}]}]},"payload":{"op":"c","after":{"id":1},"source":{"lsn":1,"db":5}}}`,
	`{"schema":{"type":"struct","fields":[{"field":"source","type":"struct","fields":[{"field":"lsn","type":"int64"},{"field":"z","type":"string","name":"io.debezium.time.ZonedTimestamp"}]}]},"payload":{"op":"c","after":{"id":1},"source":{"lsn":1,"z":"bad"}}}`,
	`{"schema":{"type":"struct","fields":[{"field":"source","type":"struct","fields":[{"field":"lsn","type":"int64"}]}]},"payload":{"op":"c","after":{"id":1},"source":{"lsn":"x","lsn":2}}}`,
	`{"schema":{"type":"struct","fields":[{"field":"source","type":"struct","fields":[{"field":"lsn","type":"int64"}]}]},"payload":{"op":"c","after":{"id":1},"source":{"lsn":2,"lsn":"x"}}}`,
	`{"schema":{"type":"struct","fields":[{"field":"source","type":"struct","fields":[{"field":"lsn","type":"int64"}]}]},"payload":{"op":"c","after":{"id":1},"source":{"lsn":2,"ts_ms":1}}}`,
	`{"op":"c","after":{"id":1},"source":{"lsn":1,"lsn":null}}`, `{"op":"c","after":{"id":1},"source":{"":1,"lsn":[1,{"a":2}],"ts_ms":1.50}}`,
	`{"op":"c","after":{"id":1,"source_lsn":7},"source":{"lsn":1}}`, `{"op":"c","after":{"id":1},"source":{"l\u0073n":1}}`,
}

// typedValues are values for a one-field after image of each Connect type.
var typedValues = map[string][]string{
	`"type":"boolean"`: {`true`, `false`, `null`, `1`, `"true"`},
	`"type":"int8"`:    {`0`, `-0`, `127`, `1.0`, `1e2`, `9223372036854775807`, `9223372036854775808`, `-9223372036854775808`, `-9223372036854775809`, `"1"`, `[]`},
	`"type":"int64","name":"io.debezium.time.Date"`:                   {`19000`, `-10000001`, `10000000`},
	`"type":"int64","name":"org.apache.kafka.connect.data.Timestamp"`: {`1700000000123`, `-1`},
	`"type":"int64","name":"io.debezium.time.MicroTimestamp"`:         {`1700000000123456`},
	`"type":"int64","name":"io.debezium.time.NanoTimestamp"`:          {`1700000000123456789`},
	`"type":"int32","name":"io.debezium.time.Time"`:                   {`49530123`, `86400000`, `86400001`, `-1`},
	`"type":"int64","name":"io.debezium.time.MicroTime"`:              {`49530000001`},
	`"type":"int64","name":"io.debezium.time.NanoTime"`:               {`1`, `86400000000001`},
	`"type":"float64"`: {`1.5`, `1e400`, `-0`, `1e-400`, `"1"`},
	`"type":"float32"`: {`3`},
	`"type":"double"`:  {`1.5`, `null`},
	`"type":"string"`:  {`"x"`, `"\u00e9\ud83d"`, "\"\xff\"", `1`},
	`"type":"string","name":"io.debezium.time.ZonedTimestamp"`: {`"2023-11-14T22:13:20.5+01:00"`, `"2023-11-14T22:13:20Z"`, `"yesterday"`},
	`"type":"string","name":"io.debezium.data.Json"`:           {`"{\"a\":1}"`, `"not json"`},
	`"type":"bytes"`: {`"AQID"`, `"AQ\u003d\u003d"`, `"AQ\/D"`, "\"AQ\\nID\"", `"not base64!"`, `""`, `1`},
	`"type":"bytes","name":"org.apache.kafka.connect.data.Decimal","parameters":{"scale":"2"}`:    {`"MDk="`, `"/2o="`, `""`, `"x"`},
	`"type":"bytes","name":"org.apache.kafka.connect.data.Decimal"`:                               {`"MDk="`, `null`},
	`"type":"bytes","name":"org.apache.kafka.connect.data.Decimal","parameters":{"scale":"x"}`:    {`"MDk="`, `"x"`},
	`"type":"bytes","name":"org.apache.kafka.connect.data.Decimal","parameters":{"scale":"2000"}`: {`"MDk="`},
	`"type":"struct","name":"io.debezium.data.VariableScaleDecimal"`: {`{"scale":2,"value":"MDk="}`, `{"scale":2.5,"value":"MDk="}`,
		`{"scale":2,"value":1}`, `{"value":"MDk="}`, `{"scale":2,"value":"MDk=","scale":3}`, `[]`},
	`"type":"struct"`: {`{"b":2,"a":[1,{"c":null}]}`, `{}`, `[]`, `"x"`},
	`"type":"array"`:  {`[1,"x",2.50]`, `1`, `"x"`, `{"a":1}`, `true`},
	`"type":"map"`:    {`{"k":1}`, `12345678901234567890`},
	`"type":"uuid"`:   {`"x"`, `null`},
}

// TestDebeziumMatchesReferenceOnEdgeCases runs the edge cases, every
// Connect type with good and bad values, and the real events under every
// rule.
func TestDebeziumMatchesReferenceOnEdgeCases(t *testing.T) {
	values := envelopeEdgeCases
	for typ, vs := range typedValues {
		for _, v := range vs {
			values = append(values,
				`{"schema":{"type":"struct","fields":[{"field":"after","type":"struct","fields":[{"field":"f",`+typ+`}]},{"field":"ts_ms",`+typ+`}]},`+
					`"payload":{"op":"c","after":{"f":`+v+`},"ts_ms":`+v+`}}`,
				`{"schema":{"type":"struct","fields":[{"field":"after","type":"struct","fields":[{"field":"f",`+typ+`}]}]},"payload":{"op":"c","after":{"f":`+v+`}}}`)
		}
	}
	keys := []string{``, `7`, `"k"`, `{"id":1}`, `{"id":1} x`, `{"id":`, `null`, `[1]`, ` {"id":1} `,
		`{"schema":{"type":"struct","fields":[{"field":"id","type":"int32"}]},"payload":{"id":2}}`,
		`{"schema":{"type":"struct","fields":[{"field":"id","type":"int32"}]},"payload":{"id":"x"}}`,
		`{"schema":{"type":"struct","fields":[{"field":"id","type":"int32"}]},"payload":null}`,
		`{"schema":{"type":"struct","fields":[{"field":"id","type":"int32"}]},"payload":[1]}`,
		`{"schema":{"type":"int64"},"payload":5}`, `{"schema":{"type":"int64"},"payload":"x"}`, `{"schema":{"type":"string"},"payload":null}`,
		`{"schema":null,"payload":{"id":3}}`, `{"schema":5,"payload":{"id":3}}`, `{"schema":{"type":"struct"},"payload":{"id":3}}`,
		`{"schema":{"type":"int64"},"schema":{"type":"struct"},"payload":{"id":3}}`, `{"payload":{"id":3}}`,
	}
	for i, v := range values {
		for rule := range 6 {
			sameAsReference(t, fuzzRule(uint8(rule%3), uint8(rule/3*2)), &exactly.Record{Key: []byte(`{"id":1}`), Value: []byte(v)}, i)
		}
	}
	for i, k := range keys {
		for _, v := range []string{values[len(values)-1], `{"op":"d","before":null}`, `{"op":"d","before":{"id":1,"name":"x"}}`, `{"op":"r","after":{"id":1}}`} {
			for rule := range 6 {
				sameAsReference(t, fuzzRule(uint8(rule%3), uint8(rule/3*2+rule%2*16)), &exactly.Record{Key: []byte(k), Value: []byte(v)}, i)
			}
		}
	}
	for i, e := range realEvents(t) {
		for version := range 32 {
			for keyFrom := range 3 {
				r := &exactly.Record{Key: e.key, Value: e.value}
				sameAsReference(t, fuzzRule(uint8(keyFrom), uint8(version)), r, i+version)
				sameAsReference(t, fuzzRule(uint8(keyFrom), uint8(version)), r, -1)
			}
		}
	}
}

// TestDebeziumMatchesReferenceAtDepthLimit: encoding/json refuses more
// than 10000 levels of nesting, the top object counted, wherever they are.
func TestDebeziumMatchesReferenceAtDepthLimit(t *testing.T) {
	rule := fuzzRule(0, 0)
	for _, depth := range []int{9997, 9998, 9999, 10000} {
		deep := strings.Repeat("[", depth) + strings.Repeat("]", depth)
		for _, v := range []string{
			`{"op":"c","after":{"a":` + deep + `}}`,
			`{"op":"c","after":{"a":1},"x":` + deep + `}`,
			`{"schema":{"type":"struct","doc":` + deep + `},"payload":{"op":"c","after":{"a":1}}}`,
			`{"schema":{"type":"struct"},"payload":{"op":"c","after":{"a":1},"x":` + deep + `}}`,
			`{"schema":{"type":"struct","fields":[{"field":"after","type":"struct","fields":[{"field":"a","type":"array"}]}]},"payload":{"op":"c","after":{"a":` + deep + `}}}`,
		} {
			sameAsReference(t, rule, &exactly.Record{Key: []byte(`{"a":` + deep + `}`), Value: []byte(v)}, -1)
		}
	}
}

// FuzzDebeziumMatchesReference: arbitrary bytes, seeded with the
// committed corpora, the fixtures and the edge cases.
func FuzzDebeziumMatchesReference(f *testing.F) {
	for _, e := range realEvents(f) {
		f.Add(e.key, e.value, e.value == nil, uint8(0), uint8(1), uint8(0))
	}
	for i, v := range envelopeEdgeCases {
		f.Add([]byte(`{"id":1}`), []byte(v), false, uint8(i), uint8(i), uint8(i))
	}
	for i, b := range corpusBytes(f) {
		f.Add([]byte(`7`), b, false, uint8(i), uint8(i), uint8(i))
	}
	f.Fuzz(func(t *testing.T, key, value []byte, tombstone bool, keyFrom, version, warm uint8) {
		sameAsReference(t, fuzzRule(keyFrom, version), record(key, value, tombstone), int(warm))
	})
}

// FuzzDebeziumMutationsMatchReference mutates real events as JSON trees:
// members dropped, repeated, renamed (escaped, in other case) or added,
// values replaced by values of other types, by other schema type names,
// by other parts of the event, or by fuzzed text. Each pair of ops bytes
// is one mutation: what, and where (a node of the key or value in
// pre-order).
func FuzzDebeziumMutationsMatchReference(f *testing.F) {
	events := realEvents(f)
	for i := range events {
		f.Add(uint8(i), []byte{}, "", int64(0), uint8(i), uint8(i))
		f.Add(uint8(i), []byte{byte(i), byte(3 * i), byte(7 + i), byte(i * i)}, "x", int64(i), uint8(i), uint8(i))
	}
	f.Fuzz(func(t *testing.T, base uint8, ops []byte, s string, n int64, keyFrom, version uint8) {
		e := events[int(base)%len(events)]
		key, value := mutateEvent(e.key, e.value, ops, s, n)
		sameAsReference(t, fuzzRule(keyFrom, version), record(key, value, false), int(base))
	})
}

// jnode is a JSON value whose objects keep their members' order and
// repeated keys; keys are kept as JSON text, so that they can be escaped.
type jnode struct {
	kind byte   // '{', '[', or 0 for a scalar
	raw  string // a scalar's JSON text
	keys []string
	vals []*jnode
}

func parseTree(b []byte) (*jnode, bool) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	n, err := readTree(dec)
	return n, err == nil
}

func readTree(dec *json.Decoder) (*jnode, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch tok := tok.(type) {
	case json.Delim:
		n := &jnode{kind: byte(tok)}
		for dec.More() {
			if n.kind == '{' {
				k, err := dec.Token()
				if err != nil {
					return nil, err
				}
				kb, _ := json.Marshal(k)
				n.keys = append(n.keys, string(kb))
			}
			v, err := readTree(dec)
			if err != nil {
				return nil, err
			}
			n.vals = append(n.vals, v)
		}
		_, err := dec.Token()
		return n, err
	case nil:
		return &jnode{raw: "null"}, nil
	default:
		b, _ := json.Marshal(tok)
		return &jnode{raw: string(b)}, nil
	}
}

func (n *jnode) write(sb *strings.Builder, spaced bool) {
	if n.kind == 0 {
		sb.WriteString(n.raw)
		return
	}
	sb.WriteByte(n.kind)
	for i, v := range n.vals {
		if i > 0 {
			sb.WriteByte(',')
			if spaced {
				sb.WriteByte(' ')
			}
		}
		if n.kind == '{' {
			sb.WriteString(n.keys[i])
			sb.WriteByte(':')
			if spaced {
				sb.WriteByte(' ')
			}
		}
		v.write(sb, spaced)
	}
	sb.WriteByte(n.kind + 2) // '{'+2 is '}', '['+2 is ']'
}

func (n *jnode) copy() *jnode {
	c := &jnode{kind: n.kind, raw: n.raw, keys: append([]string(nil), n.keys...)}
	for _, v := range n.vals {
		c.vals = append(c.vals, v.copy())
	}
	return c
}

// slots lists the places of a tree's nodes in pre-order, the root first.
func slots(root **jnode) []**jnode {
	out := []**jnode{root}
	for i := 0; i < len(out); i++ {
		n := *out[i]
		for j := range n.vals {
			out = append(out, &n.vals[j])
		}
	}
	return out
}

// Names and texts mutations put in.
var (
	mutationKeys = []string{"schema", "payload", "op", "before", "after", "source", "ts_ms", "type", "fields", "field",
		"name", "optional", "parameters", "scale", "value", "id", "lsn", "transaction"}
	mutationTexts = []string{`null`, `true`, `false`, `0`, `-1`, `1.5`, `1e400`, `9223372036854775808`, `""`, `"c"`, `"d"`, `"u"`,
		`"t"`, `"r"`, `{}`, `[]`, `[null]`, `"MDk="`, `"/2o="`, `"AQ=="`, `"2023-11-14T22:13:20.5+01:00"`, `"struct"`, `"int32"`,
		`"int64"`, `"string"`, `"bytes"`, `"boolean"`, `"float64"`, `"double"`, `"array"`, `"map"`, `"uuid"`, `"2"`,
		`"` + connectDecimal + `"`, `"` + dbzVarDecimal + `"`, `"` + dbzDate + `"`, `"` + dbzMicroTimestamp + `"`,
		`"` + dbzZonedTimestamp + `"`, `"` + dbzJSON + `"`, `"` + dbzNanoTime + `"`, `{"scale":"2"}`, `{"scale":2,"value":"MDk="}`}
)

// mutateEvent applies the mutations ops describes to a key and a value.
func mutateEvent(key, value []byte, ops []byte, s string, n int64) ([]byte, []byte) {
	k, kok := parseTree(key)
	v, vok := parseTree(value)
	pick := func(list []string, i int) string { return list[(i%len(list)+len(list))%len(list)] }
	for i := 0; i+1 < len(ops) && i < 16; i += 2 {
		op, at := ops[i], int(ops[i+1])
		root, ok := &v, vok
		if op&0x80 != 0 {
			root, ok = &k, kok
		}
		if !ok {
			continue
		}
		all := slots(root)
		slot := all[at%len(all)]
		node := *slot
		m := int(n>>(i*2)) & 0xff
		switch op & 0x0f {
		case 0:
			*slot = &jnode{raw: pick(mutationTexts, m)}
		case 1:
			*slot = &jnode{raw: strconv.FormatInt(n, 10)}
		case 2:
			b, _ := json.Marshal(s)
			*slot = &jnode{raw: string(b)}
		case 3:
			*slot = &jnode{raw: s} // any text, JSON or not
		case 4: // repeat a member, last
			if len(node.vals) > 0 {
				j := m % len(node.vals)
				node.vals = append(node.vals, node.vals[j].copy())
				if node.kind == '{' {
					node.keys = append(node.keys, node.keys[j])
				}
			}
		case 5: // drop a member
			if len(node.vals) > 0 {
				j := m % len(node.vals)
				node.vals = append(node.vals[:j:j], node.vals[j+1:]...)
				if node.kind == '{' {
					node.keys = append(node.keys[:j:j], node.keys[j+1:]...)
				}
			}
		case 6: // rename a member
			if node.kind == '{' && len(node.vals) > 0 {
				b, _ := json.Marshal(s)
				node.keys[m%len(node.keys)] = string(b)
			}
		case 7: // the same key, written otherwise
			if node.kind == '{' && len(node.vals) > 0 {
				j := m % len(node.keys)
				node.keys[j] = respell(node.keys[j], m>>4)
			}
		case 8: // add a member
			if node.kind == '{' {
				node.keys = append(node.keys, `"`+pick(mutationKeys, m)+`"`)
				node.vals = append(node.vals, &jnode{raw: pick(mutationTexts, m>>3)})
			}
		case 9: // another part of the event here
			*slot = (*all[m%len(all)]).copy()
		case 10: // swap two members
			if len(node.vals) > 1 {
				a, b := m%len(node.vals), (m>>4)%len(node.vals)
				node.vals[a], node.vals[b] = node.vals[b], node.vals[a]
				if node.kind == '{' {
					node.keys[a], node.keys[b] = node.keys[b], node.keys[a]
				}
			}
		case 11: // wrap in a schema/payload wrapper
			*slot = &jnode{kind: '{', keys: []string{`"schema"`, `"payload"`}, vals: []*jnode{{raw: pick(mutationTexts, m)}, node}}
		case 12: // an object's member instead of the object
			if node.kind == '{' && len(node.vals) > 0 {
				*slot = node.vals[m%len(node.vals)]
			}
		default: // the value, in an array
			*slot = &jnode{kind: '[', vals: []*jnode{node}}
		}
	}
	out := func(n *jnode, ok bool, orig []byte) []byte {
		if !ok {
			return orig
		}
		var sb strings.Builder
		n.write(&sb, len(ops)%2 == 1)
		return []byte(sb.String())
	}
	return out(k, kok, key), out(v, vok, value)
}

// respell writes a JSON key otherwise: escaped, in upper case, folded.
func respell(key string, how int) string {
	var k string
	if json.Unmarshal([]byte(key), &k) != nil || k == "" {
		return key
	}
	switch how % 4 {
	case 0:
		b, _ := json.Marshal(k[1:])
		return fmt.Sprintf(`"\u%04x`, k[0]) + string(b[1:])
	case 1:
		b, _ := json.Marshal(strings.ToUpper(k))
		return string(b)
	case 2:
		b, _ := json.Marshal(strings.Map(func(r rune) rune {
			if r == 's' {
				return 'ſ' // folds to s, as encoding/json matches struct fields
			}
			return unicode.SimpleFold(r)
		}, k))
		return string(b)
	}
	b, _ := json.Marshal(k[:len(k)-1])
	return string(b[:len(b)-1]) + fmt.Sprintf(`\u%04x"`, k[len(k)-1])
}

// TestSchemaCacheIsSafeForConcurrentUse decodes events of many schemas
// from several goroutines with one decoder, its cache smaller than the
// schemas, and checks each change (run with -race).
func TestSchemaCacheIsSafeForConcurrentUse(t *testing.T) {
	rule := fuzzRule(0, 1)
	d := NewDebezium(rule)
	var records []*exactly.Record
	for i := range maxSchemas + 200 {
		v := fmt.Sprintf(`{"schema":{"type":"struct","fields":[{"field":"after","type":"struct","fields":[{"field":"id","type":"int64"},`+
			`{"field":"c%[1]d","type":"int32","name":"io.debezium.time.Date"}]},{"field":"source","type":"struct","fields":[{"field":"lsn","type":"int64"}]}]},`+
			`"payload":{"op":"c","after":{"id":%[2]d,"c%[1]d":%[1]d},"source":{"lsn":%[1]d}}}`, i, i%300)
		records = append(records, &exactly.Record{Key: []byte(`{"id":1}`), Value: []byte(v)})
	}
	want := make([]exactly.Change, len(records))
	for i, r := range records {
		var err error
		if want[i], err = refDecode(d, r); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for round := range 3 {
				for i := range records {
					j := (i*7 + g*131 + round) % len(records)
					got, err := d.Decode(records[j])
					if err == nil && shapeFault(got) == "" {
						got.Shape = nil
					}
					if err != nil || !reflect.DeepEqual(got, want[j]) {
						t.Errorf("record %d: got %#v, %v; want %#v", j, got, err, want[j])
						return
					}
				}
			}
		})
	}
	wg.Wait()
	d.values.mu.Lock()
	defer d.values.mu.Unlock()
	if n := len(d.values.byRaw); n != maxSchemas {
		t.Errorf("cache holds %d schemas, want %d", n, maxSchemas)
	}
}

// TestSchemaCacheTellsSchemasApart: a decoder that has read an event's
// schema reads events whose schema text starts like it, or repeats it
// after another schema (encoding/json merges the two), as the reference
// does.
func TestSchemaCacheTellsSchemasApart(t *testing.T) {
	rule := fuzzRule(0, 1)
	for _, e := range realEvents(t) {
		w, err := scan(e.value, &schemaCache{}, new(lastSchema))
		if err != nil || !w.wrapped {
			continue
		}
		schema, payload := e.value[w.schema.start:w.schema.end], e.value[w.payload.start:w.payload.end]
		body := schema[:len(schema)-1]
		variants := []string{
			`{"schema":` + string(body) + `,"doc":"x"},"payload":` + string(payload) + `}`,
			`{"schema":` + string(body) + `,"type":"int32"},"payload":` + string(payload) + `}`,
			`{"schema":` + string(body) + ` } ,"payload":` + string(payload) + `}`,
			`{"schema":` + string(body) + `}}`,
			`{"schema":` + string(schema) + `,"schema":` + string(schema) + `,"payload":` + string(payload) + `}`,
			`{"schema":{"fields":[{},{"fields":[{"name":"io.debezium.time.Date"}]}]},"schema":` + string(schema) + `,"payload":` + string(payload) + `}`,
			`{"schema":{"fields":[{"fields":[{"name":"io.debezium.time.Date"}]},{"fields":[{"name":"io.debezium.time.Date"}]}]},"schema":` + string(schema) + `,"payload":` + string(payload) + `}`,
			`{"schema":{"fields":[{"parameters":{"scale":"x"}}]},"schema":` + string(schema) + `,"payload":` + string(payload) + `}`,
			`{"schema":` + string(schema) + `,"schema":null,"payload":` + string(payload) + `}`,
			`{"schema":null,"schema":` + string(schema) + `,"payload":` + string(payload) + `}`,
			`{"payload":` + string(payload) + `,"schema":` + string(schema) + `}`,
		}
		d := NewDebezium(rule)
		for _, v := range append([]string{string(e.value)}, variants...) {
			for _, r := range []*exactly.Record{{Key: e.key, Value: []byte(v)}, {Key: e.key, Value: e.value}} {
				got, gotErr := d.Decode(r)
				want, wantErr := refDecode(d, r)
				if msg := difference(got, gotErr, want, wantErr); msg != "" {
					t.Fatalf("%s:\n%s", r.Value, msg)
				}
			}
		}
	}
}

// Each topic keeps the schema last looked up for its records: flights
// decoding two tables at once no longer evict each other's, which made
// every record of both read its schema in full again.
func TestLastSchemaPerTopic(t *testing.T) {
	d := NewDebezium(&exactly.TableRule{Key: []string{"id"}})
	raws := map[string]string{}
	for _, table := range []string{"orders", "orders_archive", "orders", "orders_archive"} {
		key, value := orderEvent(7, true)
		value = []byte(strings.ReplaceAll(string(value), "shop.public.orders.", "shop.public."+table+"."))
		if _, err := d.Decode(&exactly.Record{Topic: "shop.public." + table, Key: key, Value: value}); err != nil {
			t.Fatal(err)
		}
		w, err := scan(value, &schemaCache{}, new(lastSchema))
		if err != nil {
			t.Fatal(err)
		}
		raws[table] = string(value[w.schema.start:w.schema.end])
	}
	for table, raw := range raws {
		if d.values.prefix(d.values.lastOf("shop.public."+table), []byte(raw)) == nil {
			t.Errorf("topic %s: its last schema is not its own", table)
		}
	}
}
