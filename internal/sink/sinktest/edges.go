package sinktest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/exactly/exactly"
)

// runEdges runs the suite's tests of the edges issues 14 and 15 found:
// start-up races, schema drift, poison names, silent truncation and
// refusals that are not about the row.
func runEdges(t *testing.T, tg Target) {
	t.Run("StartupRace", func(t *testing.T) { testStartupRace(t, tg) })
	t.Run("NoTruncation", func(t *testing.T) { testNoTruncation(t, tg) })
	t.Run("SchemaDrift", func(t *testing.T) { testSchemaDrift(t, tg) })
	t.Run("PoisonNames", func(t *testing.T) { testPoisonNames(t, tg) })
	t.Run("Refusals", func(t *testing.T) { testRefusals(t, tg) })
}

// testStartupRace: instances starting together on an empty database all
// create (or find) the ledger. Seen on PostgreSQL: two concurrent CREATE
// TABLE IF NOT EXISTS, and one fails with duplicate key value violates
// unique constraint "pg_type_typname_nsp_index" (a Kubernetes first
// roll-out with replicas > 1).
func testStartupRace(t *testing.T, tg Target) {
	e := newEnv(t, tg)
	e.rule("t.items", uniq("unused"), "    key: [id]\n")
	const n = 6
	sinks := make([]*exactly.Sink, n)
	for i := range sinks {
		s, err := exactly.OpenSink(context.Background(), e.config(), e.d,
			func(*exactly.TableRule) (exactly.Decoder, error) { return e.fx, nil },
			slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatalf("opening sink %d: %v", i, err)
		}
		t.Cleanup(func() { s.Close() })
		// A connection each, opened now, so the DDL starts together.
		if err := s.DB().PingContext(context.Background()); err != nil {
			t.Fatal(err)
		}
		sinks[i] = s
	}
	for round := 0; round < 3; round++ {
		var wg sync.WaitGroup
		start := make(chan struct{})
		errs := make([]error, n)
		for i, s := range sinks {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				errs[i] = s.EnsureLedger(context.Background())
			}()
		}
		close(start)
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("round %d: instance %d of %d starting together: %v", round, i, n, err)
			}
		}
		if t.Failed() {
			return
		}
		if round == 0 {
			// The ledger works for all of them.
			got, err := sinks[n-1].SeedOffset(context.Background(), tpOf("t.items", 0), 3)
			if err != nil || got != 3 {
				t.Fatalf("seeding after a racing start: %d, %v", got, err)
			}
		}
	}
}

// testNoTruncation: a value longer than its column (VARCHAR(5), CHAR(3))
// is stored whole where the database has no length (SQLite) or refused
// and dead-lettered, never cut to a prefix: PostgreSQL cast the staged
// text to character varying(5), which truncates, on both the unnest and
// the COPY path, so two long keys became one row and a delete of a long
// key removed the row of its prefix. Small writes and writes of more
// than a thousand rows (PostgreSQL's COPY path) alike.
func testNoTruncation(t *testing.T, tg Target) {
	for _, size := range []int{0, 1100} {
		t.Run(fmt.Sprint("rows=", size), func(t *testing.T) {
			e := newEnv(t, tg)
			table := uniq("trunc")
			cols := []col{{"k", "VARCHAR(5)", kText, true}, {"name", "VARCHAR(5)", kText, false}, {"code", "CHAR(3)", kText, false}}
			key := []string{"k"}
			e.table(table, cols, key)
			e.rule("t.trunc", table, "    key: [k]\n")
			s := e.sink()
			if _, err := s.SeedOffset(context.Background(), tpOf("t.trunc", 0), 0); err != nil {
				t.Fatal(err)
			}
			row := func(k, name string) map[string]any { return map[string]any{"k": k, "name": name} }
			var recs []*exactly.Record
			off := int64(0)
			add := func(r *exactly.Record) { recs = append(recs, r); off++ }
			for i := 0; i < size; i++ {
				add(e.up(off, row(fmt.Sprintf("r%04d", i), "n")))
			}
			add(e.up(off, row("abcde", "ok")))
			longName := off
			add(e.up(off, row("a", "123456789012")))
			longKey := off
			add(e.up(off, row("abcdefgh", "x")))
			longCode := off
			add(e.up(off, map[string]any{"k": "b", "code": "toolong"}))
			o := e.mustCommit(s, "t.trunc", 0, 0, recs...)
			dead := map[int64]bool{}
			for _, d := range o.Batch.DeadLetters {
				dead[d.Record.Offset] = true
			}
			got := e.rows(table, cols, key)
			line := func(r map[string]any) (string, string) {
				for k, v := range expect(cols, key, r) {
					return k, v
				}
				return "", ""
			}
			if k, want := line(row("abcde", "ok")); got[k] != want {
				t.Errorf("row abcde: %q, want %q (a long key cut to abcde overwrote it); table %v", got[k], want, got)
			}
			for _, c := range []struct {
				off int64
				row map[string]any
			}{
				{longName, row("a", "123456789012")},
				{longKey, row("abcdefgh", "x")},
				{longCode, map[string]any{"k": "b", "code": "toolong"}},
			} {
				k, want := line(c.row)
				switch {
				case dead[c.off] && got[k] != "":
					t.Errorf("offset %d is a dead letter, but row %s was written: %s", c.off, k, got[k])
				case !dead[c.off] && got[k] != want:
					t.Errorf("offset %d is no dead letter, so row %s must hold it whole: got %q, want %q", c.off, k, got[k], want)
				}
			}
			if len(got) != size+4-len(dead) {
				t.Errorf("%d rows with %d dead letters, want %d: %v", len(got), len(dead), size+4-len(dead), got)
			}
			// A delete of a long key deletes nothing: no row can hold it.
			from := off
			recs = recs[:0]
			for i := 0; i < size; i++ {
				add(e.del(off, map[string]any{"k": fmt.Sprintf("r%04d", i)}, nil))
			}
			add(e.del(off, map[string]any{"k": "abcdeXYZ"}, nil))
			e.mustCommit(s, "t.trunc", 0, from, recs...)
			if n := e.count("SELECT COUNT(*) FROM "+e.d.Quote(table)+" WHERE k = ?", "abcde"); n != 1 {
				t.Errorf("deleting key abcdeXYZ deleted row abcde")
			}
		})
	}
}

