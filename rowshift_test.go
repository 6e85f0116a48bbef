package exactly_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/exactly/exactly"
)

// shiftNames are field names that share prefixes (a decoder compares a
// member's name with the last shape's by bytes), sort apart from their
// order in records, and are written escaped or not; more than 16 of them
// (Shape.Index then looks names up in a map), and now and then a record
// with more than 64 fields (a row without a shape, a map).
var shiftNames = append([]string{"a", "ab", "abc", "abd", "b", "ba", "z_1", "z_10", "é", "ée"}, numbered("c", 12)...)

func numbered(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%02d", prefix, i)
	}
	return out
}

// TestRowsByPositionLandInTheirColumns: rows are handed out by position
// (Change.Values, ordered by a shared shape) and written by the columns'
// positions in that shape. Records of many shapes, in every order, some
// with a name twice (the last value counts), JSON and Debezium (fields in
// schema order, as the one-walk decoder reads them, and out of it), cut
// into batches three ways: every value is "<field>#<id>", so a value in
// the wrong column, a field lost or one taken from another record shows.
func TestRowsByPositionLandInTheirColumns(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 20))
	const n = 300
	type want = map[string]string // column -> value, for one id
	jsonVals, dbzVals := make([]string, n), make([]*exactly.Record, n)
	jsonWant, dbzWant := make([]want, n), make([]want, n)
	for i := range n {
		id := i + 1
		// JSON: a random subset of the names in a random order, id anywhere.
		names := shiftNames
		if rng.IntN(20) == 0 {
			names = append(numbered("e", 50), shiftNames...)
		}
		fields := rng.Perm(len(names))[:rng.IntN(len(names)+1)]
		w := want{}
		var parts []string
		at := rng.IntN(len(fields) + 1)
		for j, f := range fields {
			if j == at {
				parts = append(parts, fmt.Sprintf(`"id":%d`, id))
			}
			name := names[f]
			if rng.IntN(10) == 0 {
				parts = append(parts, fmt.Sprintf("%s:%q", jsonName(name, rng), name+"#first"))
			}
			v := fmt.Sprintf("%s#%d", name, id)
			parts = append(parts, fmt.Sprintf("%s:%q", jsonName(name, rng), v))
			w[name] = v
		}
		if at == len(fields) {
			parts = append(parts, fmt.Sprintf(`"id":%d`, id))
		}
		jsonVals[i], jsonWant[i] = "{"+strings.Join(parts, ",")+"}", w
		// Debezium: a schema of a random subset in a random order; the
		// payload in schema order but now and then shuffled.
		names = shiftNames
		if rng.IntN(20) == 0 {
			names = append(numbered("e", 50), shiftNames...)
		}
		fields = rng.Perm(len(names))[:rng.IntN(len(names)+1)]
		order := []string{"id"}
		for _, f := range fields {
			order = append(order, names[f])
		}
		rng.Shuffle(len(order), func(a, b int) { order[a], order[b] = order[b], order[a] })
		w = want{}
		image := map[string]string{}
		for _, name := range order {
			if name == "id" {
				image[name] = fmt.Sprint(id)
				continue
			}
			v := fmt.Sprintf("%s#%d", name, id)
			image[name], w[name] = fmt.Sprintf("%q", v), v
		}
		payload := order
		if rng.IntN(5) == 0 {
			payload = append([]string(nil), order...)
			rng.Shuffle(len(payload), func(a, b int) { payload[a], payload[b] = payload[b], payload[a] })
		}
		dbzVals[i], dbzWant[i] = shiftDebezium(int64(i), id, order, payload, image), w
	}
	for _, c := range ddlCases() {
		for _, cut := range [][]int{{n}, cutsOf(n, 1), cutsOf(n, 7)} {
			t.Run(fmt.Sprintf("%s/%d", c.name, len(cut)), func(t *testing.T) {
				jt, dt := uniq("shiftj"), uniq("shiftd")
				cfg := ddlConfig(t, c, "  - {topics: t.j, table: "+jt+", key: [id], create: true, evolve: add_columns}\n"+
					"  - {topics: t.d, table: "+dt+", format: debezium, key: [id], create: true, evolve: add_columns}\n")
				s := ddlSink(t, c, cfg)
				for _, topic := range []string{"t.j", "t.d"} {
					if _, err := s.SeedOffset(context.Background(), exactly.TP{Topic: topic}, 0); err != nil {
						t.Fatal(err)
					}
				}
				from := 0
				for _, k := range cut {
					batches := []*exactly.PartitionBatch{
						{Topic: "t.j", From: int64(from), Records: records("t.j", int64(from), jsonVals[from:from+k]...)},
						{Topic: "t.d", From: int64(from), Records: dbzVals[from : from+k]},
					}
					for _, out := range s.Commit(context.Background(), batches) {
						if !out.Committed || len(out.Batch.DeadLetters) > 0 {
							t.Fatalf("batch %s at %d: committed %v, %d dead letters, %v", out.Batch.Topic, from, out.Committed, len(out.Batch.DeadLetters), out.Err)
						}
					}
					from += k
				}
				checkShift(t, s.DB(), jt, jsonWant)
				checkShift(t, s.DB(), dt, dbzWant)
			})
		}
	}
}

