package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
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
	"github.com/exactly/exactly/internal/testenv"
	"github.com/exactly/exactly/status"
)

// redriveEnv is a pipeline into a table whose CHECK constraint refuses
// the name "SECRETVALUE": the records carrying it are dead-lettered.
type redriveEnv struct {
	file, driver string
	versioned    bool // items has a column v (fix keeps it)
	cluster      *kfake.Cluster
	d            exactly.Dialect
	db           *sql.DB
	sink         *exactly.Sink
	logs         bytes.Buffer
}

func newRedriveEnv(t *testing.T, driver string, values ...string) *redriveEnv {
	t.Helper()
	var recs []*kgo.Record
	for _, v := range values { // "id=name"
		id, name, _ := strings.Cut(v, "=")
		recs = append(recs, &kgo.Record{Key: []byte(`{"id":` + id + `}`), Value: []byte(`{"id":` + id + `,"name":"` + name + `"}`)})
	}
	return newRedriveEnvWith(t, driver, "key: [id]", "CREATE TABLE items (id bigint PRIMARY KEY, name text CONSTRAINT name_ok CHECK (name <> 'SECRETVALUE'))", recs)
}

// newRedriveEnvWith is newRedriveEnv with the rule's options (YAML
// inside the rule), the table's CREATE statement and the records given.
func newRedriveEnvWith(t *testing.T, driver, rule, create string, records []*kgo.Record) *redriveEnv {
	t.Helper()
	ctx := context.Background()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "t.items"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	e := &redriveEnv{driver: driver, versioned: strings.Contains(rule, "version: v"), cluster: cluster}
	dir := t.TempDir()
	dsn := filepath.Join(dir, "sink.db")
	if driver == "postgres" {
		dsn = testenv.PostgresSchema(t)
	}
	y := fmt.Sprintf(`pipeline: redrive
source: {brokers: [%s]}
sink: {driver: %s, dsn: '%s'}
tables:
  - topics: t.items
    table: items
    %s
`, strings.Join(cluster.ListenAddrs(), ","), driver, dsn, rule)
	e.file = filepath.Join(dir, "redrive.yaml")
	if err := os.WriteFile(e.file, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := exactly.LoadConfig(e.file)
	if err != nil {
		t.Fatal(err)
	}
	if e.d, err = dialectFor(driver); err != nil {
		t.Fatal(err)
	}
	if e.sink, err = exactly.NewSink(ctx, cfg, e.d, decode.For(cfg), slog.New(slog.NewTextHandler(&e.logs, nil))); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.sink.Close() })
	e.db = e.sink.DB()
	e.exec(t, create)
	if _, err := e.sink.SeedOffset(ctx, exactly.TP{Topic: "t.items"}, 0); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.DefaultProduceTopic("t.items"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for _, r := range records {
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	kr, err := kafka.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer kr.Close()
	var recs []*exactly.Record
	if err := kr.Read(ctx, exactly.TP{Topic: "t.items"}, 0, int64(len(records)), func(r *exactly.Record) error {
		recs = append(recs, r)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// One record per batch: a later change of a key never collapses with
	// an earlier one inside a batch.
	for _, r := range recs {
		b := &exactly.PartitionBatch{Topic: "t.items", From: r.Offset, Records: []*exactly.Record{r}}
		for _, o := range e.sink.Commit(ctx, []*exactly.PartitionBatch{b}) {
			if !o.Committed {
				t.Fatal(o.Err)
			}
		}
	}
	return e
}

func (e *redriveEnv) exec(t *testing.T, q string, args ...any) {
	t.Helper()
	if _, err := e.db.Exec(exactly.Rebind(e.d, q), args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func (e *redriveEnv) rows(t *testing.T) string {
	t.Helper()
	rs, err := e.db.Query("SELECT id, name FROM items ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	var out []string
	for rs.Next() {
		var id int64
		var name string
		if err := rs.Scan(&id, &name); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%d=%s", id, name))
	}
	return strings.Join(out, " ")
}

// fix drops the CHECK constraint that refused the records: the cause of
// the dead letters, fixed by the operator.
func (e *redriveEnv) fix(t *testing.T) {
	t.Helper()
	if e.driver == "postgres" {
		e.exec(t, "ALTER TABLE items DROP CONSTRAINT name_ok")
		return
	}
	fixed := "CREATE TABLE items_fixed (id bigint PRIMARY KEY, name text)"
	if e.versioned {
		fixed = "CREATE TABLE items_fixed (id bigint PRIMARY KEY, name text, v bigint)"
	}
	e.exec(t, fixed)
	e.exec(t, "INSERT INTO items_fixed SELECT * FROM items")
	e.exec(t, "DROP TABLE items")
	e.exec(t, "ALTER TABLE items_fixed RENAME TO items")
}

// TestRedriveEndToEnd: a bad record is dead-lettered with one warning
// that carries no payload; status counts it and verify reports it (it
// said "OK: no findings"); after the cause is fixed, redrive applies it and
// marks it resolved in the same transaction, and verify is clean.
func TestRedriveEndToEnd(t *testing.T) {
	for _, driver := range []string{"sqlite", "postgres"} {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			e := newRedriveEnv(t, driver, "1=a", "2=SECRETVALUE", "3=c")
			if got, want := e.rows(t), "1=a 3=c"; got != want {
				t.Fatalf("table after the run: %s, want %s", got, want)
			}
			logs := e.logs.String()
			if n := strings.Count(logs, `msg="records dead-lettered"`); n != 1 ||
				!strings.Contains(logs, "level=WARN") || !strings.Contains(logs, "count=1 first_offset=1") {
				t.Errorf("want one WARN naming count 1 and first offset 1, got:\n%s", logs)
			}
			if strings.Contains(logs, "SECRETVALUE") {
				t.Errorf("the dead-letter warning carries the record's value:\n%s", logs)
			}

			code, out, errs := runCLI("status", "-c", e.file, "--json")
			var st struct{ Partitions []status.Partition }
			if err := json.Unmarshal([]byte(out), &st); code != 0 || err != nil || len(st.Partitions) != 1 {
				t.Fatalf("status --json: exit %d, %v\n%s%s", code, err, out, errs)
			}
			if p := st.Partitions[0]; p.DeadLetters != 1 || p.DeadLettersResolved != 0 {
				t.Errorf("status --json: dead letters %d open, %d resolved; want 1, 0", p.DeadLetters, p.DeadLettersResolved)
			}
			code, out, _ = runCLI("status", "-c", e.file)
			if code != 0 || !strings.Contains(out, "DEAD_LETTERS") {
				t.Errorf("status text (exit %d) has no DEAD_LETTERS column:\n%s", code, out)
			}

			code, out, errs = runCLI("verify", "-c", e.file)
			if code != 1 || !strings.Contains(out, "FINDING dead_letters t.items[0] offsets 1..1: 1 records") || strings.Contains(out, "OK") {
				t.Fatalf("verify with an open dead letter: exit %d, want 1 and a dead_letters finding\n%s%s", code, out, errs)
			}

			// Without --apply, nothing changes.
			code, out, errs = runCLI("redrive", "-c", e.file)
			if code != 0 || !strings.Contains(out, "would redrive t.items[0]: 1 open dead letters, offsets 1..1") {
				t.Errorf("redrive dry run: exit %d\n%s%s", code, out, errs)
			}
			if strings.Contains(out, "SECRETVALUE") {
				t.Errorf("redrive's listing carries the record's value:\n%s", out)
			}
			// Not fixed yet: it still fails, stays open, exit 1.
			code, out, errs = runCLI("redrive", "-c", e.file, "--apply", "--by", "tester")
			if code != 1 || !strings.Contains(out, "left open t.items[0]@1: still fails") {
				t.Errorf("redrive before the fix: exit %d, want 1 and the record left open\n%s%s", code, out, errs)
			}

			e.fix(t)
			code, out, errs = runCLI("redrive", "-c", e.file, "--table", "item*", "--apply", "--by", "tester")
			if code != 0 || !strings.Contains(out, "redrove t.items[0]: 1 dead letters applied and resolved in batch") {
				t.Fatalf("redrive after the fix: exit %d\n%s%s", code, out, errs)
			}
			if got, want := e.rows(t), "1=a 2=SECRETVALUE 3=c"; got != want {
				t.Errorf("table after redrive: %s, want %s", got, want)
			}
			var by, batch, status string
			var resolvedAt any
			if err := e.db.QueryRow(`SELECT d.resolved_at, d.resolved_by, d.resolved_batch, b.status FROM exactly_dead_letters d
				JOIN exactly_batches b ON b.batch_id = d.resolved_batch`).Scan(&resolvedAt, &by, &batch, &status); err != nil {
				t.Fatalf("reading the resolved dead letter: %v", err)
			}
			if resolvedAt == nil || by != "tester" || status != "redriven" || !strings.Contains(out, batch) {
				t.Errorf("dead letter resolved at %v by %q in batch %q (ledger status %q)", resolvedAt, by, batch, status)
			}
			code, out, errs = runCLI("verify", "-c", e.file)
			if code != 0 || !strings.Contains(out, "OK: no findings") {
				t.Errorf("verify after redrive: exit %d\n%s%s", code, out, errs)
			}
			code, out, _ = runCLI("status", "-c", e.file, "--json")
			if err := json.Unmarshal([]byte(out), &st); code != 0 || err != nil || st.Partitions[0].DeadLetters != 0 || st.Partitions[0].DeadLettersResolved != 1 {
				t.Errorf("status after redrive: %s", out)
			}
			checkLedgerViews(t, e, 3, 0)
			// Nothing left: a second redrive does nothing.
			if code, out, _ := runCLI("redrive", "-c", e.file, "--apply"); code != 0 || !strings.Contains(out, "no open dead letters") {
				t.Errorf("second redrive: exit %d\n%s", code, out)
			}
		})
	}
}

// TestRedriveLeavesSupersededOpen: the pipeline applied a newer change of
// the dead letter's key after it; redriving the dead letter would write
// the older state back, so it stays open and the table keeps the newer row.
func TestRedriveLeavesSupersededOpen(t *testing.T) {
	e := newRedriveEnv(t, "sqlite", "1=a", "2=SECRETVALUE", "2=newer", "3=SECRETVALUE")
	e.fix(t)
	code, out, errs := runCLI("redrive", "-c", e.file, "--apply")
	if code != 1 || !strings.Contains(out, "left open t.items[0]@1: the pipeline applied a newer change of the same key at offset 2") ||
		!strings.Contains(out, "redrove t.items[0]: 1 dead letters applied and resolved") {
		t.Fatalf("redrive: exit %d, want 1, offset 1 left open, offset 3 resolved\n%s%s", code, out, errs)
	}
	if got, want := e.rows(t), "1=a 2=newer 3=SECRETVALUE"; got != want {
		t.Errorf("table after redrive: %s, want %s", got, want)
	}
	// A selection that matches no partition of the ledger is refused like
	// status's and verify's (a typo), naming the topics there are; it said
	// "no open dead letters selected", exit 0, as if all were well.
	for _, sel := range [][]string{{"--topic", "other.*"}, {"--table", "itemz"}} {
		code, out, errs := runCLI(append([]string{"redrive", "-c", e.file, "--apply"}, sel...)...)
		if code != 2 || !strings.Contains(errs, "matches none of the 1 partitions the ledger holds (topics t.items)") {
			t.Errorf("redrive %s: exit %d, want 2 and the topics there are\n%s%s", sel, code, out, errs)
		}
	}
	// A selection that matches, with nothing open there, is not an error.
	if code, out, errs := runCLI("redrive", "-c", e.file, "--table", "items", "--from", "4"); code != 0 || !strings.Contains(out, "no open dead letters selected") {
		t.Errorf("redrive --table items --from 4: exit %d\n%s%s", code, out, errs)
	}
}

// TestReplayResolvesTheDeadLettersItApplies: the first complaint,
// "after the cause is fixed, replay re-applies the record but its
// dead-letter row stays, and nothing marks it resolved", was still so with
// redrive in place: the row was in its table while status counted an open
// dead letter and verify reported it "not in their table". Replay now
// marks the dead letters it applied resolved by its ledger row, in its
// transaction; one that still fails stays open.
func TestReplayResolvesTheDeadLettersItApplies(t *testing.T) {
	for _, driver := range []string{"sqlite", "postgres"} {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			e := newRedriveEnv(t, driver, "1=a", "2=SECRETVALUE", "3=c", "4=SECRETVALUE")
			// Not fixed yet: replay applies nothing new and resolves nothing.
			code, out, errs := runCLI("replay", "-c", e.file, "--topic", "t.items", "--from", "0")
			if code != 0 || strings.Contains(out, "marked resolved") {
				t.Fatalf("replay before the fix: exit %d\n%s%s", code, out, errs)
			}
			e.fix(t)
			code, out, errs = runCLI("replay", "-c", e.file, "--topic", "t.items", "--from", "2")
			if code != 0 || !strings.Contains(out, "1 open dead letters of the range applied and marked resolved") {
				t.Fatalf("replay after the fix: exit %d\n%s%s", code, out, errs)
			}
			if got, want := e.rows(t), "1=a 3=c 4=SECRETVALUE"; got != want {
				t.Errorf("table after replay: %s, want %s", got, want)
			}
			var open, resolved int
			var batch, status string
			if err := e.db.QueryRow(`SELECT COUNT(*) FROM exactly_dead_letters WHERE resolved_at IS NULL`).Scan(&open); err != nil || open != 1 {
				t.Errorf("open dead letters after replay: %d, %v; want 1 (offset 1, outside the range)", open, err)
			}
			if err := e.db.QueryRow(`SELECT COUNT(*), MAX(d.resolved_batch), MAX(b.status) FROM exactly_dead_letters d
				JOIN exactly_batches b ON b.batch_id = d.resolved_batch`).Scan(&resolved, &batch, &status); err != nil ||
				resolved != 1 || status != "replayed" || !strings.Contains(out, batch) {
				t.Errorf("resolved by replay: %d in batch %q (%s), %v\n%s", resolved, batch, status, err, out)
			}
			if code, out, _ := runCLI("verify", "-c", e.file); code != 1 || !strings.Contains(out, "FINDING dead_letters t.items[0] offsets 1..1") || strings.Contains(out, "3..3") {
				t.Errorf("verify after replay: exit %d, want only offset 1 reported\n%s", code, out)
			}
		})
	}
}

// TestRedriveStillFailingCarriesNoPayload: the dry run's listing masks
// the quoted values of a dead letter's error, but --apply printed the
// error of a record that still fails whole, the value with it ("not an
// integer: "SECRETVALUE"").
func TestRedriveStillFailingCarriesNoPayload(t *testing.T) {
	e := newRedriveEnvWith(t, "postgres", "key: [id]", "CREATE TABLE items (id bigint PRIMARY KEY, name bigint)",
		[]*kgo.Record{{Key: []byte(`{"id":1}`), Value: []byte(`{"id":1,"name":"SECRETVALUE"}`)}})
	code, out, errs := runCLI("redrive", "-c", e.file, "--apply")
	if code != 1 || !strings.Contains(out, "left open t.items[0]@0: still fails: ") || strings.Contains(out+errs, "SECRETVALUE") {
		t.Errorf("redrive of a record that still fails: exit %d, want 1, the record named and no value\n%s%s", code, out, errs)
	}
}

// TestRedriveNeverUndoesANewerDelete: on a table with a version column a
// dead letter is applied under the version guard, but a delete leaves no
// row to hold a version: the dead-lettered update of a key the pipeline
// deleted since was applied and brought the deleted row back (exit 0,
// the row present, verify clean). A later delete now leaves it open, as
// on a table without a version; a later upsert with a version still lets
// the guard decide.
func TestRedriveNeverUndoesANewerDelete(t *testing.T) {
	for _, driver := range []string{"sqlite", "postgres"} {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			rec := func(id, value string) *kgo.Record {
				r := &kgo.Record{Key: []byte(`{"id":` + id + `}`)}
				if value != "" {
					r.Value = []byte(`{"id":` + id + `,` + value + `}`)
				}
				return r
			}
			e := newRedriveEnvWith(t, driver, "key: [id]\n    version: v",
				"CREATE TABLE items (id bigint PRIMARY KEY, name text CONSTRAINT name_ok CHECK (name <> 'SECRETVALUE'), v bigint)",
				[]*kgo.Record{
					rec("1", `"name":"a","v":1`),
					rec("2", `"name":"b","v":1`),
					rec("2", `"name":"SECRETVALUE","v":2`), // 2: dead letter
					rec("2", ""),                           // 3: the tombstone deletes id 2
					rec("4", `"name":"SECRETVALUE","v":1`), // 4: dead letter
					rec("4", `"name":"d2","v":2`),          // 5: newer version, applied
				})
			if got, want := e.rows(t), "1=a 4=d2"; got != want {
				t.Fatalf("table after the run: %s, want %s", got, want)
			}
			e.fix(t)
			code, out, errs := runCLI("redrive", "-c", e.file, "--apply")
			if code != 1 || !strings.Contains(out, "left open t.items[0]@2: the pipeline applied a newer change of the same key at offset 3") ||
				!strings.Contains(out, "redrove t.items[0]: 1 dead letters applied and resolved") {
				t.Errorf("redrive: exit %d, want 1, offset 2 left open (deleted at 3), offset 4 resolved under the guard\n%s%s", code, out, errs)
			}
			if got, want := e.rows(t), "1=a 4=d2"; got != want {
				t.Errorf("table after redrive: %s, want %s (id 2 was deleted after its dead letter)", got, want)
			}
		})
	}
}

