package decode

import (
	"fmt"
	"strings"
	"testing"

	"github.com/exactly/exactly"
)

// BenchmarkJSONDecode: one ~200-byte JSON record with a scalar key, the
// bench workload's shape.
func BenchmarkJSONDecode(b *testing.B) {
	d := &JSON{Key: []string{"id"}}
	r := &exactly.Record{Topic: "t", Key: []byte("12345"),
		Value: []byte(fmt.Sprintf(`{"id":12345,"name":"name-12345","amount":86415,"payload":"%s"}`, strings.Repeat("p", 130)))}
	b.ReportAllocs()
	b.SetBytes(int64(len(r.Value)))
	for b.Loop() {
		if _, err := d.Decode(r); err != nil {
			b.Fatal(err)
		}
	}
}

// cdcRow is a ~200-byte change row: integers, strings, a decimal, a bool,
// a null and a timestamp string.
var cdcRow = []byte(`{"id":1234567,"customer_id":42,"status":"shipped",` +
	`"quantity":3,"total":1234.50,"paid":true,"note":null,` +
	`"created_at":"2026-11-26T02:15:31.123456Z","updated_at":"2026-11-26T02:16:02.654321Z"}`)

// BenchmarkObject: the hand-written parser against the encoding/json path
// it replaced, on one CDC row. Compare the two within one run.
func BenchmarkObject(b *testing.B) {
	for _, bm := range []struct {
		name   string
		decode func([]byte) (map[string]any, error)
	}{{"encoding_json", objectViaEncodingJSON}, {"hand_written", Object}} {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(cdcRow)))
			for b.Loop() {
				if _, err := bm.decode(cdcRow); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// orderFields is the Connect schema of an orders table as Debezium's
// PostgreSQL connector writes it: 13 columns, among them decimals (bytes
// with a scale), a date, a µs timestamp, a zoned timestamp and nullable
// fields.
const orderFields = `[{"type":"int64","optional":false,"field":"id"},` +
	`{"type":"int32","optional":false,"field":"customer_id"},` +
	`{"type":"string","optional":false,"field":"order_no"},` +
	`{"type":"string","optional":false,"name":"io.debezium.data.Enum","version":1,"parameters":{"allowed":"new,paid,shipped,cancelled"},"field":"status"},` +
	`{"type":"int32","optional":false,"field":"quantity"},` +
	`{"type":"bytes","optional":false,"name":"org.apache.kafka.connect.data.Decimal","version":1,"parameters":{"scale":"2","connect.decimal.precision":"12"},"field":"total"},` +
	`{"type":"bytes","optional":true,"name":"org.apache.kafka.connect.data.Decimal","version":1,"parameters":{"scale":"2","connect.decimal.precision":"12"},"field":"discount"},` +
	`{"type":"boolean","optional":false,"field":"paid"},` +
	`{"type":"string","optional":true,"field":"note"},` +
	`{"type":"int64","optional":false,"name":"io.debezium.time.MicroTimestamp","version":1,"field":"created_at"},` +
	`{"type":"string","optional":true,"name":"io.debezium.time.ZonedTimestamp","version":1,"field":"updated_at"},` +
	`{"type":"int32","optional":true,"name":"io.debezium.time.Date","version":1,"field":"ship_date"},` +
	`{"type":"int64","optional":false,"field":"row_version"}]`

const orderEnvelopeSchema = `{"type":"struct","fields":[` +
	`{"type":"struct","fields":` + orderFields + `,"optional":true,"name":"shop.public.orders.Value","field":"before"},` +
	`{"type":"struct","fields":` + orderFields + `,"optional":true,"name":"shop.public.orders.Value","field":"after"},` +
	`{"type":"struct","fields":[{"type":"string","optional":false,"field":"version"},{"type":"string","optional":false,"field":"connector"},` +
	`{"type":"string","optional":false,"field":"name"},{"type":"int64","optional":false,"field":"ts_ms"},` +
	`{"type":"string","optional":true,"name":"io.debezium.data.Enum","version":1,"parameters":{"allowed":"true,last,false,incremental"},"default":"false","field":"snapshot"},` +
	`{"type":"string","optional":false,"field":"db"},{"type":"string","optional":true,"field":"sequence"},` +
	`{"type":"int64","optional":true,"field":"ts_us"},{"type":"int64","optional":true,"field":"ts_ns"},` +
	`{"type":"string","optional":false,"field":"schema"},{"type":"string","optional":false,"field":"table"},` +
	`{"type":"int64","optional":true,"field":"txId"},{"type":"int64","optional":true,"field":"lsn"},{"type":"int64","optional":true,"field":"xmin"}],` +
	`"optional":false,"name":"io.debezium.connector.postgresql.Source","field":"source"},` +
	`{"type":"string","optional":false,"field":"op"},{"type":"int64","optional":true,"field":"ts_ms"},` +
	`{"type":"int64","optional":true,"field":"ts_us"},{"type":"int64","optional":true,"field":"ts_ns"},` +
	`{"type":"struct","fields":[{"type":"string","optional":false,"field":"id"},{"type":"int64","optional":false,"field":"total_order"},` +
	`{"type":"int64","optional":false,"field":"data_collection_order"}],"optional":true,"name":"event.block","version":1,"field":"transaction"}],` +
	`"optional":false,"name":"shop.public.orders.Envelope","version":2}`

// orderPayload is a create event of the orders table.
func orderPayload(id int) string {
	return fmt.Sprintf(`{"before":null,"after":{"id":%d,"customer_id":4711,"order_no":"SO-2026-%07d","status":"paid",`+
		`"quantity":3,"total":"BaY=","discount":null,"paid":true,"note":null,`+
		`"created_at":1764123331123456,"updated_at":"2026-11-26T02:16:02.654321Z","ship_date":20418,`+
		`"row_version":7},`+
		`"source":{"version":"2.7.3.Final","connector":"postgresql","name":"shop","ts_ms":1764123331123,"snapshot":"false",`+
		`"db":"shop","sequence":"[\"24023128\",\"24023184\"]","ts_us":1764123331123456,"ts_ns":1764123331123456000,`+
		`"schema":"public","table":"orders","txId":771,"lsn":24023184,"xmin":null},`+
		`"op":"c","ts_ms":1764123331456,"ts_us":1764123331456789,"ts_ns":1764123331456789000,"transaction":null}`, id, id)
}

// orderEvent is a Debezium create event of the orders table with its key,
// with the schema/payload wrappers (schemas.enable=true) or without.
func orderEvent(id int, withSchema bool) (key, value []byte) {
	if !withSchema {
		return fmt.Appendf(nil, `{"id":%d}`, id), []byte(orderPayload(id))
	}
	key = fmt.Appendf(nil, `{"schema":{"type":"struct","fields":[{"type":"int64","optional":false,"field":"id"}],`+
		`"optional":false,"name":"shop.public.orders.Key"},"payload":{"id":%d}}`, id)
	return key, []byte(`{"schema":` + orderEnvelopeSchema + `,"payload":` + orderPayload(id) + `}`)
}

// BenchmarkDebezium: a create event of a 13-column table, with its schema
// (~4.7 KB) and without (~0.7 KB), decoded by the encoding/json path the
// hand-written one replaced and by the hand-written one. Compare the two
// within one run.
func BenchmarkDebezium(b *testing.B) {
	for _, withSchema := range []bool{true, false} {
		key, value := orderEvent(1234567, withSchema)
		r := &exactly.Record{Topic: "shop.public.orders", Key: key, Value: value}
		d := NewDebezium(&exactly.TableRule{Key: []string{"id"}, Version: "source_lsn"})
		name := map[bool]string{true: "schema", false: "schemaless"}[withSchema]
		for _, bm := range []struct {
			name   string
			decode func(*exactly.Record) (exactly.Change, error)
		}{
			{"encoding_json", func(r *exactly.Record) (exactly.Change, error) { return refDecode(d, r) }},
			{"hand_written", d.Decode},
		} {
			b.Run(name+"/"+bm.name, func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(r.Key) + len(r.Value)))
				for b.Loop() {
					if _, err := bm.decode(r); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkDebeziumTopicsInTurn: create events of two tables (two schemas)
// decoded in turn by one decoder, as flights decoding different topics at
// once do: each topic keeps its last schema, so neither record reads its
// schema again.
func BenchmarkDebeziumTopicsInTurn(b *testing.B) {
	d := NewDebezium(&exactly.TableRule{Key: []string{"id"}, Version: "source_lsn"})
	var recs []*exactly.Record
	for _, table := range []string{"orders", "orders_archive"} {
		key, value := orderEvent(1234567, true)
		value = []byte(strings.ReplaceAll(string(value), "shop.public.orders.", "shop.public."+table+"."))
		recs = append(recs, &exactly.Record{Topic: "shop.public." + table, Key: key, Value: value})
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := d.Decode(recs[i%2]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
