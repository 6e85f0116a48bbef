package sinktest

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"

	"github.com/exactly/exactly"
)

// testPartialRows: an upsert sets the columns its record carries and no
// other (merge of present fields), wherever the batches are cut. One stream
// of upserts carrying random subsets of the fields, and deletes, is applied
// one record per transaction, then once per cut position as two batches
// (each cut in its own key range of one table); every cut must leave the
// rows one by one leaves. Before, a row lacking a field that another upsert
// of its batch carried set that column to NULL.
func testPartialRows(t *testing.T, tg Target) {
	e := newEnv(t, tg)
	ty := tg.Types
	cols := []col{{"k", ty.BigInt, kInt, true}, {"v", ty.BigInt, kInt, false}, {"w", ty.Text, kText, false}, {"x", ty.Text, kText, false}}
	one, cut, s := e.twin("partial", cols, "    key: [k]\n")
	const keys, n = 3, 14
	var nextOne, nextCut int64
	for seed := uint64(1); seed <= 3; seed++ {
		r := rand.New(rand.NewPCG(seed, 6))
		stream := make(partialStream, n)
		for i := range stream {
			x := partialRec{k: int64(r.IntN(keys)), del: r.IntN(5) == 0}
			x.row = map[string]any{}
			for _, f := range []string{"v", "w", "x"} {
				if r.IntN(2) == 0 {
					switch f {
					case "v":
						x.row[f] = int64(i)
					default:
						x.row[f] = fmt.Sprintf("%s%d", f, i)
					}
				}
			}
			stream[i] = x
		}
		e.everyCut(s, one, cut, cols, seed, stream, &nextOne, &nextCut)
	}
}

// partialRec is one record of a partial-rows stream: a delete of key k
// or an upsert of k carrying the fields in row.
type partialRec struct {
	del bool
	k   int64
	row map[string]any
}

type partialStream []partialRec

// records are the stream's records from offset from on, keys offset by
// base; upserts carry version, deletes none (they delete whatever the
// table holds).
func (st partialStream) records(e *env, from, base int64, version ...string) []*exactly.Record {
	out := make([]*exactly.Record, len(st))
	for i, x := range st {
		k := base + x.k
		if x.del {
			out[i] = e.del(from+int64(i), map[string]any{"k": k}, nil)
			continue
		}
		row := map[string]any{"k": k}
		for f, v := range x.row {
			row[f] = v
		}
		out[i] = e.up(from+int64(i), row, version...)
	}
	return out
}

// String lists the stream, a record a line.
func (st partialStream) String() string {
	var desc []string
	for _, x := range st {
		if x.del {
			desc = append(desc, fmt.Sprintf("del %d", x.k))
		} else {
			desc = append(desc, fmt.Sprintf("up %d %v", x.k, x.row))
		}
	}
	return strings.Join(desc, "\n  ")
}

// everyCut applies stream one record per transaction to table one (topic
// t.one), then, for every cut position, as two batches to table cut (t.cut,
// each cut in its own key range), and fails unless every cut leaves the
// rows one by one leaves. next* are the topics' next offsets.
func (e *env) everyCut(s *exactly.Sink, one, cut string, cols []col, seed uint64, stream partialStream, nextOne, nextCut *int64, version ...string) {
	e.t.Helper()
	base := int64(seed) * 1000
	for _, rc := range stream.records(e, *nextOne, base, version...) {
		e.mustCommit(s, "t.one", 0, *nextOne, rc)
		*nextOne++
	}
	want := e.keyed(one, cols, base)
	for c := 0; c <= len(stream); c++ {
		cb := base + int64(c+1)*10
		all := stream.records(e, *nextCut, cb, version...)
		for _, part := range [][]*exactly.Record{all[:c], all[c:]} {
			if len(part) > 0 {
				e.mustCommit(s, "t.cut", 0, *nextCut, part...)
				*nextCut += int64(len(part))
			}
		}
		if got := e.keyed(cut, cols, cb); got != want {
			e.t.Fatalf("seed %d, cut after %d records: got %s, want (one by one) %s\nstream:\n  %s", seed, c, got, want, stream)
		}
	}
}

// keyed renders the rows of table whose key k is in [base, base+10), keys
// shown relative to base.
func (e *env) keyed(table string, cols []col, base int64) string {
	e.t.Helper()
	rows := e.rows(table, cols, []string{"k"})
	var out []string
	for k, line := range rows {
		var n int64
		fmt.Sscan(k, &n)
		if n >= base && n < base+10 {
			out = append(out, fmt.Sprintf("%d: %s", n-base, line[strings.Index(line, " ")+1:]))
		}
	}
	sort.Strings(out)
	return "[" + strings.Join(out, "; ") + "]"
}

// testPartialVersionedRows: partial rows under a version guard, wherever
// the batches are cut. Every upsert carries the version and a random subset
// of the other fields; versions are not monotonic in offset order. One by
// one, an upsert older than the stored row sets nothing, so merging its
// fields into a later, newer upsert of its batch wrote them past the
// guard: {v:5 w:new} | {v:3 w:old} {v:6 x:..} left w=old when cut after
// the first record, w=new when not cut.
func testPartialVersionedRows(t *testing.T, tg Target) {
	e := newEnv(t, tg)
	ty := tg.Types
	cols := []col{{"k", ty.BigInt, kInt, true}, {"v", ty.BigInt, kInt, false}, {"w", ty.Text, kText, false}, {"x", ty.Text, kText, false}}
	one, cut, s := e.twin("pver", cols, "    key: [k]\n    version: v\n")
	const keys, n = 2, 12
	var nextOne, nextCut int64
	for seed := uint64(1); seed <= 4; seed++ {
		r := rand.New(rand.NewPCG(seed, 7))
		stream := make(partialStream, n)
		for i := range stream {
			x := partialRec{k: int64(r.IntN(keys)), del: r.IntN(6) == 0}
			x.row = map[string]any{"v": int64(r.IntN(8))}
			for _, f := range []string{"w", "x"} {
				if r.IntN(2) == 0 {
					x.row[f] = fmt.Sprintf("%s%d", f, i)
				}
			}
			stream[i] = x
		}
		e.everyCut(s, one, cut, cols, seed, stream, &nextOne, &nextCut, "v")
	}
	// The upserts written one by one are counted upserted, not skipped.
	if n := e.count("SELECT COUNT(*) FROM exactly_batches WHERE pipeline = ? AND status = 'committed' AND records <> upserted + deleted + skipped + dead_lettered", e.pipeline); n != 0 {
		t.Fatalf("%d ledger rows whose counts do not add up to their records", n)
	}
}
