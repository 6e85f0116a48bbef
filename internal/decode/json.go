// Package decode turns Kafka records into changes. Decoders are pure
// functions of the record: no I/O, no state but caches of what they have
// read (schemas), safe for concurrent use, and fuzzed; a decoding error
// sends the record to the dead letters.
package decode

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/exactly/exactly"
)

// For returns the decoder factory of a configuration: the one way to build
// a table rule's decoder. Avro rules share one schema registry client
// (source.schema_registry) and its schema cache, made on the first avro
// rule; a configuration without avro rules needs no registry.
func For(cfg *exactly.Config) func(*exactly.TableRule) (exactly.Decoder, error) {
	var (
		once   sync.Once
		reg    *Registry
		regErr error
	)
	return func(rule *exactly.TableRule) (exactly.Decoder, error) {
		switch rule.Format {
		case "json", "":
			return &JSON{Key: rule.Key, KeyFrom: rule.KeyFrom, Version: rule.Version}, nil
		case "debezium":
			return NewDebezium(rule), nil
		case "avro":
			if cfg.Source.SchemaRegistry.URL == "" {
				return nil, errors.New("format avro needs source.schema_registry.url")
			}
			once.Do(func() { reg, regErr = NewRegistry(cfg.Source.SchemaRegistry) })
			if regErr != nil {
				return nil, regErr
			}
			return NewAvro(rule, reg), nil
		}
		return nil, fmt.Errorf("format %q is not supported", rule.Format)
	}
}

// JSON decodes a JSON object per record value; a null value (tombstone)
// deletes by key. The key comes from the record key when it is a JSON
// object, or a scalar when the rule has one key column.
type JSON struct {
	Key     []string
	KeyFrom string
	Version string
	shape   lastShape
}

var _ exactly.Decoder = (*JSON)(nil)

// Decode implements exactly.Decoder.
func (d *JSON) Decode(r *exactly.Record) (exactly.Change, error) {
	ch, err := d.decode(r)
	if err != nil {
		return exactly.Change{}, recordError(r, err)
	}
	return ch, nil
}

func (d *JSON) decode(r *exactly.Record) (exactly.Change, error) {
	var ch exactly.Change
	// key_from: record_key takes the key from the record key, whatever its
	// form; value from the value's key fields (a tombstone has only its
	// record key). The default takes the record key when it is a JSON
	// object (a Connect key struct included) and the value fields
	// otherwise: a scalar record key is often a partitioning hint, not
	// the row's key.
	useKey := d.KeyFrom == "record_key" || r.Value == nil ||
		(d.KeyFrom == "" && isObject(r.Key))
	if useKey {
		k, err := RecordKey(r.Key, d.Key)
		if err != nil && (r.Value == nil || d.KeyFrom == "record_key") {
			return ch, err
		}
		ch.Key = k // nil when a default-mode object key is unreadable: the value's fields decide
	}
	if r.Value == nil {
		ch.Op = exactly.OpDelete
		if len(ch.Key) == 0 {
			return ch, errors.New("tombstone without a key: cannot tell which row to delete")
		}
		return ch, nil
	}
	row, vals, shape, err := parseValues(r.Value, &d.shape)
	if err != nil {
		return ch, fmt.Errorf("value: %w", fmt.Errorf("not a JSON object: %v", err)) // as Object words it
	}
	ch.Op = exactly.OpUpsert
	ch.Row, ch.Values, ch.Shape = row, vals, shape
	if d.Version != "" {
		ch.Version, _ = ch.Field(d.Version)
	}
	return ch, nil
}

func isObject(b []byte) bool {
	t := bytes.TrimSpace(b)
	return len(t) > 0 && t[0] == '{'
}

// RecordKey reads a record key: a JSON object gives its fields; a JSON
// scalar or plain text gives the single key column.
func RecordKey(key []byte, cols []string) (map[string]any, error) {
	if len(bytes.TrimSpace(key)) == 0 {
		return nil, errors.New("record key is empty")
	}
	if t := bytes.TrimSpace(key); t[0] == '{' {
		m, err := Object(t)
		if err != nil {
			return nil, fmt.Errorf("record key: %w", err)
		}
		if p, ok := m["payload"].(exactly.JSON); ok && len(m) <= 2 {
			// A key with a Connect schema wrapper.
			if inner, err := Object([]byte(p)); err == nil {
				m = inner
			}
		}
		return m, nil
	}
	if len(cols) != 1 {
		return nil, fmt.Errorf("record key %q is not a JSON object and the rule has %d key columns", truncate(key), len(cols))
	}
	var v any
	if err := unmarshal(key, &v); err == nil {
		if _, isObj := v.(map[string]any); !isObj {
			if _, isArr := v.([]any); !isArr {
				return map[string]any{cols[0]: Value(v)}, nil
			}
		}
	}
	return map[string]any{cols[0]: string(key)}, nil
}

// Object decodes a JSON object into column values (see Value), as
// encoding/json would with UseNumber; parseObject does it by hand.
func Object(b []byte) (map[string]any, error) {
	m, err := parseObject(b)
	if err != nil {
		return nil, fmt.Errorf("not a JSON object: %v", err)
	}
	return m, nil
}

func unmarshal(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}

// Value normalises a decoded JSON value: integers to int64, other numbers
// to exactly.Decimal (exact), objects and arrays to exactly.JSON text.
func Value(v any) any {
	switch x := v.(type) {
	case json.Number:
		s := x.String()
		if !strings.ContainsAny(s, ".eE") {
			if i, err := strconv.ParseInt(s, 10, 64); err == nil {
				return i
			}
		}
		return exactly.Decimal(s)
	case map[string]any, []any:
		b, _ := json.Marshal(x)
		return exactly.JSON(b)
	}
	return v
}

func truncate(b []byte) string {
	if len(b) > 64 {
		return string(b[:64]) + "…"
	}
	return string(b)
}
