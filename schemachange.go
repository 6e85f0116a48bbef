package exactly

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// ColumnDef is a column that create or evolve would add.
type ColumnDef struct {
	Name     string
	Type     Type
	Nullable bool
}

// SchemaChange is the DDL one table needs before a batch can be applied
// to it: a CREATE TABLE (Create), columns to add (Add), and the changes
// that conflict with an existing column's type.
type SchemaChange struct {
	Table  string
	Exists bool
	// Create is set when the table is missing and its rule says create:
	// true: the columns in order and the primary key.
	Create []ColumnDef
	Key    []string
	// Add are the nullable columns evolve: add_columns adds.
	Add []ColumnDef
	// Ignored are fields with no column that stay unwritten (evolve off).
	Ignored []string
	// Widen are the existing columns evolve: widen changes, with their
	// new types.
	Widen []ColumnDef

	table *Table    // the description the change was worked out from
	fold  *widening // evolve: widen's fold, or nil
}

// Empty says no DDL is needed.
func (sc *SchemaChange) Empty() bool {
	return len(sc.Create) == 0 && len(sc.Add) == 0 && len(sc.Widen) == 0
}

// Statements returns the DDL text, as the dialect writes it.
func (sc *SchemaChange) Statements(d Dialect) []string {
	var out []string
	if len(sc.Create) > 0 {
		out = append(out, d.CreateTable(sc.Table, sc.Create, sc.Key))
	}
	for _, c := range sc.Add {
		out = append(out, d.AddColumn(sc.Table, c))
	}
	if wd, ok := d.(Widener); ok {
		for _, c := range sc.Widen {
			out = append(out, wd.WidenColumn(sc.table, c.Name, c.Type)...)
		}
	}
	return out
}

// fieldTypes collects, for one table's changes, each field's type: from
// the record schema when one is present, otherwise inferred from the
// values (see inferKind). Key values count too: the key columns are
// written from them.
type fieldTypes struct {
	order    []string // schema order when a schema was seen, then first appearance
	types    map[string]Type
	nullable map[string]bool
	schema   map[string]bool // the type came from a record schema
}

func newFieldTypes() *fieldTypes {
	return &fieldTypes{types: map[string]Type{}, nullable: map[string]bool{}, schema: map[string]bool{}}
}

func (ft *fieldTypes) add(c *Change) {
	for _, f := range c.Schema {
		if _, seen := ft.types[f.Name]; !seen {
			ft.order = append(ft.order, f.Name)
		}
		if !ft.schema[f.Name] || f.Type.Kind != KindUnknown {
			ft.types[f.Name] = f.Type
			ft.schema[f.Name] = f.Type.Kind != KindUnknown
		}
		if f.Nullable {
			ft.nullable[f.Name] = true
		}
	}
	value := func(name string, v any) {
		t, seen := ft.types[name]
		if !seen {
			ft.order = append(ft.order, name)
		}
		if v == nil {
			ft.nullable[name] = true
			if !seen {
				ft.types[name] = Type{Kind: KindUnknown}
			}
			return
		}
		if ft.schema[name] {
			return
		}
		ft.types[name] = widen(t, inferType(v))
	}
	names := make([]string, 0, c.NumFields())
	for name := range c.Fields() {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		v, _ := c.Field(name)
		value(name, v)
	}
	keys := make([]string, 0, len(c.Key))
	for name := range c.Key {
		keys = append(keys, name)
	}
	sort.Strings(keys)
	for _, name := range keys {
		if _, inRow := c.Field(name); !inRow {
			value(name, c.Key[name])
		}
	}
}

// drop forgets a field: no column is made for it.
func (ft *fieldTypes) drop(name string) {
	delete(ft.types, name)
	for i, n := range ft.order {
		if n == name {
			ft.order = append(ft.order[:i], ft.order[i+1:]...)
			break
		}
	}
}

func (ft *fieldTypes) def(name string) ColumnDef {
	t := ft.types[name]
	if t.Kind == KindUnknown {
		t = Type{Kind: KindText} // only nulls seen: the widest type
	}
	return ColumnDef{Name: name, Type: t, Nullable: true}
}

// versionColumn types the rule's version column when the changes saw it
// only as null (a schemaless Debezium row's "ver": null), or, for a table
// being created, not at all: as a JSON integer, never text. A text version
// column compares "5" as newer than "25", so the guard would roll rows
// back, and which batch made the table would decide it (one run of 600
// keys had 71 differ). Versions are numbers in nearly every source (ts_ms,
// an LSN, a sequence); a later one that is not an integer is a type
// conflict, refused loudly, or widened under evolve: widen.
func (ft *fieldTypes) versionColumn(rule *TableRule, creating bool) {
	v := rule.Version
	if v == "" {
		return
	}
	typ, seen := ft.types[v]
	switch {
	case seen && typ.Kind == KindUnknown:
		ft.types[v] = Type{Kind: KindInt64}
	case !seen && creating:
		ft.order = append(ft.order, v)
		ft.types[v] = Type{Kind: KindInt64}
	}
}

