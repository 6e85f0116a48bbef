package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/decode"
	"github.com/exactly/exactly/internal/kafka"
	"github.com/exactly/exactly/internal/sink/sqlite"
)

const adoptTopic = "shop.events"

// adoptEnv is a broker with a two-partition topic of n records per
// partition (record o of a partition is stamped base + o minutes) and a
// SQLite sink whose append table, created by the pipeline, shows every
// applied record as one row.
type adoptEnv struct {
	brokers []string
	dir     string
	dsn     string
	n       int64
	base    time.Time
}

func newAdoptEnv(t *testing.T, n int64) *adoptEnv {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, adoptTopic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	dir := t.TempDir()
	e := &adoptEnv{brokers: c.ListenAddrs(), dir: dir, dsn: filepath.Join(dir, "sink.db"), n: n,
		base: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for p := int32(0); p < 2; p++ {
		for o := int64(0); o < n; o++ {
			recs = append(recs, &kgo.Record{Topic: adoptTopic, Partition: p, Timestamp: e.base.Add(time.Duration(o) * time.Minute),
				Value: []byte(fmt.Sprintf(`{"p":%d,"o":%d,"note":"r%d"}`, p, o, o))})
		}
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	return e
}

// config writes a configuration file; extra is appended to the rule.
func (e *adoptEnv) config(t *testing.T, name, rule string) string {
	t.Helper()
	y := fmt.Sprintf(`pipeline: shop
source: {brokers: [%s], group: exactly-shop}
sink: {driver: sqlite, dsn: '%s'}
batch: {interval: 50ms}
tables:
  - {topics: %s, table: events, mode: append%s}
`, strings.Join(e.brokers, ", "), e.dsn, adoptTopic, rule)
	path := filepath.Join(e.dir, name)
	if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// sparkBatch writes offsets/id (and commits/id when committed) of a Spark
// Structured Streaming checkpoint in Spark's format.
func sparkBatch(t *testing.T, dir string, id int, committed bool, offsets string) {
	t.Helper()
	for _, d := range []string{"offsets", "commits", "sources/0"} {
		os.MkdirAll(filepath.Join(dir, d), 0o755)
	}
	meta := fmt.Sprintf(`{"batchWatermarkMs":0,"batchTimestampMs":%d,"conf":{"spark.sql.streaming.stateStore.providerClass":"org.apache.spark.sql.execution.streaming.state.HDFSBackedStateStoreProvider","spark.sql.shuffle.partitions":"200"}}`, 1772323200000+int64(id)*10000)
	if err := os.WriteFile(filepath.Join(dir, "offsets", fmt.Sprint(id)), []byte("v1\n"+meta+"\n"+offsets), 0o644); err != nil {
		t.Fatal(err)
	}
	if committed {
		if err := os.WriteFile(filepath.Join(dir, "commits", fmt.Sprint(id)), []byte("v1\n{\"nextBatchWatermarkMs\":0}"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func cli(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String() + errb.String()
}

func (e *adoptEnv) offsets(t *testing.T, file string) map[exactly.TP]int64 {
	t.Helper()
	cfg, err := exactly.LoadConfig(file)
	if err != nil {
		t.Fatal(err)
	}
	s, err := exactly.OpenSink(context.Background(), cfg, &sqlite.Dialect{}, decode.For(cfg), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if ok, err := s.HasLedger(context.Background()); err != nil || !ok {
		return nil
	}
	got, err := s.LoadOffsets(context.Background(), []exactly.TP{{Topic: adoptTopic, Partition: 0}, {Topic: adoptTopic, Partition: 1}})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// runPipeline runs exactly's pipeline in-process until both partitions
// are applied to the end.
func (e *adoptEnv) runPipeline(t *testing.T, file string) {
	t.Helper()
	cfg, err := exactly.LoadConfig(file)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	sink, err := exactly.NewSink(context.Background(), cfg, &sqlite.Dialect{}, decode.For(cfg), log)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	src, err := kafka.NewSource(cfg, sink, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	tps := []exactly.TP{{Topic: adoptTopic, Partition: 0}, {Topic: adoptTopic, Partition: 1}}
	for deadline := time.Now().Add(20 * time.Second); ; {
		got, err := sink.LoadOffsets(ctx, tps)
		if err == nil && got[tps[0]] == e.n && got[tps[1]] == e.n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pipeline did not catch up: %v %v", got, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// applied checks that the table holds, per partition, each offset from
// from[p] to the end exactly once and nothing before.
func (e *adoptEnv) applied(t *testing.T, from [2]int64) {
	t.Helper()
	cfg := &exactly.Config{Sink: exactly.SinkConfig{DSN: e.dsn, MaxConns: 1}}
	s, err := exactly.OpenSink(context.Background(), cfg, &sqlite.Dialect{}, decode.For(cfg), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rs, err := s.DB().Query("SELECT p, o, COUNT(*) FROM events GROUP BY p, o ORDER BY p, o")
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	var got [2][]int64
	for rs.Next() {
		var p, o, n int64
		if err := rs.Scan(&p, &o, &n); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Errorf("partition %d offset %d applied %d times", p, o, n)
		}
		got[p] = append(got[p], o)
	}
	for p := 0; p < 2; p++ {
		var want []int64
		for o := from[p]; o < e.n; o++ {
			want = append(want, o)
		}
		if fmt.Sprint(got[p]) != fmt.Sprint(want) {
			t.Errorf("partition %d: applied %v, want %d..%d once each", p, got[p], from[p], e.n-1)
		}
	}
}

// TestAdoptSparkCheckpoint takes over from a Spark checkpoint whose last
// micro-batch was planned but never committed — the user's failure. The
// dry run writes nothing and names the uncommitted range; --apply seeds
// the ledger at the last committed batch; the pipeline then applies every
// record from there exactly once and nothing before it.
func TestAdoptSparkCheckpoint(t *testing.T) {
	e := newAdoptEnv(t, 30)
	file := e.config(t, "shop.yaml", ", create: true")
	cp := filepath.Join(e.dir, "checkpoint")
	sparkBatch(t, cp, 0, true, `{"shop.events":{"0":10,"1":5}}`)
	sparkBatch(t, cp, 1, true, `{"shop.events":{"1":12,"0":18}}`)
	sparkBatch(t, cp, 2, false, `{"shop.events":{"0":25,"1":12}}`)

	code, out := cli(t, "adopt", "-c", file, "--spark-checkpoint", cp)
	t.Log(out)
	if code != 0 {
		t.Fatalf("dry run: exit %d\n%s", code, out)
	}
	for _, want := range []string{"micro-batch 1", "seed next_offset 18 (12 records to apply)", "seed next_offset 12 (18 records to apply)",
		"micro-batch 2 was planned (offsets/2) but never committed (no commits/2)", "shop.events[0] offsets 18..24 (7 records)",
		"exactly dedupe", "dry run: nothing written"} {
		if !strings.Contains(out, want) {
			t.Errorf("dry run output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "shop.events[1] offsets") {
		t.Errorf("partition 1 had nothing in the uncommitted batch but is listed:\n%s", out)
	}
	if _, err := os.Stat(e.dsn); !os.IsNotExist(err) {
		t.Fatalf("the dry run created the SQLite file: %v", err)
	}

	if code, out = cli(t, "adopt", "-c", file, "--spark-checkpoint", cp, "--apply"); code != 0 || !strings.Contains(out, "seeded 2 offsets row(s)") {
		t.Fatalf("apply: exit %d\n%s", code, out)
	}
	want := map[exactly.TP]int64{{Topic: adoptTopic, Partition: 0}: 18, {Topic: adoptTopic, Partition: 1}: 12}
	if got := e.offsets(t, file); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("seeded offsets: got %v, want %v", got, want)
	}
	// Adopting again is a no-op; a different checkpoint is refused and
	// moves nothing.
	if code, out = cli(t, "adopt", "-c", file, "--spark-checkpoint", cp, "--apply"); code != 0 || !strings.Contains(out, "already there") {
		t.Errorf("second apply: exit %d\n%s", code, out)
	}
	other := filepath.Join(e.dir, "other")
	sparkBatch(t, other, 7, true, `{"shop.events":{"0":3,"1":12}}`)
	if code, out = cli(t, "adopt", "-c", file, "--spark-checkpoint", other, "--apply"); code != 1 || !strings.Contains(out, "adopt never moves it") {
		t.Errorf("conflicting checkpoint: exit %d\n%s", code, out)
	}
	if got := e.offsets(t, file); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("a refused adopt moved the offsets: %v", got)
	}

	e.runPipeline(t, file)
	e.applied(t, [2]int64{18, 12})
	// The auditor agrees: a ledger that starts at adopted offsets is a
	// clean chain, not a gap.
	code, out = cli(t, "verify", "-c", file)
	t.Log(out)
	if code != 0 {
		t.Errorf("verify after the takeover: exit %d\n%s", code, out)
	}
}

// TestAdoptRefusesCheckpointsThatDoNotFit: offsets beyond the topic's end
// (another cluster, a recreated topic) and a checkpoint without any
// committed batch are refused, and nothing is written.
func TestAdoptRefusesCheckpointsThatDoNotFit(t *testing.T) {
	e := newAdoptEnv(t, 5)
	file := e.config(t, "shop.yaml", ", create: true")
	ahead := filepath.Join(e.dir, "ahead")
	sparkBatch(t, ahead, 3, true, `{"shop.events":{"0":4,"1":900}}`)
	if code, out := cli(t, "adopt", "-c", file, "--spark-checkpoint", ahead, "--apply"); code != 1 || !strings.Contains(out, "says 900 but the partition ends at 5") {
		t.Errorf("checkpoint ahead of the topic: exit %d\n%s", code, out)
	}
	// Records 0..2 of partition 1 deleted (retention): a checkpoint at 1
	// points at data nobody can read any more.
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...))
	if err != nil {
		t.Fatal(err)
	}
	var del kadm.Offsets
	del.Add(kadm.Offset{Topic: adoptTopic, Partition: 1, At: 3})
	if _, err := kadm.NewClient(cl).DeleteRecords(context.Background(), del); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	gone := filepath.Join(e.dir, "gone")
	sparkBatch(t, gone, 3, true, `{"shop.events":{"0":4,"1":1}}`)
	if code, out := cli(t, "adopt", "-c", file, "--spark-checkpoint", gone, "--apply"); code != 1 || !strings.Contains(out, "offsets 1..2 were deleted by retention") {
		t.Errorf("checkpoint behind the log start: exit %d\n%s", code, out)
	}
	none := filepath.Join(e.dir, "none")
	sparkBatch(t, none, 0, false, `{"shop.events":{"0":4,"1":4}}`)
	if code, out := cli(t, "adopt", "-c", file, "--spark-checkpoint", none, "--apply"); code != 1 || !strings.Contains(out, "no committed micro-batch") {
		t.Errorf("checkpoint without a commit: exit %d\n%s", code, out)
	}
	if got := e.offsets(t, file); len(got) != 0 {
		t.Errorf("refused adopts wrote offsets: %v", got)
	}
	if code, out := cli(t, "adopt", "-c", file); code != 2 {
		t.Errorf("adopt without a source: exit %d, want 2\n%s", code, out)
	}
}

// TestAdoptGroupAndTimestamp: the group and timestamp variants seed the
// same way; partitions the group never committed are left to start_from.
func TestAdoptGroupAndTimestamp(t *testing.T) {
	e := newAdoptEnv(t, 20)
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...))
	if err != nil {
		t.Fatal(err)
	}
	var os kadm.Offsets
	os.Add(kadm.Offset{Topic: adoptTopic, Partition: 0, At: 13, LeaderEpoch: -1})
	if resp, err := kadm.NewClient(cl).CommitOffsets(context.Background(), "connect-legacy-sink", os); err != nil || resp.Error() != nil {
		t.Fatal(err, resp.Error())
	}
	cl.Close()

	file := e.config(t, "group.yaml", ", create: true")
	// While the old consumer is still in its group, adopt refuses.
	busy, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...), kgo.ConsumerGroup("connect-legacy-sink"), kgo.ConsumeTopics(adoptTopic), kgo.DisableAutoCommit())
	if err != nil {
		t.Fatal(err)
	}
	for joined := false; !joined; {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		busy.PollFetches(ctx)
		cancel()
		_, gen := busy.GroupMetadata()
		joined = gen > 0
	}
	code, out := cli(t, "adopt", "-c", file, "--group", "connect-legacy-sink", "--apply")
	if code != 1 || !strings.Contains(out, "1 active member(s)") {
		t.Errorf("adopt --group while the group is consuming: exit %d\n%s", code, out)
	}
	busy.Close() // leaves the group
	code, out = cli(t, "adopt", "-c", file, "--group", "connect-legacy-sink", "--apply")
	if code != 0 || !strings.Contains(out, "never committed an offset") {
		t.Fatalf("adopt --group: exit %d\n%s", code, out)
	}
	if got := e.offsets(t, file); fmt.Sprint(got) != fmt.Sprint(map[exactly.TP]int64{{Topic: adoptTopic, Partition: 0}: 13}) {
		t.Errorf("group offsets seeded: %v", got)
	}
	e.runPipeline(t, file) // partition 1 starts from start_from: earliest
	e.applied(t, [2]int64{13, 0})

	e2 := newAdoptEnv(t, 20)
	file2 := e2.config(t, "ts.yaml", ", create: true")
	at := e2.base.Add(15 * time.Minute).Format(time.RFC3339)
	if code, out := cli(t, "adopt", "-c", file2, "--timestamp", at, "--apply"); code != 0 {
		t.Fatalf("adopt --timestamp: exit %d\n%s", code, out)
	}
	e2.runPipeline(t, file2)
	e2.applied(t, [2]int64{15, 15})
}

// TestPlanShowsTablesDDLKeysAndStarts: plan against live Kafka and sink
// prints the DDL create would run for the sampled records, the mapping,
// where each partition starts — and writes nothing.
func TestPlanShowsTablesDDLKeysAndStarts(t *testing.T) {
	e := newAdoptEnv(t, 10)
	file := e.config(t, "plan.yaml", ", create: true, columns: {exclude: [note], rename: {o: kafka_offset}}")
	code, out := cli(t, "plan", "-c", file)
	t.Log(out)
	if code != 0 {
		t.Fatalf("plan: exit %d\n%s", code, out)
	}
	for _, want := range []string{
		"shop.events → table events (missing)",
		`CREATE TABLE IF NOT EXISTS "events" ("kafka_offset" INTEGER, "p" INTEGER);`,
		"exclude [note]; rename o → kafka_offset · create on",
		"key none (append)",
		"partition 0: starts at 0 (start_from earliest, no ledger row yet) · Kafka 0..10 · 10 to read",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("plan output lacks %q:\n%s", want, out)
		}
	}
	if _, err := os.Stat(e.dsn); !os.IsNotExist(err) {
		t.Errorf("plan created the SQLite file: %v", err)
	}
	// After adopting, the ledger decides; with create off and no table the
	// plan reports the problem.
	cp := filepath.Join(e.dir, "cp")
	sparkBatch(t, cp, 0, true, `{"shop.events":{"0":4,"1":6}}`)
	if code, out := cli(t, "adopt", "-c", file, "--spark-checkpoint", cp, "--apply"); code != 0 {
		t.Fatalf("adopt: %d\n%s", code, out)
	}
	noCreate := e.config(t, "nocreate.yaml", "")
	code, out = cli(t, "plan", "-c", noCreate)
	if code != 1 || !strings.Contains(out, "partition 1: starts at 6 (ledger)") || !strings.Contains(out, "create is off") {
		t.Errorf("plan without create: exit %d\n%s", code, out)
	}
	// An existing table lacking a field: evolve shows the ALTER it would
	// run (only for records from the start offsets on); without evolve the
	// field is listed as ignored.
	cfg, err := exactly.LoadConfig(noCreate)
	if err != nil {
		t.Fatal(err)
	}
	s, err := exactly.OpenSink(context.Background(), cfg, &sqlite.Dialect{}, decode.For(cfg), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.DB().Exec("CREATE TABLE events (p INTEGER, o INTEGER)"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	code, out = cli(t, "plan", "-c", noCreate)
	if code != 0 || !strings.Contains(out, "ignored fields (no column; evolve is off): note") {
		t.Errorf("plan, evolve off: exit %d\n%s", code, out)
	}
	code, out = cli(t, "plan", "-c", e.config(t, "evolve.yaml", ", evolve: add_columns"))
	if code != 0 || !strings.Contains(out, `ALTER TABLE "events" ADD COLUMN "note" TEXT;`) || !strings.Contains(out, "table events (exists)") {
		t.Errorf("plan, evolve on: exit %d\n%s", code, out)
	}
}

// TestAdoptSparkPartitionNewToTheCheckpoint: a partition of the query's
// topic that the last committed micro-batch does not list (added to the
// topic, first planned in the batch that never committed) was never
// committed by Spark, which reads a partition it discovers from its
// earliest offset. adopt seeds it at the log start, so start_from: latest
// cannot skip it: before, it was left to start_from and the pipeline
// started partition 1 at 30, losing its 30 records. A partition the
// checkpoint has and Kafka does not is refused by name.
func TestAdoptSparkPartitionNewToTheCheckpoint(t *testing.T) {
	e := newAdoptEnv(t, 30)
	file := e.config(t, "shop.yaml", ", create: true")
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte(strings.Replace(string(raw), "group: exactly-shop}", "group: exactly-shop, start_from: latest}", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	cp := filepath.Join(e.dir, "checkpoint")
	sparkBatch(t, cp, 0, true, `{"shop.events":{"0":10}}`)
	sparkBatch(t, cp, 1, false, `{"shop.events":{"0":20,"1":5}}`)
	code, out := cli(t, "adopt", "-c", file, "--spark-checkpoint", cp, "--apply")
	t.Log(out)
	if code != 0 || !strings.Contains(out, "seed next_offset 0 (30 records to apply)") || !strings.Contains(out, "starts at the log start (0)") {
		t.Fatalf("apply: exit %d\n%s", code, out)
	}
	e.runPipeline(t, file)
	e.applied(t, [2]int64{10, 0})

	bad := filepath.Join(e.dir, "bad")
	sparkBatch(t, bad, 4, true, `{"shop.events":{"0":10,"1":10,"2":7}}`)
	code, out = cli(t, "adopt", "-c", e.config(t, "other.yaml", ", create: true"), "--spark-checkpoint", bad)
	if code != 1 || !strings.Contains(out, "shop.events[2] is in the checkpoint but Kafka has no such partition") {
		t.Errorf("checkpoint with a partition Kafka lacks: exit %d\n%s", code, out)
	}
}

// TestPlanAfterTheFirstStart: once the pipeline's first start is recorded,
// plan says a partition without a ledger row starts at its beginning (as
// the pipeline does), not where start_from says.
func TestPlanAfterTheFirstStart(t *testing.T) {
	e := newAdoptEnv(t, 10)
	file := e.config(t, "plan.yaml", ", create: true")
	cfg, err := exactly.LoadConfig(file)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	sink, err := openSink(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sink.RecordFirstStart(ctx, "latest", map[exactly.TP]int64{{Topic: adoptTopic, Partition: 0}: 10}); err != nil {
		t.Fatal(err)
	}
	sink.Close()
	code, out := cli(t, "plan", "-c", file)
	if code != 0 || !strings.Contains(out, "partition 0: starts at 10 (ledger)") ||
		!strings.Contains(out, "partition 1: starts at 0 (created after the pipeline's first start (") {
		t.Errorf("plan after the first start: exit %d\n%s", code, out)
	}
}

// TestPlanSaysWhichPartitionsHalt: plan agrees with run about a partition
// whose offsets row the log no longer agrees with. Run halts it when
// assigned; plan said "partition 0: starts at 899 (ledger) · Kafka 0..6 ·
// 0 to read" (seen live after a cluster reset), which reads as caught up.
func TestPlanSaysWhichPartitionsHalt(t *testing.T) {
	e := newAdoptEnv(t, 10)
	file := e.config(t, "plan.yaml", ", create: true")
	cfg, err := exactly.LoadConfig(file)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	sink, err := openSink(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sink.RecordFirstStart(ctx, "earliest", map[exactly.TP]int64{{Topic: adoptTopic, Partition: 0}: 25, {Topic: adoptTopic, Partition: 1}: 5}); err != nil {
		t.Fatal(err)
	}
	if _, err := sink.DB().Exec(`UPDATE exactly_offsets SET topic_id = 'AAAAAAAAAAAAAAAAAAAAAA==' WHERE "partition" = 1`); err != nil {
		t.Fatal(err)
	}
	sink.Close()
	code, out := cli(t, "plan", "-c", file)
	if code != 1 || !strings.Contains(out, "partition 0: HALTS when assigned: offsets beyond the log end: next_offset 25, the log ends at 10 (lag -15)") ||
		!strings.Contains(out, "partition 1: HALTS when assigned: topic recreated: "+adoptTopic+"[1] has topic id ") {
		t.Errorf("plan with rows the log disagrees with: exit %d, want 1\n%s", code, out)
	}
}
