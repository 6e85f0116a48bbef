package decode

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hamba/avro/v2"

	"github.com/exactly/exactly"
)

// registry is a schema registry served by the test over HTTP on loopback:
// GET /schemas/ids/N as the Confluent REST API answers it.
type registry struct {
	*httptest.Server
	mu      sync.Mutex
	schemas map[int]string
	hits    atomic.Int64
	down    atomic.Bool
}

func newRegistry(t testing.TB) *registry {
	g := &registry{schemas: map[int]string{}}
	g.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.hits.Add(1)
		w.Header().Set("Content-Type", "application/vnd.schemaregistry.v1+json")
		if g.down.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, `{"error_code":50003,"message":"backend unavailable"}`)
			return
		}
		idText, ok := strings.CutPrefix(r.URL.Path, "/schemas/ids/")
		id, err := strconv.Atoi(idText)
		g.mu.Lock()
		s, known := g.schemas[id]
		g.mu.Unlock()
		if !ok || err != nil || !known {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprintf(w, `{"error_code":40403,"message":"Schema %s not found"}`, idText)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"schema": s})
	}))
	t.Cleanup(g.Close)
	return g
}

func (g *registry) add(id int, schema string) avro.Schema {
	g.mu.Lock()
	g.schemas[id] = schema
	g.mu.Unlock()
	// A cache per schema, like the decoder: versions share record names.
	s, err := avro.ParseWithCache(schema, "", &avro.SchemaCache{})
	if err != nil {
		panic(err)
	}
	return s
}

