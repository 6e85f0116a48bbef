package decode

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/exactly/exactly"
)

// This file keeps the Debezium JSON decoding that jsonEnvelope and
// connectKey replaced, as it was: encoding/json decodes the whole envelope
// into nested maps, then the schema again into a struct. It is the
// reference FuzzDebeziumMatchesReference holds the new path to, and the
// baseline BenchmarkDebezium measures it against. Only the names changed.

// refDecode is Debezium.decode as it was.
func refDecode(d *Debezium, r *exactly.Record) (exactly.Change, error) {
	ch, err := func() (exactly.Change, error) {
		if r.Value == nil { // changed with the decoder (issue 15.7): a tombstone deletes by key
			return tombstone(func() (map[string]any, error) { return refConnectKey(r.Key, d.Key) })
		}
		env, err := refJSONEnvelope(r.Value)
		if err != nil {
			return exactly.Change{}, err
		}
		return d.change(env, isObject(r.Key), func() (map[string]any, error) { return refConnectKey(r.Key, d.Key) })
	}()
	if err != nil {
		return exactly.Change{}, recordError(r, err)
	}
	return ch, nil
}

func refJSONEnvelope(b []byte) (*envelope, error) {
	var top map[string]any
	if err := unmarshal(b, &top); err != nil {
		return nil, fmt.Errorf("value is not JSON: %v", err)
	}
	if top == nil {
		return nil, errors.New("value is JSON null, not a Debezium change event")
	}
	payload := top
	var schema *connectSchema
	if p, ok := top["payload"]; ok && len(top) == 2 {
		if _, ok := top["schema"]; ok {
			pm, ok := p.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("payload is %s, not a change event object", jsonKind(p))
			}
			payload = pm
			var err error
			if schema, err = refSchemaOf(b); err != nil {
				return nil, err
			}
		}
	}
	env := &envelope{}
	var err error
	if op, ok := payload["op"]; ok {
		s, ok := op.(string)
		if !ok {
			return nil, fmt.Errorf("op is %s, not a string", jsonKind(op))
		}
		env.op = s
		if s == "" {
			return nil, errors.New("op is empty")
		}
	}
	for _, f := range []struct {
		name string
		dst  *map[string]any
	}{{"before", &env.before}, {"after", &env.after}, {"source", &env.source}} {
		if *f.dst, err = refImage(schema.field(f.name), payload[f.name]); err != nil {
			return nil, fmt.Errorf("%s: %w", f.name, err)
		}
	}
	if env.tsMs, err = refConnectValue(schema.field("ts_ms"), payload["ts_ms"]); err != nil {
		return nil, fmt.Errorf("ts_ms: %w", err)
	}
	if schema != nil {
		env.fields = fieldsOf(schema.field("after"))
		if env.fields == nil {
			env.fields = []exactly.Field{}
		}
		env.sourceFields = fieldsOf(schema.field("source"))
		if ts := schema.field("ts_ms"); ts != nil {
			t := connectType(ts.Type, ts.Name, ts.Parameters)
			env.tsType = &t
		}
	}
	return env, nil
}

func refSchemaOf(b []byte) (*connectSchema, error) {
	var w struct {
		Schema *connectSchema `json:"schema"`
	}
	if err := unmarshal(b, &w); err != nil {
		return nil, fmt.Errorf("schema: %v", err)
	}
	if w.Schema != nil && w.Schema.Type != "struct" {
		return nil, fmt.Errorf("schema: expected a struct schema, got type %q", w.Schema.Type)
	}
	return w.Schema, nil
}

func refImage(s *connectSchema, v any) (map[string]any, error) {
	if v == nil {
		return nil, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("expected an object, got %s", jsonKind(v))
	}
	out := make(map[string]any, len(m))
	for k, fv := range m {
		var fs *connectSchema
		if s != nil {
			if fs = s.field(k); fs == nil {
				return nil, fmt.Errorf("field %q is not in the schema", k)
			}
		}
		cv, err := refConnectValue(fs, fv)
		if err != nil {
			return nil, fmt.Errorf("field %q: %w", k, err)
		}
		out[k] = cv
	}
	return out, nil
}

func refConnectKey(key []byte, cols []string) (map[string]any, error) {
	t := bytes.TrimSpace(key)
	if len(t) == 0 || t[0] != '{' {
		return RecordKey(key, cols)
	}
	var top map[string]any
	if err := unmarshal(t, &top); err != nil {
		return nil, fmt.Errorf("record key: not a JSON object: %v", err)
	}
	if p, ok := top["payload"]; ok && len(top) == 2 {
		if _, ok := top["schema"]; ok {
			var w struct {
				Schema *connectSchema `json:"schema"`
			}
			if err := unmarshal(t, &w); err != nil {
				return nil, fmt.Errorf("record key schema: %v", err)
			}
			if w.Schema != nil && w.Schema.Type != "struct" {
				// A primitive key schema: the single key column.
				v, err := refConnectValue(w.Schema, p)
				if err != nil {
					return nil, fmt.Errorf("record key: %w", err)
				}
				if len(cols) != 1 {
					return nil, fmt.Errorf("record key is a %s and the rule has %d key columns", w.Schema.Type, len(cols))
				}
				return map[string]any{cols[0]: v}, nil
			}
			m, err := refImage(w.Schema, p)
			if err != nil {
				return nil, fmt.Errorf("record key: %w", err)
			}
			if m == nil {
				return nil, errors.New("record key payload is null")
			}
			return m, nil
		}
	}
	m, err := refImage(nil, top)
	if err != nil {
		return nil, fmt.Errorf("record key: %w", err)
	}
	return m, nil
}

func refConnectValue(s *connectSchema, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	if s == nil {
		return Value(v), nil
	}
	switch s.Type {
	case "boolean":
		b, ok := v.(bool)
		if !ok {
			return nil, fmt.Errorf("expected a boolean, got %s", jsonKind(v))
		}
		return b, nil
	case "int8", "int16", "int32", "int64":
		n, ok := v.(json.Number)
		if !ok {
			return nil, fmt.Errorf("expected an integer (%s), got %s", s.Type, jsonKind(v))
		}
		i, err := strconv.ParseInt(n.String(), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("expected an integer (%s), got %s", s.Type, n)
		}
		return integer(s.Name, i)
	case "float32", "float64", "float", "double":
		n, ok := v.(json.Number)
		if !ok {
			return nil, fmt.Errorf("expected a number (%s), got %s", s.Type, jsonKind(v))
		}
		f, err := strconv.ParseFloat(n.String(), 64)
		if err != nil {
			return nil, fmt.Errorf("expected a number (%s), got %s", s.Type, n)
		}
		return f, nil
	case "string":
		str, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("expected a string, got %s", jsonKind(v))
		}
		return text(s.Name, str)
	case "bytes":
		str, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("expected base64 bytes, got %s", jsonKind(v))
		}
		b, err := base64.StdEncoding.DecodeString(str)
		if err != nil {
			return nil, fmt.Errorf("expected base64 bytes: %v", err)
		}
		if s.Name == connectDecimal {
			scale, err := decimalScale(s.Parameters)
			if err != nil {
				return nil, err
			}
			return DecimalFromBytes(b, scale), nil
		}
		return b, nil
	case "struct":
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("expected a struct, got %s", jsonKind(v))
		}
		if s.Name == dbzVarDecimal {
			return variableScaleDecimal(m)
		}
		return Value(m), nil
	case "array", "map":
		return Value(v), nil
	}
	return nil, fmt.Errorf("unknown Connect schema type %q", s.Type)
}
