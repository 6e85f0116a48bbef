package sinktest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/exactly/exactly"
)

// itemCols is the shape of most test tables: id, name, qty.
func itemCols(ty Types) []col {
	return []col{{"id", ty.BigInt, kInt, true}, {"name", ty.Text, kText, false}, {"qty", ty.BigInt, kInt, false}}
}

func item(id int64, name string) map[string]any {
	return map[string]any{"id": id, "name": name, "qty": id * 10}
}

func tpOf(topic string, p int32) exactly.TP { return exactly.TP{Topic: topic, Partition: p} }

// testLedger: the ledger tables are created idempotently; seeding never
// overwrites; long and case-differing topic names are distinct rows.
func testLedger(t *testing.T, tg Target) {
	e := newEnv(t, tg)
	e.rule("t.items", uniq("unused"), "    key: [id]\n")
	s := e.sink()
	if err := s.EnsureLedger(context.Background()); err != nil {
		t.Fatalf("creating the ledger a second time: %v", err)
	}
	_ = e.sink() // a second instance runs the DDL again
	ctx := context.Background()
	long := strings.Repeat("topic.", 41) + "abc" // 249 characters, Kafka's limit
	if len(long) != 249 {
		t.Fatalf("long topic has %d characters", len(long))
	}
	for _, c := range []struct {
		tp         exactly.TP
		seed, want int64
	}{
		{tpOf("t.items", 0), 5, 5},
		{tpOf("t.items", 0), 9, 5}, // a second seed never moves a stored offset
		{tpOf("t.items", 1), 7, 7},
		{tpOf("T.Items", 0), 11, 11}, // topic names are case-sensitive
		{tpOf(long, 2147483647), 1 << 40, 1 << 40},
	} {
		got, err := s.SeedOffset(ctx, c.tp, c.seed)
		if err != nil {
			t.Fatalf("seeding %s: %v", c.tp, err)
		}
		if got != c.want {
			t.Errorf("seeding %s at %d: got %d, want %d", c.tp, c.seed, got, c.want)
		}
	}
	got, err := s.LoadOffsets(ctx, []exactly.TP{tpOf("t.items", 0), tpOf("t.items", 1), tpOf("T.Items", 0), tpOf(long, 2147483647), tpOf("t.items", 2)})
	if err != nil {
		t.Fatal(err)
	}
	want := map[exactly.TP]int64{tpOf("t.items", 0): 5, tpOf("t.items", 1): 7, tpOf("T.Items", 0): 11, tpOf(long, 2147483647): 1 << 40}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("offsets: got %v, want %v", got, want)
	}
	// The ledger reader (verify, status) reads the topic id each row was
	// seeded in, none where none was recorded.
	if err := s.RecordTopicID(ctx, tpOf("t.items", 1), "AAAAAAAAAAAAAAAAAAAAAA"); err != nil {
		t.Fatal(err)
	}
	rows, err := exactly.NewLedger(e.db, e.d, e.pipeline).Offsets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[exactly.TP]string{}
	for _, o := range rows {
		if o.Next != want[o.TP] {
			t.Errorf("ledger offsets: %s at %d, want %d", o.TP, o.Next, want[o.TP])
		}
		ids[o.TP] = o.TopicID
	}
	if len(rows) != len(want) || ids[tpOf("t.items", 1)] != "AAAAAAAAAAAAAAAAAAAAAA" || ids[tpOf("t.items", 0)] != "" {
		t.Errorf("ledger offsets: %+v; want %d rows, t.items[1] seeded in topic id AAAAAAAAAAAAAAAAAAAAAA, the others in none", rows, len(want))
	}
}

