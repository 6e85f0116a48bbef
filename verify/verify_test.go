package verify_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/decode"
	"github.com/exactly/exactly/internal/kafka"
	"github.com/exactly/exactly/internal/sink/mysql"
	"github.com/exactly/exactly/internal/sink/postgres"
	"github.com/exactly/exactly/internal/sink/sqlite"
	"github.com/exactly/exactly/internal/sink/sqlserver"
	"github.com/exactly/exactly/internal/testenv"
	"github.com/exactly/exactly/verify"
)

const topic = "t.items"

// env is a sink whose ledger holds committed batches of real Kafka records.
type env struct {
	t       testing.TB
	cluster *kfake.Cluster
	cfg     *exactly.Config
	d       exactly.Dialect
	sink    *exactly.Sink
	db      *sql.DB
	reader  *kafka.Client
	batches []*exactly.PartitionBatch
}

// newEnv produces n records to t.items[0] and commits them through
// Sink.Commit in batches of size, so the ledger holds exactly what a
// pipeline would have written.
func newEnv(t testing.TB, driver string, n, size int) *env {
	t.Helper()
	ctx := context.Background()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	e := &env{t: t, cluster: cluster}
	var dsn string
	switch driver {
	case "sqlite":
		dsn, e.d = filepath.Join(t.TempDir(), "sink.db"), &sqlite.Dialect{}
	case "postgres":
		dsn, e.d = testenv.PostgresSchema(t), &postgres.Dialect{}
	case "mysql":
		dsn, e.d = testenv.MySQLDatabase(t), &mysql.Dialect{}
	case "sqlserver":
		dsn, e.d = testenv.SQLServerDatabase(t), &sqlserver.Dialect{}
	}
	y := fmt.Sprintf(`pipeline: audit
source: {brokers: [%s]}
sink: {driver: %s, dsn: '%s'}
tables:
  - topics: %s
    table: items
    key: [id]
`, strings.Join(cluster.ListenAddrs(), ","), driver, dsn, topic)
	if e.cfg, err = exactly.ParseConfig(strings.NewReader(y), "audit.yaml"); err != nil {
		t.Fatal(err)
	}
	if e.sink, err = exactly.NewSink(ctx, e.cfg, e.d, decode.For(e.cfg), slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.sink.Close() })
	e.db = e.sink.DB()
	text := "text"
	if driver == "sqlserver" {
		text = "nvarchar(200)"
	}
	if _, err := e.db.Exec("CREATE TABLE items (id bigint PRIMARY KEY, name " + text + ")"); err != nil {
		t.Fatal(err)
	}
	if e.reader, err = kafka.NewClient(e.cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.reader.Close)
	if _, err := e.sink.SeedOffset(ctx, exactly.TP{Topic: topic}, 0); err != nil {
		t.Fatal(err)
	}
	e.produce(n)
	e.commit(0, int64(n), size)
	return e
}

// produce appends n records to the partition.
func (e *env) produce(n int) {
	e.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.cluster.ListenAddrs()...), kgo.DefaultProduceTopic(topic))
	if err != nil {
		e.t.Fatal(err)
	}
	defer cl.Close()
	recs := make([]*kgo.Record, n)
	for i := range recs {
		id := i % 7
		recs[i] = &kgo.Record{Key: []byte(fmt.Sprintf(`{"id":%d}`, id)), Value: []byte(fmt.Sprintf(`{"id":%d,"name":"n%d"}`, id, i))}
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		e.t.Fatal(err)
	}
}

// commit applies [from, to) in batches of size through Sink.Commit.
func (e *env) commit(from, to int64, size int) {
	e.t.Helper()
	ctx := context.Background()
	var recs []*exactly.Record
	if err := e.reader.Read(ctx, exactly.TP{Topic: topic}, from, to, func(r *exactly.Record) error {
		recs = append(recs, r)
		return nil
	}); err != nil {
		e.t.Fatal(err)
	}
	next := from
	for len(recs) > 0 {
		k := min(size, len(recs))
		b := &exactly.PartitionBatch{Topic: topic, Partition: 0, From: next, Records: recs[:k]}
		recs = recs[k:]
		for _, o := range e.sink.Commit(ctx, []*exactly.PartitionBatch{b}) {
			if !o.Committed {
				e.t.Fatalf("commit %d: %v", next, o.Err)
			}
		}
		e.batches = append(e.batches, b)
		next = b.To
	}
}

