package exactly_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"

	"github.com/hamba/avro/v2"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/bench"
	"github.com/exactly/exactly/internal/decode"
	"github.com/exactly/exactly/internal/sink/postgres"
)

// recordPathRows is the batch of BenchmarkRecordPath: one in ten records
// changes a key an earlier record of the batch changed, so the collapse
// has work to do, as in a CDC stream.
const recordPathRows = 1000

// BenchmarkRecordPath: the pipeline's own work per record of each format,
// from the record's bytes to the bytes PostgreSQL is sent: route, decode,
// range hash, collapse by key, row assembly, and the rows encoded as the
// PostgreSQL sink COPYs them into its staging table. No database and no
// Kafka: what `exactly bench` measures minus both. Reports ns/record,
// cpu-ns/record (user and system CPU of the whole process over the loop,
// so the garbage collector's work on other cores counts too) and
// allocs/record (divide allocs/op by 1000).
func BenchmarkRecordPath(b *testing.B) {
	for _, format := range []string{"json", "debezium", "debezium_schemaless", "avro"} {
		b.Run(format, func(b *testing.B) {
			cfg, recs := recordPathInput(b, format)
			table := &exactly.Table{Name: "items", Key: []string{"id"}, Columns: []exactly.Column{{Name: "id", Type: "bigint"},
				{Name: "name", Type: "text"}, {Name: "amount", Type: "bigint"}, {Name: "payload", Type: "text"}}}
			tables := map[string]*exactly.Table{"items": table}
			newDecoder := decode.For(cfg)
			d := &postgres.Dialect{}
			batch := &exactly.PartitionBatch{Topic: "t.items"}
			ctx := context.Background()
			var bytes int
			for _, r := range recs {
				bytes += len(r.Key) + len(r.Value)
			}
			b.ReportAllocs()
			b.SetBytes(int64(bytes))
			runtime.GC()
			cpu0 := processCPU()
			for b.Loop() {
				batch.Records = recs
				writes, err := exactly.PlanForBench(ctx, cfg, d, newDecoder, tables, []*exactly.PartitionBatch{batch})
				rows, encoded := 0, 0
				for _, w := range writes {
					rows += len(w.Upserts) + len(w.Deletes)
					if err := postgres.CopyData(w, func(data []byte) error { encoded += len(data); return nil }); err != nil {
						b.Fatal(err)
					}
				}
				if err != nil || len(batch.DeadLetters) > 0 || rows != recordPathRows*9/10 || encoded < rows*recordPathMinRow {
					b.Fatalf("%d rows (%d bytes encoded), %d dead letters (%v), err %v", rows, encoded, len(batch.DeadLetters), batch.DeadLetters, err)
				}
			}
			cpu := processCPU() - cpu0
			n := float64(b.N * len(recs))
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/record")
			if cpu > 0 {
				b.ReportMetric(float64(cpu.Nanoseconds())/n, "cpu-ns/record")
			}
		})
	}
}

// recordPathMinRow is less than the COPY encoding of any row of the
// benchmark (~200-byte records): a check that the rows were encoded.
const recordPathMinRow = 100

// recordPathInput is the configuration and the records of format: the
// rows exactly bench produces (~200-byte JSON), the Debezium envelope
// with or without its Connect schema, or Avro through a schema registry.
func recordPathInput(b *testing.B, format string) (*exactly.Config, []*exactly.Record) {
	yaml := "pipeline: p\nsource: {brokers: [127.0.0.1:1]}\nsink: {driver: sqlite, dsn: x.db}\ntables:\n"
	rule := "  - {topics: '^t\\.(.*)$', table: '$1', key: [id], format: %s}\n"
	var encode func(i int64) (key, value []byte)
	switch format {
	case "json", "debezium":
		yaml += fmt.Sprintf(rule, format)
		encode = func(i int64) ([]byte, []byte) {
			k, v, err := bench.Record(format, i, 200)
			if err != nil {
				b.Fatal(err)
			}
			return k, v
		}
	case "debezium_schemaless":
		yaml += fmt.Sprintf(rule, "debezium")
		encode = func(i int64) ([]byte, []byte) {
			_, v, err := bench.Record("debezium", i, 200)
			if err != nil {
				b.Fatal(err)
			}
			// The payload alone, as the JSON converter writes it with
			// schemas.enable=false.
			var env struct{ Payload json.RawMessage }
			if err := json.Unmarshal(v, &env); err != nil {
				b.Fatal(err)
			}
			return fmt.Appendf(nil, `{"id":%d}`, i), env.Payload
		}
	case "avro":
		url, frame := avroRegistry(b)
		yaml = strings.Replace(yaml, "[127.0.0.1:1]}", "[127.0.0.1:1], schema_registry: {url: '"+url+"'}}", 1) + fmt.Sprintf(rule, "avro")
		encode = frame
	}
	cfg, err := exactly.ParseConfig(strings.NewReader(yaml), "bench.yaml")
	if err != nil {
		b.Fatal(err)
	}
	recs := make([]*exactly.Record, recordPathRows)
	for i := range recs {
		id := int64(i % (recordPathRows * 9 / 10))
		k, v := encode(id)
		recs[i] = &exactly.Record{Topic: "t.items", Partition: 0, Offset: int64(i), Key: k, Value: v}
	}
	return cfg, recs
}

// avroRegistry serves the bench row's Avro schema as a Confluent schema
// registry does and returns how a row is framed in it (magic byte, schema
// id, binary datum).
func avroRegistry(b *testing.B) (url string, frame func(i int64) (key, value []byte)) {
	const schema = `{"type":"record","name":"Value","namespace":"bench.public.t","fields":[` +
		`{"name":"id","type":"long"},{"name":"name","type":"string"},` +
		`{"name":"amount","type":["null","long"],"default":null},{"name":"payload","type":["null","string"],"default":null}]}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/vnd.schemaregistry.v1+json")
		if r.URL.Path != "/schemas/ids/1" {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"error_code":40403,"message":"Schema not found"}`)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"schema": schema})
	}))
	b.Cleanup(srv.Close)
	s := avro.MustParse(schema)
	return srv.URL, func(i int64) ([]byte, []byte) {
		_, v, err := bench.Record("json", i, 200)
		if err != nil {
			b.Fatal(err)
		}
		var row struct {
			ID      int64   `avro:"id" json:"id"`
			Name    string  `avro:"name" json:"name"`
			Amount  *int64  `avro:"amount" json:"amount"`
			Payload *string `avro:"payload" json:"payload"`
		}
		if err := json.Unmarshal(v, &row); err != nil {
			b.Fatal(err)
		}
		datum, err := avro.Marshal(s, row)
		if err != nil {
			b.Fatal(err)
		}
		out := binary.BigEndian.AppendUint32([]byte{0}, 1)
		return fmt.Appendf(nil, "%d", i), append(out, datum...)
	}
}