// testFencing: a stale writer is fenced and applies nothing; a fenced
// partition does not stop the other partitions of the same transaction.
func testFencing(t *testing.T, tg Target) {
	e := newEnv(t, tg)
	table := uniq("fence")
	cols := itemCols(tg.Types)
	e.table(table, cols, []string{"id"})
	e.rule("t.items", table, "    key: [id]\n")
	a, b := e.sink(), e.sink() // two instances of one pipeline
	ctx := context.Background()
	for p := int32(0); p < 2; p++ {
		if _, err := a.SeedOffset(ctx, tpOf("t.items", p), 0); err != nil {
			t.Fatal(err)
		}
	}
	e.mustCommit(a, "t.items", 0, 0, e.up(0, item(1, "first")), e.up(1, item(2, "first")))

	// b still believes partition 0 starts at 0; its partition 1 is current.
	stale := &exactly.PartitionBatch{Topic: "t.items", Partition: 0, From: 0,
		Records: []*exactly.Record{e.up(0, item(1, "zombie")), e.up(1, item(3, "zombie"))}}
	fresh := &exactly.PartitionBatch{Topic: "t.items", Partition: 1, From: 0,
		Records: []*exactly.Record{e.up(0, item(4, "fresh"))}}
	for _, pb := range []*exactly.PartitionBatch{stale, fresh} {
		for _, r := range pb.Records {
			r.Topic, r.Partition = pb.Topic, pb.Partition
		}
	}
	out := b.Commit(ctx, []*exactly.PartitionBatch{stale, fresh})
	if len(out) != 2 {
		t.Fatalf("got %d outcomes, want 2", len(out))
	}
	for _, o := range out {
		switch o.Batch.Partition {
		case 0:
			var fe *exactly.FencedError
			if o.Committed || !errors.As(o.Err, &fe) {
				t.Fatalf("stale partition: got committed=%v err=%v, want a FencedError", o.Committed, o.Err)
			}
			if fe.Want != 0 || fe.Stored != 2 {
				t.Errorf("fence: got want=%d stored=%d, want 0 and 2", fe.Want, fe.Stored)
			}
		case 1:
			if !o.Committed || o.Err != nil {
				t.Errorf("current partition: not committed: %v", o.Err)
			}
		}
	}
	if got, want := e.rows(table, cols, []string{"id"}), expect(cols, []string{"id"}, item(1, "first"), item(2, "first"), item(4, "fresh")); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("table after the fenced batch:\n got %v\nwant %v", got, want)
	}
	if n := e.count("SELECT COUNT(*) FROM exactly_batches WHERE pipeline = ? AND status = 'committed'", e.pipeline); n != 2 {
		t.Errorf("committed ledger rows: got %d, want 2", n)
	}
	offs, err := b.LoadOffsets(ctx, []exactly.TP{tpOf("t.items", 0), tpOf("t.items", 1)})
	if err != nil {
		t.Fatal(err)
	}
	if offs[tpOf("t.items", 0)] != 2 || offs[tpOf("t.items", 1)] != 1 {
		t.Errorf("offsets: got %v, want partition 0 at 2 and 1 at 1", offs)
	}
	// Re-read from the stored offset, the fenced writer continues normally.
	e.mustCommit(b, "t.items", 0, 2, e.up(2, item(3, "after")))
}

// testReplay: committing the same batch again from its old offset is
// fenced and leaves the table and the ledger exactly as they were.
func testReplay(t *testing.T, tg Target) {
	e := newEnv(t, tg)
	table := uniq("replay")
	cols := itemCols(tg.Types)
	key := []string{"id"}
	e.table(table, cols, key)
	e.rule("t.items", table, "    key: [id]\n")
	s := e.sink()
	if _, err := s.SeedOffset(context.Background(), tpOf("t.items", 0), 0); err != nil {
		t.Fatal(err)
	}
	recs := []*exactly.Record{e.up(0, item(1, "a")), e.up(1, item(2, "b")), e.del(2, map[string]any{"id": int64(1)}, nil), e.up(3, item(3, "c"))}
	e.mustCommit(s, "t.items", 0, 0, recs...)
	before := e.rows(table, cols, key)
	if want := expect(cols, key, item(2, "b"), item(3, "c")); fmt.Sprint(before) != fmt.Sprint(want) {
		t.Fatalf("table: got %v, want %v", before, want)
	}
	for _, w := range []*exactly.Sink{s, e.sink()} { // the same instance, and a restarted one
		o := e.commit(w, "t.items", 0, 0, recs...)
		var fe *exactly.FencedError
		if o.Committed || !errors.As(o.Err, &fe) || fe.Stored != 4 {
			t.Fatalf("replay: got committed=%v err=%v, want fenced at 4", o.Committed, o.Err)
		}
	}
	if after := e.rows(table, cols, key); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("the replay changed the table:\nbefore %v\n after %v", before, after)
	}
	// The fenced attempts may be kept as failed rows for the audit
	// trail; only one batch is committed.
	if n := e.count("SELECT COUNT(*) FROM exactly_batches WHERE pipeline = ? AND status = 'committed'", e.pipeline); n != 1 {
		t.Errorf("committed ledger rows: got %d, want 1", n)
	}
	if n := e.count("SELECT COUNT(*) FROM exactly_batches WHERE pipeline = ? AND status NOT IN ('committed', 'failed')", e.pipeline); n != 0 {
		t.Errorf("ledger rows neither committed nor failed: %d", n)
	}
}

