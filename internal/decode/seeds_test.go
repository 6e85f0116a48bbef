package decode

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hamba/avro/v2"
)

// TestWriteFuzzSeeds regenerates the committed seed corpora under
// testdata/fuzz/ when EXACTLY_WRITE_SEEDS=1; otherwise it does nothing.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("EXACTLY_WRITE_SEEDS") != "1" {
		t.Skip("set EXACTLY_WRITE_SEEDS=1 to rewrite testdata/fuzz")
	}
	write := func(target, name string, args ...any) {
		var sb strings.Builder
		sb.WriteString("go test fuzz v1\n")
		for _, a := range args {
			switch v := a.(type) {
			case []byte:
				fmt.Fprintf(&sb, "[]byte(%q)\n", v)
			case string:
				fmt.Fprintf(&sb, "string(%q)\n", v)
			default:
				fmt.Fprintf(&sb, "%T(%v)\n", v, v)
			}
		}
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(sb.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i, s := range []struct{ key, value string }{
		{`{"id":1}`, `{"id":1,"name":"a","price":12.50,"tags":["x"],"meta":{"k":null}}`},
		{`{"schema":{"type":"struct","fields":[{"field":"id","type":"int32"}]},"payload":{"id":2}}`, `{"id":2,"ok":true}`},
		{`3`, `{"id":3,"big":123456789012345678901234567890}`},
		{`user-4`, `{"id":4}`},
		{`{"id":5}`, `[1,2]`},
		{`{"id":6}`, `{"id":6} trailing`},
		{`{"id":7}`, `{"id":7,"n":-1e400}`},
	} {
		write("FuzzJSON", fmt.Sprintf("seed-%d", i), []byte(s.key), []byte(s.value), false, []string{"", "record_key", "value"}[i%3], "s", int64(i), 0.1*float64(i))
	}
	write("FuzzJSON", "tombstone", []byte(`{"id":9}`), []byte(nil), true, "", "", int64(9), 0.0)
	for _, name := range []string{"create", "update", "delete", "snapshot_read", "tombstone", "create_noschema", "add_column"} {
		r := fixture(t, name)
		write("FuzzDebezium", name, r.Key, r.Value, r.Value == nil, "source_lsn", int64(1), "Ada", int32(19000), int64(1700000000123456), []byte{0xff, 0x6a}, uint8(2))
	}
	for i, v := range []string{
		`{"op":"c","after":{"id":1},"source":{"lsn":5},"ts_ms":1}`,
		`{"op":"d","before":{"id":1}}`,
		`{"op":"t"}`,
		`{"schema":{"type":"struct","fields":[{"field":"after","type":"struct","fields":[{"field":"d","type":"bytes","name":"org.apache.kafka.connect.data.Decimal","parameters":{"scale":"3"}},{"field":"v","type":"struct","name":"io.debezium.data.VariableScaleDecimal"},{"field":"t","type":"int64","name":"io.debezium.time.NanoTime"}]}]},"payload":{"op":"u","after":{"d":"gA==","v":{"scale":2,"value":"AQ=="},"t":1000}}}`,
		`{"schema":{"type":"int32"},"payload":{"op":"c"}}`,
	} {
		write("FuzzDebezium", fmt.Sprintf("event-%d", i), []byte(`{"id":1}`), []byte(v), false, "ts_ms", int64(-1), "", int32(-1), int64(-1), []byte{}, uint8(0))
	}
	key2, env2 := avro.MustParse(dbzKeySchema), avro.MustParse(avroFuzzSchemas[2])
	all := avro.MustParse(avroFuzzSchemas[3])
	k, _ := frame(key2, 1, map[string]any{"id": 1})
	for i, op := range []string{"c", "u", "d", "r"} {
		ev := map[string]any{"after": val(dbzRow(1, "Ada")), "source": dbzSource(int64(i)), "op": op, "ts_ms": int64(i)}
		if op == "d" {
			ev = map[string]any{"before": val(dbzRow(1, "Ada")), "source": dbzSource(int64(i)), "op": op}
		}
		v, err := frame(env2, 2, ev)
		if err != nil {
			t.Fatal(err)
		}
		write("FuzzAvro", "envelope-"+op, k, v, false, true, int64(i), "Ada", int64(12345), int32(19000))
	}
	v, err := frame(all, 3, map[string]any{"id": int64(1), "s": "x", "d": mustRat("-12.3456"), "f": mustRat("1.05"),
		"ts": avroTime(), "day": avroDay(), "t": avroTOD(), "e": "B", "a": []any{nil, 1.5}, "m": map[string]any{"k": true},
		"n": map[string]any{"node": map[string]any{"next": map[string]any{"node": map[string]any{"next": nil}}}}})
	if err != nil {
		t.Fatal(err)
	}
	write("FuzzAvro", "all-types", []byte("1"), v, false, false, int64(1), "", int64(0), int32(0))
	write("FuzzAvro", "unknown-id", []byte{0, 0, 0, 0, 100}, []byte{0, 0, 0, 0, 101, 0}, false, true, int64(0), "", int64(0), int32(0))
	write("FuzzAvro", "not-framed", []byte(`{"id":1}`), []byte(`{"id":1}`), false, false, int64(0), "", int64(0), int32(0))
	write("FuzzAvro", "tombstone", k, []byte(nil), true, false, int64(0), "", int64(0), int32(0))
}