// testSchemaDrift: an operator drops a column the pipeline writes. The
// next flight may fail once (the table's description was cached), naming
// the statement that failed, but the one after it heals: the table is
// described again and the field without a column is left unwritten. Seen:
// every flight touching the table failed until a restart, and PostgreSQL's
// error named "statement 1 (UPDATE exactly_offsets …)".
func testSchemaDrift(t *testing.T, tg Target) {
	e := newEnv(t, tg)
	table := uniq("drift")
	cols := itemCols(tg.Types)
	key := []string{"id"}
	e.table(table, cols, key)
	e.rule("t.drift", table, "    key: [id]\n")
	s := e.sink()
	if _, err := s.SeedOffset(context.Background(), tpOf("t.drift", 0), 0); err != nil {
		t.Fatal(err)
	}
	e.mustCommit(s, "t.drift", 0, 0, e.up(0, item(1, "a")), e.up(1, item(2, "b")))
	if _, err := e.db.Exec("ALTER TABLE " + e.d.Quote(table) + " DROP COLUMN " + e.d.Quote("qty")); err != nil {
		t.Fatalf("dropping a column: %v", err)
	}
	var errs []string
	for try := 0; ; try++ {
		o := e.commit(s, "t.drift", 0, 2, e.up(2, item(3, "c")))
		if o.Committed {
			break
		}
		errs = append(errs, o.Err.Error())
		if try == 1 {
			t.Fatalf("a dropped column still fails the table's flights after %d tries: %q", try+1, errs)
		}
	}
	for _, msg := range errs {
		if strings.Contains(msg, "exactly_offsets") || !strings.Contains(msg, table) {
			t.Errorf("the error names the wrong statement (want one writing %s): %s", table, msg)
		}
	}
	got := e.rows(table, cols[:2], key)
	if want := expect(cols[:2], key, item(1, "a"), item(2, "b"), item(3, "c")); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("after the drop:\n got %v\nwant %v", got, want)
	}
}