// testWriteModes: upsert, append and delete in one transaction, collapsed
// per key, with a dead letter, and the ledger row counting all of it.
func testWriteModes(t *testing.T, tg Target) {
	e := newEnv(t, tg)
	items, events := uniq("items"), uniq("events")
	cols := itemCols(tg.Types)
	ecols := []col{{"id", tg.Types.BigInt, kInt, true}, {"kind", tg.Types.Text, kText, false}}
	e.table(items, cols, []string{"id"})
	e.table(events, ecols, nil) // no primary key: append only
	e.rule("t.items", items, "    key: [id]\n")
	e.rule("t.events", events, "    mode: append\n")
	s := e.sink()
	ctx := context.Background()
	for _, topic := range []string{"t.items", "t.events"} {
		if _, err := s.SeedOffset(ctx, tpOf(topic, 0), 0); err != nil {
			t.Fatal(err)
		}
	}
	badValue := []byte("\x00\xffnot a record\n")
	o := e.mustCommit(s, "t.items", 0, 0,
		e.up(0, item(1, "a")),
		e.up(1, item(2, "b")),
		e.up(2, item(1, "a2")),                        // supersedes offset 0
		e.del(3, map[string]any{"id": int64(2)}, nil), // supersedes offset 1
		e.up(5, item(3, "c")),                         // offsets may be sparse
		e.bad(6, []byte("bad-key"), badValue, exactly.Header{Key: "h1", Value: []byte("v1")}),
		e.del(7, map[string]any{"id": int64(99)}, nil), // deleting an absent row is not an error
	)
	if o.Batch.To != 8 {
		t.Errorf("batch to: got %d, want 8", o.Batch.To)
	}
	e.mustCommit(s, "t.events", 0, 0,
		e.up(0, map[string]any{"id": int64(1), "kind": "view"}),
		e.up(1, map[string]any{"id": int64(1), "kind": "view"}), // the same content twice: two rows
		e.del(2, map[string]any{"id": int64(1)}, nil),           // a tombstone appends nothing
	)
	if got, want := e.rows(items, cols, []string{"id"}), expect(cols, []string{"id"}, item(1, "a2"), item(3, "c")); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("items:\n got %v\nwant %v", got, want)
	}
	if n := e.count("SELECT COUNT(*) FROM " + e.d.Quote(events) + " WHERE " + e.d.Quote("kind") + " = 'view'"); n != 2 {
		t.Errorf("events: got %d rows, want 2", n)
	}

	var from, to, min, max, records, upserted, deleted, skipped, dead int64
	var hash, status string
	err := e.db.QueryRow(e.q(`SELECT from_offset, to_offset, min_offset, max_offset, records, upserted, deleted, skipped, dead_lettered, hash, status
		FROM exactly_batches WHERE pipeline = ? AND topic = ?`), e.pipeline, "t.items").Scan(&from, &to, &min, &max, &records, &upserted, &deleted, &skipped, &dead, &hash, &status)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprintln(from, to, min, max, records, upserted, deleted, skipped, dead, status), "0 8 0 7 7 2 2 2 1 committed\n"; got != want {
		t.Errorf("ledger row (from to min max records upserted deleted skipped dead status):\n got %s\nwant %s", got, want)
	}
	if hash != exactly.HashRecords(o.Batch.Records) {
		t.Errorf("ledger hash %s differs from the records' hash", hash)
	}

	var off int64
	var k, v []byte
	var headers, msg string
	err = e.db.QueryRow(e.q(`SELECT `+e.d.Quote("offset")+`, record_key, record_value, headers, error FROM exactly_dead_letters WHERE pipeline = ?`), e.pipeline).Scan(&off, &k, &v, &headers, &msg)
	if err != nil {
		t.Fatalf("reading the dead letter: %v", err)
	}
	if off != 6 || string(k) != "bad-key" || string(v) != string(badValue) {
		t.Errorf("dead letter: offset %d key %q value %q, want 6 %q %q", off, k, v, "bad-key", badValue)
	}
	if !strings.Contains(headers, "h1") || !strings.Contains(msg, "t.items[0]@6") || !strings.Contains(msg, "undecodable") {
		t.Errorf("dead letter: headers %q error %q", headers, msg)
	}
	offs, err := s.LoadOffsets(ctx, []exactly.TP{tpOf("t.items", 0), tpOf("t.events", 0)})
	if err != nil {
		t.Fatal(err)
	}
	if offs[tpOf("t.items", 0)] != 8 || offs[tpOf("t.events", 0)] != 3 {
		t.Errorf("offsets: got %v, want t.items at 8, t.events at 3", offs)
	}
}