// confluent frames an Avro datum: magic byte 0, schema id, binary.
func confluent(t testing.TB, id int, s avro.Schema, v any) []byte {
	t.Helper()
	// A fresh config: hamba's shared codec cache may hand a schema's
	// older version (same record names) the encoder of the other.
	b, err := avro.Config{}.Freeze().Marshal(s, v)
	if err != nil {
		t.Fatal(err)
	}
	out := []byte{0, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(out[1:], uint32(id))
	return append(out, b...)
}

// Debezium's Avro converter output for a PostgreSQL table, as its
// schemas look in the registry (connect.name on logical types).
const (
	dbzKeySchema = `{"type":"record","name":"Key","namespace":"dbserver1.inventory.customers","fields":[{"name":"id","type":"int"}],"connect.name":"dbserver1.inventory.customers.Key"}`
	dbzRowFields = `{"name":"id","type":"int"},
		{"name":"name","type":"string"},
		{"name":"price","type":["null",{"type":"bytes","scale":2,"precision":10,"connect.version":1,"connect.parameters":{"scale":"2","connect.decimal.precision":"10"},"connect.name":"org.apache.kafka.connect.data.Decimal","logicalType":"decimal"}],"default":null},
		{"name":"born","type":["null",{"type":"int","connect.version":1,"connect.name":"io.debezium.time.Date"}],"default":null},
		{"name":"created","type":["null",{"type":"long","connect.version":1,"connect.name":"io.debezium.time.MicroTimestamp"}],"default":null},
		{"name":"updated","type":["null",{"type":"string","connect.version":1,"connect.name":"io.debezium.time.ZonedTimestamp"}],"default":null},
		{"name":"active","type":["null","boolean"],"default":null},
		{"name":"note","type":["null","string"],"default":null}`
	dbzEnvelope = `{"type":"record","name":"Envelope","namespace":"dbserver1.inventory.customers","fields":[
		{"name":"before","type":["null",{"type":"record","name":"Value","fields":[%s],"connect.name":"dbserver1.inventory.customers.Value"}],"default":null},
		{"name":"after","type":["null","Value"],"default":null},
		{"name":"source","type":{"type":"record","name":"Source","namespace":"io.debezium.connector.postgresql","fields":[
			{"name":"version","type":"string"},{"name":"connector","type":"string"},{"name":"name","type":"string"},
			{"name":"ts_ms","type":"long"},{"name":"db","type":"string"},{"name":"schema","type":"string"},{"name":"table","type":"string"},
			{"name":"txId","type":["null","long"],"default":null},{"name":"lsn","type":["null","long"],"default":null}],
			"connect.name":"io.debezium.connector.postgresql.Source"}},
		{"name":"op","type":"string"},
		{"name":"ts_ms","type":["null","long"],"default":null}],
		"connect.name":"dbserver1.inventory.customers.Envelope"}`
)

func dbzSource(lsn int64) map[string]any {
	return map[string]any{"version": "2.7.0.Final", "connector": "postgresql", "name": "dbserver1", "ts_ms": int64(1700000000000),
		"db": "postgres", "schema": "inventory", "table": "customers", "txId": int64(771), "lsn": lsn}
}

// val wraps a row for the nullable before/after unions, as hamba's
// generic encoder wants a union record: {full name: value}.
func val(m map[string]any) any {
	if m == nil {
		return nil
	}
	return map[string]any{"dbserver1.inventory.customers.Value": m}
}

func dbzRow(id int, name string) map[string]any {
	return map[string]any{"id": id, "name": name, "price": big.NewRat(12345, 100), "born": 19000,
		"created": int64(1700000000123456), "updated": "2023-11-14T22:13:20.5+01:00", "active": true, "note": nil}
}

func avroCDC(t testing.TB, g *registry, version string) *Avro {
	reg, err := NewRegistry(exactly.SchemaRegistryConfig{URL: g.URL})
	if err != nil {
		t.Fatal(err)
	}
	return NewAvro(&exactly.TableRule{Key: []string{"id"}, Mode: "cdc", Version: version}, reg)
}

func TestAvroDebeziumEnvelope(t *testing.T) {
	g := newRegistry(t)
	key := g.add(1, dbzKeySchema)
	env := g.add(2, fmt.Sprintf(dbzEnvelope, dbzRowFields))
	d := avroCDC(t, g, "source_lsn")
	rec := func(off int64, id int, v map[string]any) *exactly.Record {
		r := &exactly.Record{Topic: "dbserver1.inventory.customers", Partition: 0, Offset: off,
			Key: confluent(t, 1, key, map[string]any{"id": id})}
		if v != nil {
			r.Value = confluent(t, 2, env, v)
		}
		return r
	}
	ada := dbzRow(1, "Ada")
	recs := []*exactly.Record{
		rec(0, 1, map[string]any{"before": nil, "after": val(ada), "source": dbzSource(100), "op": "r", "ts_ms": int64(1700000000123)}),
		rec(1, 1, map[string]any{"before": val(ada), "after": val(map[string]any{"id": 1, "name": "Ada L.", "price": big.NewRat(-150, 100), "born": nil,
			"created": nil, "updated": nil, "active": false, "note": "n"}), "source": dbzSource(300), "op": "u", "ts_ms": int64(1700000000124)}),
		rec(2, 1, map[string]any{"before": val(ada), "after": nil, "source": dbzSource(400), "op": "d", "ts_ms": int64(1700000000125)}),
		rec(3, 1, nil),
	}
	if err := d.Prepare(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	hits := g.hits.Load()
	want := []exactly.Change{
		{Op: exactly.OpUpsert, Key: map[string]any{"id": int64(1)}, Version: int64(100), Row: map[string]any{
			"id": int64(1), "name": "Ada", "price": exactly.Decimal("123.45"), "born": time.Date(2022, 1, 8, 0, 0, 0, 0, time.UTC),
			"created": time.Date(2023, 11, 14, 22, 13, 20, 123456000, time.UTC), "updated": time.Date(2023, 11, 14, 21, 13, 20, 500000000, time.UTC),
			"active": true, "note": nil, "source_lsn": int64(100)}},
		{Op: exactly.OpUpsert, Key: map[string]any{"id": int64(1)}, Version: int64(300), Row: map[string]any{
			"id": int64(1), "name": "Ada L.", "price": exactly.Decimal("-1.50"), "born": nil, "created": nil, "updated": nil,
			"active": false, "note": "n", "source_lsn": int64(300)}},
		{Op: exactly.OpDelete, Version: int64(400), Key: map[string]any{
			"id": int64(1), "name": "Ada", "price": exactly.Decimal("123.45"), "born": time.Date(2022, 1, 8, 0, 0, 0, 0, time.UTC),
			"created": time.Date(2023, 11, 14, 22, 13, 20, 123456000, time.UTC), "updated": time.Date(2023, 11, 14, 21, 13, 20, 500000000, time.UTC),
			"active": true, "note": nil}},
		// The tombstone deletes by the record key, without a version (issue
		// 15.7: it was skipped; after compaction it is all that is left).
		{Op: exactly.OpDelete, Key: map[string]any{"id": int64(1)}},
	}
	for i, r := range recs {
		got, err := d.Decode(r)
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if !equalChange(got, want[i]) {
			t.Errorf("record %d:\n got %#v\nwant %#v", i, got, want[i])
		}
	}
	if g.hits.Load() != hits {
		t.Errorf("Decode asked the registry again (%d requests after Prepare's %d): schemas must be cached", g.hits.Load(), hits)
	}
	ch, _ := d.Decode(recs[0])
	var fields []string
	for _, f := range ch.Schema {
		fields = append(fields, fmt.Sprintf("%s:%s:%v", f.Name, f.Type, f.Nullable))
	}
	if got, want := strings.Join(fields, " "), "id:int32:false name:text:false price:decimal(10,2):true born:date:true "+
		"created:timestamp:true updated:timestamptz:true active:bool:true note:text:true source_lsn:int64:true"; got != want {
		t.Errorf("schema:\n got %s\nwant %s", got, want)
	}
}

// A column added upstream is a new schema id whose record has the same
// full name as the old one; both must keep decoding.
func TestAvroSchemaEvolutionAddsANullableColumn(t *testing.T) {
	g := newRegistry(t)
	key := g.add(1, dbzKeySchema)
	v1 := g.add(2, fmt.Sprintf(dbzEnvelope, dbzRowFields))
	v2 := g.add(3, fmt.Sprintf(dbzEnvelope, dbzRowFields+`,{"name":"email","type":["null","string"],"default":null}`))
	d := avroCDC(t, g, "")
	a := &exactly.Record{Key: confluent(t, 1, key, map[string]any{"id": 1}),
		Value: confluent(t, 2, v1, map[string]any{"after": val(dbzRow(1, "Ada")), "source": dbzSource(1), "op": "c"})}
	row2 := dbzRow(2, "Bob")
	row2["email"] = "bob@example.com"
	b := &exactly.Record{Key: confluent(t, 1, key, map[string]any{"id": 2}),
		Value: confluent(t, 3, v2, map[string]any{"after": val(row2), "source": dbzSource(2), "op": "c"})}
	if err := d.Prepare(context.Background(), []*exactly.Record{a, b}); err != nil {
		t.Fatal(err)
	}
	ca, err := d.Decode(a)
	if err != nil {
		t.Fatal(err)
	}
	cb, err := d.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ca.Row["email"]; ok || cb.Row["email"] != "bob@example.com" {
		t.Errorf("rows: %v / %v", ca.Row, cb.Row)
	}
}

func TestAvroPlainRecordsUpsertAndTombstonesDelete(t *testing.T) {
	g := newRegistry(t)
	s := g.add(7, `{"type":"record","name":"item","fields":[{"name":"id","type":"long"},{"name":"name","type":"string"},
		{"name":"price","type":{"type":"bytes","logicalType":"decimal","precision":9,"scale":3}},
		{"name":"at","type":{"type":"long","logicalType":"timestamp-millis"}},
		{"name":"day","type":{"type":"int","logicalType":"date"}},
		{"name":"tags","type":{"type":"array","items":"string"}},
		{"name":"kind","type":{"type":"enum","name":"kind","symbols":["A","B"]}}]}`)
	reg, err := NewRegistry(exactly.SchemaRegistryConfig{URL: g.URL})
	if err != nil {
		t.Fatal(err)
	}
	d := NewAvro(&exactly.TableRule{Key: []string{"id"}, Mode: "upsert"}, reg)
	at := time.Date(2024, 5, 6, 7, 8, 9, 10e6, time.UTC)
	r := &exactly.Record{Key: []byte("5"), Value: confluent(t, 7, s, map[string]any{"id": int64(5), "name": "x",
		"price": big.NewRat(-1, 1000), "at": at, "day": time.Date(2024, 5, 6, 0, 0, 0, 0, time.UTC), "tags": []any{"a", "b"}, "kind": "B"})}
	ch, err := d.Decode(r) // no Prepare: fetched on demand
	if err != nil {
		t.Fatal(err)
	}
	want := exactly.Change{Op: exactly.OpUpsert, Row: map[string]any{"id": int64(5), "name": "x", "price": exactly.Decimal("-0.001"),
		"at": at, "day": time.Date(2024, 5, 6, 0, 0, 0, 0, time.UTC), "tags": exactly.JSON(`["a","b"]`), "kind": "B"}}
	if !equalChange(ch, want) {
		t.Errorf("got  %#v\nwant %#v", ch, want)
	}
	ch, err = d.Decode(&exactly.Record{Key: []byte(`{"id":5}`)})
	if err != nil || ch.Op != exactly.OpDelete || ch.Key["id"] != int64(5) {
		t.Errorf("tombstone: got %+v %v", ch, err)
	}
}

func TestAvroRegistryFailuresAndBadRecords(t *testing.T) {
	g := newRegistry(t)
	s := g.add(1, `{"type":"record","name":"r","fields":[{"name":"id","type":"long"}]}`)
	d := avroCDC(t, g, "")
	d.mode = "upsert"
	d.reg.notFoundFor = 0 // a 404 makes dead letters at once here; TestAvroRegistry404IsRetriedForABoundedTime tests the wait
	good := &exactly.Record{Topic: "t", Partition: 1, Offset: 9, Value: confluent(t, 1, s, map[string]any{"id": int64(1)})}
	unknown := &exactly.Record{Topic: "t", Partition: 1, Offset: 10, Value: []byte{0, 0, 0, 0, 42, 2}}

	// Registry down: Prepare fails (the batch is retried), nothing is
	// remembered as bad.
	g.down.Store(true)
	if err := d.Prepare(context.Background(), []*exactly.Record{good}); err == nil || !strings.Contains(err.Error(), "fetching schema id 1") {
		t.Fatalf("registry down: got %v, want a fetch error", err)
	}
	g.down.Store(false)
	if err := d.Prepare(context.Background(), []*exactly.Record{good, unknown}); err != nil {
		t.Fatalf("registry back: %v", err)
	}
	if _, err := d.Decode(good); err != nil {
		t.Fatal(err)
	}
	// An id the registry does not know is the record's fault: a dead letter.
	for _, c := range []struct {
		r    *exactly.Record
		want string
	}{
		{unknown, "schema id 42 is not in the schema registry"},
		{&exactly.Record{Topic: "t", Partition: 1, Offset: 11, Value: []byte(`{"id":1}`)}, "not Confluent Avro"},
		{&exactly.Record{Topic: "t", Partition: 1, Offset: 12, Value: []byte{0, 0, 0, 0, 1}}, "decoding Avro"},
		{&exactly.Record{Topic: "t", Partition: 1, Offset: 13, Value: append(confluent(t, 1, s, map[string]any{"id": int64(1)}), 0)}, "trailing"},
	} {
		_, err := d.Decode(c.r)
		var re *exactly.RecordError
		if !errors.As(err, &re) || re.Offset != c.r.Offset || !strings.Contains(err.Error(), c.want) {
			t.Errorf("offset %d: got %v, want a RecordError containing %q", c.r.Offset, err, c.want)
		}
	}
}

// TestAvroRegistry404IsRetriedForABoundedTime pins issue 15.9: one 404
// from the registry (a replica behind its leader, a registry restored from
// a backup) was remembered for the life of the process, and every later
// record with that schema id became a dead letter. A 404 now fails the
// batch (retried) until the id has been missing for retry_not_found; only
// then are its records dead letters, and the registry is asked again on
// every later batch, so a schema that appears is read.
func TestAvroRegistry404IsRetriedForABoundedTime(t *testing.T) {
	g := newRegistry(t)
	const wait = 2 * time.Second
	reg, err := NewRegistry(exactly.SchemaRegistryConfig{URL: g.URL, RetryNotFound: exactly.Duration(wait)})
	if err != nil {
		t.Fatal(err)
	}
	d := NewAvro(&exactly.TableRule{Key: []string{"id"}, Mode: "upsert"}, reg)
	schema := `{"type":"record","name":"r","fields":[{"name":"id","type":"long"}]}`
	s, _ := avro.ParseWithCache(schema, "", &avro.SchemaCache{})
	rec := func(id int, off int64) *exactly.Record {
		return &exactly.Record{Topic: "t", Partition: 0, Offset: off, Value: confluent(t, id, s, map[string]any{"id": off})}
	}
	ctx := context.Background()

	// Id 5 registered late (the producer's registry was ahead of ours):
	// the batch fails until it appears, then decodes.
	var nf *NotFoundError
	if err := d.Prepare(ctx, []*exactly.Record{rec(5, 1)}); !errors.As(err, &nf) || nf.ID != 5 {
		t.Fatalf("first 404: got %v, want a NotFoundError for id 5 (the batch is retried)", err)
	}
	g.add(5, schema)
	if err := d.Prepare(ctx, []*exactly.Record{rec(5, 1)}); err != nil {
		t.Fatalf("id 5 registered: %v", err)
	}
	if ch, err := d.Decode(rec(5, 1)); err != nil || ch.Row["id"] != int64(1) {
		t.Fatalf("id 5 after it appeared: %+v %v, want the row (not a dead letter)", ch, err)
	}

	// Id 6 stays missing: the batch fails for retry_not_found, then its
	// records are dead letters naming the id.
	began := time.Now()
	for time.Since(began) < wait/2 {
		if err := d.Prepare(ctx, []*exactly.Record{rec(6, 2)}); !errors.As(err, &nf) || nf.ID != 6 {
			t.Fatalf("404 within retry_not_found: got %v, want a NotFoundError for id 6", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Until(began.Add(wait + 100*time.Millisecond)))
	if err := d.Prepare(ctx, []*exactly.Record{rec(6, 2)}); err != nil {
		t.Fatalf("404 after retry_not_found: got %v, want the batch to go on (the record is a dead letter)", err)
	}
	var re *exactly.RecordError
	if _, err := d.Decode(rec(6, 2)); !errors.As(err, &re) || re.Offset != 2 || !strings.Contains(err.Error(), "schema id 6 is not in the schema registry") {
		t.Fatalf("id 6 after retry_not_found: got %v, want a RecordError (dead letter) naming schema id 6", err)
	}
	// It is not remembered for the life of the process: once registered,
	// the next batch reads it.
	g.add(6, schema)
	if err := d.Prepare(ctx, []*exactly.Record{rec(6, 3)}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Decode(rec(6, 3)); err != nil {
		t.Fatalf("id 6 registered after its dead letters: %v, want the row", err)
	}
	// A registry that cannot answer (5xx) is never the record's fault.
	g.down.Store(true)
	if err := d.Prepare(ctx, []*exactly.Record{rec(7, 4)}); err == nil || errors.As(err, &nf) {
		t.Fatalf("registry down: got %v, want a fetch error", err)
	}
}

func mustRat(s string) *big.Rat {
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		panic(s)
	}
	return r
}

func avroTime() time.Time { return time.Date(2024, 1, 2, 3, 4, 5, 6000, time.UTC) }
func avroDay() time.Time  { return time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC) }
func avroTOD() time.Duration {
	return 13*time.Hour + 45*time.Minute + 30*time.Second + 123*time.Millisecond
}

func TestForBuildsAvroDecodersOnOneRegistry(t *testing.T) {
	cfg := &exactly.Config{}
	if _, err := For(cfg)(&exactly.TableRule{Format: "avro"}); err == nil || !strings.Contains(err.Error(), "source.schema_registry.url") {
		t.Errorf("avro without a registry: got %v", err)
	}
	cfg.Source.SchemaRegistry.URL = "http://127.0.0.1:1"
	f := For(cfg)
	a, err := f(&exactly.TableRule{Format: "avro", Mode: "cdc"})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := f(&exactly.TableRule{Format: "avro"})
	if a.(*Avro).reg != b.(*Avro).reg {
		t.Error("two avro rules got two registries: schemas would be fetched twice")
	}
	if d, err := f(&exactly.TableRule{Format: "debezium"}); err != nil || d == nil {
		t.Errorf("debezium through For: %v", err)
	}
}