// exec runs a tampering statement written with "partition" quoted the
// standard way, requoted for the dialect.
func (e *env) exec(q string, args ...any) {
	e.t.Helper()
	q = strings.ReplaceAll(q, `"partition"`, e.d.Quote("partition"))
	if _, err := e.db.Exec(exactly.Rebind(e.d, q), args...); err != nil {
		e.t.Fatalf("%s: %v", q, err)
	}
}

func (e *env) verify() *verify.Report {
	e.t.Helper()
	rep, err := verify.Run(context.Background(), exactly.NewLedger(e.db, e.d, "audit"), e.reader, verify.Options{})
	if err != nil {
		e.t.Fatal(err)
	}
	return rep
}

// want checks that the report holds exactly the findings given, by kind
// and coordinates.
func want(t *testing.T, rep *verify.Report, want ...verify.Finding) {
	t.Helper()
	got := map[string]int{}
	for _, f := range rep.Findings {
		got[fmt.Sprintf("%s %s[%d] %d..%d", f.Kind, f.Topic, f.Partition, f.From, f.To)]++
	}
	exp := map[string]int{}
	for _, f := range want {
		exp[fmt.Sprintf("%s %s[%d] %d..%d", f.Kind, topic, 0, f.From, f.To)]++
	}
	if fmt.Sprint(got) != fmt.Sprint(exp) {
		t.Errorf("findings:\n got %v\nwant %v\nreport: %+v", got, exp, rep.Findings)
	}
}

var drivers = []string{"sqlite", "postgres", "mysql"}

func TestVerifyCleanLedger(t *testing.T) {
	for _, driver := range drivers {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, driver, 50, 10)
			rep := e.verify()
			want(t, rep)
			if rep.Rehashed != 5 || rep.Records != 50 || rep.Partitions != 1 || len(rep.Notes) != 0 {
				t.Errorf("rehashed %d ranges / %d records / %d partitions / notes %v, want 5 / 50 / 1 / none", rep.Rehashed, rep.Records, rep.Partitions, rep.Notes)
			}
		})
	}
}