// checkLedgerViews creates the views the README offers for ad-hoc SQL
// (PostgreSQL/SQLite text, as printed) and reads them without quoting.
func checkLedgerViews(t *testing.T, e *redriveEnv, wantRecords, wantOpen int) {
	t.Helper()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(readme), "```sql\n-- PostgreSQL, SQLite\n")
	block, _, _ = strings.Cut(block, "-- MySQL")
	if !ok || !strings.Contains(block, "CREATE VIEW exactly_ledger") {
		t.Fatal("README: the ledger views are gone")
	}
	for _, stmt := range strings.Split(block, ";") {
		if strings.TrimSpace(stmt) != "" {
			e.exec(t, stmt)
		}
	}
	var records, open int
	if err := e.db.QueryRow("SELECT SUM(records) FROM exactly_ledger WHERE status = 'committed' AND part = 0").Scan(&records); err != nil || records != wantRecords {
		t.Errorf("exactly_ledger: %d committed records, %v; want %d", records, err, wantRecords)
	}
	if err := e.db.QueryRow("SELECT COUNT(*) FROM exactly_open_dead_letters WHERE record_offset >= 0").Scan(&open); err != nil || open != wantOpen {
		t.Errorf("exactly_open_dead_letters: %d, %v; want %d", open, err, wantOpen)
	}
}

