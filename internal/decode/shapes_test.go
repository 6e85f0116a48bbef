package decode

import (
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/exactly/exactly"
)

// shapeFault says how ch's shape misnames its row's fields, or "": a
// non-nil Shape must name exactly the row's fields (repeats allowed, as a
// repeated member is one field).
func shapeFault(ch exactly.Change) string {
	if ch.Shape == nil {
		if ch.Values != nil {
			return "values by position without a shape"
		}
		return ""
	}
	if ch.Values != nil && (ch.Row != nil || len(ch.Values) != len(ch.Shape.Names) || !ch.Shape.Distinct()) {
		return fmt.Sprintf("values %v by position do not match their shape %q, or come with a map too", ch.Values, ch.Shape.Names)
	}
	row := ch.RowMap()
	for _, n := range ch.Shape.Names {
		if _, ok := row[n]; !ok {
			return fmt.Sprintf("shape %q names %q, which the row %v lacks", ch.Shape.Names, n, row)
		}
	}
	for f := range row {
		if !slices.Contains(ch.Shape.Names, f) {
			return fmt.Sprintf("shape %q lacks the row's field %q", ch.Shape.Names, f)
		}
	}
	return ""
}

// unshaped checks ch's shape and returns ch without it, for comparing
// with a reference decoder, which knows no shapes.
func unshaped(t testing.TB, ch exactly.Change) exactly.Change {
	t.Helper()
	if msg := shapeFault(ch); msg != "" {
		t.Fatal(msg)
	}
	ch.Row, ch.Values, ch.Shape = ch.RowMap(), nil, nil
	return ch
}

// TestShapesNameTheFields: rows of the same field names in the same order
// share one shape, whatever the values; another order or another name is
// another shape; a repeated member is named as it came.
func TestShapesNameTheFields(t *testing.T) {
	defer func(old *shapeTable) { shapes = old }(shapes)
	shapes = newShapeTable() // the other tests' may be full
	d := &JSON{}
	shape := func(v string) *exactly.Shape {
		ch, err := d.Decode(&exactly.Record{Key: []byte("1"), Value: []byte(v)})
		if err != nil {
			t.Fatal(err)
		}
		if msg := shapeFault(ch); msg != "" || ch.Shape == nil {
			t.Fatalf("%s: %s (shape %v)", v, msg, ch.Shape)
		}
		return ch.Shape
	}
	a := shape(`{"id":1,"name":"x","n":null}`)
	if b := shape(`{"id":2,"name":"yy","n":3}`); b != a {
		t.Errorf("same names, another shape: %v, %v", a.Names, b.Names)
	}
	for _, v := range []string{`{"name":"x","id":1,"n":null}`, `{"id":1,"name":"x"}`, `{"id":1,"name":"x","m":null}`, `{"id":1,"name":"x","n":1,"n":2}`} {
		if b := shape(v); b == a {
			t.Errorf("%s: the shape of %v", v, a.Names)
		}
	}
	if b := shape(`{"id":1,"name":"x","n":1,"n":2}`); !slices.Equal(b.Names, []string{"id", "name", "n", "n"}) {
		t.Errorf("repeated member: %q", b.Names)
	}
}

// TestShapesAreBounded: past maxShapes distinct lists a row has no shape,
// and concurrent decoders agree on the shapes they share. (A table of its
// own: filling the decoders' would leave the other tests without shapes.)
func TestShapesAreBounded(t *testing.T) {
	tab := newShapeTable()
	got := make([][]*exactly.Shape, 4)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range maxShapes + 10 {
				got[g] = append(got[g], tab.get([]member{{key: fmt.Sprint("bounded_", i)}, {key: "g"}}, nil))
			}
		})
	}
	wg.Wait()
	if n := tab.n.Load(); n != maxShapes {
		t.Errorf("%d shapes kept, want %d", n, maxShapes)
	}
	for i := range maxShapes + 10 {
		s := got[0][i]
		for g := range got {
			if got[g][i] != s {
				t.Fatalf("list %d: goroutines got different shapes %v, %v", i, s, got[g][i])
			}
		}
		if s != nil && !slices.Equal(s.Names, []string{fmt.Sprint("bounded_", i), "g"}) {
			t.Fatalf("list %d: shape %q", i, s.Names)
		}
	}
	if s := tab.get([]member{{key: "another_name_never_seen"}}, nil); s != nil {
		t.Errorf("a full table gave a new shape %v", s.Names)
	}
	if s := tab.get(make([]member, maxShapeLen+1), nil); s != nil {
		t.Errorf("a list of %d names has shape %v", maxShapeLen+1, s)
	}
}
