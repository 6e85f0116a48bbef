package exactly

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Widener is an optional Dialect capability, needed by evolve: widen: it
// changes a column's type to a wider one in place, converting the stored
// values exactly as a direct write of the same Go values would have
// stored them (an integer 12 becomes 12.0… in a decimal, 12 in a float,
// "12" in text).
type Widener interface {
	// WidenColumn returns the statements that change column col of t to
	// the type ColumnType(to, key) writes, keeping its nullability and,
	// for a key column, the primary key. Sink runs them in one
	// transaction of their own, outside any batch transaction (MySQL
	// commits DDL implicitly: give it one statement), describes the table
	// again afterwards and forgives a failure when the column then has the
	// new type (another instance widened it first). Called only for a column whose type is
	// the dialect's own for an integer, and to one of float, decimal or
	// text.
	WidenColumn(t *Table, col string, to Type) []string
}

// widening is the fold evolve: widen makes over one table's changes, in
// the order their records were read: each field's type starts as the
// first non-null value's, and a value that does not fit widens it when
// the step is exact (an integer column becomes float, decimal or text:
// every integer stored so far converts to what writing it there directly
// would have stored), or is refused. Because the final types, and which
// records are refused, come from the records in order and not from where
// batches were cut, the same stream gives the same table and the same
// dead letters cut anywhere: one batch folds what one record per batch
// would have done step by step.
type widening struct {
	state map[string]Type // per field: its type so far (KindUnknown: only nulls)
	fixed map[string]bool // an existing column widen leaves alone
	// from is the existing column's type for the fields that widen.
	from    map[string]Type
	refused map[*Change]string
	skipped map[*Change]bool
	exists  bool // the table exists, or an upsert of the fold would create it
}

// widenable are the steps evolve: widen takes, from an integer column.
func widenStep(from, to Kind) bool {
	return from == KindInt64 && (to == KindFloat64 || to == KindDecimal || to == KindText)
}

// inferredKinds are the types inferType gives, the widest first: where a
// dialect writes two of them alike (SQLite keeps decimals as TEXT), the
// column is the wider.
var inferredKinds = []Type{{Kind: KindText}, {Kind: KindInt64}, {Kind: KindFloat64}, {Kind: KindDecimal, Scale: -1},
	{Kind: KindBool}, {Kind: KindBytes}, {Kind: KindTimestampTZ}, {Kind: KindJSON}}

// inferredKind is the inferred type whose column type, as the dialect
// writes it, an existing column has; KindUnknown when the column is not
// one create or evolve would make from values (an operator's integer(4),
// a varchar(5), a schema's timestamp(3)): widen leaves it alone, and its
// values are checked as without widen.
func inferredKind(d Dialect, col *Column, key bool) Type {
	have := normType(col.Type)
	for _, t := range inferredKinds {
		if normType(d.ColumnType(t, key)) == have || normType(d.ColumnType(t, !key)) == have {
			return t
		}
	}
	return Type{}
}

// canonical is the inferred type of a value as the dialect stores it: a
// type whose column the dialect writes like a wider one's is that one.
func canonical(d Dialect, t Type) Type {
	have := normType(d.ColumnType(t, false))
	for _, c := range inferredKinds {
		if normType(d.ColumnType(c, false)) == have {
			return c
		}
	}
	return t
}

// normType folds a type name for comparison: lower case, MySQL's integer
// display width dropped ("bigint(20)" is "bigint") and its BOOLEAN named
// as the catalog names it (tinyint(1)).
func normType(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	switch {
	case strings.HasPrefix(s, "bigint(") && strings.HasSuffix(s, ")"):
		return "bigint"
	case s == "boolean":
		return "tinyint(1)"
	}
	return s
}

// foldWiden runs the fold over changes (pointers into the batches, in
// read order) for a table described as t (nil: it does not exist).
func foldWiden(d Dialect, t *Table, changes []*Change) *widening {
	w := &widening{state: map[string]Type{}, fixed: map[string]bool{}, from: map[string]Type{},
		refused: map[*Change]string{}, skipped: map[*Change]bool{}, exists: t != nil}
	if t != nil {
		isKey := map[string]bool{}
		for _, k := range t.Key {
			isKey[k] = true
		}
		for i := range t.Columns {
			c := &t.Columns[i]
			k := inferredKind(d, c, isKey[c.Name])
			if k.Kind == KindUnknown {
				w.fixed[c.Name] = true
				continue
			}
			w.state[c.Name] = k
			w.from[c.Name] = k
		}
	}
	for _, c := range changes {
		switch c.Op {
		case OpUpsert:
			w.upsert(d, c)
		case OpDelete:
			w.delete(d, c)
		}
	}
	return w
}

