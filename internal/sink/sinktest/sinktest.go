// Package sinktest is the conformance suite every dialect passes, in the
// manner of golang-migrate's database/testing: one Run, called from each
// dialect's own tests against a real database. The rule: the suite drives
// the real exactly.Sink (the one transaction with the fence and the
// ledger) and the dialect under test, and checks only what a user could
// see in the database — rows, ledger rows, offsets, dead letters. It never
// assumes an empty database: every test uses its own pipeline name and its
// own tables, so a shared server (SQL Server, Azure SQL) works too.
package sinktest

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/exactly/exactly"
)

// Target is one dialect on one database server.
type Target struct {
	Dialect exactly.Dialect
	// DSN returns the DSN of a database for one test; it may be shared by
	// tests (they use distinct pipelines and tables) or fresh per test.
	DSN func(t *testing.T) string
	// Types are this database's column types for the suite's tables.
	Types Types
	// Collisions are key types under which different values are one row
	// (see testCollidingKeys).
	Collisions []Collision
	// Refusals are column types with a value the database (or the
	// create/evolve type check) refuses, for testRefusedValues.
	Refusals []Refusal
}

// Refusal is a column type, a value it takes and one it refuses.
type Refusal struct {
	Type      string
	Good, Bad any
}

// Types names the column type used for each kind of value.
type Types struct {
	BigInt    string // 64-bit integer
	Int       string // 32-bit integer
	Decimal   string // exact decimal with 20 digits, 6 after the point
	Double    string // 64-bit binary floating point
	Text      string // unbounded Unicode text
	KeyText   string // Unicode text usable in a primary key (≤ 100 characters)
	Bytes     string // unbounded binary
	Bool      string
	Date      string // calendar date
	Timestamp string // instant with time zone, microsecond precision
	// TableSuffix is appended to CREATE TABLE (e.g. a MySQL charset).
	TableSuffix string
}

// Run runs the conformance suite as subtests of t.
func Run(t *testing.T, tg Target) {
	t.Run("Ledger", func(t *testing.T) { testLedger(t, tg) })
	t.Run("FirstStart", func(t *testing.T) { testFirstStart(t, tg) })
	t.Run("Positions", func(t *testing.T) { testPositions(t, tg) })
	t.Run("Fencing", func(t *testing.T) { testFencing(t, tg) })
	t.Run("Replay", func(t *testing.T) { testReplay(t, tg) })
	t.Run("Prune", func(t *testing.T) { testPrune(t, tg) })
	t.Run("WriteModes", func(t *testing.T) { testWriteModes(t, tg) })
	t.Run("VersionGuard", func(t *testing.T) { testVersionGuard(t, tg) })
	t.Run("Types", func(t *testing.T) { testTypes(t, tg) })
	t.Run("CreatedTypes", func(t *testing.T) { testCreatedTypes(t, tg) })
	t.Run("Keys", func(t *testing.T) { testKeys(t, tg) })
	t.Run("QuotedIdentifiers", func(t *testing.T) { testQuotedIdentifiers(t, tg) })
	t.Run("ApplyTwice", func(t *testing.T) { testApplyTwice(t, tg) })
	t.Run("RefusedRow", func(t *testing.T) { testRefusedRow(t, tg) })
	t.Run("LargeBatch", func(t *testing.T) { testLargeBatch(t, tg) })
	t.Run("CollidingKeys", func(t *testing.T) { testCollidingKeys(t, tg) })
	t.Run("PartialRows", func(t *testing.T) { testPartialRows(t, tg) })
	t.Run("PartialVersionedRows", func(t *testing.T) { testPartialVersionedRows(t, tg) })
	t.Run("RefusedValues", func(t *testing.T) { testRefusedValues(t, tg) })
	t.Run("IntegersInOtherColumns", func(t *testing.T) { testIntegersInOtherColumns(t, tg) })
	t.Run("WidenedTypes", func(t *testing.T) { testWidenedTypes(t, tg) })
	runEdges(t, tg)
}

var seq atomic.Int64

// uniq returns a name no other test of this process (or an earlier run)
// uses.
func uniq(prefix string) string {
	return fmt.Sprintf("%s_%d_%d", prefix, time.Now().UnixNano()%1e9, seq.Add(1))
}

// env is one test's pipeline: a DSN, table rules, and the fixture decoder.
type env struct {
	t        *testing.T
	tg       Target
	d        exactly.Dialect
	dsn      string
	pipeline string
	rules    []string
	fx       *fixture
	db       *sql.DB
	// sinkExtra is appended to the sink: settings, e.g. ", refused_wait: 3s".
	sinkExtra string
}

