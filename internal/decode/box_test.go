package decode

import (
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"unsafe"

	"github.com/exactly/exactly"
)

// wideEvent is a create event of a table of n fields, with its key: of
// each five fields, an int64, a string, a double, a string written with
// an escape and a null, so that a row is boxed in a block (box.go) of
// every size, with more strings than the block cuts from one copy.
func wideEvent(n, id int) (key, value []byte) {
	var fields, after strings.Builder
	for i := range n {
		if i > 0 {
			fields.WriteByte(',')
			after.WriteByte(',')
		}
		typ, v := "int64", fmt.Sprint(id*1000+i)
		switch i % 5 {
		case 1:
			typ, v = "string", fmt.Sprintf(`"text %d é %d"`, id, i)
		case 2:
			typ, v = "double", fmt.Sprintf("%d.25", i)
		case 3:
			typ, v = "string", fmt.Sprintf(`"line\n%d"`, i)
		case 4:
			v = "null"
		}
		name := fmt.Sprintf("f%d", i)
		if i == 0 {
			name = "id"
		}
		fmt.Fprintf(&fields, `{"type":%q,"optional":true,"field":%q}`, typ, name)
		fmt.Fprintf(&after, `%q:%s`, name, v)
	}
	key = fmt.Appendf(nil, `{"schema":{"type":"struct","fields":[{"type":"int64","optional":false,"field":"id"}],"optional":false},"payload":{"id":%d}}`, id*1000)
	value = fmt.Appendf(nil, `{"schema":{"type":"struct","fields":[{"type":"struct","fields":[%s],"optional":true,"field":"after"},`+
		`{"type":"string","optional":false,"field":"op"}]},"payload":{"before":null,"after":{%s},"op":"c"}}`, fields.String(), after.String())
	return key, value
}

// schemalessEvent is a create event of a table of n fields without a
// schema (schemas.enable=false): of each eight fields, an integer, text,
// a decimal, text with an escape, a null, an integer too big for an
// int64, invalid UTF-8 and an object, so that the row is boxed in a block
// (imageBlock.later) of every size, more values than it notes, and wider.
func schemalessEvent(n, id int) (key, value []byte) {
	var after strings.Builder
	for i := range n {
		if i > 0 {
			after.WriteByte(',')
		}
		v := fmt.Sprint(id*1000 + i)
		switch i % 8 {
		case 1:
			v = fmt.Sprintf(`"text %d é %d"`, id, i)
		case 2:
			v = fmt.Sprintf("%d.25", i)
		case 3:
			v = fmt.Sprintf(`"line\n%d"`, i)
		case 4:
			v = "null"
		case 5:
			v = "99999999999999999999"
		case 6:
			v = "\"\xff\xfe\""
		case 7:
			v = `{"a":[1,""]}`
		}
		name := fmt.Sprintf("f%d", i)
		if i == 0 {
			name = "id"
		}
		fmt.Fprintf(&after, `%q:%s`, name, v)
	}
	return fmt.Appendf(nil, `{"id":%d}`, id*1000), fmt.Appendf(nil, `{"before":null,"after":{%s},"op":"c"}`, after.String())
}

// TestWalkBoxesRowsOfEveryWidth: rows read by position, boxed in a block
// of each size and beyond the widest, with their schema and without,
// decode as the two-pass path does, and keep their values through
// garbage collections.
func TestWalkBoxesRowsOfEveryWidth(t *testing.T) {
	rule := &exactly.TableRule{Key: []string{"id"}}
	d := NewDebezium(rule)
	type decoded struct {
		r  *exactly.Record
		ch exactly.Change
	}
	var kept []decoded
	for _, n := range []int{1, 2, 4, 5, 8, 9, 16, 17, 32, 33, 40, 64, 65, 90} {
		for id := range 6 {
			event := wideEvent
			if id%2 == 1 {
				event = schemalessEvent
			}
			key, value := event(n, id+1)
			r := &exactly.Record{Topic: fmt.Sprint("t", n), Key: key, Value: value}
			if value, key := sameAsTwoPass(t, rule, r, -1); !value || !key {
				t.Fatalf("%d fields: the walk took the value %v, the key %v", n, value, key)
			}
			_, _ = d.Decode(r) // a schema not yet seen takes the two-pass path
			ch, err := d.Decode(r)
			if err != nil {
				t.Fatal(err)
			}
			if n <= maxBlock && (ch.Values == nil || len(ch.Values) != n) {
				t.Fatalf("%d fields: not read by position: %d values", n, len(ch.Values))
			}
			kept = append(kept, decoded{r, ch})
		}
	}
	runtime.GC()
	runtime.GC()
	for _, k := range kept {
		want, err := refDecode(NewDebezium(rule), k.r)
		if err != nil {
			t.Fatal(err)
		}
		got := k.ch
		got.Row, got.Values = got.RowMap(), nil
		want.Shape, got.Shape = nil, nil
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("after collections:\ngot  %#v\nwant %#v", got, want)
		}
	}
}

