package exactly

import (
	"slices"
	"sort"
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
	names := make([]string, 0, len(c.Row))
	for name := range c.Row {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		value(name, c.Row[name])
	}
	keys := make([]string, 0, len(c.Key))
	for name := range c.Key {
		keys = append(keys, name)
	}
	sort.Strings(keys)
	for _, name := range keys {
		if _, inRow := c.Row[name]; !inRow {
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
		for n := range c.Row {
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