func newEnv(t *testing.T, tg Target) *env {
	t.Helper()
	e := &env{t: t, tg: tg, d: tg.Dialect, dsn: tg.DSN(t), pipeline: uniq("p"), fx: &fixture{changes: map[string]exactly.Change{}}}
	db, err := e.d.Open(context.Background(), exactly.SinkConfig{Driver: e.d.Name(), DSN: e.dsn})
	if err != nil {
		t.Fatalf("opening %s: %v", e.d.Name(), err)
	}
	t.Cleanup(func() { db.Close() })
	e.db = db
	return e
}

// rule adds a table rule; yaml holds its fields after topics and table.
func (e *env) rule(topic, table, yaml string) {
	e.rules = append(e.rules, fmt.Sprintf("  - topics: '%s'\n    table: '%s'\n%s", topic, table, yaml))
}

func (e *env) config() *exactly.Config {
	e.t.Helper()
	c := fmt.Sprintf("pipeline: %s\nsource: {brokers: ['127.0.0.1:1']}\nsink: {driver: %s, dsn: '%s'%s}\ntables:\n%s",
		e.pipeline, e.d.Name(), strings.ReplaceAll(e.dsn, "'", "''"), e.sinkExtra, strings.Join(e.rules, ""))
	cfg, err := exactly.ParseConfig(strings.NewReader(c), "sinktest.yaml")
	if err != nil {
		e.t.Fatalf("test configuration: %v\n%s", err, c)
	}
	return cfg
}

// twin makes two tables of cols keyed by k, prefix_one written by topic
// t.one and prefix_cut by t.cut under the same rule (yaml), and a sink
// that has both topics' partition 0 at offset 0: the property tests apply
// one stream one record per transaction to the first and in batches to
// the second, and compare.
func (e *env) twin(prefix string, cols []col, yaml string) (one, cut string, s *exactly.Sink) {
	e.t.Helper()
	one, cut = uniq(prefix+"_one"), uniq(prefix+"_cut")
	e.table(one, cols, []string{"k"})
	e.table(cut, cols, []string{"k"})
	e.rule("t.one", one, yaml)
	e.rule("t.cut", cut, yaml)
	s = e.sink()
	for _, topic := range []string{"t.one", "t.cut"} {
		if _, err := s.SeedOffset(context.Background(), tpOf(topic, 0), 0); err != nil {
			e.t.Fatal(err)
		}
	}
	return one, cut, s
}

// sink opens a Sink (a writer instance) of the pipeline.
func (e *env) sink() *exactly.Sink {
	e.t.Helper()
	s, err := exactly.NewSink(context.Background(), e.config(), e.d,
		func(*exactly.TableRule) (exactly.Decoder, error) { return e.fx, nil },
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		e.t.Fatalf("opening sink: %v", err)
	}
	e.t.Cleanup(func() { s.Close() })
	return s
}

// col is a column of a test table.
type col struct {
	name    string
	typ     string
	kind    kind
	notNull bool
}

// table creates a table, dropping it when the test ends.
func (e *env) table(name string, cols []col, key []string) {
	e.t.Helper()
	var defs []string
	for _, c := range cols {
		def := e.d.Quote(c.name) + " " + c.typ
		if c.notNull {
			def += " NOT NULL"
		} else {
			def += " NULL"
		}
		defs = append(defs, def)
	}
	if len(key) > 0 {
		defs = append(defs, "PRIMARY KEY ("+e.list(key)+")")
	}
	stmt := "CREATE TABLE " + e.d.Quote(name) + " (" + strings.Join(defs, ", ") + ")" + e.tg.Types.TableSuffix
	if _, err := e.db.Exec(stmt); err != nil {
		e.t.Fatalf("creating table: %v\n%s", err, stmt)
	}
	e.t.Cleanup(func() { e.db.Exec("DROP TABLE " + e.d.Quote(name)) })
}

func (e *env) list(cols []string) string {
	q := make([]string, len(cols))
	for i, c := range cols {
		q[i] = e.d.Quote(c)
	}
	return strings.Join(q, ", ")
}