// TestBoxedValueIsConnectValue: every Connect type's good and bad values
// are boxed as connectValue converts them, or refused as it refuses them.
func TestBoxedValueIsConnectValue(t *testing.T) {
	for typ, vs := range typedValues {
		var s connectSchema
		if err := unmarshal([]byte("{"+typ+"}"), &s); err != nil {
			t.Fatal(err)
		}
		for _, v := range append(vs, `"plain"`, `"with \"quote\""`, `-12`, `3.25`, `1e3`, `"éé"`, "\"\x01\"") {
			if v == "null" {
				continue // walkImage reads null itself
			}
			b := []byte(v + ",")
			want := objectParser{b: b}
			wantV, wantErr := want.connectValue(&s)
			var ib imageBlock
			ib.init(1)
			got := objectParser{b: b}
			gotV, gotErr := got.boxedValue(&s, fieldKindOf(&s), &ib)
			ib.done(b)
			if (gotErr != nil) != (wantErr != nil) || gotErr == nil && (got.i != want.i || !reflect.DeepEqual(gotV, wantV)) {
				t.Errorf("%s %s: boxed %#v, %v at %d; connectValue %#v, %v at %d", typ, v, gotV, gotErr, got.i, wantV, wantErr, want.i)
			}
		}
	}
}

// TestPlainIntegerIsIntegerAsIs: the integers boxed as they are (kindInt)
// are those integer returns as they are.
func TestPlainIntegerIsIntegerAsIs(t *testing.T) {
	for _, name := range []string{"", "x", connectDate, connectTime, connectTimestamp, connectDecimal, dbzDate, dbzTime, dbzMicroTime,
		dbzNanoTime, dbzTimestamp, dbzMicroTimestamp, dbzNanoTimestamp, dbzZonedTimestamp, dbzVarDecimal, dbzJSON, "io.debezium.time.Year"} {
		v, err := integer(name, 5)
		if asIs := err == nil && v == any(int64(5)); asIs != plainInteger(name) {
			t.Errorf("%q: integer gives %#v, %v; plainInteger says %v", name, v, err, plainInteger(name))
		}
	}
}

