package decode

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/exactly/exactly"
)

// The one-walk decoding (walk.go) is held to the two-pass path it stands
// in front of: whatever the walk decodes, the two-pass path decodes the
// same, down to the Go types and the shapes; what the walk gives up on,
// the two-pass path reads (and FuzzDebeziumMatchesReference holds Decode,
// walk and fallback, to the encoding/json path).

// sameAsTwoPass decodes the value and the key of r by the walk and by the
// two-pass path, each with a decoder whose caches hold the fixtures'
// schemas, and fails t on a difference. It says whether the walk took
// the value and the key.
func sameAsTwoPass(t *testing.T, rule *exactly.TableRule, r *exactly.Record, warm int) (value, key bool) {
	t.Helper()
	walker, twoPass := NewDebezium(rule), NewDebezium(rule)
	warmCache(t, &walker.values, r.Topic, warm)
	warmCache(t, &twoPass.values, r.Topic, warm)
	warmCache(t, &walker.keys, r.Topic, warm)
	warmCache(t, &twoPass.keys, r.Topic, warm)
	for pass := range 2 { // the second with the record's schemas cached
		// known is the envelope the key may take values from (see
		// knownValue): the walk's, else the two-pass path's.
		var known *envelope
		if r.Value != nil {
			var env envelope
			if walker.walkEnvelope(r.Value, walker.values.lastOf(r.Topic), &env) {
				value = true
				walked := env
				known = &walked
				want, err := twoPass.jsonEnvelope(r.Value, r.Topic)
				if err != nil {
					t.Fatalf("pass %d, rule %+v, value %q: the walk took it, the two-pass path says %v", pass, *rule, r.Value, err)
				}
				if env.values != nil { // by position: compared as the map it stands for
					if env.after != nil || env.shape == nil || len(env.values) != len(env.shape.Names) {
						t.Fatalf("value %q: after image by position %v with map %v, shape %v", r.Value, env.values, env.after, env.shape)
					}
					env.after = make(map[string]any)
					for i, v := range env.values {
						env.after[env.shape.Names[i]] = v
					}
					env.values = nil
				}
				if !reflect.DeepEqual(&env, want) {
					t.Fatalf("pass %d, rule %+v, value %q:\nwalk     %#v\ntwo-pass %#v", pass, *rule, r.Value, env, *want)
				}
			} else {
				_, _ = twoPass.jsonEnvelope(r.Value, r.Topic) // as Decode would: it caches the schema
				known, _ = walker.jsonEnvelope(r.Value, r.Topic)
			}
		}
		if m, ok := walkKey(r.Key, rule.Key, &walker.keys, r.Topic, known); ok {
			key = true
			want, err := connectKey(r.Key, rule.Key, &twoPass.keys, r.Topic)
			if err != nil {
				t.Fatalf("pass %d, key columns %q, key %q: the walk took it, the two-pass path says %v", pass, rule.Key, r.Key, err)
			}
			if !reflect.DeepEqual(m, want) {
				t.Fatalf("pass %d, key columns %q, key %q:\nwalk     %#v\ntwo-pass %#v", pass, rule.Key, r.Key, m, want)
			}
		} else {
			_, _ = connectKey(r.Key, rule.Key, &twoPass.keys, r.Topic)
			_, _ = connectKey(r.Key, rule.Key, &walker.keys, r.Topic)
		}
	}
	return value, key
}

// TestWalkTakesConnectorEvents: the events connectors write (the fixtures,
// the bench's) are read in one walk, their keys too, whatever the rule.
func TestWalkTakesConnectorEvents(t *testing.T) {
	for i, e := range realEvents(t)[:11] { // the fixtures and the orders events
		if e.value != nil {
			if _, err := NewDebezium(fuzzRule(0, 0)).jsonEnvelope(e.value, "t"); err != nil {
				continue // a broken one, made for the reference tests
			}
		}
		for version := range 9 {
			value, key := sameAsTwoPass(t, fuzzRule(uint8(i%3), uint8(version)), &exactly.Record{Topic: "t", Key: e.key, Value: e.value}, -1)
			if !value && e.value != nil || !key {
				t.Errorf("event %d (version %q): walk took the value %v, the key %v\nkey   %.200s\nvalue %.200s", i, fuzzVersions[version], value, key, e.key, e.value)
			}
		}
	}
}