// fields are a change's values by field, with the key's values for
// fields its row lacks, without those a record schema types.
func fields(c *Change) map[string]any {
	typed := map[string]bool{}
	for _, f := range c.Schema {
		if f.Type.Kind != KindUnknown {
			typed[f.Name] = true
		}
	}
	out := make(map[string]any, len(c.Row)+len(c.Key))
	for n, v := range c.Row {
		if !typed[n] {
			out[n] = v
		}
	}
	for n, v := range c.Key {
		if _, ok := c.Row[n]; !ok && !typed[n] {
			out[n] = v
		}
	}
	return out
}

// upsert folds one upsert: every field's value fits its type, or widens
// it by an allowed step; otherwise the change is refused and changes no
// type. Fields are looked at in name order, so the reason names the first.
func (w *widening) upsert(d Dialect, c *Change) {
	vals := fields(c)
	names := make([]string, 0, len(vals))
	for n := range vals {
		names = append(names, n)
	}
	sort.Strings(names)
	next := map[string]Type{}
	for _, n := range names {
		v := vals[n]
		if v == nil || w.fixed[n] {
			continue
		}
		k := canonical(d, inferType(v))
		s, seen := w.state[n]
		if !seen || s.Kind == KindUnknown {
			next[n] = k
			continue
		}
		j := canonical(d, widen(s, k))
		if j == s {
			continue
		}
		if !widenStep(s.Kind, j.Kind) {
			w.refused[c] = fmt.Sprintf("type conflict: field %q holds %s but column %s is %s; evolve: widen widens only an integer column (to float, decimal or text)",
				n, describeValue(v), n, d.ColumnType(s, false))
			return
		}
		next[n] = j
	}
	for n, t := range next {
		w.state[n] = t
	}
	w.exists = true
}

// delete folds one delete: before any upsert of a table that does not
// exist it changes nothing (skipped, as a batch of deletes alone is), and
// a key value that does not fit its column's type is refused (a delete
// never widens: it stores nothing).
func (w *widening) delete(d Dialect, c *Change) {
	if !w.exists {
		w.skipped[c] = true
		return
	}
	names := make([]string, 0, len(c.Key))
	for n := range c.Key {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		v := c.Key[n]
		s, seen := w.state[n]
		if v == nil || w.fixed[n] || !seen || s.Kind == KindUnknown {
			continue
		}
		if canonical(d, widen(s, canonical(d, inferType(v)))) != s {
			w.refused[c] = fmt.Sprintf("type conflict: key field %q of a delete holds %s but column %s is %s",
				n, describeValue(v), n, d.ColumnType(s, true))
			return
		}
	}
}

// describeValue names a value's kind and, for short text, the value.
func describeValue(v any) string {
	switch x := v.(type) {
	case string:
		return fmt.Sprintf("text %q", clip(x))
	case int64:
		return fmt.Sprintf("an integer (%d)", x)
	case Decimal:
		return fmt.Sprintf("the number %s", x)
	case float64:
		return fmt.Sprintf("a number (%v)", x)
	case bool:
		return fmt.Sprintf("a boolean (%v)", x)
	case JSON:
		return fmt.Sprintf("a JSON object or array (%s)", clip(string(x)))
	case []byte:
		return "bytes"
	}
	return fmt.Sprintf("a %s", inferType(v))
}

// widened returns the existing columns whose type the fold widened, by
// name, with their new types.
func (w *widening) widened() []ColumnDef {
	var out []ColumnDef
	for n, from := range w.from {
		if to := w.state[n]; to != from {
			out = append(out, ColumnDef{Name: n, Type: to})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// inferType is the conservative inference for values without a schema:
// JSON true/false → bool, an integer → int64, any other number → decimal
// (exact, scale unstated), a string → text (never guessed to be a date),
// an object or array → json. time.Time (from decoders that know) →
// timestamptz, bytes → bytes.
func inferType(v any) Type {
	switch v.(type) {
	case bool:
		return Type{Kind: KindBool}
	case int64, int32, int:
		return Type{Kind: KindInt64}
	case float64, float32:
		return Type{Kind: KindFloat64}
	case Decimal:
		return Type{Kind: KindDecimal, Scale: -1}
	case string:
		return Type{Kind: KindText}
	case []byte:
		return Type{Kind: KindBytes}
	case time.Time:
		return Type{Kind: KindTimestampTZ}
	case JSON:
		return Type{Kind: KindJSON}
	}
	return Type{Kind: KindText}
}

// widen merges two inferred types: numbers widen int64 → float64 →
// decimal, any other disagreement becomes text.
func widen(a, b Type) Type {
	switch {
	case a.Kind == KindUnknown:
		return b
	case b.Kind == KindUnknown || a == b:
		return a
	}
	rank := map[Kind]int{KindInt64: 1, KindFloat64: 2, KindDecimal: 3}
	if rank[a.Kind] > 0 && rank[b.Kind] > 0 {
		if rank[a.Kind] > rank[b.Kind] {
			return a
		}
		return b
	}
	return Type{Kind: KindText}
}