// testVersionGuard: an upsert or a delete never replaces a row whose
// stored version is newer; equal or newer versions apply; a change without
// a version applies.
func testVersionGuard(t *testing.T, tg Target) {
	e := newEnv(t, tg)
	table := uniq("versioned")
	// The version column comes before the columns it guards: an upsert
	// that assigned it first would see its own new version (MySQL).
	cols := []col{{"id", tg.Types.BigInt, kInt, true}, {"v", tg.Types.BigInt, kInt, false}, {"name", tg.Types.Text, kText, false}}
	key := []string{"id"}
	e.table(table, cols, key)
	e.rule("t.items", table, "    key: [id]\n    version: v\n")
	s := e.sink()
	if _, err := s.SeedOffset(context.Background(), tpOf("t.items", 0), 0); err != nil {
		t.Fatal(err)
	}
	row := func(id int64, name string, v any) map[string]any {
		return map[string]any{"id": id, "name": name, "v": v}
	}
	up := func(off int64, r map[string]any) *exactly.Record { return e.up(off, r, "v") }
	del := func(off, id int64, v any) *exactly.Record { return e.del(off, map[string]any{"id": id}, v) }
	e.mustCommit(s, "t.items", 0, 0,
		up(0, row(1, "v5", int64(5))), up(1, row(2, "v5", int64(5))), up(2, row(3, "v5", int64(5))),
		up(3, row(4, "v5", int64(5))), up(4, row(5, "no version", nil)), up(5, row(6, "v5", int64(5))))
	e.mustCommit(s, "t.items", 0, 6,
		up(6, row(1, "v3", int64(3))),  // older: ignored
		up(7, row(2, "v7", int64(7))),  // newer: applied
		up(8, row(3, "v5b", int64(5))), // equal: applied (a replay of the same change)
		up(9, row(5, "v2", int64(2))),  // the stored row has no version: applied
		up(10, row(6, "nil", nil)),     // the change has no version: applied
	)
	want := expect(cols, key, row(1, "v5", int64(5)), row(2, "v7", int64(7)), row(3, "v5b", int64(5)),
		row(4, "v5", int64(5)), row(5, "v2", int64(2)), row(6, "nil", nil))
	if got := e.rows(table, cols, key); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after versioned upserts:\n got %v\nwant %v", got, want)
	}
	e.mustCommit(s, "t.items", 0, 11,
		del(11, 1, int64(4)), // older than the stored 5: kept
		del(12, 2, int64(8)), // newer: deleted
		del(13, 3, int64(5)), // equal: deleted
		del(14, 4, nil),      // no version: deleted
	)
	want = expect(cols, key, row(1, "v5", int64(5)), row(5, "v2", int64(2)), row(6, "nil", nil))
	if got := e.rows(table, cols, key); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("after versioned deletes:\n got %v\nwant %v", got, want)
	}
}

// testTypes: every kind of value round-trips, through insert and update,
// including extremes, Unicode, binary zeros, zones and NULLs, in a table
// of the target's declared types.
func testTypes(t *testing.T, tg Target) {
	e := newEnv(t, tg)
	ty := tg.Types
	table := uniq("types")
	cols := []col{
		{"id", ty.BigInt, kInt, true}, {"i32", ty.Int, kInt, false}, {"i64", ty.BigInt, kInt, false},
		{"dec", ty.Decimal, kDec, false}, {"dbl", ty.Double, kDbl, false}, {"txt", ty.Text, kText, false},
		{"bin", ty.Bytes, kBytes, false}, {"flag", ty.Bool, kBool, false}, {"day", ty.Date, kDate, false},
		{"ts", ty.Timestamp, kTS, false},
	}
	e.table(table, cols, []string{"id"})
	roundTrip(t, e, table, cols)
}

