package bench

import (
	"fmt"
	"strconv"
)

// Record formats the bench produces: the rows as plain JSON objects, or
// wrapped in Debezium create events as the JSON converter writes them with
// schemas.enable=true (a schema/payload wrapper around the value and the
// key). The rows, and so the tables and the baseline, are the same.
const (
	FormatJSON     = "json"
	FormatDebezium = "debezium"
)

// benchKeySchema and benchEnvelopeSchema are the Connect schemas of the
// bench table as Debezium's PostgreSQL connector writes them.
const (
	benchKeySchema = `{"type":"struct","fields":[{"type":"int64","optional":false,"field":"id"}],"optional":false,"name":"bench.public.t.Key"}`

	benchRowFields = `[{"type":"int64","optional":false,"field":"id"},{"type":"string","optional":false,"field":"name"},` +
		`{"type":"int64","optional":true,"field":"amount"},{"type":"string","optional":true,"field":"payload"}]`

	benchEnvelopeSchema = `{"type":"struct","fields":[` +
		`{"type":"struct","fields":` + benchRowFields + `,"optional":true,"name":"bench.public.t.Value","field":"before"},` +
		`{"type":"struct","fields":` + benchRowFields + `,"optional":true,"name":"bench.public.t.Value","field":"after"},` +
		`{"type":"struct","fields":[{"type":"string","optional":false,"field":"version"},{"type":"string","optional":false,"field":"connector"},` +
		`{"type":"string","optional":false,"field":"name"},{"type":"int64","optional":false,"field":"ts_ms"},` +
		`{"type":"string","optional":true,"name":"io.debezium.data.Enum","version":1,"parameters":{"allowed":"true,last,false,incremental"},"default":"false","field":"snapshot"},` +
		`{"type":"string","optional":false,"field":"db"},{"type":"string","optional":true,"field":"sequence"},` +
		`{"type":"string","optional":false,"field":"schema"},{"type":"string","optional":false,"field":"table"},` +
		`{"type":"int64","optional":true,"field":"txId"},{"type":"int64","optional":true,"field":"lsn"},{"type":"int64","optional":true,"field":"xmin"}],` +
		`"optional":false,"name":"io.debezium.connector.postgresql.Source","field":"source"},` +
		`{"type":"string","optional":false,"field":"op"},{"type":"int64","optional":true,"field":"ts_ms"},` +
		`{"type":"struct","fields":[{"type":"string","optional":false,"field":"id"},{"type":"int64","optional":false,"field":"total_order"},` +
		`{"type":"int64","optional":false,"field":"data_collection_order"}],"optional":true,"name":"event.block","version":1,"field":"transaction"}],` +
		`"optional":false,"name":"bench.public.t.Envelope","version":1}`
)

// encoder returns how records are written in format: the record key and
// value of a row.
func encoder(format string) (func(r row) (key, value []byte), error) {
	switch format {
	case FormatJSON, "":
		return func(r row) ([]byte, []byte) { return strconv.AppendInt(nil, r.id, 10), r.json() }, nil
	case FormatDebezium:
		return row.debezium, nil
	}
	return nil, fmt.Errorf("format %q: expected %s or %s", format, FormatJSON, FormatDebezium)
}

// debezium writes the row as Debezium's create event of it, keyed by its
// id; its log position (lsn) is the id.
func (r row) debezium() (key, value []byte) {
	key = make([]byte, 0, len(benchKeySchema)+40)
	key = append(key, `{"schema":`+benchKeySchema+`,"payload":{"id":`...)
	key = strconv.AppendInt(key, r.id, 10)
	key = append(key, `}}`...)

	after := r.json()
	value = make([]byte, 0, len(benchEnvelopeSchema)+len(after)+400)
	value = append(value, `{"schema":`+benchEnvelopeSchema+`,"payload":{"before":null,"after":`...)
	value = append(value, after...)
	value = append(value, `,"source":{"version":"2.7.3.Final","connector":"postgresql","name":"bench","ts_ms":1764123331123,`+
		`"snapshot":"false","db":"bench","sequence":null,"schema":"public","table":"t","txId":771,"lsn":`...)
	value = strconv.AppendInt(value, r.id, 10)
	value = append(value, `,"xmin":null},"op":"c","ts_ms":1764123331456,"transaction":null}}`...)
	return key, value
}

// Record is the key and value bench produces for record i in format, its
// row's JSON about recordBytes long: the Go benchmarks of the record path
// (BenchmarkRecordPath in the root package) decode what bench produces.
func Record(format string, i int64, recordBytes int) (key, value []byte, err error) {
	enc, err := encoder(format)
	if err != nil {
		return nil, nil, err
	}
	key, value = enc(makeRow(i, recordBytes))
	return key, value, nil
}
