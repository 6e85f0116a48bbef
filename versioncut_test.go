package exactly_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/sink/sqlserver"
	"github.com/exactly/exactly/internal/testenv"
)

// cutDatabases are the four sinks the cut tests run on.
func cutDatabases() []ddlCase {
	return append(ddlCases(), ddlCase{name: "sqlserver", driver: "sqlserver",
		dsn: func(t *testing.T) string { return testenv.SQLServerDatabase(t) }, d: &sqlserver.Dialect{}})
}

// guardOp is one record of a version-guard stream: an upsert (u), a
// delete carrying a before image (d, Debezium only) or a tombstone (t);
// ver is the version field: "" absent, "null", or a number; note and tag
// say which other fields an upsert carries; a bad note is one the table's
// CHECK refuses.
type guardOp struct {
	op             byte
	key            int
	ver            string
	note, tag, bad bool
}

func (o guardOp) String() string {
	s := fmt.Sprintf("%c%d", o.op, o.key)
	if o.op == 't' {
		return s
	}
	var f []string
	if o.bad {
		f = append(f, "note:bad")
	} else if o.note {
		f = append(f, "note")
	}
	if o.tag {
		f = append(f, "tag")
	}
	v := o.ver
	if v == "" {
		v = "-"
	}
	return s + "{" + strings.Join(append(f, "ver:"+v), ",") + "}"
}

// record is the op as a Kafka record at offset off (its note and tag
// values name the offset); debezium wraps it in a change event.
func (o guardOp) record(topic string, off int64, debezium bool) *exactly.Record {
	r := &exactly.Record{Topic: topic, Offset: off, Key: []byte(fmt.Sprintf(`{"id":%d}`, o.key))}
	if o.op == 't' {
		return r
	}
	fields := []string{fmt.Sprintf(`"id":%d`, o.key)}
	if o.bad {
		fields = append(fields, `"note":"bad"`)
	} else if o.note {
		fields = append(fields, fmt.Sprintf(`"note":"n%d"`, off))
	}
	if o.tag {
		fields = append(fields, fmt.Sprintf(`"tag":"t%d"`, off))
	}
	if o.ver != "" {
		fields = append(fields, `"ver":`+o.ver)
	}
	image := "{" + strings.Join(fields, ",") + "}"
	switch {
	case !debezium:
		r.Value = []byte(image)
	case o.op == 'u':
		r.Value = []byte(`{"op":"u","after":` + image + `}`)
	default:
		r.Value = []byte(`{"op":"d","before":` + image + `}`)
	}
	return r
}

// guardCase is a short stream over one or two keys, each key's row as it
// stands before the stream: "" none, "null" a row without a version, or
// a version.
type guardCase struct {
	pre map[int]string
	ops []guardOp
}

func (c guardCase) String() string {
	var keys []int
	for k := range c.pre {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var s []string
	for _, k := range keys {
		p := c.pre[k]
		if p == "" {
			p = "none"
		}
		s = append(s, fmt.Sprintf("row %d: %s", k, p))
	}
	var ops []string
	for _, o := range c.ops {
		ops = append(ops, o.String())
	}
	return strings.Join(s, ", ") + " | " + strings.Join(ops, " ")
}

var guardVersions = []string{"", "null", "5", "10", "15"}

// randomGuardCase is 1 to 5 records over one or two keys (ids base+1,
// base+2), versions older, equal and newer than a stored 10, or none.
func randomGuardCase(rng *rand.Rand, base int, debezium bool) guardCase {
	keys := 1 + rng.IntN(2)
	c := guardCase{pre: map[int]string{}}
	for k := 1; k <= keys; k++ {
		c.pre[base+k] = []string{"", "10", "null"}[rng.IntN(3)]
	}
	n := 1 + rng.IntN(5)
	for range n {
		o := guardOp{key: base + 1 + rng.IntN(keys), ver: guardVersions[rng.IntN(len(guardVersions))]}
		switch r := rng.IntN(10); {
		case r < 6:
			o.op, o.note, o.tag = 'u', rng.IntN(5) > 0, rng.IntN(2) == 0
			o.bad = o.note && rng.IntN(8) == 0
		case r < 9 && debezium:
			o.op = 'd'
		default:
			o.op = 't'
		}
		c.ops = append(c.ops, o)
	}
	return c
}

// exhaustiveGuardCases are all streams of up to three records over one
// key, each from every stored row.
func exhaustiveGuardCases(debezium bool) []guardCase {
	var alphabet []guardOp
	for _, v := range guardVersions {
		alphabet = append(alphabet, guardOp{op: 'u', ver: v, note: true})
		if debezium {
			alphabet = append(alphabet, guardOp{op: 'd', ver: v})
		}
	}
	alphabet = append(alphabet, guardOp{op: 'u', ver: "10", tag: true}, guardOp{op: 'u', tag: true}, guardOp{op: 't'})
	var seqs [][]guardOp
	var grow func(seq []guardOp)
	grow = func(seq []guardOp) {
		if len(seq) > 0 {
			seqs = append(seqs, seq)
		}
		if len(seq) == 3 {
			return
		}
		for _, o := range alphabet {
			grow(append(slices.Clip(seq), o))
		}
	}
	grow(nil)
	var out []guardCase
	for _, pre := range []string{"", "10", "null"} {
		for _, seq := range seqs {
			k := len(out) + 1
			c := guardCase{pre: map[int]string{k: pre}}
			for _, o := range seq {
				o.key = k
				c.ops = append(c.ops, o)
			}
			out = append(out, c)
		}
	}
	return out
}

// guardCases are the cases to run: EXACTLY_GUARD_CUTS=all runs every
// stream of up to three records over one key (thousands: slow), a number
// runs that many random ones; the default is a fixed random set.
func guardCases(t *testing.T, debezium bool) []guardCase {
	n := 80
	switch v := os.Getenv("EXACTLY_GUARD_CUTS"); v {
	case "":
	case "all":
		return exhaustiveGuardCases(debezium)
	default:
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			t.Fatalf("EXACTLY_GUARD_CUTS=%q: a number or all", v)
		}
	}
	seed := uint64(7)
	if debezium {
		seed = 8
	}
	rng := rand.New(rand.NewPCG(seed, 1))
	var out []guardCase
	for i := range n {
		out = append(out, randomGuardCase(rng, 2*i, debezium))
	}
	return out
}