// TestKeyTakesTheImagesValue: a record key's field equal to its image's
// field of that name is that value, not a copy; unequal ones, or of
// another type, are converted as connectKey converts them.
func TestKeyTakesTheImagesValue(t *testing.T) {
	keySchema := func(typ string) string {
		return `{"schema":{"type":"struct","fields":[{"type":` + typ + `,"optional":false,"field":"id"},{"type":"string","optional":true,"field":"name"}]},"payload":`
	}
	value := []byte(`{"schema":{"type":"struct","fields":[{"type":"struct","fields":[{"type":"int64","field":"id"},{"type":"string","field":"name"}],"field":"after"},` +
		`{"type":"struct","fields":[{"type":"int64","field":"id"},{"type":"string","field":"name"}],"field":"before"},{"type":"string","field":"op"}]},` +
		`"payload":{"before":{"id":7,"name":"old"},"after":{"id":1234567,"name":"name-1"},"op":"c"}}`)
	for _, c := range []struct {
		key  string
		same bool // the key's id and name are the after image's
	}{
		{keySchema(`"int64"`) + `{"id":1234567,"name":"name-1"}}`, true},
		{keySchema(`"int32"`) + `{"id":1234567,"name":"name-1"}}`, true},
		{keySchema(`"int64"`) + `{"id":1234568,"name":"name-2"}}`, false},
		{keySchema(`"int64"`) + `{"id":1234567.0,"name":"name\u002d1"}}`, false},
		{keySchema(`"int64","name":"io.debezium.time.Timestamp"`) + `{"id":1234567,"name":null}}`, false},
		{keySchema(`"string"`) + `{"id":"1234567","name":"name-1"}}`, false},
		{keySchema(`"double"`) + `{"id":1234567}}`, false},
		{keySchema(`"int64"`) + `{"id":99999999999999999999}}`, false},
	} {
		for _, op := range []string{"c", "d"} {
			v := value
			if op == "d" {
				v = []byte(strings.Replace(string(value), `"op":"c"`, `"op":"d"`, 1))
			}
			r := &exactly.Record{Topic: "t", Key: []byte(c.key), Value: v}
			for keyFrom := range 3 {
				sameAsTwoPass(t, fuzzRule(uint8(keyFrom), 0), r, -1)
			}
			d := NewDebezium(&exactly.TableRule{Key: []string{"id"}})
			_, _ = d.Decode(r) // a schema not yet seen takes the two-pass path
			ch, err := d.Decode(r)
			want, wantErr := refDecode(NewDebezium(&exactly.TableRule{Key: []string{"id"}}), r)
			if (err != nil) != (wantErr != nil) {
				t.Fatalf("key %s, op %s: %v, reference %v", c.key, op, err, wantErr)
			}
			if err != nil {
				continue
			}
			if !reflect.DeepEqual(ch.Key, want.Key) {
				t.Errorf("key %s, op %s: %#v, reference %#v", c.key, op, ch.Key, want.Key)
			}
			if op == "c" {
				id, _ := ch.Field("id")
				name, _ := ch.Field("name")
				if same := dataOf(ch.Key["id"]) == dataOf(id) && dataOf(ch.Key["name"]) == dataOf(name); same != c.same {
					t.Errorf("key %s: the key's values are the image's: %v, want %v", c.key, same, c.same)
				}
			}
		}
	}
}

func dataOf(v any) unsafe.Pointer { return (*eface)(unsafe.Pointer(&v)).data }

// TestDebeziumAllocations pins what a create event of the bench's table
// (four columns, a struct key; see internal/bench) allocates: the key's
// map (two), the row's block and the copy its strings are cut from; it
// took ten.
func TestDebeziumAllocations(t *testing.T) {
	key := []byte(`{"schema":{"type":"struct","fields":[{"type":"int64","optional":false,"field":"id"}],"optional":false,"name":"bench.public.t.Key"},"payload":{"id":1234}}`)
	row := `[{"type":"int64","optional":false,"field":"id"},{"type":"string","optional":false,"field":"name"},` +
		`{"type":"int64","optional":true,"field":"amount"},{"type":"string","optional":true,"field":"payload"}]`
	value := []byte(`{"schema":{"type":"struct","fields":[{"type":"struct","fields":` + row + `,"optional":true,"field":"before"},` +
		`{"type":"struct","fields":` + row + `,"optional":true,"field":"after"},` +
		`{"type":"struct","fields":[{"type":"string","optional":false,"field":"connector"},{"type":"int64","optional":true,"field":"lsn"}],"optional":false,"field":"source"},` +
		`{"type":"string","optional":false,"field":"op"},{"type":"int64","optional":true,"field":"ts_ms"}],"optional":false,"name":"bench.public.t.Envelope"},` +
		`"payload":{"before":null,"after":{"id":1234,"name":"name-1234","amount":8638,"payload":"` + strings.Repeat("e", 130) + `"},` +
		`"source":{"connector":"postgresql","lsn":1234},"op":"c","ts_ms":1764123331456}}`)
	r := &exactly.Record{Topic: "t", Key: key, Value: value}
	d := NewDebezium(&exactly.TableRule{Key: []string{"id"}})
	_, _ = d.Decode(r) // a schema not yet seen takes the two-pass path
	if ch, err := d.Decode(r); err != nil || ch.Values == nil {
		t.Fatalf("%+v, %v", ch, err)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = d.Decode(r) }); n > 4 {
		t.Errorf("%v allocations per record, want at most 4", n)
	}
	// Without the schemas (schemas.enable=false) the key is read on its
	// own (its map and its id) and the row boxed as well; it took ten.
	r = &exactly.Record{Topic: "t", Key: []byte(`{"id":1234}`),
		Value: []byte(`{"before":null,"after":{"id":1234,"name":"name-1234","amount":8638,"payload":"` + strings.Repeat("e", 130) + `"},` +
			`"source":{"connector":"postgresql","lsn":1234},"op":"c","ts_ms":1764123331456}`)}
	if ch, err := d.Decode(r); err != nil || ch.Values == nil {
		t.Fatalf("%+v, %v", ch, err)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = d.Decode(r) }); n > 5 {
		t.Errorf("without schemas: %v allocations per record, want at most 5", n)
	}
}