// commit commits one partition batch and returns its outcome.
func (e *env) commit(s *exactly.Sink, topic string, partition int32, from int64, recs ...*exactly.Record) exactly.Outcome {
	e.t.Helper()
	for _, r := range recs {
		r.Topic, r.Partition = topic, partition
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out := s.Commit(ctx, []*exactly.PartitionBatch{{Topic: topic, Partition: partition, From: from, Records: recs}})
	if len(out) != 1 {
		e.t.Fatalf("commit: got %d outcomes, want 1", len(out))
	}
	return out[0]
}

// mustCommit commits and fails the test unless the batch committed.
func (e *env) mustCommit(s *exactly.Sink, topic string, partition int32, from int64, recs ...*exactly.Record) exactly.Outcome {
	e.t.Helper()
	o := e.commit(s, topic, partition, from, recs...)
	if !o.Committed || o.Err != nil {
		e.t.Fatalf("batch %s[%d] from %d: not committed: %v", topic, partition, from, o.Err)
	}
	return o
}

// q rebinds a query with ? placeholders to the dialect's.
func (e *env) q(s string) string { return exactly.Rebind(e.d, s) }

// count runs a COUNT query.
func (e *env) count(query string, args ...any) int {
	e.t.Helper()
	var n int
	if err := e.db.QueryRow(e.q(query), args...).Scan(&n); err != nil {
		e.t.Fatalf("%s: %v", query, err)
	}
	return n
}

// rows reads a table as key → "col=value …" lines, normalised per kind,
// and fails on a key present twice.
func (e *env) rows(table string, cols []col, key []string) map[string]string {
	e.t.Helper()
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.name
	}
	rs, err := e.db.Query("SELECT " + e.list(names) + " FROM " + e.d.Quote(table))
	if err != nil {
		e.t.Fatalf("reading %s: %v", table, err)
	}
	defer rs.Close()
	out := map[string]string{}
	for rs.Next() {
		vals := make([]any, len(cols))
		dest := make([]any, len(cols))
		for i := range vals {
			dest[i] = &vals[i]
		}
		if err := rs.Scan(dest...); err != nil {
			e.t.Fatal(err)
		}
		k, line := render(cols, key, func(i int) any { return vals[i] })
		if prev, dup := out[k]; dup {
			e.t.Fatalf("%s: key %s present twice: %s and %s", table, k, prev, line)
		}
		out[k] = line
	}
	if err := rs.Err(); err != nil {
		e.t.Fatal(err)
	}
	return out
}

// expect renders wanted rows like rows does.
func expect(cols []col, key []string, want ...map[string]any) map[string]string {
	out := map[string]string{}
	for _, w := range want {
		k, line := render(cols, key, func(i int) any { return w[cols[i].name] })
		out[k] = line
	}
	return out
}

func render(cols []col, key []string, val func(int) any) (string, string) {
	var k, line []string
	for i, c := range cols {
		v := norm(c.kind, val(i))
		line = append(line, c.name+"="+v)
		for _, kc := range key {
			if kc == c.name {
				k = append(k, v)
			}
		}
	}
	return strings.Join(k, ","), strings.Join(line, " ")
}

// fixture is the suite's decoder: a record's value (or, for a tombstone,
// its key) names a change registered by the test, so any Go value a
// decoder may produce reaches the dialect exactly as given. An unknown
// name is a decoding error, i.e. a dead letter.
type fixture struct {
	mu      sync.Mutex
	n       int
	changes map[string]exactly.Change
}

var _ exactly.Decoder = (*fixture)(nil)

func (f *fixture) Decode(r *exactly.Record) (exactly.Change, error) {
	name := string(r.Value)
	if r.Value == nil {
		name = string(r.Key)
	}
	f.mu.Lock()
	ch, ok := f.changes[name]
	f.mu.Unlock()
	if !ok {
		return ch, fmt.Errorf("undecodable test record %q", name)
	}
	ch.Row = maps.Clone(ch.Row) // the engine writes key values into Row
	ch.Key = maps.Clone(ch.Key)
	return ch, nil
}

func (f *fixture) add(ch exactly.Change) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	name := fmt.Sprintf("change-%d", f.n)
	f.changes[name] = ch
	return name
}

// up is an upsert record of row; version names the version column or "".
func (e *env) up(off int64, row map[string]any, version ...string) *exactly.Record {
	ch := exactly.Change{Op: exactly.OpUpsert, Row: row}
	if len(version) > 0 {
		ch.Version = row[version[0]]
	}
	name := e.fx.add(ch)
	return &exactly.Record{Offset: off, Key: []byte("key-" + name), Value: []byte(name)}
}

// del is a tombstone deleting key, guarded by version when not nil.
func (e *env) del(off int64, key map[string]any, version any) *exactly.Record {
	name := e.fx.add(exactly.Change{Op: exactly.OpDelete, Key: key, Version: version})
	return &exactly.Record{Offset: off, Key: []byte(name)}
}

// bad is a record no decoder understands: a dead letter.
func (e *env) bad(off int64, key, value []byte, headers ...exactly.Header) *exactly.Record {
	return &exactly.Record{Offset: off, Key: key, Value: value, Headers: headers}
}
