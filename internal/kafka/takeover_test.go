package kafka_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
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

const topic = "t.events"

// takeover is a broker with a two-partition topic and a SQLite sink whose
// append table (created by the pipeline) shows every applied record as
// one row: a record applied twice is two rows.
type takeover struct {
	cluster *kfake.Cluster
	brokers []string
	dsn     string
	next    [2]int64 // records produced per partition
	base    time.Time
}

func newTakeover(t *testing.T) *takeover {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return &takeover{cluster: c, brokers: c.ListenAddrs(), dsn: filepath.Join(t.TempDir(), "sink.db"),
		base: time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)}
}

// produce writes n records to each partition; record i of a partition has
// timestamp base + i minutes.
func (e *takeover) produce(t *testing.T, n int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for p := int32(0); p < 2; p++ {
		for i := 0; i < n; i++ {
			o := e.next[p]
			e.next[p]++
			recs = append(recs, &kgo.Record{Topic: topic, Partition: p, Timestamp: e.base.Add(time.Duration(o) * time.Minute),
				Value: []byte(fmt.Sprintf(`{"p":%d,"o":%d}`, p, o))})
		}
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func (e *takeover) config(t *testing.T, startFrom, group string) *exactly.Config {
	t.Helper()
	y := fmt.Sprintf(`pipeline: takeover
source: {brokers: [%s], group: %s, start_from: '%s'}
sink: {driver: sqlite, dsn: '%s'}
batch: {interval: 50ms}
tables:
  - {topics: %s, table: events, mode: append, create: true}
`, strings.Join(e.brokers, ", "), group, startFrom, e.dsn, topic)
	cfg, err := exactly.ParseConfig(strings.NewReader(y), "takeover.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// run runs the pipeline until the ledger has reached every produced
// offset, then stops it. whileRunning, when set, runs once the offsets
// rows exist.
func (e *takeover) run(t *testing.T, cfg *exactly.Config, whileRunning func()) {
	t.Helper()
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
	defer runSource(t, src)()
	tps := []exactly.TP{{Topic: topic, Partition: 0}, {Topic: topic, Partition: 1}}
	deadline := time.Now().Add(20 * time.Second)
	wait := func(ok func(map[exactly.TP]int64) bool) {
		for {
			got, err := sink.LoadOffsets(context.Background(), tps)
			if err == nil && ok(got) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("pipeline did not get there: offsets %v %v, produced %v", got, err, e.next)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if whileRunning != nil {
		wait(func(m map[exactly.TP]int64) bool { return len(m) == 2 })
		whileRunning()
	}
	wait(func(m map[exactly.TP]int64) bool { return m[tps[0]] == e.next[0] && m[tps[1]] == e.next[1] })
}

// runSource runs src until the returned stop is called; stop fails the
// test if Run returned an error.
func runSource(t *testing.T, src *kafka.Source) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

// applied returns, per partition, the offsets present in the table, and
// fails on any record applied twice.
func (e *takeover) applied(t *testing.T) [2][]int64 {
	t.Helper()
	cfg := e.config(t, "earliest", "x")
	sink, err := exactly.NewSink(context.Background(), cfg, &sqlite.Dialect{}, decode.For(cfg), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	rs, err := sink.DB().Query("SELECT p, o, COUNT(*) FROM events GROUP BY p, o ORDER BY p, o")
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	var out [2][]int64
	for rs.Next() {
		var p, o, n int64
		if err := rs.Scan(&p, &o, &n); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Errorf("record %d of partition %d applied %d times", o, p, n)
		}
		out[p] = append(out[p], o)
	}
	return out
}

// span is the offsets from..to-1.
func span(from, to int64) []int64 {
	var out []int64
	for o := from; o < to; o++ {
		out = append(out, o)
	}
	return out
}

func expect(t *testing.T, got [2][]int64, from [2]int64, to [2]int64) {
	t.Helper()
	for p := 0; p < 2; p++ {
		if fmt.Sprint(got[p]) != fmt.Sprint(span(from[p], to[p])) {
			t.Errorf("partition %d: applied %v, want exactly once each of %d..%d", p, got[p], from[p], to[p]-1)
		}
	}
}

func TestStartFromEarliest(t *testing.T) {
	e := newTakeover(t)
	e.produce(t, 10)
	e.run(t, e.config(t, "earliest", "g-earliest"), nil)
	expect(t, e.applied(t), [2]int64{0, 0}, e.next)
}

func TestStartFromLatest(t *testing.T) {
	e := newTakeover(t)
	e.produce(t, 10) // before the takeover: never applied
	e.run(t, e.config(t, "latest", "g-latest"), func() { e.produce(t, 7) })
	expect(t, e.applied(t), [2]int64{10, 10}, e.next)
}

// TestStartFromTimestamp: records stamped before the timestamp are not
// applied, every record from the first one at or after it is, once.
func TestStartFromTimestamp(t *testing.T) {
	e := newTakeover(t)
	e.produce(t, 20)
	at := e.base.Add(12 * time.Minute) // offset 12 of each partition
	e.run(t, e.config(t, "timestamp:"+at.Format(time.RFC3339), "g-ts"), nil)
	expect(t, e.applied(t), [2]int64{12, 12}, e.next)
}

// TestStartFromGroup takes over from a consumer that committed offsets in
// its group (partition 1 never committed: it starts at the log start).
// After that the ledger is the truth: the group's offsets, moved
// backwards, change nothing on the next start.
func TestStartFromGroup(t *testing.T) {
	e := newTakeover(t)
	e.produce(t, 20)
	commit := func(offsets map[int32]int64) {
		cl, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		var os kadm.Offsets
		for p, o := range offsets {
			os.Add(kadm.Offset{Topic: topic, Partition: p, At: o, LeaderEpoch: -1})
		}
		resp, err := kadm.NewClient(cl).CommitOffsets(context.Background(), "legacy", os)
		if err == nil {
			err = resp.Error()
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	commit(map[int32]int64{0: 7})
	cfg := e.config(t, "group", "legacy")
	e.run(t, cfg, nil)
	expect(t, e.applied(t), [2]int64{7, 0}, e.next)

	commit(map[int32]int64{0: 2, 1: 3}) // a stale hint: ignored
	e.produce(t, 5)
	e.run(t, cfg, nil)
	expect(t, e.applied(t), [2]int64{7, 0}, e.next)
}

// TestStartFromLatestAppliesOnlyAtTheFirstStart: start_from applies to the
// partitions that existed when the pipeline was first started. A
// partition added to a topic later, and a topic matching the pattern
// created later, start at their beginning: the records produced to them
// before the member first sees them (up to metadata_max_age later) are
// applied, every one of them (issue 15.3: 15 produced, 5 applied).
func TestStartFromLatestAppliesOnlyAtTheFirstStart(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "t.first"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	brokers := c.ListenAddrs()
	dsn := filepath.Join(t.TempDir(), "sink.db")
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	produce := func(topic string, p int32, n int) {
		t.Helper()
		cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		var recs []*kgo.Record
		for i := 0; i < n; i++ {
			recs = append(recs, &kgo.Record{Topic: topic, Partition: p, Value: []byte(fmt.Sprintf(`{"t":%q,"p":%d,"i":%d}`, topic, p, i))})
		}
		if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	produce("t.first", 0, 10) // before the first start: never applied
	produce("t.first", 1, 10)

	y := fmt.Sprintf(`pipeline: firststart
source: {brokers: [%s], group: g-first, start_from: latest}
sink: {driver: sqlite, dsn: '%s'}
batch: {interval: 50ms}
tables:
  - {topics: '^t\..*$', table: events, mode: append, create: true}
`, strings.Join(brokers, ", "), dsn)
	cfg, err := exactly.ParseConfig(strings.NewReader(y), "firststart.yaml")
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	sink, err := exactly.NewSink(context.Background(), cfg, &sqlite.Dialect{}, decode.For(cfg), log)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	// Metadata every 2s: the new partitions are seen soon, but after
	// the records below were produced to them.
	src, err := kafka.NewSource(cfg, sink, log, kafka.KafkaClient(kgo.MetadataMinAge(500*time.Millisecond), kgo.MetadataMaxAge(2*time.Second)))
	if err != nil {
		t.Fatal(err)
	}
	defer runSource(t, src)()
	first := []exactly.TP{{Topic: "t.first", Partition: 0}, {Topic: "t.first", Partition: 1}}
	waitFor(t, "the first partitions are seeded", 20*time.Second, func() bool {
		got, err := sink.LoadOffsets(context.Background(), first)
		return err == nil && got[first[0]] == 10 && got[first[1]] == 10
	})

	adm := kadm.NewClient(cl)
	if _, err := adm.CreatePartitions(context.Background(), 1, "t.first"); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.CreateTopic(context.Background(), 2, 1, nil, "t.second"); err != nil {
		t.Fatal(err)
	}
	produce("t.first", 2, 5)
	produce("t.second", 0, 5)
	produce("t.second", 1, 5)

	count := func() int {
		var n int
		if err := sink.DB().QueryRow("SELECT COUNT(*) FROM events").Scan(&n); err != nil {
			return -1
		}
		return n
	}
	later := []exactly.TP{{Topic: "t.first", Partition: 2}, {Topic: "t.second", Partition: 0}, {Topic: "t.second", Partition: 1}}
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, err := sink.LoadOffsets(context.Background(), later)
		if err == nil && len(got) == 3 && got[later[0]] == 5 && got[later[1]] == 5 && got[later[2]] == 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("partitions created after the first start: offsets %v (%v), %d of 15 records applied; want every one", got, err, count())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := count(); n != 15 {
		t.Errorf("%d records applied, want the 15 produced after the first start", n)
	}
}

// TestTopicChangesNoticedWithTheDefaultMetadataAge: with the default
// configuration (no tuned client), a partition added to a topic and a
// topic created to match a pattern while the pipeline runs are applied
// within seconds. The client noticed them only at its metadata refresh,
// franz-go's default 5 minutes: seen live, 20 records of two added
// partitions waited 4m55s with /readyz ready and no warning, and a topic
// recreated under a pattern rule stayed unassigned — not halted, not
// ready-failing — for 2m40s.
func TestTopicChangesNoticedWithTheDefaultMetadataAge(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "m.first"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	brokers := c.ListenAddrs()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	produce := func(topic string, p int32, n int) {
		t.Helper()
		cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		var recs []*kgo.Record
		for i := 0; i < n; i++ {
			recs = append(recs, &kgo.Record{Topic: topic, Partition: p, Value: []byte(fmt.Sprintf(`{"t":%q,"p":%d,"i":%d}`, topic, p, i))})
		}
		if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	produce("m.first", 0, 3)
	y := fmt.Sprintf(`pipeline: metaage
source: {brokers: [%s], group: g-metaage}
sink: {driver: sqlite, dsn: '%s'}
tables:
  - {topics: '^m\..*$', table: events, mode: append, create: true}
`, strings.Join(brokers, ", "), filepath.Join(t.TempDir(), "sink.db"))
	cfg, err := exactly.ParseConfig(strings.NewReader(y), "metaage.yaml")
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
	defer runSource(t, src)()
	first := exactly.TP{Topic: "m.first"}
	waitFor(t, "m.first[0] applied", 30*time.Second, func() bool {
		got, err := sink.LoadOffsets(context.Background(), []exactly.TP{first})
		return err == nil && got[first] == 3
	})
	adm := kadm.NewClient(cl)
	if _, err := adm.CreatePartitions(context.Background(), 1, "m.first"); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.CreateTopic(context.Background(), 1, 1, nil, "m.second"); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	produce("m.first", 1, 4)
	produce("m.second", 0, 4)
	later := []exactly.TP{{Topic: "m.first", Partition: 1}, {Topic: "m.second"}}
	waitFor(t, "the added partition and the new topic applied", 45*time.Second, func() bool {
		got, err := sink.LoadOffsets(context.Background(), later)
		return err == nil && got[later[0]] == 4 && got[later[1]] == 4
	})
	t.Logf("added partition and new topic applied %v after they were produced to", time.Since(began).Round(100*time.Millisecond))
}

// TestStartFromLatestSeedsAtTheLastStableOffset: a transaction open when
// the pipeline first starts is above its seed, so its records are applied
// once it commits (seeded at the high watermark they were skipped).
func TestStartFromLatestSeedsAtTheLastStableOffset(t *testing.T) {
	e := newTakeover(t)
	e.produce(t, 10) // before the first start: never applied
	tx, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.TransactionalID("open-at-start"))
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	if err := tx.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	var recs []*kgo.Record
	for p := int32(0); p < 2; p++ {
		for i := 0; i < 3; i++ {
			recs = append(recs, &kgo.Record{Topic: topic, Partition: p, Value: []byte(fmt.Sprintf(`{"p":%d,"o":%d}`, p, 10+i))})
		}
	}
	if err := tx.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cfg := e.config(t, "latest", "g-lso")
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
	stop := runSource(t, src)
	tps := []exactly.TP{{Topic: topic, Partition: 0}, {Topic: topic, Partition: 1}}
	var seeded map[exactly.TP]int64
	waitFor(t, "the partitions are seeded", 20*time.Second, func() bool {
		seeded, err = sink.LoadOffsets(context.Background(), tps)
		return err == nil && len(seeded) == 2
	})
	if seeded[tps[0]] != 10 || seeded[tps[1]] != 10 {
		t.Errorf("seeded at %v; want 10 on both, the last stable offset (the open transaction starts there)", seeded)
	}
	if err := tx.EndTransaction(context.Background(), kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the transaction's records are applied", 20*time.Second, func() bool {
		got, err := sink.LoadOffsets(context.Background(), tps)
		return err == nil && got[tps[0]] >= 13 && got[tps[1]] >= 13
	})
	stop()
	e.next = [2]int64{13, 13}
	expect(t, e.applied(t), [2]int64{10, 10}, e.next)
}

// client is a plain client of the broker, closed when the test ends.
func (e *takeover) client(t *testing.T) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// appliedCount is how many rows the events table holds.
func (e *takeover) appliedCount(t *testing.T) int {
	t.Helper()
	cfg := e.config(t, "earliest", "x")
	sink, err := exactly.NewSink(context.Background(), cfg, &sqlite.Dialect{}, decode.For(cfg), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	var n int
	if err := sink.DB().QueryRow("SELECT COUNT(*) FROM events").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestGroupDescribesAConsumerProtocolGroup: exactly status and the
// "nothing moves" warning describe a group_protocol: consumer group by its
// KIP-848 members. They asked DescribeGroups only, where such a group has
// no member (kfake: Stable, 0 members), so status said "N records wait and
// no member is running" beside a live member owning every partition
// (seen live: a member frozen with SIGSTOP, 30 records waiting).
func TestGroupDescribesAConsumerProtocolGroup(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "k.events"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	y := fmt.Sprintf(`pipeline: kip848
source: {brokers: [%s], group: g-kip848, group_protocol: consumer, instance_id: pod-0}
sink: {driver: sqlite, dsn: '%s'}
tables:
  - {topics: k.events, table: events, mode: append, create: true}
`, strings.Join(c.ListenAddrs(), ", "), filepath.Join(t.TempDir(), "sink.db"))
	cfg, err := exactly.ParseConfig(strings.NewReader(y), "kip848.yaml")
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
	defer runSource(t, src)()
	waitFor(t, "both partitions assigned", 30*time.Second, func() bool { return src.Assigned() == 2 })
	r, err := kafka.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var g *kafka.GroupState
	waitFor(t, "the group described with its member", 10*time.Second, func() bool {
		g, err = r.Group(context.Background(), "g-kip848")
		return err == nil && len(g.Members) == 1 && g.Members[0].Partitions == 2
	})
	if m := g.Members[0]; m.ID != "pod-0" || !m.Static || g.Protocol != "consumer" {
		t.Errorf("group %+v, member %+v: want the static member pod-0 of a consumer-protocol group", g, m)
	}
}

// TestOwnersOfAConsumerProtocolGroup: reseed and replay refuse a partition
// a member of a group_protocol: consumer group owns. kfake names the
// topics of a KIP-848 assignment by id only, which kadm keeps as "", so
// Owners found no owner and exactly reseed moved next_offset under a
// running member (seen live: 'reseeded r14.c[0] … 884 -> 884' with the
// member owning all 3 partitions).
func TestOwnersOfAConsumerProtocolGroup(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "o.events"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	y := fmt.Sprintf(`pipeline: owners848
source: {brokers: [%s], group: g-owners848, group_protocol: consumer, instance_id: pod-0}
sink: {driver: sqlite, dsn: '%s'}
tables:
  - {topics: o.events, table: events, mode: append, create: true}
`, strings.Join(c.ListenAddrs(), ", "), filepath.Join(t.TempDir(), "sink.db"))
	cfg, err := exactly.ParseConfig(strings.NewReader(y), "owners848.yaml")
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
	stop := runSource(t, src)
	waitFor(t, "both partitions assigned", 30*time.Second, func() bool { return src.Assigned() == 2 })
	adm, err := kafka.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	tps := []exactly.TP{{Topic: "o.events", Partition: 0}, {Topic: "o.events", Partition: 1}}
	owners, busy, err := adm.Owners(context.Background(), "g-owners848", tps)
	if err != nil {
		t.Fatal(err)
	}
	if len(owners) != 2 || owners[tps[0]].Instance != "pod-0" {
		t.Errorf("owners %v (busy %q), want both partitions owned by pod-0", owners, busy)
	}
	stop()
	waitFor(t, "no owner once the member left", 10*time.Second, func() bool {
		owners, _, err := adm.Owners(context.Background(), "g-owners848", tps)
		return err == nil && len(owners) == 0
	})
}

// TestBoundsNameAPartitionKafkaLacks: a partition the ledger has and Kafka
// no longer does (the topic recreated with fewer partitions) is named, not
// "listing offsets of r14.s[2]: <nil>" (seen live from exactly reseed).
func TestBoundsNameAPartitionKafkaLacks(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "b.events"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cfg, err := exactly.ParseConfig(strings.NewReader(fmt.Sprintf("pipeline: b\nsource: {brokers: [%s], group: g-b}\nsink: {driver: sqlite, dsn: x.db}\ntables:\n  - {topics: b.events, table: events, mode: append}\n",
		strings.Join(c.ListenAddrs(), ", "))), "b.yaml")
	if err != nil {
		t.Fatal(err)
	}
	adm, err := kafka.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	for _, tp := range []exactly.TP{{Topic: "b.events", Partition: 2}, {Topic: "b.gone", Partition: 0}} {
		_, err := adm.AllBounds(context.Background(), []exactly.TP{tp})
		if err == nil || strings.Contains(err.Error(), "<nil>") || !strings.Contains(err.Error(), "Kafka has no") {
			t.Errorf("Bounds(%s): %v, want it named as missing", tp, err)
		}
		_, _, err = adm.StartOffsets(context.Background(), "latest", "g-b", []exactly.TP{tp})
		if err == nil || strings.Contains(err.Error(), "<nil>") {
			t.Errorf("StartOffsets(%s): %v, want it named as missing", tp, err)
		}
	}
}

// TestBoundsNameATopicKafkaLacks: a partition of a topic Kafka does not
// have (deleted) is told as a missing topic; it was "Kafka has no
// partition 0 of t: the topic has 1 partitions", counting the error entry
// Kafka lists for the unknown topic as a partition.
func TestBoundsNameATopicKafkaLacks(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "b.events"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cfg, err := exactly.ParseConfig(strings.NewReader(fmt.Sprintf("pipeline: b\nsource: {brokers: [%s], group: g-b}\nsink: {driver: sqlite, dsn: x.db}\ntables:\n  - {topics: '^b[.].*', table: events, mode: append}\n",
		strings.Join(c.ListenAddrs(), ", "))), "b.yaml")
	if err != nil {
		t.Fatal(err)
	}
	adm, err := kafka.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	_, err = adm.AllBounds(context.Background(), []exactly.TP{{Topic: "b.gone", Partition: 0}})
	if err == nil || !strings.Contains(err.Error(), "Kafka has no topic b.gone") {
		t.Errorf("AllBounds of a missing topic: %v, want 'Kafka has no topic b.gone'", err)
	}
	_, err = adm.AllBounds(context.Background(), []exactly.TP{{Topic: "b.events", Partition: 5}})
	if err == nil || !strings.Contains(err.Error(), "the topic has 2 partitions") {
		t.Errorf("AllBounds of a missing partition: %v, want 'the topic has 2 partitions'", err)
	}
}