// TestVerifyFindsTampering tampers with the ledger or the topic in one way
// per case and proves verify reports exactly that, with its coordinates.
func TestVerifyFindsTampering(t *testing.T) {
	cases := []struct {
		name   string
		tamper func(e *env)
		want   []verify.Finding
		notes  int
	}{
		{"deleted row is a gap", func(e *env) {
			e.exec("DELETE FROM exactly_batches WHERE batch_id = ?", e.batches[2].BatchID)
		}, []verify.Finding{{Kind: verify.Gap, From: 20, To: 30}}, 0},
		{"deleted last row leaves next_offset ahead", func(e *env) {
			e.exec("DELETE FROM exactly_batches WHERE batch_id = ?", e.batches[4].BatchID)
		}, []verify.Finding{{Kind: verify.NextOffsetMismatch, From: 40, To: 50}}, 0},
		{"duplicated row is an overlap", func(e *env) {
			e.exec(`INSERT INTO exactly_batches (batch_id, pipeline, topic, "partition", from_offset, to_offset, min_offset, max_offset,
				records, upserted, deleted, skipped, dead_lettered, hash, status, error, writer, started_at, committed_at)
				SELECT CONCAT(batch_id, '-copy'), pipeline, topic, "partition", from_offset, to_offset, min_offset, max_offset,
				records, upserted, deleted, skipped, dead_lettered, hash, status, error, writer, started_at, committed_at
				FROM exactly_batches WHERE batch_id = ?`, e.batches[1].BatchID)
		}, []verify.Finding{{Kind: verify.Overlap, From: 10, To: 20}}, 0},
		{"changed hash", func(e *env) {
			e.exec("UPDATE exactly_batches SET hash = ? WHERE batch_id = ?", strings.Repeat("0", 64), e.batches[3].BatchID)
		}, []verify.Finding{{Kind: verify.HashMismatch, From: 30, To: 40}}, 0},
		{"changed count", func(e *env) {
			e.exec("UPDATE exactly_batches SET records = 9 WHERE batch_id = ?", e.batches[0].BatchID)
		}, []verify.Finding{{Kind: verify.CountMismatch, From: 0, To: 10}}, 0},
		{"retention deleted unread offsets", func(e *env) {
			e.produce(20) // offsets 50..69, never applied
			if err := e.cluster.DeleteRecords(topic, 0, 60); err != nil {
				e.t.Fatal(err)
			}
		}, []verify.Finding{{Kind: verify.RetentionLoss, From: 50, To: 60}}, 5}, // the 5 applied ranges: deleted after apply, notes only
		{"retention after apply is only a note", func(e *env) {
			if err := e.cluster.DeleteRecords(topic, 0, 25); err != nil {
				e.t.Fatal(err)
			}
		}, nil, 3}, // 0..9, 10..19, 20..29 can no longer be re-hashed; 30.. still are
		{"failed batch never retried", func(e *env) {
			e.produce(5)
			e.exec(`INSERT INTO exactly_batches (batch_id, pipeline, topic, "partition", from_offset, to_offset, min_offset, max_offset,
				records, upserted, deleted, skipped, dead_lettered, hash, status, error, writer, started_at, committed_at)
				VALUES (?, 'audit', ?, 0, 50, 55, 50, 54, 5, 0, 0, 0, 0, '', 'failed', 'connection reset', 'test', ?, NULL)`,
				"f-open", topic, time.Now().UTC())
			// A failed batch a later commit covered is the normal retry trail.
			e.exec(`INSERT INTO exactly_batches (batch_id, pipeline, topic, "partition", from_offset, to_offset, min_offset, max_offset,
				records, upserted, deleted, skipped, dead_lettered, hash, status, error, writer, started_at, committed_at)
				VALUES (?, 'audit', ?, 0, 10, 20, 10, 19, 10, 0, 0, 0, 0, '', 'failed', 'deadlock', 'test', ?, NULL)`,
				"f-retried", topic, time.Now().UTC())
		}, []verify.Finding{{Kind: verify.FailedUnresolved, From: 50, To: 55}}, 0},
	}
	for _, driver := range drivers {
		for _, c := range cases {
			t.Run(driver+"/"+c.name, func(t *testing.T) {
				t.Parallel()
				e := newEnv(t, driver, 50, 10)
				c.tamper(e)
				rep := e.verify()
				want(t, rep, c.want...)
				noted := 0 // ledger rows covered by notes, merged when adjacent
				for _, n := range rep.Notes {
					noted += n.Batches
				}
				if noted != c.notes || (c.notes > 0 && len(rep.Notes) != 1) {
					t.Errorf("notes: got %v covering %d batches, want one note covering %d", rep.Notes, noted, c.notes)
				}
			})
		}
	}
}