// TestCheckFieldsTakesWhatImageTakes: what checkFields reads over (a
// source block as connectors write it) the two-pass path checks without
// fault, and no further than the object.
func TestCheckFieldsTakesWhatImageTakes(t *testing.T) {
	var cs connectSchema
	schema := `{"type":"struct","fields":[{"type":"string","field":"s"},{"type":"int64","field":"i"},` +
		`{"type":"int32","name":"io.debezium.time.Date","field":"d"},{"type":"string","name":"io.debezium.data.Json","field":"j"}]}`
	if err := unmarshal([]byte(schema), &cs); err != nil {
		t.Fatal(err)
	}
	s := newStructSchema(&cs)
	var took int
	for _, sv := range []string{`"x"`, `""`, `"é"`, "\"\xff\"", `"a\"b"`, `"a\\b"`, "\"\x01\"", `null`, `nul`, `1`, `"x`} {
		for _, iv := range []string{`0`, `-0`, `01`, `-`, `-01`, `1.`, `1.5`, `1e3`, `123456789012345678`, `1234567890123456789`,
			`-123456789012345678`, `99999999999999999999`, `null`, `"1"`, `1 `, `[]`} {
			for _, tail := range []string{`}`, `,"d":1}`, `,"d":null,"j":"x"}`, `,"d":7,"j":null}`, `,"x":1}`, `,"s":"x"}`, ``, ` }`, `,}`} {
				raw := []byte(`{"s":` + sv + `,"i":` + iv + tail)
				p := objectParser{b: raw}
				if !p.checkFields(s) {
					if p.i != 0 {
						t.Fatalf("%s: refused, and moved to %d", raw, p.i)
					}
					continue
				}
				took++
				if _, _, err := imageBySchema(raw, s, keep{}, false, nil); err != nil || p.i != len(raw) {
					t.Errorf("%s: checkFields took it (to %d of %d), the two-pass path says %v", raw, p.i, len(raw), err)
				}
			}
		}
	}
	if took < 20 {
		t.Errorf("checkFields took %d objects only", took)
	}
}

// TestSkipFlatTakesWhatSkipTakes: what skipFlat reads over (a source
// block without a schema, as connectors write it) skipValue takes, to the
// same end.
func TestSkipFlatTakesWhatSkipTakes(t *testing.T) {
	var took int
	for _, k := range []string{`"k"`, `""`, `"é"`, `"a\"b"`, "\"\x01\"", `k`, `"k`} {
		for _, v := range []string{`"x"`, `""`, "\"\xff\"", `"a\\b"`, "\"\x1f\"", `null`, `nul`, `true`, `tru`, `false`, `fals`,
			`0`, `-0`, `01`, `-`, `-01`, `1.`, `1.5`, `.5`, `1e3`, `1E+3`, `1e-`, `1e`, `-1.25e-10`, `99999999999999999999`,
			`[]`, `{}`, `"1"`} {
			for _, tail := range []string{`}`, `,"a":1}`, `,"a":null,"b":"x"}`, ``, ` }`, `,}`, `}}`, `] `, `,"a":1` + "\n}"} {
				for _, head := range []string{`{`, `{ `} {
					raw := []byte(head + k + `:` + v + tail)
					p := objectParser{b: raw}
					if !p.skipFlat() {
						if p.i != 0 {
							t.Fatalf("%s: refused, and moved to %d", raw, p.i)
						}
						continue
					}
					took++
					q := objectParser{b: raw}
					if err := q.skipValue(1); err != nil || q.i != p.i {
						t.Errorf("%s: skipFlat took it to %d, skipValue says %v at %d", raw, p.i, err, q.i)
					}
				}
			}
		}
	}
	if p := (objectParser{b: []byte(`{}`)}); !p.skipFlat() || p.i != 2 {
		t.Errorf("{}: not taken")
	}
	if took < 50 {
		t.Errorf("skipFlat took %d objects only", took)
	}
}