// TestWalkMatchesTwoPass runs the edge cases, every Connect type with good
// and bad values, the committed corpora and many mutations of the real
// events.
func TestWalkMatchesTwoPass(t *testing.T) {
	values := append([]string(nil), envelopeEdgeCases...)
	for typ, vs := range typedValues {
		for _, v := range vs {
			values = append(values,
				`{"schema":{"type":"struct","fields":[{"field":"after","type":"struct","fields":[{"field":"f",`+typ+`}]},{"field":"ts_ms",`+typ+`}]},`+
					`"payload":{"op":"c","after":{"f":`+v+`},"ts_ms":`+v+`}}`,
				`{"schema":{"type":"struct","fields":[{"field":"before","type":"struct","fields":[{"field":"f",`+typ+`}]},{"field":"source","type":"struct","fields":[{"field":"lsn",`+typ+`}]}]},`+
					`"payload":{"op":"d","before":{"f":`+v+`},"source":{"lsn":`+v+`}}}`,
				`{"op":"d","before":{"f":`+v+`},"source":{"lsn":`+v+`},"ts_ms":`+v+`}`)
		}
	}
	// Field names that are not written as they are (see structSchema.plain).
	odd := `{"schema":{"type":"struct","fields":[{"field":"after","type":"struct","fields":[{"field":"a\\\"b","type":"int32"},{"field":"é","type":"string"},{"field":"c\\n","type":"int32"},{"field":"d\\\\","type":"int32"}]}]},"payload":{"op":"c","after":`
	values = append(values, odd+`{"a\\\"b":1,"é":"x","c\\n":2,"d\\\\":3}}}`, odd+`{"a\\\"b":1,"\\u00e9":"x","c\\n":2}}}`,
		odd+"{\"a\\\"b\":1,\"é\":\"x\",\"c\n\":2}}}", odd+`{"a\\\"b\\":1}}}`, odd+`{"d\\\\":1}}}`, odd+`{"d\\":1}}}`)
	odd = `{"schema":{"type":"struct","fields":[{"field":"after","type":"struct","fields":[{"field":"c\n","type":"int32"},{"field":"\"","type":"int32"},{"field":"é","type":"int32"}]}]},"payload":{"op":"c","after":`
	values = append(values, odd+`{"c\n":1,"\"":2,"é":3}}}`, odd+"{\"c\n\":1}}}", odd+`{"c\u000a":1,"\u0022":2,"\u00e9":3}}}`, odd+`{"\"":2,"c\n":1}}}`)
	for _, b := range corpusBytes(t) {
		values = append(values, string(b))
	}
	keys := []string{`{"id":1}`, ` {"id":1} `, `{"id":1} x`, `{}`, `7`,
		`{"schema":{"type":"struct","fields":[{"field":"id","type":"int32"}]},"payload":{"id":2}}`,
		`{"schema":{"type":"struct","fields":[{"field":"id","type":"int32"}]},"payload":{"id":"x"}}`,
		`{"schema":{"type":"struct","fields":[{"field":"id","type":"int32"}]},"payload":null}`,
		`{"schema":{"type":"int64"},"payload":5}`, `{"schema":{"type":"int64"},"payload":null}`, `{"schema":{"type":"array"},"payload":{"a":[1]}}`,
		`{"schema":null,"payload":{"id":3}}`, `{"payload":{"id":3},"schema":null}`, `{"schema":{"type":"struct"},"payload":{"id":3}}`,
		`{"schema":{"type":"int64"},"schema":{"type":"struct"},"payload":{"id":3}}`, `{"payload":{"id":3}}`, `{"sch\u0065ma":null,"payload":{"id":3}}`,
	}
	for i, v := range values {
		for rule := range 6 {
			sameAsTwoPass(t, fuzzRule(uint8(rule%3), uint8(rule/3*2+rule%2*16)), &exactly.Record{Key: []byte(keys[i%len(keys)]), Value: []byte(v)}, i)
		}
	}
	events := realEvents(t)
	rnd := rand.New(rand.NewPCG(1, 2))
	var took, tookKey int
	for i := range 3000 {
		e := events[i%len(events)]
		ops := make([]byte, 2*(1+rnd.IntN(3)))
		for j := range ops {
			ops[j] = byte(rnd.Uint32())
		}
		k, v := mutateEvent(e.key, e.value, ops, fmt.Sprint(rnd.IntN(100)), rnd.Int64N(1000)-500)
		value, key := sameAsTwoPass(t, fuzzRule(uint8(rnd.IntN(3)), uint8(rnd.IntN(64))), record(k, v, false), rnd.IntN(10)-1)
		took, tookKey = took+b2i(value), tookKey+b2i(key)
	}
	t.Logf("of 3000 mutated events, the walk took %d values and %d keys", took, tookKey)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// FuzzWalkMatchesTwoPass mutates real events as FuzzDebeziumMutationsMatchReference does.
func FuzzWalkMatchesTwoPass(f *testing.F) {
	events := realEvents(f)
	for i := range events {
		f.Add(uint8(i), []byte{}, "", int64(0), uint8(i), uint8(i))
		f.Add(uint8(i), []byte{byte(i), byte(3 * i), byte(7 + i), byte(i * i)}, "x", int64(i), uint8(i), uint8(i))
	}
	f.Fuzz(func(t *testing.T, base uint8, ops []byte, s string, n int64, keyFrom, version uint8) {
		e := events[int(base)%len(events)]
		key, value := mutateEvent(e.key, e.value, ops, s, n)
		sameAsTwoPass(t, fuzzRule(keyFrom, version), record(key, value, false), int(base)-1)
	})
}