// testCreatedTypes: the same values round-trip through a table the
// dialect's own CreateTable and ColumnType made (auto-create).
func testCreatedTypes(t *testing.T, tg Target) {
	e := newEnv(t, tg)
	table := uniq("created")
	defs := []exactly.ColumnDef{
		{Name: "id", Type: exactly.Type{Kind: exactly.KindInt64}},
		{Name: "i32", Type: exactly.Type{Kind: exactly.KindInt32}, Nullable: true},
		{Name: "i64", Type: exactly.Type{Kind: exactly.KindInt64}, Nullable: true},
		{Name: "dec", Type: exactly.Type{Kind: exactly.KindDecimal, Precision: 20, Scale: 6}, Nullable: true},
		{Name: "dbl", Type: exactly.Type{Kind: exactly.KindFloat64}, Nullable: true},
		{Name: "txt", Type: exactly.Type{Kind: exactly.KindText}, Nullable: true},
		{Name: "bin", Type: exactly.Type{Kind: exactly.KindBytes}, Nullable: true},
		{Name: "flag", Type: exactly.Type{Kind: exactly.KindBool}, Nullable: true},
		{Name: "day", Type: exactly.Type{Kind: exactly.KindDate}, Nullable: true},
		{Name: "ts", Type: exactly.Type{Kind: exactly.KindTimestampTZ, Precision: 6}, Nullable: true},
	}
	kinds := []kind{kInt, kInt, kInt, kDec, kDbl, kText, kBytes, kBool, kDate, kTS}
	stmt := e.d.CreateTable(table, defs, []string{"id"})
	if _, err := e.db.Exec(stmt); err != nil {
		t.Fatalf("CreateTable: %v\n%s", err, stmt)
	}
	t.Cleanup(func() { e.db.Exec("DROP TABLE " + e.d.Quote(table)) })
	if _, err := e.db.Exec(stmt); err != nil {
		t.Errorf("CreateTable is not idempotent: %v", err)
	}
	cols := make([]col, len(defs))
	for i, d := range defs {
		cols[i] = col{name: d.Name, typ: e.d.ColumnType(d.Type, i == 0), kind: kinds[i]}
	}
	roundTrip(t, e, table, cols)

	// evolve: an added column is nullable and takes values.
	add := exactly.ColumnDef{Name: "added later", Type: exactly.Type{Kind: exactly.KindText}, Nullable: true}
	if _, err := e.db.Exec(e.d.AddColumn(table, add)); err != nil {
		t.Fatalf("AddColumn: %v\n%s", err, e.d.AddColumn(table, add))
	}
	desc, err := e.d.Describe(context.Background(), e.db, table)
	if err != nil || desc == nil || desc.Column("added later") == nil || !desc.Column("added later").Nullable {
		t.Fatalf("describe after AddColumn: %+v %v", desc, err)
	}
}