// schemaChange works out the DDL one table needs for the given changes
// (already column-mapped). t is the table's description, nil when it does
// not exist.
func schemaChange(d Dialect, rule *TableRule, table string, t *Table, changes []*Change) *SchemaChange {
	sc := &SchemaChange{Table: table, Exists: t != nil, table: t}
	var w *widening
	if rule.Evolve == "widen" {
		w = foldWiden(d, t, changes)
		sc.fold = w
		sc.Widen = w.widened()
	}
	if t != nil && len(sc.Widen) == 0 && !hasNewField(t, changes) {
		return sc // the common case: every field has its column
	}
	ft, rows := fieldTypesOf(rule, changes, w)
	ft.versionColumn(rule, t == nil)
	if t == nil {
		if !rule.Create || rows == 0 {
			// Deletes alone never create a table: deleting from a table
			// that does not exist yet changes nothing.
			return sc
		}
		sc.createTable(rule, changes, ft)
		return sc
	}
	for _, n := range ft.order {
		if t.Column(n) != nil {
			continue
		}
		if rule.AddsColumns() {
			sc.Add = append(sc.Add, ft.def(n)) // always nullable: old rows have no value
		} else {
			sc.Ignored = append(sc.Ignored, n)
		}
	}
	return sc
}

// fieldTypesOf collects the types of the fields of the changes a table
// is worked out for (see fieldTypes), with evolve: widen's fold w when the
// rule has one, and counts the upserts among them.
func fieldTypesOf(rule *TableRule, changes []*Change, w *widening) (*fieldTypes, int) {
	ft := newFieldTypes()
	rows := 0
	for _, c := range changes {
		if w != nil && (w.refused[c] != "" || w.skipped[c]) {
			continue // a dead letter, or a delete before the table exists
		}
		if c.Op == OpUpsert || len(c.Schema) > 0 {
			ft.add(c)
			if c.Op == OpUpsert {
				rows++
			}
		}
	}
	if w != nil {
		// The fold's types, not the batch's join: a field's type is what
		// its values made it in read order. A field seen only as null
		// waits for its first value (evolve adds its column then), so
		// one batch does not make text what a later batch would make an
		// integer.
		for n, typ := range w.state {
			if _, ok := ft.types[n]; ok && !ft.schema[n] {
				ft.types[n] = typ
			}
		}
		for _, n := range append([]string(nil), ft.order...) {
			if ft.types[n].Kind == KindUnknown && !ft.schema[n] && !slices.Contains(rule.Key, n) {
				ft.drop(n)
			}
		}
	}
	return ft, rows
}

// createTable fills the CREATE TABLE of a missing table: the key (the
// rule's, or every key field seen, sorted; none in append mode), key
// columns first in key order, then schema order, or names sorted when no
// schema set the order.
func (sc *SchemaChange) createTable(rule *TableRule, changes []*Change, ft *fieldTypes) {
	if rule.Mode != "append" {
		sc.Key = append(sc.Key, rule.Key...)
		if len(sc.Key) == 0 {
			seen := map[string]bool{}
			for _, c := range changes {
				for k := range c.Key {
					if !seen[k] {
						seen[k] = true
						sc.Key = append(sc.Key, k)
					}
				}
			}
			sort.Strings(sc.Key)
		}
	}
	isKey := map[string]bool{}
	for _, k := range sc.Key {
		isKey[k] = true
		if _, ok := ft.types[k]; !ok {
			ft.order = append(ft.order, k)
			ft.types[k] = Type{Kind: KindText}
		}
	}
	// Key columns first, in key order; then schema order, or names
	// sorted when no schema set the order.
	for _, k := range sc.Key {
		d := ft.def(k)
		d.Nullable = false
		sc.Create = append(sc.Create, d)
	}
	rest := make([]string, 0, len(ft.order))
	for _, n := range ft.order {
		if !isKey[n] {
			rest = append(rest, n)
		}
	}
	if len(ft.schema) == 0 {
		sort.Strings(rest)
	}
	for _, n := range rest {
		d := ft.def(n)
		if ft.schema[n] && !ft.nullable[n] {
			d.Nullable = false
		} else {
			d.Nullable = true
		}
		sc.Create = append(sc.Create, d)
	}
}

// hasNewField reports whether any change carries a field the table has
// no column for.
func hasNewField(t *Table, changes []*Change) bool {
	cols := make(map[string]bool, len(t.Columns))
	for _, c := range t.Columns {
		cols[c.Name] = true
	}
	for _, c := range changes {
		for n := range c.Fields() {
			if !cols[n] {
				return true
			}
		}
		for n := range c.Key {
			if !cols[n] {
				return true
			}
		}
		for _, f := range c.Schema {
			if !cols[f.Name] {
				return true
			}
		}
	}
	return false
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

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
		w.takes(d, c)
	}
	return w
}

// takes folds c into w and says whether the fold takes it (neither
// refused nor a skipped delete); true for a nil w.
func (w *widening) takes(d Dialect, c *Change) bool {
	if w == nil {
		return true
	}
	switch c.Op {
	case OpUpsert:
		w.upsert(d, c)
	case OpDelete:
		w.delete(d, c)
	}
	return w.refused[c] == "" && !w.skipped[c]
}

// makes says whether name, a field of the change c the fold took, is to
// become a column: evolve: widen makes one for a field a record schema
// types, or once the fold has seen a value that is not null; true for a
// nil w (create and add_columns make a column of every field).
func (w *widening) makes(name string, c *Change) bool {
	if w == nil {
		return true
	}
	if _, ok := w.state[name]; ok {
		return true
	}
	for _, f := range c.Schema {
		if f.Name == name && f.Type.Kind != KindUnknown {
			return true
		}
	}
	return false
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
	out := make(map[string]any, c.NumFields()+len(c.Key))
	for n, v := range c.Fields() {
		if !typed[n] {
			out[n] = v
		}
	}
	for n, v := range c.Key {
		if _, ok := c.Field(n); !ok && !typed[n] {
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