// guardCuts are ways to cut a stream of cases (of the lengths given) into
// batches; the first, one record a batch, is the reference.
func guardCuts(lens []int) (names []string, cuts [][]int) {
	total := 0
	for _, n := range lens {
		total += n
	}
	perCase := func(name string, cut func(n int) []int) {
		var c []int
		for _, n := range lens {
			c = append(c, cut(n)...)
		}
		names, cuts = append(names, name), append(cuts, c)
	}
	perCase("one a batch", func(n int) []int { return slices.Repeat([]int{1}, n) })
	names, cuts = append(names, "all in one"), append(cuts, []int{total})
	perCase("a case a batch", func(n int) []int { return []int{n} })
	perCase("first alone", func(n int) []int {
		if n == 1 {
			return []int{1}
		}
		return []int{1, n - 1}
	})
	perCase("last alone", func(n int) []int {
		if n == 1 {
			return []int{1}
		}
		return []int{n - 1, 1}
	})
	rng := rand.New(rand.NewPCG(3, 4))
	perCase("random within cases", func(n int) []int {
		var c []int
		for n > 0 {
			k := 1 + rng.IntN(n)
			c, n = append(c, k), n-k
		}
		return c
	})
	var c []int
	for left := total; left > 0; {
		k := min(1+rng.IntN(7), left)
		c, left = append(c, k), left-k
	}
	names, cuts = append(names, "random across cases"), append(cuts, c)
	return names, cuts
}

// TestVersionGuardGivesTheSameTablesWhereverBatchesAreCut is differential:
// short streams of upserts, deletes and tombstones with versions older,
// equal and newer than the stored row's, or none, over one or two keys,
// cut many ways, must leave every row and dead letter as one record a
// batch leaves them, in upsert (JSON) and cdc (Debezium) mode. Now and
// then an upsert's note is one a CHECK refuses: a dead letter, the rest
// applied. (A CHECK only the database knows: superseded inside its batch,
// such a record is skipped, not a dead letter, as the README says; so a
// cut's dead letters must be among those of one record a batch.)
func TestVersionGuardGivesTheSameTablesWhereverBatchesAreCut(t *testing.T) {
	for _, db := range cutDatabases() {
		for _, debezium := range []bool{false, true} {
			mode := "upsert"
			if debezium {
				mode = "cdc"
			}
			t.Run(db.name+"/"+mode, func(t *testing.T) {
				t.Parallel()
				cases := guardCases(t, debezium)
				for _, d := range runGuardCases(t, db, debezium, cases) {
					t.Error(d)
				}
			})
		}
	}
}