func roundTrip(t *testing.T, e *env, table string, cols []col) {
	key := []string{"id"}
	e.rule("t.types", table, "    key: [id]\n")
	s := e.sink()
	if _, err := s.SeedOffset(context.Background(), tpOf("t.types", 0), 0); err != nil {
		t.Fatal(err)
	}
	ist := time.FixedZone("+05:30", 5*3600+1800)
	pdt := time.FixedZone("-07:00", -7*3600)
	rows := []map[string]any{
		{"id": int64(1), "i32": int64(math.MaxInt32), "i64": int64(math.MaxInt64), "dec": exactly.Decimal("12345678901234.123456"),
			"dbl": 0.5, "txt": "héllo ✓ 😀 中文 עברית", "bin": []byte{0, 1, 2, 0xfe, 0xff}, "flag": true,
			"day": time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC), "ts": time.Date(2024, 3, 10, 2, 30, 0, 123456000, ist)},
		{"id": int64(2), "i32": int64(math.MinInt32), "i64": int64(math.MinInt64), "dec": exactly.Decimal("-0.000001"),
			"dbl": -1.25e10, "txt": "quote ' double \" backslash \\ newline \n tab \t end", "bin": []byte("\x00"), "flag": false,
			"day": time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC), "ts": time.Date(1999, 12, 31, 23, 59, 59, 0, time.UTC)},
		{"id": int64(3)}, // every other column NULL
		{"id": int64(4), "i32": int64(0), "i64": int64(0), "dec": exactly.Decimal("0"), "dbl": 0.0, "txt": "",
			"flag": false, "day": time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC), "ts": time.Date(2038, 1, 19, 3, 14, 8, 1000, pdt)},
	}
	var recs []*exactly.Record
	for i, r := range rows {
		recs = append(recs, e.up(int64(i), r))
	}
	e.mustCommit(s, "t.types", 0, 0, recs...)
	if got, want := e.rows(table, cols, key), expect(cols, key, rows...); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("inserted values:\n got %v\nwant %v", got, want)
	}
	// The update path: new values over old ones, and values over NULLs.
	rows[1] = map[string]any{"id": int64(2), "i32": int64(7), "i64": int64(-7), "dec": exactly.Decimal("99999999999999.999999"),
		"dbl": 1e-300, "txt": "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "bin": []byte{0xde, 0xad, 0, 0xbe, 0xef}, "flag": true,
		"day": time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), "ts": time.Date(2020, 6, 30, 23, 59, 59, 999999000, pdt)}
	rows[2] = map[string]any{"id": int64(3), "i32": int64(1), "i64": int64(1), "dec": exactly.Decimal("1.5"), "dbl": 1.5,
		"txt": "was null", "bin": []byte("was null"), "flag": true, "day": time.Date(2001, 2, 3, 0, 0, 0, 0, time.UTC),
		"ts": time.Date(2001, 2, 3, 4, 5, 6, 7000, time.UTC)}
	// Values back to NULL: the record carries the fields, as nulls (a
	// record lacking them leaves them be, whatever else is in its batch).
	rows[0] = map[string]any{"id": int64(1)}
	for _, c := range cols {
		if c.name != "id" {
			rows[0][c.name] = nil
		}
	}
	e.mustCommit(s, "t.types", 0, 4, e.up(4, rows[1]), e.up(5, rows[2]), e.up(6, rows[0]))
	if got, want := e.rows(table, cols, key), expect(cols, key, rows...); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("updated values:\n got %v\nwant %v", got, want)
	}
}

// testKeys: text keys (Unicode, a quote) and composite keys
// through upsert and delete.
func testKeys(t *testing.T, tg Target) {
	e := newEnv(t, tg)
	ty := tg.Types
	table := uniq("keys")
	cols := []col{{"name", ty.KeyText, kText, true}, {"n", ty.BigInt, kInt, true}, {"val", ty.Text, kText, false}}
	key := []string{"name", "n"}
	e.table(table, cols, key)
	e.rule("t.keys", table, "    key: [name, n]\n")
	s := e.sink()
	if _, err := s.SeedOffset(context.Background(), tpOf("t.keys", 0), 0); err != nil {
		t.Fatal(err)
	}
	row := func(name string, n int64, val string) map[string]any {
		return map[string]any{"name": name, "n": n, "val": val}
	}
	e.mustCommit(s, "t.keys", 0, 0,
		e.up(0, row("ключ", 1, "a")), e.up(1, row("ключ", 2, "b")), e.up(2, row("k'ey", 1, "c")),
		e.up(3, row("zz", 1, "d")), e.up(4, row("zz", 2, "e")))
	e.mustCommit(s, "t.keys", 0, 5,
		e.up(5, row("ключ", 1, "a2")),
		e.del(6, map[string]any{"name": "ключ", "n": int64(2)}, nil),
		e.del(7, map[string]any{"name": "k'ey", "n": int64(1)}, nil),
		e.del(8, map[string]any{"name": "zz", "n": int64(3)}, nil)) // absent: nothing
	want := expect(cols, key, row("ключ", 1, "a2"), row("zz", 1, "d"), row("zz", 2, "e"))
	if got := e.rows(table, cols, key); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("composite keys:\n got %v\nwant %v", got, want)
	}
	// Describe gives a primary key in key order, not column order.
	reversed := uniq("keys_rev")
	e.table(reversed, cols, []string{"n", "name"})
	desc, err := e.d.Describe(context.Background(), e.db, reversed)
	if err != nil || desc == nil || fmt.Sprint(desc.Key) != "[n name]" {
		t.Errorf("describing a table keyed (n, name): key %v, %v; want [n name]", desc, err)
	}
}