// testPoisonNames: a record whose field cannot become a column (a dot, a
// NUL, longer than the database allows) is a dead letter, or halts its
// partition under on_error: fail, and only that record is affected: the
// other records of its batch and the other table of the flight apply.
// Seen: ALTER TABLE … ADD COLUMN "a"."b" failed the whole flight forever,
// and PostgreSQL cut a long name to 63 bytes, so the column was "added"
// on every batch and the value never written.
func testPoisonNames(t *testing.T, tg Target) {
	e := newEnv(t, tg)
	created, evolved, halted, other := uniq("poison_c"), uniq("poison_e"), uniq("poison_h"), uniq("poison_o")
	e.table(evolved, itemCols(tg.Types), []string{"id"})
	e.table(other, itemCols(tg.Types), []string{"id"})
	e.rule("t.created", created, "    key: [id]\n    create: true\n    evolve: add_columns\n")
	e.rule("t.evolved", evolved, "    key: [id]\n    evolve: add_columns\n")
	e.rule("t.halted", halted, "    key: [id]\n    create: true\n    evolve: add_columns\n    on_error: fail\n")
	e.rule("t.other", other, "    key: [id]\n")
	for _, tb := range []string{created, halted} {
		t.Cleanup(func() { e.db.Exec("DROP TABLE " + e.d.Quote(tb)) })
	}
	s := e.sink()
	ctx := context.Background()
	topics := []string{"t.created", "t.evolved", "t.halted", "t.other"}
	for _, topic := range topics {
		if _, err := s.SeedOffset(ctx, tpOf(topic, 0), 0); err != nil {
			t.Fatal(err)
		}
	}
	long := strings.Repeat("long_name_", 13) // 130 bytes: over every limit but SQLite's
	row := func(id int64, extra string) map[string]any {
		r := item(id, fmt.Sprint("r", id))
		if extra != "" {
			r[extra] = id
		}
		return r
	}
	poison := func(topic string) *exactly.PartitionBatch {
		b := &exactly.PartitionBatch{Topic: topic, Partition: 0, From: 0}
		for i, extra := range []string{"", "a.b", long, "nul\x00x", "", "good_new"} {
			r := e.up(int64(i), row(int64(i+1), extra))
			r.Topic = topic
			b.Records = append(b.Records, r)
		}
		return b
	}
	o := e.up(0, item(1, "o"))
	o.Topic = "t.other"
	batches := []*exactly.PartitionBatch{poison("t.created"), poison("t.evolved"), poison("t.halted"),
		{Topic: "t.other", Partition: 0, From: 0, Records: []*exactly.Record{o}}}
	cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	outs := s.Commit(cctx, batches)
	byTopic := map[string]exactly.Outcome{}
	for _, out := range outs {
		byTopic[out.Batch.Topic] = out
	}
	for _, topic := range topics {
		if !byTopic[topic].Committed {
			t.Fatalf("%s: not committed: %v", topic, byTopic[topic].Err)
		}
	}
	for _, topic := range []string{"t.created", "t.evolved"} {
		out := byTopic[topic]
		dead := map[int64]string{}
		for _, d := range out.Batch.DeadLetters {
			dead[d.Record.Offset] = d.Err.Error()
		}
		if dead[1] == "" || dead[3] == "" || !strings.Contains(dead[1], "a.b") {
			t.Errorf("%s: the records with fields a.b (offset 1) and nul\\x00x (offset 3) must be dead letters naming the field: %v", topic, dead)
		}
		if _, ok := dead[2]; ok != (e.d.Name() != "sqlite") {
			t.Errorf("%s: a field of %d bytes: dead letter %v, want %v (%v)", topic, len(long), ok, e.d.Name() != "sqlite", dead)
		}
		table := map[string]string{"t.created": created, "t.evolved": evolved}[topic]
		if n := e.count("SELECT COUNT(*) FROM " + e.d.Quote(table)); n != 6-len(dead) {
			t.Errorf("%s: %d rows, want %d (every record but the %d dead letters)", topic, n, 6-len(dead), len(dead))
		}
		if n := e.count("SELECT COUNT(*) FROM "+e.d.Quote(table)+" WHERE "+e.d.Quote("good_new")+" = ?", 6); n != 1 {
			t.Errorf("%s: the new column good_new was not added and written", topic)
		}
	}
	h := byTopic["t.halted"]
	if h.Err == nil || h.Batch.Halt == nil || h.Batch.Halt.Offset != 1 {
		t.Errorf("on_error: fail: want a halt at offset 1, got %v", h.Err)
	}
	if n := e.count("SELECT COUNT(*) FROM " + e.d.Quote(halted)); n != 1 {
		t.Errorf("on_error: fail: %d rows, want the 1 before the halt", n)
	}
	if n := e.count("SELECT COUNT(*) FROM " + e.d.Quote(other)); n != 1 {
		t.Errorf("the other table of the flight: %d rows, want 1", n)
	}
}

