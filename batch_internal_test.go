package exactly

import (
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"
)

// Regression: a version like 1e999999999 (a JSON number a record may
// carry) made compareVersions expand it with big.Rat, stalling the batch
// for minutes. Found by FuzzDebezium's stalls.
func TestCompareVersionsRefusesHugeExponents(t *testing.T) {
	start := time.Now()
	if got := compareVersions(Decimal("1e999999999"), Decimal("2")); got != -1 {
		t.Errorf("got %d, want -1 (compared as text)", got)
	}
	if time.Since(start) > time.Second {
		t.Errorf("took %v", time.Since(start))
	}
	for _, c := range []struct {
		a, b any
		want int
	}{
		{int64(2), Decimal("10"), -1},
		{Decimal("1e3"), int64(999), 1},
		{Decimal("1.50"), Decimal("1.5"), 0},
		{nil, int64(1), -1},
		{time.Unix(2, 0), time.Unix(1, 0), 1},
		{"a", "b", -1},
	} {
		if got := compareVersions(c.a, c.b); got != c.want {
			t.Errorf("compareVersions(%v, %v) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}

// shapes groups upserts by the table columns their rows carry: rows with
// the same fields are one shape, and so are rows that differ only in
// fields the table lacks; a row lacking a column, or carrying one the
// others lack, starts a shape of its own, in order of first appearance.
func TestShapesGroupByTableColumns(t *testing.T) {
	tbl := &Table{Name: "t", Key: []string{"id"}, Columns: []Column{{Name: "id"}, {Name: "a"}, {Name: "b"}}}
	a := &planAcc{t: tbl, cols: map[string]bool{}, keys: []string{"id"}}
	rows := []map[string]any{
		{"id": 1, "a": 1, "b": 1},
		{"id": 2, "a": 2, "b": 2},
		{"id": 3, "a": 3, "b": 3, "extra": 3}, // not a column: same shape
		{"id": 4, "a": 4},                     // lacks b
		{"id": 5, "b": 5, "x": 5},             // lacks a
		{"id": 6, "a": 6, "y": 6},             // lacks b, another non-column
		{"id": 7, "b": 7, "a": 7},
	}
	var ups []*item
	for _, r := range rows {
		a.see(rowImage{m: r})
		ups = append(ups, &item{row: rowImage{m: r}})
	}
	ids := func(groups [][]*item) [][]int {
		var out [][]int
		for _, g := range groups {
			var one []int
			for _, it := range g {
				one = append(one, it.row.m["id"].(int))
			}
			out = append(out, one)
		}
		return out
	}
	if got, want := ids(a.shapes(ups)), [][]int{{1, 2, 3, 7}, {4, 6}, {5}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("shapes %v, want %v", got, want)
	}
	if got, want := ids(a.shapes(ups[:3])), [][]int{{1, 2, 3}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("shapes %v, want %v", got, want)
	}
	if got, want := ids(a.shapes([]*item{ups[2], ups[0]})), [][]int{{3, 1}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("shapes %v, want %v", got, want)
	}
}

// TestSortedKeysIsByteOrder: sortedKeys orders key identities as
// slices.Sort does (the lock order rows are written in), whatever their
// lengths, shared prefixes longer than eight bytes, NUL and high bytes.
func TestSortedKeysIsByteOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(20, 1))
	alphabet := []byte{0, 1, '0', '1', '9', 'a', 0x7f, 0x80, 0xff}
	for range 500 {
		kids := map[string]bool{}
		for range rng.IntN(60) {
			var b []byte
			if rng.IntN(3) == 0 {
				b = append(b, "longcommonprefix"[:rng.IntN(17)]...)
			}
			for range rng.IntN(12) {
				b = append(b, alphabet[rng.IntN(len(alphabet))])
			}
			kids[string(b)] = true // identities are distinct
		}
		var in []string
		for k := range kids {
			in = append(in, k)
		}
		var got []string
		for _, slot := range sortedKeys(in) {
			got = append(got, in[slot])
		}
		want := slices.Clone(in)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("sortedKeys(%q) gives %q, want %q", in, got, want)
		}
	}
}
