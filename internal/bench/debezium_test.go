package bench

import (
	"reflect"
	"testing"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/decode"
)

// TestDebeziumRecordsCarryTheRows: a Debezium bench record decodes to the
// row and key its plain JSON record does, so both formats load the same
// tables and the baseline stays the same.
func TestDebeziumRecordsCarryTheRows(t *testing.T) {
	newDecoder := decode.For(&exactly.Config{})
	plain, err := newDecoder(&exactly.TableRule{Format: "json", Key: []string{"id"}})
	if err != nil {
		t.Fatal(err)
	}
	dbz, err := newDecoder(&exactly.TableRule{Format: "debezium", Mode: "cdc", Key: []string{"id"}})
	if err != nil {
		t.Fatal(err)
	}
	encJSON, _ := encoder(FormatJSON)
	encDbz, _ := encoder(FormatDebezium)
	for _, i := range []int64{0, 1, 99, 123456789} {
		r := makeRow(i, 200)
		k, v := encJSON(r)
		want, err := plain.Decode(&exactly.Record{Key: k, Value: v})
		if err != nil {
			t.Fatal(err)
		}
		k, v = encDbz(r)
		got, err := dbz.Decode(&exactly.Record{Key: k, Value: v})
		if err != nil {
			t.Fatalf("%s: %v", v, err)
		}
		if got.Op != exactly.OpUpsert || !reflect.DeepEqual(got.RowMap(), want.RowMap()) || !reflect.DeepEqual(got.Key, map[string]any{"id": i}) {
			t.Errorf("row %d: got %+v, want the row %+v keyed by its id", i, got, want.RowMap())
		}
	}
	if _, err := encoder("avro"); err == nil {
		t.Error("format avro: got no error")
	}
}