// testRefusals: rows refused for a reason that may not be theirs are not
// dead-lettered at once while next_offset moves on. Every row of a flight
// refused by a NOT NULL (an operator's new constraint) fails the flight,
// which is retried, until sink.refused_wait has passed; then they are dead
// letters. A child before its parent (a foreign key) fails the flight
// until the parent arrives, then commits. A dialect whose database
// enforces foreign keys must tell constraints apart (SQL Server did not:
// the child was a dead letter at once); SQLite, which enforces no foreign
// keys by default, dead-letters NOT NULL refusals at once.
func testRefusals(t *testing.T, tg Target) {
	e := newEnv(t, tg)
	const wait = 4 * time.Second
	e.sinkExtra = ", refused_wait: " + wait.String()
	_, holds := e.d.(exactly.Constraints)
	ty := tg.Types
	parent, child, strict := uniq("parent"), uniq("child"), uniq("strict")
	e.table(parent, itemCols(ty), []string{"id"})
	stmt := "CREATE TABLE " + e.d.Quote(child) + " (id " + ty.BigInt + " NOT NULL PRIMARY KEY, pid " + ty.BigInt +
		" NULL, FOREIGN KEY (pid) REFERENCES " + e.d.Quote(parent) + " (id))" + ty.TableSuffix
	if _, err := e.db.Exec(stmt); err != nil {
		t.Fatalf("%s: %v", stmt, err)
	}
	t.Cleanup(func() { e.db.Exec("DROP TABLE " + e.d.Quote(child)) })
	strictCols := []col{{"id", ty.BigInt, kInt, true}, {"name", ty.Text, kText, true}}
	e.table(strict, strictCols, []string{"id"})
	e.rule("t.parent", parent, "    key: [id]\n")
	e.rule("t.child", child, "    key: [id]\n")
	e.rule("t.strict", strict, "    key: [id]\n")
	s := e.sink()
	for _, topic := range []string{"t.parent", "t.child", "t.strict"} {
		if _, err := s.SeedOffset(context.Background(), tpOf(topic, 0), 0); err != nil {
			t.Fatal(err)
		}
	}
	deadLetters := func() int {
		return e.count("SELECT COUNT(*) FROM exactly_dead_letters WHERE pipeline = ?", e.pipeline)
	}
	nulls := func() []*exactly.Record {
		return []*exactly.Record{e.up(0, map[string]any{"id": int64(1), "name": nil}), e.up(1, map[string]any{"id": int64(2), "name": nil}),
			e.up(2, map[string]any{"id": int64(3), "name": "ok"})}
	}
	began := time.Now()
	o := e.commit(s, "t.strict", 0, 0, nulls()...)
	var re *exactly.RefusedError
	if holds {
		if o.Committed || !errors.As(o.Err, &re) || re.ForeignKey || re.Refused != 2 {
			t.Fatalf("2 of 3 rows refused by NOT NULL: committed %v, err %v; want the flight held (a RefusedError)", o.Committed, o.Err)
		}
		if n := deadLetters(); n != 0 {
			t.Fatalf("%d dead letters while the flight is held, want 0", n)
		}
		if got, _ := s.LoadOffsets(context.Background(), []exactly.TP{tpOf("t.strict", 0)}); got[tpOf("t.strict", 0)] != 0 {
			t.Fatalf("next_offset moved to %d while the flight is held", got[tpOf("t.strict", 0)])
		}
		if re.Until.Sub(began) > wait+time.Minute {
			t.Fatalf("held until %v, more than refused_wait %v after the first try", re.Until, wait)
		}
		time.Sleep(time.Until(re.Until) + 100*time.Millisecond)
		o = e.commit(s, "t.strict", 0, 0, nulls()...)
	}
	if !o.Committed || len(o.Batch.DeadLetters) != 2 {
		t.Fatalf("after refused_wait: committed %v with %d dead letters (%v), want committed with 2", o.Committed, len(o.Batch.DeadLetters), o.Err)
	}
	if n := e.count("SELECT COUNT(*) FROM " + e.d.Quote(strict)); n != 1 {
		t.Errorf("%d rows, want the 1 not refused", n)
	}

	// A child before its parent.
	kid := func() *exactly.Record { return e.up(0, map[string]any{"id": int64(1), "pid": int64(7)}) }
	o = e.commit(s, "t.child", 0, 0, kid())
	enforced := !o.Committed || len(o.Batch.DeadLetters) > 0
	if enforced && !holds {
		t.Fatalf("the database refused a child before its parent, and the dialect cannot tell a foreign key from a bad value (exactly.Constraints): the child was dead-lettered at once (%v)", o.Err)
	}
	if holds && (o.Committed || !errors.As(o.Err, &re) || !re.ForeignKey) {
		t.Fatalf("a child before its parent: committed %v, err %v; want the flight held (a foreign-key RefusedError)", o.Committed, o.Err)
	}
	e.mustCommit(s, "t.parent", 0, 0, e.up(0, item(7, "p")))
	if enforced && holds {
		e.mustCommit(s, "t.child", 0, 0, kid())
		if n := e.count("SELECT COUNT(*) FROM " + e.d.Quote(child)); n != 1 {
			t.Errorf("the child is not in its table after its parent came")
		}
	}
}