// jsonName writes a field name as JSON, now and then with escapes.
func jsonName(name string, rng *rand.Rand) string {
	if rng.IntN(4) != 0 {
		return fmt.Sprintf("%q", name)
	}
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range name {
		fmt.Fprintf(&b, `\u%04x`, r)
	}
	b.WriteByte('"')
	return b.String()
}

func cutsOf(n, k int) []int {
	var out []int
	for ; n > k; n -= k {
		out = append(out, k)
	}
	return append(out, n)
}

// shiftDebezium is a Debezium create event whose after image's schema
// lists order and whose payload writes the members in payload's order.
func shiftDebezium(off int64, id int, order, payload []string, image map[string]string) *exactly.Record {
	var fs []string
	for _, name := range order {
		typ, opt := "string", true
		if name == "id" {
			typ, opt = "int32", false
		}
		f, _ := json.Marshal(name)
		fs = append(fs, fmt.Sprintf(`{"type":%q,"optional":%v,"field":%s}`, typ, opt, f))
	}
	img := fmt.Sprintf(`{"type":"struct","optional":true,"name":"s.t.Value","fields":[%s]`, strings.Join(fs, ","))
	schema := fmt.Sprintf(`{"type":"struct","optional":false,"name":"s.t.Envelope","fields":[%s,"field":"before"},%s,"field":"after"},{"type":"string","optional":false,"field":"op"},{"type":"int64","optional":true,"field":"ts_ms"}]}`, img, img)
	var members []string
	for _, name := range payload {
		f, _ := json.Marshal(name)
		members = append(members, string(f)+":"+image[name])
	}
	value := fmt.Sprintf(`{"schema":%s,"payload":{"before":null,"after":{%s},"op":"c","ts_ms":%d}}`, schema, strings.Join(members, ","), 1700000000000+off)
	key := fmt.Sprintf(`{"schema":{"type":"struct","optional":false,"name":"s.t.Key","fields":[{"type":"int32","optional":false,"field":"id"}]},"payload":{"id":%d}}`, id)
	return &exactly.Record{Topic: "t.d", Offset: off, Key: []byte(key), Value: []byte(value)}
}

// checkShift reads every row of table and wants each column to hold what
// its id's record gave that field, NULL where it gave none.
func checkShift(t *testing.T, db *sql.DB, table string, want []map[string]string) {
	t.Helper()
	rows, err := db.Query("SELECT * FROM " + table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		var id int
		for i, c := range cols {
			if c == "id" {
				fmt.Sscan(vals[i].String, &id)
			}
		}
		if id < 1 || id > len(want) {
			t.Fatalf("%s: a row with id %d", table, id)
		}
		seen++
		for i, c := range cols {
			if c == "id" {
				continue
			}
			w, ok := want[id-1][c]
			if vals[i].Valid != ok || vals[i].String != w {
				t.Errorf("%s id %d column %s: %q (null %v), want %q (null %v)", table, id, c, vals[i].String, !vals[i].Valid, w, !ok)
			}
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if seen != len(want) {
		t.Errorf("%s: %d rows, want %d", table, seen, len(want))
	}
}