// TestVerifySince checks only batches started after --from.
func TestVerifySince(t *testing.T) {
	e := newEnv(t, "sqlite", 30, 10)
	e.exec("UPDATE exactly_batches SET hash = 'x', started_at = ? WHERE batch_id = ?", time.Now().Add(-48*time.Hour).UTC(), e.batches[0].BatchID)
	rep, err := verify.Run(context.Background(), exactly.NewLedger(e.db, e.d, "audit"), e.reader, verify.Options{Since: time.Now().Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	want(t, rep)
	if rep.Rehashed != 2 {
		t.Errorf("rehashed %d ranges, want 2", rep.Rehashed)
	}
	want(t, e.verify(), verify.Finding{Kind: verify.HashMismatch, From: 0, To: 10})
}

// TestVerifyRealFailedBatch leaves a failed batch the way the sink records
// one (its table is missing, Commit fails and writes the failed row), then
// lets the retry succeed: unresolved first, resolved after.
func TestVerifyRealFailedBatch(t *testing.T) {
	e := newEnv(t, "sqlite", 20, 10)
	e.produce(5) // offsets 20..24
	e.exec("ALTER TABLE items RENAME TO items_away")
	e.sink.Forget("items")
	var recs []*exactly.Record
	if err := e.reader.Read(context.Background(), exactly.TP{Topic: topic}, 20, 25, func(r *exactly.Record) error {
		recs = append(recs, r)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	b := &exactly.PartitionBatch{Topic: topic, From: 20, Records: recs}
	for _, o := range e.sink.Commit(context.Background(), []*exactly.PartitionBatch{b}) {
		if o.Committed {
			t.Fatal("a batch into a missing table committed")
		}
	}
	want(t, e.verify(), verify.Finding{Kind: verify.FailedUnresolved, From: 20, To: 25})

	e.exec("ALTER TABLE items_away RENAME TO items")
	e.sink.Forget("items")
	e.commit(20, 25, 10)
	want(t, e.verify())
}

// TestVerifySinceStillReportsAStuckRange: a batch that failed before the
// window and that no committed batch covers since means records not
// applied for that long (the partition is stuck): the default window
// (the last 24 h) hid it, with the worst cases (the oldest) hidden first.
// Like an open dead letter it is reported whatever the window; a failed
// batch before the window whose range was committed since is not.
func TestVerifySinceStillReportsAStuckRange(t *testing.T) {
	e := newEnv(t, "sqlite", 20, 10)
	e.produce(5) // offsets 20..24
	old := time.Now().Add(-48 * time.Hour).UTC()
	for i, r := range [][2]int64{{10, 20}, {20, 25}} { // 10..19 was committed since; 20..24 never
		e.exec(`INSERT INTO exactly_batches (batch_id, pipeline, topic, "partition", from_offset, to_offset,
			records, upserted, deleted, skipped, dead_lettered, hash, status, error, writer, started_at)
			VALUES (?, 'audit', ?, 0, ?, ?, 5, 0, 0, 0, 0, '', 'failed', 'writing batch: disk full', 'w', ?)`,
			fmt.Sprintf("0000000000000-failed00-00000%d", i), topic, r[0], r[1], old)
	}
	rep, err := verify.Run(context.Background(), exactly.NewLedger(e.db, e.d, "audit"), e.reader, verify.Options{Since: time.Now().Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	want(t, rep, verify.Finding{Kind: verify.FailedUnresolved, From: 20, To: 25})
}

// TestVerifyPagedLedger tampers in several ways at once and checks that
// reading the ledger a page at a time (here about one row per page) finds
// exactly what one big page finds: the chain, coverage of failed batches
// and the re-hash carry across page boundaries.
func TestVerifyPagedLedger(t *testing.T) {
	e := newEnv(t, "sqlite", 80, 10)                                                         // batches 0..70 step 10
	e.exec("DELETE FROM exactly_batches WHERE batch_id = ?", e.batches[2].BatchID)           // gap 20..30
	e.exec("UPDATE exactly_batches SET hash = 'x' WHERE batch_id = ?", e.batches[5].BatchID) // hash 50..60
	e.exec(`INSERT INTO exactly_batches (batch_id, pipeline, topic, "partition", from_offset, to_offset, min_offset, max_offset,
		records, upserted, deleted, skipped, dead_lettered, hash, status, error, writer, started_at, committed_at)
		SELECT CONCAT(batch_id, '-copy'), pipeline, topic, "partition", from_offset, to_offset, min_offset, max_offset,
		records, upserted, deleted, skipped, dead_lettered, hash, status, error, writer, started_at, committed_at
		FROM exactly_batches WHERE batch_id = ?`, e.batches[6].BatchID) // overlap 60..70
	failed := func(id string, from, to int64) {
		e.exec(`INSERT INTO exactly_batches (batch_id, pipeline, topic, "partition", from_offset, to_offset, min_offset, max_offset,
			records, upserted, deleted, skipped, dead_lettered, hash, status, error, writer, started_at, committed_at)
			VALUES (?, 'audit', ?, 0, ?, ?, ?, ?, 1, 0, 0, 0, 0, '', 'failed', 'x', 'test', ?, NULL)`,
			id, topic, from, to, from, to-1, time.Now().UTC())
	}
	failed("f-covered", 1, 19)     // covered by 0..10 and 10..20, which start in other pages
	failed("f-across-gap", 15, 25) // 20..30 was deleted: not covered
	wantAll := []verify.Finding{
		{Kind: verify.Gap, From: 20, To: 30},
		{Kind: verify.HashMismatch, From: 50, To: 60},
		{Kind: verify.Overlap, From: 60, To: 70},
		{Kind: verify.FailedUnresolved, From: 15, To: 25},
	}
	whole := e.verify()
	want(t, whole, wantAll...)
	defer verify.SetPageRows(1)()
	paged := e.verify()
	want(t, paged, wantAll...)
	if paged.Rehashed != whole.Rehashed || paged.Records != whole.Records || paged.Batches != whole.Batches {
		t.Errorf("paged: %d ranges %d records %d rows, one page: %d %d %d",
			paged.Rehashed, paged.Records, paged.Batches, whole.Rehashed, whole.Records, whole.Batches)
	}
}

// TestVerifyNamesEveryReseed: two reseeds of one partition are two notes,
// each with its own who, why, from and to. They were merged into one note
// by range (as notes of a long compacted stretch are): verify printed the
// first reseed's text — "the chain restarts at 30" — and dropped the
// second, the one the chain restarts from, with its reason.
func TestVerifyNamesEveryReseed(t *testing.T) {
	e := newEnv(t, "sqlite", 50, 10)
	ctx := context.Background()
	tp := exactly.TP{Topic: topic}
	for _, r := range []exactly.Reseed{{TP: tp, To: 30, Who: "ann@h", Why: "first"}, {TP: tp, To: 20, Who: "bob@h", Why: "second"}} {
		if _, _, err := e.sink.Reseed(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	e.commit(20, 50, 10)
	rep := e.verify()
	want(t, rep)
	var got []string
	for _, n := range rep.Notes {
		if n.Kind == verify.Reseeded {
			got = append(got, n.Detail)
		}
	}
	if len(got) != 2 || !strings.Contains(got[0], "from 50 to 30") || !strings.Contains(got[0], "first") ||
		!strings.Contains(got[1], "from 30 to 20") || !strings.Contains(got[1], "bob@h") || !strings.Contains(got[1], "second") {
		t.Errorf("reseeded notes:\n%s\nwant two: 50 -> 30 by ann (first), 30 -> 20 by bob (second)", strings.Join(got, "\n"))
	}
}

// recreate deletes the topic and creates it again (a new topic id) with n
// records unlike the old ones, and gives the env a new reader (verify
// opens one per run). It returns the old and the new topic id.
func (e *env) recreate(n int) (was, now string) {
	e.t.Helper()
	ctx := context.Background()
	ids, err := e.reader.TopicIDs(ctx, []string{topic})
	if err != nil || ids[topic] == "" {
		e.t.Fatalf("topic id of %s: %v %v", topic, ids, err)
	}
	was = ids[topic]
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.cluster.ListenAddrs()...), kgo.DefaultProduceTopic(topic))
	if err != nil {
		e.t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if _, err := adm.DeleteTopics(ctx, topic); err != nil {
		e.t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		_, err := adm.CreateTopic(ctx, 1, 1, nil, topic)
		if err == nil {
			break
		}
		if !strings.Contains(err.Error(), kerr.TopicAlreadyExists.Message) || time.Now().After(deadline) {
			e.t.Fatal(err)
		}
	}
	cl.ForceMetadataRefresh()
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{Key: []byte(fmt.Sprintf(`{"id":%d}`, i%7)), Value: []byte(fmt.Sprintf(`{"id":%d,"name":"recreated-%d"}`, i%7, i))}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		e.t.Fatal(err)
	}
	e.reader.Close()
	if e.reader, err = kafka.NewClient(e.cfg); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(e.reader.Close)
	if ids, err = e.reader.TopicIDs(ctx, []string{topic}); err != nil || ids[topic] == "" || ids[topic] == was {
		e.t.Fatalf("topic id of the recreated %s: %v %v (was %s)", topic, ids, err, was)
	}
	return was, ids[topic]
}

// TestVerifyRecreatedTopic: a topic deleted and created again under a
// ledger whose offsets row recorded its id is one topic_recreated finding
// for the partition, naming both ids, next_offset and the exactly reseed
// command, and its ranges are noted as not re-hashable. Before, verify
// re-read the ledger's ranges from the new topic and reported a
// count_mismatch or hash_mismatch per range, which sends an operator
// hunting for an altered ledger. After exactly reseed (which records the
// new id) and batches of the new topic, verify is clean again.
func TestVerifyRecreatedTopic(t *testing.T) {
	for _, driver := range drivers {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			tp := exactly.TP{Topic: topic}
			e := newEnv(t, driver, 30, 10)
			ids, err := e.reader.TopicIDs(ctx, []string{topic})
			if err != nil {
				t.Fatal(err)
			}
			if err := e.sink.RecordTopicID(ctx, tp, ids[topic]); err != nil { // as the source does on assignment
				t.Fatal(err)
			}
			want(t, e.verify())
			was, now := e.recreate(25)

			rep := e.verify()
			want(t, rep, verify.Finding{Kind: verify.TopicRecreated, From: 30, To: 30})
			if len(rep.Findings) == 1 {
				f := rep.Findings[0]
				for _, s := range []string{was, now, "next_offset 30", "exactly reseed --topic t.items --partition 0 --to earliest"} {
					if !strings.Contains(f.String(), s) {
						t.Errorf("the finding does not say %q:\n%s", s, f)
					}
				}
			}
			if len(rep.Notes) != 1 || rep.Notes[0].Kind != verify.DeletedAfterApply || rep.Notes[0].Batches != 3 || rep.Rehashed != 0 {
				t.Errorf("the old topic's ranges: rehashed %d, notes %v; want none re-hashed, one note of 3 ranges", rep.Rehashed, rep.Notes)
			}

			if _, _, err := e.sink.Reseed(ctx, exactly.Reseed{TP: tp, To: 0, TopicID: now, Who: "ann@h", Why: "recreated"}); err != nil {
				t.Fatal(err)
			}
			e.commit(0, 25, 10)
			rep = e.verify()
			want(t, rep)
			if rep.Rehashed != 3 || rep.Records != 25 || len(rep.Notes) != 1 || rep.Notes[0].Kind != verify.Reseeded {
				t.Errorf("after the reseed: rehashed %d ranges, %d records, notes %v; want 3, 25, the reseed", rep.Rehashed, rep.Records, rep.Notes)
			}
		})
	}
}

// TestVerifyRecreatedTopicWithFewerPartitions: a topic recreated with
// fewer partitions is one topic_recreated finding per partition it still
// has; a partition it no longer has gets none (its ranges are noted, the
// partition no longer exists in Kafka, as before topic ids), since the
// reseed the finding names cannot run there: Kafka has no such
// partition, and verify would never be clean again. Before, partition 1
// here was a topic_recreated finding whose reseed is refused.
func TestVerifyRecreatedTopicWithFewerPartitions(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, "sqlite", 20, 10)
	ids, err := e.reader.TopicIDs(ctx, []string{topic})
	if err != nil {
		t.Fatal(err)
	}
	// Partition 1 of the old topic, applied while it existed.
	p1 := exactly.TP{Topic: topic, Partition: 1}
	if _, err := e.sink.SeedOffset(ctx, p1, 0); err != nil {
		t.Fatal(err)
	}
	var recs []*exactly.Record
	for i := range 5 {
		recs = append(recs, &exactly.Record{Topic: topic, Partition: 1, Offset: int64(i),
			Key: []byte(fmt.Sprintf(`{"id":%d}`, 100+i)), Value: []byte(fmt.Sprintf(`{"id":%d,"name":"p1"}`, 100+i))})
	}
	for _, o := range e.sink.Commit(ctx, []*exactly.PartitionBatch{{Topic: topic, Partition: 1, From: 0, Records: recs}}) {
		if !o.Committed {
			t.Fatalf("commit to partition 1: %v", o.Err)
		}
	}
	for _, tp := range []exactly.TP{{Topic: topic}, p1} {
		if err := e.sink.RecordTopicID(ctx, tp, ids[topic]); err != nil {
			t.Fatal(err)
		}
	}
	e.recreate(5) // one partition, as before

	rep := e.verify()
	want(t, rep, verify.Finding{Kind: verify.TopicRecreated, From: 20, To: 20})
	var p1Notes int
	for _, n := range rep.Notes {
		if n.Partition == 1 && n.Kind == verify.DeletedAfterApply {
			p1Notes++
		}
	}
	if p1Notes != 1 {
		t.Errorf("partition 1's range: notes %v, want one deleted_after_apply", rep.Notes)
	}
}