// testQuotedIdentifiers: a table name with a space, reserved words and
// mixed case as column names, a reserved word as key and version column.
func testQuotedIdentifiers(t *testing.T, tg Target) {
	e := newEnv(t, tg)
	ty := tg.Types
	table := uniq("order items")
	cols := []col{{"order", ty.BigInt, kInt, true}, {"select", ty.Text, kText, false},
		{"two words", ty.BigInt, kInt, false}, {"MixedCase", ty.Text, kText, false}, {"group", ty.BigInt, kInt, false}}
	key := []string{"order"}
	e.table(table, cols, key)
	e.rule("t.order", table, "    key: [order]\n    version: group\n")
	s := e.sink()
	if _, err := s.SeedOffset(context.Background(), tpOf("t.order", 0), 0); err != nil {
		t.Fatal(err)
	}
	row := func(id int64, sel string, v int64) map[string]any {
		return map[string]any{"order": id, "select": sel, "two words": id * 2, "MixedCase": "M" + sel, "group": v}
	}
	up := func(off int64, r map[string]any) *exactly.Record { return e.up(off, r, "group") }
	e.mustCommit(s, "t.order", 0, 0, up(0, row(1, "a", 1)), up(1, row(2, "b", 1)), up(2, row(3, "c", 1)))
	e.mustCommit(s, "t.order", 0, 3, up(3, row(1, "a2", 2)), up(4, row(2, "old", 0)),
		e.del(5, map[string]any{"order": int64(3)}, int64(9)))
	want := expect(cols, key, row(1, "a2", 2), row(2, "b", 1))
	if got := e.rows(table, cols, key); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("quoted identifiers:\n got %v\nwant %v", got, want)
	}
}

// testApplyTwice: the dialect's Apply of the same TableWrite twice in one
// transaction leaves the table as applying it once does.
func testApplyTwice(t *testing.T, tg Target) {
	e := newEnv(t, tg)
	table := uniq("twice")
	cols := itemCols(tg.Types)
	key := []string{"id"}
	e.table(table, cols, key)
	ctx := context.Background()
	desc, err := e.d.Describe(ctx, e.db, table)
	if err != nil || desc == nil {
		t.Fatalf("describing %s: %v %v", table, desc, err)
	}
	if fmt.Sprint(desc.Key) != "[id]" || len(desc.Columns) != 3 {
		t.Fatalf("describe: got key %v and %d columns, want [id] and 3", desc.Key, len(desc.Columns))
	}
	if _, err := e.db.Exec(e.q("INSERT INTO "+e.d.Quote(table)+" (id, name, qty) VALUES (?, ?, ?), (?, ?, ?)"), 1, "one", 10, 2, "two", 20); err != nil {
		t.Fatal(err)
	}
	w := &exactly.TableWrite{Table: desc, Keys: key, Columns: []string{"id", "name", "qty"},
		Upserts: [][]any{{int64(2), "two'", int64(21)}, {int64(3), "three", nil}},
		Deletes: [][]any{{int64(1)}, {int64(4)}}}
	for round := 0; round < 2; round++ {
		conn, err := e.db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 2; i++ {
			if err := e.d.Apply(ctx, &exactly.Tx{Tx: tx, Conn: conn}, w); err != nil {
				t.Fatalf("round %d, apply %d: %v", round, i+1, err)
			}
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		conn.Close()
		want := expect(cols, key, map[string]any{"id": int64(2), "name": "two'", "qty": int64(21)}, map[string]any{"id": int64(3), "name": "three"})
		if got := e.rows(table, cols, key); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("round %d:\n got %v\nwant %v", round, got, want)
		}
	}
}

