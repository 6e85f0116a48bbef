package sinktest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"

	"github.com/exactly/exactly"
)

// testWidenedTypes: a table create makes does not depend on where batches
// were cut (issue 15, item 14). Under create: true and evolve: widen, one
// stream of upserts and deletes whose values have no schema — a key that
// is mostly integers with a stray "abc", a field that is an integer, a
// decimal, text, a boolean or null, a field null until late — is applied
// one record per transaction to one table, then once per cut position as
// two batches to a table of its own; every cut must leave the same column
// types, the same rows (each value with the Go type the driver returns)
// and the same dead letters. Before, the first batch's values decided the
// types: the key became bigint when the first batch had only integers
// (and "abc" was a dead letter), text when it held "abc".
func testWidenedTypes(t *testing.T, tg Target) {
	if _, ok := tg.Dialect.(exactly.Widener); !ok {
		t.Fatalf("dialect %s does not implement exactly.Widener (evolve: widen)", tg.Dialect.Name())
	}
	e := newEnv(t, tg)
	prefix := uniq("widen")
	e.rule(`^t\.w\.(.*)$`, prefix+"_$1", "    key: [k]\n    create: true\n    evolve: widen\n")
	s := e.sink()
	ctx := context.Background()
	const n = 9
	for seed := uint64(1); seed <= 4; seed++ {
		r := rand.New(rand.NewPCG(seed, 14))
		type rec struct {
			del     bool
			k, v, w any
		}
		keys := []any{int64(1), int64(2), int64(3), int64(1), int64(2), "abc"}
		vals := []any{int64(7), int64(-3), exactly.Decimal("2.50"), exactly.Decimal("1e3"), "x", nil, true}
		stream := make([]rec, n)
		for i := range stream {
			x := rec{del: r.IntN(5) == 0, k: keys[r.IntN(len(keys))]}
			x.v = vals[r.IntN(len(vals))]
			if i > n/2 {
				x.w = vals[r.IntN(len(vals))]
			}
			stream[i] = x
		}
		records := func() []*exactly.Record {
			out := make([]*exactly.Record, n)
			for i, x := range stream {
				if x.del {
					out[i] = e.del(int64(i), map[string]any{"k": x.k}, nil)
					continue
				}
				out[i] = e.up(int64(i), map[string]any{"k": x.k, "v": x.v, "w": x.w})
			}
			return out
		}
		desc := func() string {
			var d []string
			for i, x := range stream {
				if x.del {
					d = append(d, fmt.Sprintf("%d: del k=%#v", i, x.k))
				} else {
					d = append(d, fmt.Sprintf("%d: up k=%#v v=%#v w=%#v", i, x.k, x.v, x.w))
				}
			}
			return strings.Join(d, "\n  ")
		}
		// apply commits the stream to its own topic and table, cut into
		// the given batch sizes, and returns the table's shape.
		apply := func(name string, sizes []int) string {
			topic := "t.w." + name
			table := prefix + "_" + name
			t.Cleanup(func() { e.db.Exec("DROP TABLE " + e.d.Quote(table)) })
			if _, err := s.SeedOffset(ctx, tpOf(topic, 0), 0); err != nil {
				t.Fatal(err)
			}
			recs := records()
			dead := map[int64]bool{}
			from := int64(0)
			for _, m := range sizes {
				o := e.mustCommit(s, topic, 0, from, recs[from:from+int64(m)]...)
				for _, d := range o.Batch.DeadLetters {
					dead[d.Record.Offset] = true
				}
				from += int64(m)
			}
			return e.shape(table) + "\ndead letters " + offsets(dead)
		}
		ones := make([]int, n)
		for i := range ones {
			ones[i] = 1
		}
		want := apply(fmt.Sprintf("s%d_one", seed), ones)
		for c := 0; c <= n; c++ {
			sizes := []int{n}
			if c > 0 && c < n {
				sizes = []int{c, n - c}
			}
			if got := apply(fmt.Sprintf("s%d_c%d", seed, c), sizes); got != want {
				t.Fatalf("seed %d, cut after %d records:\n got %s\nwant (one by one) %s\nstream:\n  %s", seed, c, got, want, desc())
			}
		}
	}
}

// shape renders a table's columns (name, type, nullability, key) and its
// rows, each value with its Go type; "no table" when it does not exist.
func (e *env) shape(table string) string {
	e.t.Helper()
	tb, err := e.d.Describe(context.Background(), e.db, table)
	if err != nil {
		e.t.Fatalf("describing %s: %v", table, err)
	}
	if tb == nil {
		return "no table"
	}
	var defs []string
	var cols []col
	for _, c := range tb.Columns {
		defs = append(defs, fmt.Sprintf("%s %s null=%v", c.Name, c.Type, c.Nullable))
		cols = append(cols, col{name: c.Name})
	}
	sort.Strings(defs)
	sort.Slice(cols, func(i, j int) bool { return cols[i].name < cols[j].name })
	return fmt.Sprintf("columns %v key %v rows %s", defs, tb.Key, e.image(table, cols))
}
