package exactly

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// benchDecoder is a minimal JSON decoder (the real ones live in
// internal/decode, which imports this package): it lets the benchmarks
// below measure prepare and plan, not decoding.
// With a version column, the change's version is that field.
type benchDecoder struct{ version string }

func (d benchDecoder) Decode(r *Record) (Change, error) {
	var m map[string]any
	if err := json.Unmarshal(r.Value, &m); err != nil {
		return Change{}, err
	}
	m["id"] = int64(m["id"].(float64))
	ch := Change{Op: OpUpsert, Row: m}
	if d.version != "" {
		m[d.version] = int64(m[d.version].(float64))
		ch.Version = m[d.version]
	}
	return ch, nil
}

func benchBatch(n int) (*Sink, *PartitionBatch, map[string]*Table) {
	return benchBatchRule(n, "key: [id]")
}

// benchBatchRule is benchBatch with the table rule's settings given (a
// version column must be amount).
func benchBatchRule(n int, rule string) (*Sink, *PartitionBatch, map[string]*Table) {
	cfg, err := ParseConfig(strings.NewReader(`pipeline: p
source: {brokers: [127.0.0.1:1]}
sink: {driver: sqlite, dsn: x.db}
tables:
  - {topics: '^t\.(.*)$', table: '$1', `+rule+`}
`), "bench.yaml")
	if err != nil {
		panic(err)
	}
	dec := benchDecoder{version: cfg.Tables[0].Version}
	s := &Sink{cfg: cfg, decode: func(*TableRule) (Decoder, error) { return dec, nil },
		tables: map[string]*Table{}, decs: map[*TableRule]Decoder{}}
	b := &PartitionBatch{Topic: "t.items"}
	pad := strings.Repeat("p", 150)
	for i := 0; i < n; i++ {
		id := i % (n * 9 / 10) // one in ten supersedes an earlier change
		b.Records = append(b.Records, &Record{Topic: "t.items", Offset: int64(i), Key: []byte(strconv.Itoa(id)),
			Value: []byte(fmt.Sprintf(`{"id":%d,"name":"name-%d","amount":%d,"payload":"%s"}`, id, id, i, pad))})
	}
	t := &Table{Name: "items", Key: []string{"id"}, Columns: []Column{{Name: "id", Type: "bigint"},
		{Name: "name", Type: "text"}, {Name: "amount", Type: "bigint"}, {Name: "payload", Type: "text"}}}
	return s, b, map[string]*Table{"items": t}
}

// BenchmarkPrepare: routing, decoding (minimal decoder), range and hash
// of a 1,000-record batch.
func BenchmarkPrepare(b *testing.B) {
	s, batch, _ := benchBatch(1000)
	recs := batch.Records
	b.ReportAllocs()
	for b.Loop() {
		batch.Records = recs
		if err := s.prepare(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(recs)*b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkPlan: collapsing a 1,000-record batch to one write per key;
// versioned: under a version guard, every record carrying a version.
func BenchmarkPlan(b *testing.B) {
	benchPlan(b, "key: [id]")
}

func BenchmarkPlanVersioned(b *testing.B) {
	benchPlan(b, "key: [id], version: amount")
}

func benchPlan(b *testing.B, rule string) {
	s, batch, tables := benchBatchRule(1000, rule)
	if err := s.prepare(context.Background(), batch); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.plan(context.Background(), nil, []*PartitionBatch{batch}, tables); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(batch.Records)*b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkHashRecords: the ledger's range digest over 1,000 records of
// ~200 bytes.
func BenchmarkHashRecords(b *testing.B) {
	_, batch, _ := benchBatch(1000)
	b.ReportAllocs()
	b.SetBytes(int64(len(batch.Records) * 200))
	for b.Loop() {
		HashRecords(batch.Records)
	}
}

// BenchmarkKeyID: the collapse identity of a one-column integer key.
func BenchmarkKeyID(b *testing.B) {
	vals := []any{int64(1234567)}
	b.ReportAllocs()
	for b.Loop() {
		classOf([]KeyClassFunc{plainClass}, vals)
	}
}

// BenchmarkHashRecordsDebezium: the range digest over 1,000 records of
// ~2.4 KB, a Debezium envelope with its schema, where the digest is a third
// of the pipeline's CPU.
func BenchmarkHashRecordsDebezium(b *testing.B) {
	value := []byte(`{"schema":` + strings.Repeat(`{"type":"int64","optional":false,"field":"x"},`, 50) + `"payload":{}}`)
	recs := make([]*Record, 1000)
	for i := range recs {
		recs[i] = &Record{Topic: "bench.public.t", Offset: int64(i), Key: []byte(strconv.Itoa(i)), Value: value}
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(recs) * len(value)))
	for b.Loop() {
		HashRecords(recs)
	}
}