// testLargeBatch: a batch big enough to need several statements (packet
// and placeholder limits) is applied whole, in one transaction.
func testLargeBatch(t *testing.T, tg Target) {
	e := newEnv(t, tg)
	table := uniq("large")
	cols := itemCols(tg.Types)
	e.table(table, cols, []string{"id"})
	e.rule("t.large", table, "    key: [id]\n")
	s := e.sink()
	if _, err := s.SeedOffset(context.Background(), tpOf("t.large", 0), 0); err != nil {
		t.Fatal(err)
	}
	const n = 4000
	pad := strings.Repeat("x", 600) // 2.4 MB of text: several MySQL statements
	recs := make([]*exactly.Record, 0, n)
	for i := int64(0); i < n; i++ {
		recs = append(recs, e.up(i, item(i, fmt.Sprintf("%s-%d", pad, i))))
	}
	e.mustCommit(s, "t.large", 0, 0, recs...)
	if c := e.count("SELECT COUNT(*) FROM " + e.d.Quote(table)); c != n {
		t.Fatalf("rows after upserting %d: %d", n, c)
	}
	recs = recs[:0]
	for i := int64(0); i < n; i += 2 {
		recs = append(recs, e.del(n+i, map[string]any{"id": i}, nil))
	}
	e.mustCommit(s, "t.large", 0, n, recs...)
	if c := e.count("SELECT COUNT(*) FROM " + e.d.Quote(table)); c != n/2 {
		t.Fatalf("rows after deleting %d: %d, want %d", n/2, c, n/2)
	}
	if c := e.count("SELECT COUNT(*) FROM "+e.d.Quote(table)+" WHERE id = ? OR id = ?", 2942, 2943); c != 1 {
		t.Errorf("rows 2942 (deleted) and 2943 (kept): got %d, want 1", c)
	}
}

// testRefusedRow: a row the database refuses (NULL into a NOT NULL column)
// is isolated under the dialect's savepoints and dead-lettered in the same
// transaction; the rest of the batch applies.
func testRefusedRow(t *testing.T, tg Target) {
	e := newEnv(t, tg)
	table := uniq("refused")
	cols := []col{{"id", tg.Types.BigInt, kInt, true}, {"name", tg.Types.Text, kText, true}}
	key := []string{"id"}
	e.table(table, cols, key)
	e.rule("t.items", table, "    key: [id]\n")
	s := e.sink()
	if _, err := s.SeedOffset(context.Background(), tpOf("t.items", 0), 0); err != nil {
		t.Fatal(err)
	}
	row := func(id int64, name any) map[string]any { return map[string]any{"id": id, "name": name} }
	o := e.mustCommit(s, "t.items", 0, 0, e.up(0, row(1, "a")), e.up(1, row(2, nil)), e.up(2, row(3, "c")))
	if got, want := e.rows(table, cols, key), expect(cols, key, row(1, "a"), row(3, "c")); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("table:\n got %v\nwant %v", got, want)
	}
	if len(o.Batch.DeadLetters) != 1 || o.Batch.DeadLetters[0].Record.Offset != 1 {
		t.Fatalf("dead letters: got %d, want the record at offset 1", len(o.Batch.DeadLetters))
	}
	var off int64
	if err := e.db.QueryRow(e.q("SELECT "+e.d.Quote("offset")+" FROM exactly_dead_letters WHERE pipeline = ?"), e.pipeline).Scan(&off); err != nil || off != 1 {
		t.Errorf("exactly_dead_letters: offset %d, %v; want 1", off, err)
	}
	if n := e.count("SELECT COUNT(*) FROM exactly_batches WHERE pipeline = ? AND status = 'committed' AND dead_lettered = 1", e.pipeline); n != 1 {
		t.Errorf("committed ledger rows counting 1 dead letter: %d, want 1", n)
	}

	// In a batch of several multi-row statements (SQLite: 256 rows each)
	// the refused row is found inside its statement, the rows sharing it
	// and the other statements apply.
	const n = 1000
	recs := make([]*exactly.Record, 0, n)
	for i := int64(0); i < n; i++ {
		var name any = fmt.Sprintf("n%d", i)
		if i == 700 {
			name = nil
		}
		recs = append(recs, e.up(3+i, row(100+i, name)))
	}
	o = e.mustCommit(s, "t.items", 0, 3, recs...)
	if len(o.Batch.DeadLetters) != 1 || o.Batch.DeadLetters[0].Record.Offset != 703 {
		t.Fatalf("dead letters of the large batch: got %d, want the record at offset 703", len(o.Batch.DeadLetters))
	}
	if c := e.count("SELECT COUNT(*) FROM " + e.d.Quote(table)); c != 2+n-1 {
		t.Errorf("rows after the large batch: %d, want %d", c, 2+n-1)
	}
	if c := e.count("SELECT COUNT(*) FROM "+e.d.Quote(table)+" WHERE id = ? OR id = ? OR id = ?", 799, 800, 801); c != 2 {
		t.Errorf("rows 799, 800 (refused) and 801: got %d, want 2", c)
	}
}
