package kafka_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/decode"
	"github.com/exactly/exactly/internal/kafka"
	"github.com/exactly/exactly/internal/sink/postgres"
	"github.com/exactly/exactly/internal/testenv"
)

// TestFlightsComeDownToTheConnectionsARoleIsAllowed: PostgreSQL lets the
// pipeline's role have 3 connections (CONNECTION LIMIT 3), sink.max_conns
// is 8, and a backlog of 8 partitions keeps every flight busy. The flights
// past the third are refused ("too many connections for role"); the
// adaptive limit must come down to what the database takes, not fail a
// flight every wave all run (before: the limit stayed at 8, each refusal
// backed Run off, and the half-empty windows only ever stepped it up).
// Every record lands once either way.
func TestFlightsComeDownToTheConnectionsARoleIsAllowed(t *testing.T) {
	const (
		records    = 24000
		partitions = 8
		topic      = "refused.events"
	)
	admin := testenv.PostgresDSN(t)
	schema := testenv.PostgresSchema(t)
	name := schema[strings.LastIndex(schema, "=")+1:]
	role := "r" + name
	ctx := context.Background()
	c, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	for _, q := range []string{
		"CREATE ROLE " + role + " LOGIN CONNECTION LIMIT 3",
		"GRANT ALL ON SCHEMA " + name + " TO " + role,
		// A row takes a little while, so the flights overlap.
		"CREATE TABLE " + name + ".events (p INTEGER NOT NULL, o BIGINT NOT NULL, PRIMARY KEY (p, o))",
		"ALTER TABLE " + name + ".events OWNER TO " + role,
		"CREATE FUNCTION " + name + ".slow_row() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.0002); RETURN NEW; END $$",
		"CREATE TRIGGER slow BEFORE INSERT ON " + name + ".events FOR EACH ROW EXECUTE FUNCTION " + name + ".slow_row()",
	} {
		if _, err := c.Exec(ctx, q); err != nil {
			t.Fatal(q, err)
		}
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), admin)
		if err == nil {
			c.Exec(context.Background(), "DROP SCHEMA "+name+" CASCADE")
			c.Exec(context.Background(), "DROP ROLE "+role)
			c.Close(context.Background())
		}
	})
	cfgDSN := strings.Replace(schema, "://postgres@", "://"+role+"@", 1)
	if cfgDSN == schema {
		t.Fatalf("cannot put the role in the DSN %q", schema)
	}

	k, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	var recs []*kgo.Record
	for o := range records {
		p := int32(o % partitions)
		recs = append(recs, &kgo.Record{Topic: topic, Partition: p, Value: fmt.Appendf(nil, `{"p":%d,"o":%d}`, p, o)})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl.Close()

	cfg, err := exactly.ParseConfig(strings.NewReader(fmt.Sprintf(`pipeline: refused
source: {brokers: [%s], group: refused}
sink: {driver: postgres, dsn: '%s', max_conns: 8}
batch: {interval: 100ms, max_records: 4000}
tables:
  - {topics: '%s', table: events, mode: append}
`, strings.Join(k.ListenAddrs(), ", "), cfgDSN, strings.ReplaceAll(topic, ".", `\.`))), "refused.yaml")
	if err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	sink, err := exactly.NewSink(ctx, cfg, &postgres.Dialect{}, decode.For(cfg), log)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	src, err := kafka.NewSource(cfg, sink, log)
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	stop := runSource(t, src)
	var tps []exactly.TP
	for p := range partitions {
		tps = append(tps, exactly.TP{Topic: topic, Partition: int32(p)})
	}
	for {
		got, err := sink.LoadOffsets(ctx, tps)
		n := int64(0)
		for _, o := range got {
			n += o
		}
		if err == nil && n == records {
			break
		}
		if time.Since(began) > 2*time.Minute {
			stop()
			t.Fatalf("after 2 minutes %d of %d records committed (%v)", n, records, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	took := time.Since(began)
	stop()

	var rows, distinct int
	if err := c.QueryRow(ctx, "SELECT count(*), count(DISTINCT (p, o)) FROM "+name+".events").Scan(&rows, &distinct); err != nil {
		t.Fatal(err)
	}
	if rows != records || distinct != records {
		t.Fatalf("%d rows, %d distinct, want %d once each", rows, distinct, records)
	}
	out := logs.String()
	refused := strings.Count(out, "too many connections")
	limits := strings.Count(out, "limit=")
	var last string
	if i := strings.LastIndex(out, "flight limit"); i >= 0 {
		last, _, _ = strings.Cut(out[i:], "\n")
	}
	t.Logf("%d records in %v; %d refusals logged; %d limit changes, the last: %s (load %s)", records, took.Round(time.Millisecond), refused, limits, last, load())
	if !strings.Contains(last, "limit=3 ") && !strings.Contains(last, "limit=2 ") && !strings.Contains(last, "limit=1 ") {
		t.Errorf("the flight limit did not come down to the 3 connections the role has: %s", last)
	}
	if refused > 12 {
		t.Errorf("%d flights were refused a connection: the limit must come down to the database's 3 and probe past it rarely", refused)
	}
}
