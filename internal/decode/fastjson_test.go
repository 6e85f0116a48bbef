package decode

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/exactly/exactly"
)

// objectViaEncodingJSON is Object as it was before parseObject: the
// encoding/json path that parseObject must match, result for result.
func objectViaEncodingJSON(b []byte) (map[string]any, error) {
	var m map[string]any
	if err := unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("not a JSON object: %v", err)
	}
	if m == nil {
		return nil, errors.New("not a JSON object: null")
	}
	for k, v := range m {
		m[k] = Value(v)
	}
	return m, nil
}

// objectEdgeCases are inputs where encoding/json has a rule to copy.
var objectEdgeCases = []string{
	``, ` `, `{`, `}`, `{}`, ` {} `, "\t\r\n{}\n", "\f{}", "\v{}", "\u00a0{}", "\xef\xbb\xbf{}",
	`null`, ` null `, `nul`, `nullx`, `null}`, `true`, `false`, `0`, `-1`, `"s"`, `[]`, `[{}]`, `{}{}`,
	// What may follow the object: Decoder.More stops at a closing bracket.
	`{} `, `{}x`, `{} x`, `{}}`, `{}]`, `{} ] garbage`, `{}}}}`, `{},`, `{}"`, `{}0`, `{} {`, `{}[`, "{}\x00",
	// Members.
	`{"a":1}`, `{"a":1,}`, `{,"a":1}`, `{"a" : 1 , "b" : 2}`, `{"a"1}`, `{"a":}`, `{"a"}`, `{a:1}`, `{'a':1}`,
	`{"a":1 "b":2}`, `{"a":1,"a":2}`, `{"a":{"x":1},"a":3}`, `{"a":1,"a":null}`, `{"":0}`, `{"a":1`, `{"a":1,`,
	// Literals.
	`{"a":true,"b":false,"c":null}`, `{"a":tru}`, `{"a":truex}`, `{"a":True}`, `{"a":nulL}`, `{"a":f}`, `{"a":n`,
	// Numbers.
	`{"a":0}`, `{"a":-0}`, `{"a":00}`, `{"a":01}`, `{"a":-01}`, `{"a":1.}`, `{"a":.5}`, `{"a":+1}`, `{"a":-}`,
	`{"a":1e}`, `{"a":1e+}`, `{"a":1E-2}`, `{"a":1e5}`, `{"a":0.0}`, `{"a":-0.0}`, `{"a":12.50}`, `{"a":1.5e300}`,
	`{"a":-1e400}`, `{"a":1x}`, `{"a":0x10}`, `{"a":1_000}`, `{"a":NaN}`, `{"a":Infinity}`, `{"a":-Infinity}`,
	`{"a":9223372036854775807}`, `{"a":9223372036854775808}`, `{"a":-9223372036854775808}`,
	`{"a":-9223372036854775809}`, `{"a":999999999999999999}`, `{"a":-999999999999999999}`,
	`{"a":1000000000000000000}`, `{"a":123456789012345678901234567890}`, `{"a":000000000000000000001}`,
	// Strings.
	`{"a":"x"}`, `{"a":"\"\\\/\b\f\n\r\t"}`, `{"a":"\'"}`, `{"a":"\x"}`, `{"a":"\u0041"}`, `{"a":"\u00e9\u00E9"}`,
	`{"a":"\u12"}`, `{"a":"\u12G4"}`, `{"a":"\u0000"}`, `{"a":"\ud83d\ude00"}`, `{"a":"\ud83d"}`, `{"a":"\ude00"}`,
	`{"a":"\ud83d\u0041"}`, `{"a":"\ud83d\ud83d\ude00"}`, `{"a":"\ude00\ud83d"}`, `{"a":"\ud83dx\ude00"}`,
	`{"a":"\ud83d\\ude00"}`, `{"a":"\ud83d\`, `{"a":"\ud83d\u"}`, `{"a":"\ud83d\ude0"}`, `{"a":"\uDBFF\uDFFF"}`,
	`{"a":"\uD800\uDC00"}`, `{"a":"\uFFFD"}`, `{"a":"\uffff"}`, "{\"a\":\"\t\"}", "{\"a\":\"\x1f\"}", "{\"a\":\"\x7f\"}",
	"{\"a\":\"\n\"}", `{"a":"`, `{"a":"x`, `{"a":"x\`, `{"\u0061":1,"a":2}`, `{"a\"b":1}`, `{"a\u0000":1}`,
	"{\"a\":\"\xff\"}", "{\"a\":\"\xc3\xa9\"}", "{\"a\":\"\xc3\"}", "{\"a\":\"\xe2\x82\"}", "{\"a\":\"\xed\xa0\x80\"}",
	"{\"a\":\"\xf4\x90\x80\x80\"}", "{\"a\":\"\xc0\xaf\"}", "{\"a\":\"\xef\xbf\xbd\"}", "{\"\xff\":1}",
	"{\"a\":\"\xff\\n\"}", "{\"a\":\"\\n\xff\"}", "{\"a\":\"\xe2\x80\xa8\"}", "{\"a\":\"<>&\"}",
	// Nested values, re-marshalled by json.Marshal.
	`{"a":{}}`, `{"a":[]}`, `{"a":[1,2.50,-0,1e2,"x",true,null,{}]}`, `{"a":{"b":2,"a":1,"b":3}}`,
	`{"a":{"<>&":"<>&\u2028\u2029"}}`, `{"a":["\ud83d","\u0000\u001f\u007f","\b\f"]}`, "{\"a\":[\"\xff\"]}",
	`{"a":[1,]}`, `{"a":[,1]}`, `{"a":[1 2]}`, `{"a":{"b"}}`, `{"a":{"b":}}`, `{"a":{1:2}}`, `{"a":[}`, `{"a":{]}`,
	`{"a":[[[[]]]]}`, `{"a":[{"b":[{"c":{}}]}]}`, `{"a":[01]}`, `{"a":[1.]}`, `{"a":[tru]}`, `{"a":["\x"]}`,
	`{"a":{"b":1,}}`, `{"a":[1]]}`, `{"a":[1]`, `{"a":{"b":1}`, `{"a":[12345678901234567890123]}`,
	`{"a":  [ 1 , { "b" : [ ] } ] , "b":2}`, "{\"a\":[\t\n\r 1\t\n\r]}",
	// A CDC row.
	`{"id":1234567,"customer_id":42,"status":"shipped","total":1234.50,"paid":true,"note":null,"updated_at":"2026-11-26T02:15:31.123456Z"}`,
}

// TestObjectMatchesEncodingJSONAtDepthLimit: encoding/json refuses more
// than 10000 levels of nesting, the top object counted. (Not fuzz seeds:
// the fuzzer crawls on inputs this large.)
func TestObjectMatchesEncodingJSONAtDepthLimit(t *testing.T) {
	for _, depth := range []int{9999, 10000} {
		for _, b := range []string{
			`{"a":` + strings.Repeat("[", depth) + strings.Repeat("]", depth) + `}`,
			`{"a":` + strings.Repeat(`{"b":`, depth) + `1` + strings.Repeat("}", depth) + `}`,
			`{"a":` + strings.Repeat(`[{"b":`, depth/2) + `[]` + strings.Repeat("}]", depth/2) + `}`,
		} {
			got, gotErr := Object([]byte(b))
			want, wantErr := objectViaEncodingJSON([]byte(b))
			if (gotErr == nil) != (wantErr == nil) || !reflect.DeepEqual(got, want) {
				t.Errorf("%d levels, %.20s…: got %v, %v; encoding/json %v, %v", depth+1, b, len(got), gotErr, len(want), wantErr)
			}
		}
	}
}

// FuzzObjectMatchesEncodingJSON holds parseObject to the encoding/json
// path it replaced: on any bytes, both fail or both return equal maps.
func FuzzObjectMatchesEncodingJSON(f *testing.F) {
	for _, s := range objectEdgeCases {
		f.Add([]byte(s))
	}
	for _, s := range corpusBytes(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, gotErr := Object(b)
		want, wantErr := objectViaEncodingJSON(b)
		if (gotErr == nil) != (wantErr == nil) {
			t.Fatalf("%q: got error %v, encoding/json %v", b, gotErr, wantErr)
		}
		if gotErr != nil && !strings.HasPrefix(gotErr.Error(), "not a JSON object: ") {
			t.Fatalf("%q: error %q does not say the value is not a JSON object", b, gotErr)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q:\n got %#v\nwant %#v", b, got, want)
		}
		row, shape, _ := parseRow(b, true, nil)
		if msg := shapeFault(exactly.Change{Row: row, Shape: shape}); msg != "" {
			t.Fatalf("%q: %s (shape %v)", b, msg, shape)
		}
	})
}

// corpusBytes returns the JSON inputs the other targets are seeded with:
// the []byte arguments of their committed corpora and the Debezium
// fixtures' keys and values.
func corpusBytes(tb testing.TB) [][]byte {
	var out [][]byte
	files, _ := filepath.Glob(filepath.Join("testdata", "fuzz", "Fuzz*", "*"))
	for _, file := range files {
		if strings.Contains(file, "FuzzAvro") || strings.Contains(file, "FuzzObjectMatchesEncodingJSON") {
			continue
		}
		b, err := os.ReadFile(file)
		if err != nil {
			tb.Fatal(err)
		}
		for line := range strings.SplitSeq(string(b), "\n") {
			if arg, ok := strings.CutPrefix(line, "[]byte("); ok {
				s, err := strconv.Unquote(strings.TrimSuffix(arg, ")"))
				if err != nil {
					tb.Fatalf("%s: %v", file, err)
				}
				out = append(out, []byte(s))
			}
		}
	}
	fixtures, _ := filepath.Glob(filepath.Join("testdata", "debezium", "*.json"))
	for _, file := range fixtures {
		r := fixture(tb, strings.TrimSuffix(filepath.Base(file), ".json"))
		out = append(out, r.Key, r.Value)
	}
	return out
}
