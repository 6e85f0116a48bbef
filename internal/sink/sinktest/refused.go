package sinktest

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"

	"github.com/exactly/exactly"
)

// testRefusedValues: which records are dead letters does not depend on
// where batches were cut (issue 15.13). One stream of upserts, some
// carrying a value the database refuses (tg.Refusals: "maybe" for a
// boolean, a month 13, a varchar too long), and deletes, is applied one
// record per transaction, then once per cut position as two batches; every
// cut must leave the rows and the dead letters one by one leaves. Before,
// a refused record that a later change of its key superseded inside its
// batch never reached the database: it was counted skipped, not
// dead-lettered. Run with a plain rule and with create: true (the
// create/evolve type check).
func testRefusedValues(t *testing.T, tg Target) {
	if len(tg.Refusals) == 0 {
		// Every dialect has values its database refuses: a target without
		// them left MySQL/MariaDB and SQL Server unchecked, and their dead
		// letters depended on the cut.
		t.Fatalf("the target declares no refused values")
	}
	for _, mode := range []string{"plain", "create"} {
		t.Run(mode, func(t *testing.T) {
			extra := ""
			if mode == "create" {
				extra = "    create: true\n"
			}
			refusedValues(t, tg, extra)
		})
	}
}

func refusedValues(t *testing.T, tg Target, extra string) {
	e := newEnv(t, tg)
	ty := tg.Types
	cols := []col{{"k", ty.BigInt, kInt, true}, {"v", ty.BigInt, kInt, false}}
	all := append([]col(nil), cols...)
	for i, r := range tg.Refusals {
		all = append(all, col{fmt.Sprintf("c%d", i), r.Type, kText, false})
	}
	one, cut, s := e.twin("refused", all, "    key: [k]\n"+extra)
	const keys, n = 3, 12
	type rec struct {
		del bool
		k   int64
		bad int // index of the refused column, or -1
	}
	dead := func(o exactly.Outcome, from int64, into map[int64]bool) {
		for _, d := range o.Batch.DeadLetters {
			into[d.Record.Offset-from] = true
		}
	}
	var nextOne, nextCut int64
	for seed := uint64(1); seed <= 3; seed++ {
		r := rand.New(rand.NewPCG(seed, 13))
		stream := make([]rec, n)
		for i := range stream {
			x := rec{k: int64(r.IntN(keys)), del: r.IntN(6) == 0, bad: -1}
			if !x.del && r.IntN(3) == 0 {
				x.bad = r.IntN(len(tg.Refusals))
			}
			stream[i] = x
		}
		recs := func(from, base int64) []*exactly.Record {
			out := make([]*exactly.Record, n)
			for i, x := range stream {
				k := base + x.k
				if x.del {
					out[i] = e.del(from+int64(i), map[string]any{"k": k}, nil)
					continue
				}
				row := map[string]any{"k": k, "v": int64(i)}
				for j, rf := range tg.Refusals {
					row[fmt.Sprintf("c%d", j)] = rf.Good
					if j == x.bad {
						row[fmt.Sprintf("c%d", j)] = rf.Bad
					}
				}
				out[i] = e.up(from+int64(i), row)
			}
			return out
		}
		base := int64(seed) * 1000
		wantDead := map[int64]bool{}
		start := nextOne
		for _, rc := range recs(nextOne, base) {
			dead(e.mustCommit(s, "t.one", 0, nextOne, rc), start, wantDead)
			nextOne++
		}
		want := e.keyed(one, cols, base)
		for c := 0; c <= n; c++ {
			cb := base + int64(c+1)*10
			gotDead := map[int64]bool{}
			start := nextCut
			recs := recs(nextCut, cb)
			for _, part := range [][]*exactly.Record{recs[:c], recs[c:]} {
				if len(part) > 0 {
					dead(e.mustCommit(s, "t.cut", 0, nextCut, part...), start, gotDead)
					nextCut += int64(len(part))
				}
			}
			got := e.keyed(cut, cols, cb)
			if got != want || offsets(gotDead) != offsets(wantDead) {
				var desc []string
				for i, x := range stream {
					switch {
					case x.del:
						desc = append(desc, fmt.Sprintf("%d: del %d", i, x.k))
					case x.bad >= 0:
						desc = append(desc, fmt.Sprintf("%d: up %d with c%d=%v", i, x.k, x.bad, tg.Refusals[x.bad].Bad))
					default:
						desc = append(desc, fmt.Sprintf("%d: up %d", i, x.k))
					}
				}
				t.Fatalf("seed %d, cut after %d records: rows %s, dead letters %s; want (one by one) rows %s, dead letters %s\nstream:\n  %s",
					seed, c, got, offsets(gotDead), want, offsets(wantDead), strings.Join(desc, "\n  "))
			}
		}
	}
}

func offsets(m map[int64]bool) string {
	var out []int64
	for o := range m {
		out = append(out, o)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return fmt.Sprint(out)
}