// TestRedriveLeavesTheDeadLettersOfAReplacedLogOpen: redrive checks a
// dead letter against the newer changes of its key the pipeline applied
// since, read from Kafka; once the topic was deleted and created again
// those are gone, and the new topic's records at those offsets say
// nothing. So a dead letter of a recreated topic (another topic id than
// exactly_offsets recorded), or one dead-lettered before the partition's
// reseed, stays open, saying why, and the newer row stays. Before, redrive
// read the new topic, found no newer change and wrote the dead letter's
// older state over it ("2=SECRETVALUE" over "2=newer"; found on the
// binary with PostgreSQL and a recreated topic).
func TestRedriveLeavesTheDeadLettersOfAReplacedLogOpen(t *testing.T) {
	ctx := context.Background()
	e := newRedriveEnv(t, "sqlite", "1=a", "2=SECRETVALUE", "2=newer")
	cfg, err := exactly.LoadConfig(e.file)
	if err != nil {
		t.Fatal(err)
	}
	kr, err := kafka.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer kr.Close()
	tp := exactly.TP{Topic: "t.items"}
	ids, err := kr.TopicIDs(ctx, []string{tp.Topic})
	if err != nil || ids[tp.Topic] == "" {
		t.Fatalf("topic id: %v %v", ids, err)
	}
	if err := e.sink.RecordTopicID(ctx, tp, ids[tp.Topic]); err != nil { // as the source does on assignment
		t.Fatal(err)
	}
	e.fix(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.cluster.ListenAddrs()...), kgo.DefaultProduceTopic(tp.Topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if _, err := adm.DeleteTopics(ctx, tp.Topic); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, err := adm.CreateTopic(ctx, 1, 1, nil, tp.Topic); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatal(err)
		}
	}
	cl.ForceMetadataRefresh()
	for i := 5; i < 9; i++ {
		r := &kgo.Record{Key: []byte(fmt.Sprintf(`{"id":%d}`, i)), Value: []byte(fmt.Sprintf(`{"id":%d,"name":"other"}`, i))}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	for _, step := range []string{"recreated", "reseeded"} {
		if step == "reseeded" {
			if code, out, errs := runCLI("reseed", "-c", e.file, "--topic", tp.Topic, "--partition", "0", "--to", "earliest", "--reason", "recreated"); code != 0 {
				t.Fatalf("reseed: exit %d\n%s%s", code, out, errs)
			}
		}
		code, out, errs := runCLI("redrive", "-c", e.file, "--apply")
		if code != 1 || !strings.Contains(out, "left open t.items[0]@1") {
			t.Errorf("%s: redrive exit %d, want 1 and the dead letter left open\n%s%s", step, code, out, errs)
		}
		if got, want := e.rows(t), "1=a 2=newer"; got != want {
			t.Fatalf("%s: table after redrive: %s, want %s", step, got, want)
		}
	}
}
