package decode

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hamba/avro/v2"

	"github.com/exactly/exactly"
)

// The fuzz targets assert properties, not just survival:
//   - no panic, whatever the bytes;
//   - an error is a *exactly.RecordError carrying the record's topic,
//     partition and offset (it becomes a dead letter with them);
//   - a change holds only the value types exactly.Change allows, and an
//     upsert has a row, a delete a key;
//   - a valid encoding built from the fuzzed values decodes back to them.
//
// Seed corpora are committed under testdata/fuzz/; run one with e.g.
//   go test ./internal/decode -run '^$' -fuzz '^FuzzDebezium$' -fuzztime 3m -parallel 1

var decimalText = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$`)

var fuzzRecord = exactly.Record{Topic: "fz.public.items", Partition: 7, Offset: 1234}

func checkDecoded(t *testing.T, ch exactly.Change, err error) {
	t.Helper()
	if err != nil {
		var re *exactly.RecordError
		if !errors.As(err, &re) || re.Topic != fuzzRecord.Topic || re.Partition != fuzzRecord.Partition || re.Offset != fuzzRecord.Offset {
			t.Fatalf("error without the record's coordinates: %#v", err)
		}
		if !strings.HasPrefix(err.Error(), "fz.public.items[7]@1234: ") {
			t.Fatalf("error text does not start with the coordinates: %q", err)
		}
		return
	}
	switch ch.Op {
	case exactly.OpUpsert:
		if !ch.HasRow() {
			t.Fatalf("upsert without a row: %#v", ch)
		}
	case exactly.OpDelete:
		if ch.HasRow() {
			t.Fatalf("delete with a row: %#v", ch)
		}
	case exactly.OpSkip:
	default:
		t.Fatalf("unknown op %v", ch.Op)
	}
	if ch.Values != nil && (ch.Row != nil || ch.Shape == nil || len(ch.Values) != len(ch.Shape.Names) || !ch.Shape.Distinct()) {
		t.Fatalf("values by position without their shape of distinct names, or with a map too: %#v", ch)
	}
	for _, m := range []map[string]any{ch.Key, ch.RowMap()} {
		for k, v := range m {
			checkValue(t, k, v)
		}
	}
	checkValue(t, "version", ch.Version)
}

func checkValue(t *testing.T, name string, v any) {
	t.Helper()
	switch x := v.(type) {
	case nil, bool, int64, float64, string, []byte, time.Time:
	case exactly.Decimal:
		// Syntax only: big.Rat would expand a huge exponent for minutes.
		if !decimalText.MatchString(string(x)) {
			t.Fatalf("%s: Decimal %q is not a number", name, x)
		}
	case exactly.JSON:
		if !json.Valid([]byte(x)) {
			t.Fatalf("%s: JSON %q is not valid JSON", name, x)
		}
	default:
		t.Fatalf("%s: value of type %T is not an exactly.Change value", name, v)
	}
}

func record(key, value []byte, tombstone bool) *exactly.Record {
	r := fuzzRecord
	r.Key = key
	if !tombstone {
		r.Value = value
	}
	return &r
}

func FuzzJSON(f *testing.F) {
	f.Add([]byte(`{"id":1}`), []byte(`{"id":1,"name":"a","n":1.50,"o":{"x":[1,2]}}`), false, "", "x", int64(1), 1.5)
	f.Add([]byte(`7`), []byte(nil), true, "record_key", "", int64(-9), 0.0)
	f.Fuzz(func(t *testing.T, key, value []byte, tombstone bool, keyFrom, s string, i int64, fl float64) {
		if keyFrom != "" && keyFrom != "record_key" && keyFrom != "value" {
			keyFrom = ""
		}
		d := &JSON{Key: []string{"id"}, KeyFrom: keyFrom, Version: "v"}
		ch, err := d.Decode(record(key, value, tombstone))
		checkDecoded(t, ch, err)

		// Round trip: a row encoded as JSON decodes to the same values.
		row := map[string]any{"id": i, "s": s, "b": tombstone}
		v, _ := json.Marshal(row)
		ch, err = d.Decode(record([]byte(fmt.Sprintf(`{"id":%d}`, i)), v, false))
		if err != nil {
			t.Fatalf("valid row %s: %v", v, err)
		}
		if got := ch.RowMap(); ch.Op != exactly.OpUpsert || got["id"] != i || got["s"] != viaJSON(s) || got["b"] != tombstone || (keyFrom != "value" && ch.Key["id"] != i) {
			t.Fatalf("round trip of %s: got %#v", v, ch)
		}
		if fl == fl && fl < 1e300 && fl > -1e300 { // finite
			v, _ := json.Marshal(map[string]any{"id": 1, "f": fl})
			ch, err := d.Decode(record([]byte(`{"id":1}`), v, false))
			if err != nil {
				t.Fatalf("valid row %s: %v", v, err)
			}
			text, _ := json.Marshal(fl)
			want, _ := new(big.Rat).SetString(string(text)) // the decimal JSON carries, exactly
			if f, _ := ch.Field("f"); !sameNumber(f, want) {
				t.Fatalf("round trip of %v: got %#v", fl, f)
			}
		}
	})
}

// viaJSON is s after a trip through encoding/json (invalid UTF-8 replaced).
func viaJSON(s string) string {
	b, _ := json.Marshal(s)
	var out string
	_ = json.Unmarshal(b, &out)
	return out
}

// sameNumber compares an int64 or Decimal with an exact value.
func sameNumber(v any, want *big.Rat) bool {
	switch x := v.(type) {
	case int64:
		return new(big.Rat).SetInt64(x).Cmp(want) == 0
	case exactly.Decimal:
		r, ok := new(big.Rat).SetString(string(x))
		return ok && r.Cmp(want) == 0
	}
	return false
}

func FuzzDebezium(f *testing.F) {
	for _, name := range []string{"create", "update", "delete", "snapshot_read", "create_noschema", "add_column"} {
		r := fixture(f, name)
		f.Add(r.Key, r.Value, false, "source_lsn", int64(1), "x", int32(19000), int64(1700000000123456), []byte{0x30, 0x39}, uint8(2))
	}
	f.Add([]byte(nil), []byte(nil), true, "", int64(0), "", int32(0), int64(0), []byte(nil), uint8(0))
	f.Fuzz(func(t *testing.T, key, value []byte, tombstone bool, version string, id int64, name string, days int32, micros int64, unscaled []byte, scale uint8) {
		d := NewDebezium(&exactly.TableRule{Key: []string{"id"}, Version: version})
		ch, err := d.Decode(record(key, value, tombstone))
		checkDecoded(t, ch, err)

		// Round trip: an event built from the fuzzed values with a schema.
		days = days % 3_000_000 // keep the date representable
		sc := int(scale % 40)
		after := map[string]any{"id": id, "name": name, "born": days, "created": micros,
			"price": base64.StdEncoding.EncodeToString(unscaled), "flag": tombstone, "gone": nil}
		ev := debeziumEvent(after, sc)
		d = NewDebezium(&exactly.TableRule{Key: []string{"id"}, Version: "source_lsn"})
		ch, err = d.Decode(record([]byte(fmt.Sprintf(`{"id":%d}`, id)), ev, false))
		if err != nil {
			t.Fatalf("valid event: %v\n%s", err, ev)
		}
		wantPrice := new(big.Rat).SetFrac(twosValue(unscaled), new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(sc)), nil))
		got := ch.RowMap()
		if ch.Op != exactly.OpUpsert || got["id"] != id || got["name"] != viaJSON(name) || got["flag"] != tombstone ||
			got["gone"] != nil || ch.Version != int64(99) || got["source_lsn"] != int64(99) {
			t.Fatalf("round trip: got %#v", ch)
		}
		if born := got["born"].(time.Time); !born.Equal(time.Unix(int64(days)*86400, 0)) {
			t.Fatalf("date %d days: got %v", days, born)
		}
		if created := got["created"].(time.Time); created.UnixMicro() != micros {
			t.Fatalf("timestamp %d µs: got %v", micros, created)
		}
		if !sameNumber(got["price"], wantPrice) {
			t.Fatalf("decimal %x scale %d: got %v, want %s", unscaled, sc, got["price"], wantPrice.RatString())
		}
	})
}

// twosValue reads a big-endian two's-complement integer (empty is 0).
func twosValue(b []byte) *big.Int {
	n := new(big.Int).SetBytes(b)
	if len(b) > 0 && b[0]&0x80 != 0 {
		n.Sub(n, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
	}
	return n
}

func debeziumEvent(after map[string]any, scale int) []byte {
	fields := []map[string]any{
		{"field": "id", "type": "int64"}, {"field": "name", "type": "string"},
		{"field": "born", "type": "int32", "name": dbzDate, "optional": true},
		{"field": "created", "type": "int64", "name": dbzMicroTimestamp, "optional": true},
		{"field": "price", "type": "bytes", "name": connectDecimal, "parameters": map[string]string{"scale": fmt.Sprint(scale)}},
		{"field": "flag", "type": "boolean"}, {"field": "gone", "type": "string", "optional": true},
	}
	ev := map[string]any{
		"schema": map[string]any{"type": "struct", "fields": []any{
			map[string]any{"field": "after", "type": "struct", "fields": fields},
			map[string]any{"field": "source", "type": "struct", "fields": []any{map[string]any{"field": "lsn", "type": "int64"}}},
			map[string]any{"field": "op", "type": "string"},
		}},
		"payload": map[string]any{"after": after, "source": map[string]any{"lsn": 99}, "op": "c"},
	}
	b, err := json.Marshal(ev)
	if err != nil {
		panic(err)
	}
	return b
}

// fuzzRegistry is a registry whose schemas are already known, so fuzzing
// exercises decoding, not HTTP.
func fuzzRegistry(f *testing.F) *Registry {
	reg, err := NewRegistry(exactly.SchemaRegistryConfig{URL: "http://127.0.0.1:1"})
	if err != nil {
		f.Fatal(err)
	}
	for id, s := range avroFuzzSchemas {
		parsed, err := avro.ParseWithCache(s, "", &avro.SchemaCache{})
		if err != nil {
			f.Fatal(err)
		}
		reg.remember(id, parsed, nil)
	}
	for id := 100; id < 103; id++ {
		reg.remember(id, nil, fmt.Errorf("schema id %d is not in the schema registry", id))
	}
	return reg
}

var avroFuzzSchemas = map[int]string{
	1: dbzKeySchema,
	2: fmt.Sprintf(dbzEnvelope, dbzRowFields),
	3: `{"type":"record","name":"all","fields":[{"name":"id","type":"long"},{"name":"s","type":"string"},
		{"name":"d","type":{"type":"bytes","logicalType":"decimal","precision":30,"scale":4}},
		{"name":"f","type":{"type":"fixed","name":"f4","size":4,"logicalType":"decimal","precision":9,"scale":2}},
		{"name":"ts","type":{"type":"long","logicalType":"timestamp-micros"}},
		{"name":"day","type":{"type":"int","logicalType":"date"}},
		{"name":"t","type":{"type":"int","logicalType":"time-millis"}},
		{"name":"e","type":{"type":"enum","name":"e","symbols":["A","B","C"]}},
		{"name":"a","type":{"type":"array","items":["null","double"]}},
		{"name":"m","type":{"type":"map","values":"boolean"}},
		{"name":"n","type":["null",{"type":"record","name":"node","fields":[{"name":"next","type":["null","node"]}]}]}]}`,
}

// frame encodes v with s in the Confluent wire format under id.
func frame(s avro.Schema, id int, v any) ([]byte, error) {
	b, err := avro.Config{}.Freeze().Marshal(s, v)
	if err != nil {
		return nil, err
	}
	return append([]byte{0, 0, 0, 0, byte(id)}, b...), nil
}

func FuzzAvro(f *testing.F) {
	reg := fuzzRegistry(f)
	key2, env2 := avro.MustParse(dbzKeySchema), avro.MustParse(avroFuzzSchemas[2])
	k, err := frame(key2, 1, map[string]any{"id": 1})
	if err != nil {
		f.Fatal(err)
	}
	v, err := frame(env2, 2, map[string]any{"after": val(dbzRow(1, "Ada")), "source": dbzSource(5), "op": "c"})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(k, v, false, true, int64(1), "Ada", int64(12345), int32(19000))
	f.Add(k, []byte{0, 0, 0, 0, 3, 2, 2, 0x41}, false, false, int64(-1), "", int64(0), int32(0))
	f.Add([]byte{0, 0, 0, 0, 100}, []byte{0, 0, 0, 0, 101}, false, true, int64(0), "", int64(0), int32(0))
	f.Fuzz(func(t *testing.T, key, value []byte, tombstone, cdcMode bool, id int64, name string, unscaled int64, days int32) {
		mode := "upsert"
		if cdcMode {
			mode = "cdc"
		}
		d := NewAvro(&exactly.TableRule{Key: []string{"id"}, Mode: mode, Version: "source_lsn"}, reg)
		ch, err := d.Decode(record(key, value, tombstone))
		checkDecoded(t, ch, err)

		// Round trip through Debezium's Avro envelope.
		days = days % 3_000_000
		row := map[string]any{"id": int(int32(id)), "name": name, "price": big.NewRat(unscaled, 100), "born": int(days),
			"created": id, "updated": nil, "active": tombstone, "note": nil}
		k, err := frame(key2, 1, map[string]any{"id": int(int32(id))})
		if err != nil {
			t.Fatal(err)
		}
		v, err := frame(env2, 2, map[string]any{"after": val(row), "source": dbzSource(id), "op": "u"})
		if err != nil {
			t.Fatal(err)
		}
		d = NewAvro(&exactly.TableRule{Key: []string{"id"}, Mode: "cdc", Version: "source_lsn"}, reg)
		ch, err = d.Decode(record(k, v, false))
		if err != nil {
			t.Fatalf("valid event: %v", err)
		}
		got := ch.RowMap()
		if ch.Op != exactly.OpUpsert || got["id"] != int64(int32(id)) || got["name"] != name ||
			got["active"] != tombstone || ch.Version != id || ch.Key["id"] != int64(int32(id)) ||
			!sameNumber(got["price"], big.NewRat(unscaled, 100)) ||
			!got["born"].(time.Time).Equal(time.Unix(int64(days)*86400, 0)) || got["created"].(time.Time).UnixMicro() != id {
			t.Fatalf("round trip: got %#v", ch)
		}
	})
}

// TestFuzzSeedsAreCommitted keeps the committed corpora in place: each
// fuzz target has seeds under testdata/fuzz/.
func TestFuzzSeedsAreCommitted(t *testing.T) {
	for _, name := range []string{"FuzzJSON", "FuzzDebezium", "FuzzAvro", "FuzzObjectMatchesEncodingJSON"} {
		files, _ := filepath.Glob(filepath.Join("testdata", "fuzz", name, "*"))
		if len(files) == 0 {
			t.Errorf("no seed corpus in testdata/fuzz/%s", name)
		}
		for _, file := range files {
			b, err := os.ReadFile(file)
			if err != nil || !strings.HasPrefix(string(b), "go test fuzz v1\n") {
				t.Errorf("%s is not a go test fuzz v1 file (%v)", file, err)
			}
		}
	}
}
