package decode

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/exactly/exactly"
)

// fixture reads testdata/debezium/NAME.json: {"key": "...", "value": "..."|null}.
func fixture(t testing.TB, name string) *exactly.Record {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "debezium", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Key   *string `json:"key"`
		Value *string `json:"value"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	r := &exactly.Record{Topic: "dbserver1.inventory.customers", Partition: 2, Offset: 41}
	if f.Key != nil {
		r.Key = []byte(*f.Key)
	}
	if f.Value != nil {
		r.Value = []byte(*f.Value)
	}
	return r
}

func TestDebeziumFixtures(t *testing.T) {
	ada := map[string]any{
		"id": int64(1), "name": "Ada", "price": exactly.Decimal("123.45"),
		"born":    time.Date(2022, 1, 8, 0, 0, 0, 0, time.UTC), // 19000 days
		"created": time.Date(2023, 11, 14, 22, 13, 20, 123456000, time.UTC),
		"updated": time.Date(2023, 11, 14, 22, 13, 20, 500000000, time.FixedZone("", 3600)),
		"active":  true, "note": nil,
	}
	with := func(m map[string]any, kv ...any) map[string]any {
		out := map[string]any{}
		for k, v := range m {
			out[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			out[kv[i].(string)] = kv[i+1]
		}
		return out
	}
	bob := with(ada, "id", int64(2), "name", "Bob")
	cases := []struct {
		fixture string
		version string
		want    exactly.Change
	}{
		{"snapshot_read", "", exactly.Change{Op: exactly.OpUpsert, Key: map[string]any{"id": int64(1)}, Row: ada}},
		{"create", "", exactly.Change{Op: exactly.OpUpsert, Key: map[string]any{"id": int64(2)}, Row: bob}},
		{"update", "", exactly.Change{Op: exactly.OpUpsert, Key: map[string]any{"id": int64(1)},
			Row: with(ada, "name", "Ada L.", "price", exactly.Decimal("-1.50"), "active", false)}},
		{"update", "source_lsn", exactly.Change{Op: exactly.OpUpsert, Key: map[string]any{"id": int64(1)},
			Row:     with(ada, "name", "Ada L.", "price", exactly.Decimal("-1.50"), "active", false, "source_lsn", int64(300)),
			Version: int64(300)}},
		{"delete", "", exactly.Change{Op: exactly.OpDelete, Key: bob}},
		{"delete", "ts_ms", exactly.Change{Op: exactly.OpDelete, Key: bob, Version: int64(1700000000123)}},
		// A tombstone deletes by the record key (issue 15.7: it was skipped,
		// and after compaction it is the only trace of the delete left); it
		// has no version, even with a version column.
		{"tombstone", "", exactly.Change{Op: exactly.OpDelete, Key: map[string]any{"id": int64(2)}}},
		{"tombstone", "source_lsn", exactly.Change{Op: exactly.OpDelete, Key: map[string]any{"id": int64(2)}}},
		// Without the schema wrapper values stay as JSON gives them.
		{"create_noschema", "", exactly.Change{Op: exactly.OpUpsert, Key: map[string]any{"id": int64(3)},
			Row: map[string]any{"id": int64(3), "name": "Cy", "price": "MDk=", "born": int64(19000),
				"created": int64(1700000000123456), "updated": "2023-11-14T22:13:20.5+01:00", "active": true, "note": nil}}},
		{"add_column", "", exactly.Change{Op: exactly.OpUpsert, Key: map[string]any{"id": int64(4)},
			Row: with(ada, "id", int64(4), "name", "Di", "email", "di@example.com")}},
	}
	for _, c := range cases {
		t.Run(c.fixture+"/"+c.version, func(t *testing.T) {
			d := NewDebezium(&exactly.TableRule{Key: []string{"id"}, Version: c.version})
			got, err := d.Decode(fixture(t, c.fixture))
			if err != nil {
				t.Fatal(err)
			}
			if g, w := fmt.Sprintf("%#v", got), fmt.Sprintf("%#v", c.want); !equalChange(got, c.want) {
				t.Errorf("got  %s\nwant %s", g, w)
			}
		})
	}
}

func equalChange(a, b exactly.Change) bool {
	norm := func(m map[string]any) map[string]any {
		out := map[string]any{}
		for k, v := range m {
			if t, ok := v.(time.Time); ok {
				v = t.UTC().Format(time.RFC3339Nano)
			}
			out[k] = v
		}
		return out
	}
	return a.Op == b.Op && reflect.DeepEqual(norm(a.Key), norm(b.Key)) && reflect.DeepEqual(norm(a.RowMap()), norm(b.RowMap())) &&
		reflect.DeepEqual(a.Version, b.Version)
}

// connectValueOf converts in, written as JSON, by its Connect schema.
func connectValueOf(s *connectSchema, in any) (any, error) {
	b, err := json.Marshal(in)
	if err != nil {
		return nil, err
	}
	p := objectParser{b: b}
	return p.connectValue(s)
}

func TestConnectValueTypes(t *testing.T) {
	dec := func(scale string) *connectSchema {
		return &connectSchema{Type: "bytes", Name: connectDecimal, Parameters: map[string]string{"scale": scale}}
	}
	n := func(s string) any { return json.Number(s) }
	cases := []struct {
		name   string
		schema *connectSchema
		in     any
		want   any
	}{
		{"null", &connectSchema{Type: "int32"}, nil, nil},
		{"bool", &connectSchema{Type: "boolean"}, false, false},
		{"int64 exact", &connectSchema{Type: "int64"}, n("9007199254740993"), int64(9007199254740993)},
		{"float", &connectSchema{Type: "float64"}, n("1.5"), 1.5},
		{"date days", &connectSchema{Type: "int32", Name: dbzDate}, n("-1"), time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC)},
		{"connect date", &connectSchema{Type: "int32", Name: connectDate}, n("0"), time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"timestamp ms", &connectSchema{Type: "int64", Name: dbzTimestamp}, n("1700000000123"), time.UnixMilli(1700000000123).UTC()},
		{"connect timestamp", &connectSchema{Type: "int64", Name: connectTimestamp}, n("-1"), time.UnixMilli(-1).UTC()},
		{"timestamp µs", &connectSchema{Type: "int64", Name: dbzMicroTimestamp}, n("1700000000123456"), time.UnixMicro(1700000000123456).UTC()},
		{"timestamp ns", &connectSchema{Type: "int64", Name: dbzNanoTimestamp}, n("1700000000123456789"), time.Unix(0, 1700000000123456789).UTC()},
		{"zoned", &connectSchema{Type: "string", Name: dbzZonedTimestamp}, "2024-02-29T23:59:59.999999Z",
			time.Date(2024, 2, 29, 23, 59, 59, 999999000, time.UTC)},
		{"time ms", &connectSchema{Type: "int32", Name: dbzTime}, n("49530123"), "13:45:30.123"},
		{"time µs", &connectSchema{Type: "int64", Name: dbzMicroTime}, n("49530000001"), "13:45:30.000001"},
		{"decimal", dec("2"), "MDk=", exactly.Decimal("123.45")},
		{"decimal negative", dec("2"), "/2o=", exactly.Decimal("-1.50")},
		{"decimal small", dec("4"), "AQ==", exactly.Decimal("0.0001")},
		{"decimal zero scale", dec("0"), "AA==", exactly.Decimal("0")},
		{"variable scale", &connectSchema{Type: "struct", Name: dbzVarDecimal}, map[string]any{"scale": n("3"), "value": "MDk="}, exactly.Decimal("12.345")},
		{"bytes", &connectSchema{Type: "bytes"}, "AQID", []byte{1, 2, 3}},
		{"json", &connectSchema{Type: "string", Name: dbzJSON}, `{"a":1}`, exactly.JSON(`{"a":1}`)},
		{"struct", &connectSchema{Type: "struct"}, map[string]any{"a": n("1")}, exactly.JSON(`{"a":1}`)},
		{"array", &connectSchema{Type: "array"}, []any{n("1"), "x"}, exactly.JSON(`[1,"x"]`)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := connectValueOf(c.schema, c.in)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("got %#v, want %#v", got, c.want)
			}
		})
	}
}

func TestConnectValueMismatchesAreErrors(t *testing.T) {
	for _, c := range []struct {
		schema *connectSchema
		in     any
		want   string
	}{
		{&connectSchema{Type: "int32"}, "abc", `expected an integer (int32), got the string "abc"`},
		{&connectSchema{Type: "int64"}, json.Number("1.5"), "expected an integer (int64), got 1.5"},
		{&connectSchema{Type: "boolean"}, json.Number("1"), "expected a boolean"},
		{&connectSchema{Type: "bytes"}, "not base64!", "expected base64 bytes"},
		{&connectSchema{Type: "bytes", Name: connectDecimal}, "AQ==", "no scale"},
		{&connectSchema{Type: "string", Name: dbzZonedTimestamp}, "yesterday", "ISO-8601"},
		{&connectSchema{Type: "int32", Name: dbzDate}, json.Number("2000000000"), "out of range"},
		{&connectSchema{Type: "uuid"}, "x", "unknown Connect schema type"},
	} {
		_, err := connectValueOf(c.schema, c.in)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v %v: got %v, want an error containing %q", c.schema, c.in, err, c.want)
		}
	}
}

func TestDecimalFromBytesRoundTrips(t *testing.T) {
	for _, s := range []string{"0", "1", "-1", "127", "128", "-128", "-129", "32767", "-32768", "123456789012345678901234567890", "-98765432109876543210"} {
		n, _ := new(big.Int).SetString(s, 10)
		for _, scale := range []int{0, 1, 2, 5, 30} {
			want := new(big.Rat).SetFrac(n, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scale)), nil))
			got := DecimalFromBytes(twosComplement(n), scale)
			r, ok := new(big.Rat).SetString(string(got))
			if !ok || r.Cmp(want) != 0 {
				t.Errorf("%s scale %d: got %s, want %s", s, scale, got, want.FloatString(scale))
			}
			if scale > 0 && !strings.Contains(string(got), ".") {
				t.Errorf("%s scale %d: got %s, want the scale's digits kept", s, scale, got)
			}
		}
	}
}

// twosComplement is the minimal big-endian two's-complement encoding Java's
// BigInteger.toByteArray writes (and Debezium with it).
func twosComplement(n *big.Int) []byte {
	if n.Sign() >= 0 {
		b := n.Bytes()
		if len(b) == 0 || b[0]&0x80 != 0 {
			b = append([]byte{0}, b...)
		}
		return b
	}
	// -n = 2^k - |n| for the smallest k that keeps the sign bit set.
	for k := 8; ; k += 8 {
		m := new(big.Int).Add(new(big.Int).Lsh(big.NewInt(1), uint(k)), n)
		b := m.Bytes()
		if m.Sign() > 0 && len(b) == k/8 && b[0]&0x80 != 0 {
			return b
		}
	}
}

func TestDebeziumBadEventsNameTheRecordAndTheField(t *testing.T) {
	d := NewDebezium(&exactly.TableRule{Key: []string{"id"}})
	rec := func(key, value string) *exactly.Record {
		return &exactly.Record{Topic: "s.public.t", Partition: 3, Offset: 77, Key: []byte(key), Value: []byte(value)}
	}
	for _, c := range []struct {
		key, value, want string
	}{
		{`{"id":1}`, `not json`, "value is not JSON"},
		{`{"id":1}`, `{"after":{"id":1}}`, "no op field"},
		{`{"id":1}`, `{"op":"x","after":{"id":1}}`, `unknown Debezium op "x"`},
		{`{"id":1}`, `{"op":"c","after":null}`, "without an after image"},
		{`{"id":1}`, `{"op":"t"}`, "truncate"},
		{`{"id":1}`, `{"op":5}`, "op is the number 5"},
		{`{"id":1}`, `{"op":"c","after":[1]}`, "after: expected an object"},
		{``, `{"op":"d","before":null}`, "delete without a before image"},
		{`{"id":1}`, `{"schema":{"type":"struct","fields":[{"field":"after","type":"struct","fields":[{"field":"id","type":"int32"}]}]},"payload":{"op":"c","after":{"id":"abc"}}}`,
			`after: field "id": expected an integer (int32), got the string "abc"`},
		{`{"id":1}`, `{"schema":{"type":"struct","fields":[{"field":"after","type":"struct","fields":[{"field":"id","type":"int32"}]}]},"payload":{"op":"c","after":{"id":1,"zz":2}}}`,
			`field "zz" is not in the schema`},
	} {
		_, err := d.Decode(rec(c.key, c.value))
		var re *exactly.RecordError
		if !errors.As(err, &re) || re.Topic != "s.public.t" || re.Partition != 3 || re.Offset != 77 {
			t.Errorf("%s: got %v, want a RecordError at s.public.t[3]@77", c.value, err)
			continue
		}
		if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "s.public.t[3]@77") {
			t.Errorf("%s: got %q, want it to contain %q", c.value, err, c.want)
		}
	}
}

func TestDebeziumDeleteTakesTheKeyFromTheRecordKeyOrBefore(t *testing.T) {
	d := NewDebezium(&exactly.TableRule{Key: []string{"id"}})
	// No record key: the before image names the row.
	ch, err := d.Decode(&exactly.Record{Value: []byte(`{"op":"d","before":{"id":7,"name":"x"}}`)})
	if err != nil || ch.Op != exactly.OpDelete || ch.Key["id"] != int64(7) {
		t.Errorf("before only: got %+v %v", ch, err)
	}
	// A before image holding only the key (REPLICA IDENTITY DEFAULT) and a scalar record key.
	ch, err = d.Decode(&exactly.Record{Key: []byte(`8`), Value: []byte(`{"op":"d","before":null}`)})
	if err != nil || ch.Op != exactly.OpDelete || ch.Key["id"] != int64(8) {
		t.Errorf("record key only: got %+v %v", ch, err)
	}
	// record_key: the before image is not consulted.
	rk := NewDebezium(&exactly.TableRule{Key: []string{"id"}, KeyFrom: "record_key"})
	if _, err := rk.Decode(&exactly.Record{Value: []byte(`{"op":"d","before":{"id":7}}`)}); err == nil {
		t.Error("key_from: record_key with no record key: got no error")
	}
}

func TestDebeziumSchemaDescribesTheRow(t *testing.T) {
	d := NewDebezium(&exactly.TableRule{Key: []string{"id"}, Version: "source_lsn"})
	ch, err := d.Decode(fixture(t, "update"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range ch.Schema {
		got = append(got, fmt.Sprintf("%s:%s:%v", f.Name, f.Type, f.Nullable))
	}
	want := "id:int32:false name:text:false price:decimal(10,2):true born:date:true created:timestamp:true " +
		"updated:timestamptz:true active:bool:true note:text:true source_lsn:int64:true"
	if strings.Join(got, " ") != want {
		t.Errorf("schema:\n got %s\nwant %s", strings.Join(got, " "), want)
	}
	ch, err = d.Decode(fixture(t, "create_noschema"))
	if err != nil || ch.Schema != nil {
		t.Errorf("no schema: got %v %v, want nil", ch.Schema, err)
	}
}

// TestDebeziumFloatAndDoubleColumns: Connect's JsonConverter names
// FLOAT32 and FLOAT64 "float" and "double" in the schemas it writes (the
// tutorial's products.weight is one), and every event of such a table was
// dead-lettered as "unknown Connect schema type". They decode as numbers
// and make float columns.
func TestDebeziumFloatAndDoubleColumns(t *testing.T) {
	value := `{"schema":{"type":"struct","name":"dbserver1.inventory.products.Envelope","optional":false,"fields":[
{"type":"struct","name":"dbserver1.inventory.products.Value","optional":true,"field":"before","fields":[
 {"type":"int32","optional":false,"field":"id"},{"type":"double","optional":true,"field":"weight"},{"type":"float","optional":true,"field":"ratio"}]},
{"type":"struct","name":"dbserver1.inventory.products.Value","optional":true,"field":"after","fields":[
 {"type":"int32","optional":false,"field":"id"},{"type":"double","optional":true,"field":"weight"},{"type":"float","optional":true,"field":"ratio"}]},
{"type":"string","optional":false,"field":"op"}]},
"payload":{"before":null,"after":{"id":101,"weight":3.14,"ratio":0.5},"op":"c"}}`
	d := NewDebezium(&exactly.TableRule{Key: []string{"id"}})
	ch, err := d.Decode(&exactly.Record{Topic: "dbserver1.inventory.products", Key: []byte(`{"id":101}`), Value: []byte(value)})
	if err != nil {
		t.Fatal(err)
	}
	if row := ch.RowMap(); row["weight"] != 3.14 || row["ratio"] != 0.5 || row["id"] != int64(101) {
		t.Errorf("row %v, want id 101, weight 3.14, ratio 0.5", row)
	}
	var got []string
	for _, f := range ch.Schema {
		got = append(got, fmt.Sprintf("%s:%s", f.Name, f.Type))
	}
	if want := "id:int32 weight:float64 ratio:float32"; strings.Join(got, " ") != want {
		t.Errorf("schema %s, want %s", strings.Join(got, " "), want)
	}
}