// runGuardCases runs the cases at every cut of guardCuts on one database
// and returns each difference from one record a batch (at most 40).
func runGuardCases(t *testing.T, db ddlCase, debezium bool, cases []guardCase) []string {
	prefix, rule := "j", "  - {topics: 't\\.(j[0-9]+)', table: '$1', key: [id], version: ver}\n"
	if debezium {
		prefix, rule = "d", "  - {topics: 't\\.(d[0-9]+)', table: '$1', format: debezium, mode: cdc, key: [id], version: ver}\n"
	}
	cfg := ddlConfig(t, db, rule)
	cfg.Sink.RefusedWait = 0 // refused rows are dead letters at once, however many
	s := ddlSink(t, db, cfg)
	var ops []guardOp
	var lens, caseOf []int
	for i, c := range cases {
		ops = append(ops, c.ops...)
		lens = append(lens, len(c.ops))
		for range c.ops {
			caseOf = append(caseOf, i)
		}
	}
	names, cuts := guardCuts(lens)
	type outcome struct {
		rows map[int]string
		dead map[int][]int64 // by case
	}
	results := make([]outcome, len(cuts))
	for i, cut := range cuts {
		table := fmt.Sprintf("%s%d", prefix, i)
		topic := "t." + table
		if _, err := s.DB().Exec("CREATE TABLE " + table + " (id BIGINT NOT NULL PRIMARY KEY, note VARCHAR(40) CHECK (note <> 'bad'), tag VARCHAR(40), ver BIGINT)"); err != nil {
			t.Fatal(err)
		}
		var pre []string
		for _, c := range cases {
			for k, v := range c.pre {
				switch v {
				case "":
				case "null":
					pre = append(pre, fmt.Sprintf("(%d, 'pre', 'pre', NULL)", k))
				default:
					pre = append(pre, fmt.Sprintf("(%d, 'pre', 'pre', %s)", k, v))
				}
			}
		}
		for len(pre) > 0 { // SQL Server takes up to 1000 rows a VALUES
			n := min(len(pre), 500)
			if _, err := s.DB().Exec("INSERT INTO " + table + " (id, note, tag, ver) VALUES " + strings.Join(pre[:n], ", ")); err != nil {
				t.Fatal(err)
			}
			pre = pre[n:]
		}
		if _, err := s.SeedOffset(context.Background(), exactly.TP{Topic: topic}, 0); err != nil {
			t.Fatal(err)
		}
		res := outcome{rows: map[int]string{}, dead: map[int][]int64{}}
		from := 0
		for _, n := range cut {
			var recs []*exactly.Record
			for j := from; j < from+n; j++ {
				recs = append(recs, ops[j].record(topic, int64(j), debezium))
			}
			out := s.Commit(context.Background(), []*exactly.PartitionBatch{{Topic: topic, From: int64(from), Records: recs}})
			if len(out) != 1 || !out[0].Committed {
				t.Fatalf("%s: batch at %d did not commit: %v", names[i], from, out[0].Err)
			}
			for _, d := range out[0].Batch.DeadLetters {
				c := caseOf[d.Record.Offset]
				res.dead[c] = append(res.dead[c], d.Record.Offset)
			}
			from += n
		}
		rs, err := s.DB().Query("SELECT id, note, tag, ver FROM " + table)
		if err != nil {
			t.Fatal(err)
		}
		for rs.Next() {
			var id int
			var note, tag sql.NullString
			var ver sql.NullInt64
			if err := rs.Scan(&id, &note, &tag, &ver); err != nil {
				t.Fatal(err)
			}
			v := "NULL"
			if ver.Valid {
				v = strconv.FormatInt(ver.Int64, 10)
			}
			res.rows[id] = fmt.Sprintf("%s|%s|%s", nullText(note), nullText(tag), v)
		}
		if err := rs.Err(); err != nil {
			t.Fatal(err)
		}
		rs.Close()
		results[i] = res
	}
	var diffs []string
	ref := results[0]
	for i := 1; i < len(cuts); i++ {
		got := results[i]
		// where each case's records were cut, relative to the case
		cutOf := make([][]int, len(cases))
		pos := 0
		for _, n := range cuts[i] {
			for j := pos; j < pos+n; j++ {
				c := caseOf[j]
				if j == pos || caseOf[j-1] != c {
					cutOf[c] = append(cutOf[c], 0)
				}
				cutOf[c][len(cutOf[c])-1]++
			}
			pos += n
		}
		for ci, c := range cases {
			var bad []string
			for k := range c.pre {
				if ref.rows[k] != got.rows[k] {
					bad = append(bad, fmt.Sprintf("row %d %q, one a batch %q", k, orNone(got.rows[k]), orNone(ref.rows[k])))
				}
			}
			if slices.ContainsFunc(got.dead[ci], func(o int64) bool { return !slices.Contains(ref.dead[ci], o) }) {
				bad = append(bad, fmt.Sprintf("dead letters at %v, one a batch only %v", got.dead[ci], ref.dead[ci]))
			}
			if len(bad) > 0 {
				slices.Sort(bad)
				diffs = append(diffs, fmt.Sprintf("%s | %s %v: %s", c, names[i], cutOf[ci], strings.Join(bad, "; ")))
			}
		}
	}
	if len(diffs) > 40 && os.Getenv("EXACTLY_GUARD_CUTS") == "" {
		diffs = append(diffs[:40], fmt.Sprintf("… and %d more", len(diffs)-40))
	}
	return diffs
}

func nullText(s sql.NullString) string {
	if !s.Valid {
		return "NULL"
	}
	return s.String
}

func orNone(row string) string {
	if row == "" {
		return "none"
	}
	return row
}
