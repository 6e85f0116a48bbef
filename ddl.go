package exactly

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
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

// columnFamily sorts a database's own type name into the logical kind it
// can hold, for the type-conflict check. KindUnknown accepts anything.
func columnFamily(dbType string) Kind {
	t := strings.ToLower(dbType)
	switch {
	case strings.Contains(t, "bool") || t == "bit" || t == "tinyint(1)":
		return KindBool
	case strings.Contains(t, "interval"):
		return KindUnknown
	case strings.Contains(t, "int"):
		return KindInt64
	case strings.Contains(t, "numeric") || strings.Contains(t, "decimal") || strings.Contains(t, "real") ||
		strings.Contains(t, "double") || strings.Contains(t, "float") || strings.Contains(t, "money"):
		return KindDecimal
	case strings.Contains(t, "json"):
		return KindJSON
	case strings.Contains(t, "char") || strings.Contains(t, "text") || strings.Contains(t, "clob"):
		return KindText
	case strings.Contains(t, "bytea") || strings.Contains(t, "blob") || strings.Contains(t, "binary"):
		return KindBytes
	case strings.HasPrefix(t, "timestamp") || strings.HasPrefix(t, "datetime"):
		return KindTimestamp
	case t == "date":
		return KindDate
	case strings.HasPrefix(t, "time"):
		return KindTime
	}
	return KindUnknown
}

// conflict says why a value cannot go into a column of the given database
// type, or "" when it can (or when unsure: the database has the last
// word, and a value it rejects is dead-lettered like any bad row).
func conflict(v any, col *Column) string {
	fam := columnFamily(col.Type)
	if v == nil || fam == KindUnknown || fam == KindText || fam == KindJSON {
		return ""
	}
	bad := func(what string) string {
		return fmt.Sprintf("type conflict: field %q holds %s but column %s is %s; evolve never changes or narrows a column's type",
			col.Name, what, col.Name, col.Type)
	}
	switch x := v.(type) {
	case string:
		s := strings.TrimSpace(x)
		switch fam {
		case KindInt64:
			if _, err := strconv.ParseInt(s, 10, 64); err != nil {
				return bad(fmt.Sprintf("text %q", clip(x)))
			}
		case KindDecimal:
			if _, err := strconv.ParseFloat(s, 64); err != nil {
				return bad(fmt.Sprintf("text %q", clip(x)))
			}
		case KindBool:
			if _, err := strconv.ParseBool(s); err != nil {
				return bad(fmt.Sprintf("text %q", clip(x)))
			}
		}
		return ""
	case bool:
		if fam != KindBool && fam != KindInt64 {
			return bad(fmt.Sprintf("a boolean (%v)", x))
		}
	case int64:
		if fam == KindDate || fam == KindTime || fam == KindTimestamp || fam == KindBytes {
			return bad(fmt.Sprintf("an integer (%d)", x))
		}
	case float64:
		if fam != KindDecimal && !(fam == KindInt64 && x == float64(int64(x))) {
			return bad(fmt.Sprintf("a number (%v)", x))
		}
	case Decimal:
		switch {
		case fam == KindDecimal:
		case fam == KindInt64 && !strings.ContainsAny(string(x), ".eE"):
		default:
			return bad(fmt.Sprintf("the number %s", x))
		}
	case JSON:
		return bad(fmt.Sprintf("a JSON object or array (%s)", clip(string(x))))
	case time.Time:
		if fam != KindDate && fam != KindTime && fam != KindTimestamp {
			return bad("a date/time")
		}
	case []byte:
		if fam != KindBytes {
			return bad("bytes")
		}
	}
	return ""
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
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
			if ft.types[n].Kind == KindUnknown && !ft.schema[n] && !contains(rule.Key, n) {
				ft.drop(n)
			}
		}
	}
	if t == nil {
		if !rule.Create || rows == 0 {
			// Deletes alone never create a table: deleting from a table
			// that does not exist yet changes nothing.
			return sc
		}
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

// ensureTables runs before a flight's transaction: for every table the
// batches write, it creates the table (create: true) or adds columns
// (evolve: add_columns), and moves changes whose values conflict with an
// existing column's type to the dead letters.
//
// DDL runs outside the batch transaction, each statement on its own:
// MySQL and SQL Server commit DDL implicitly, so putting it inside would
// silently split the batch transaction in two. Every statement is
// idempotent (IF NOT EXISTS, or a duplicate is tolerated and the table
// described again), so two instances racing to create or evolve the same
// table both succeed, and a batch that fails after its DDL leaves at most
// an empty table or an unused nullable column, never data.
func (s *Sink) ensureTables(ctx context.Context, batches []*PartitionBatch) error {
	type group struct {
		rule    *TableRule
		changes []*Change
		batches map[*PartitionBatch]bool
	}
	if err := s.checkNames(ctx, batches); err != nil {
		return err
	}
	groups := map[string]*group{}
	var names []string
	for _, b := range batches {
		for i := range b.changes {
			c := &b.changes[i]
			if !c.rule.Create && c.rule.Evolve == "" {
				continue
			}
			g := groups[c.table]
			if g == nil {
				g = &group{rule: c.rule, batches: map[*PartitionBatch]bool{}}
				groups[c.table] = g
				names = append(names, c.table)
			}
			g.changes = append(g.changes, &c.Change)
			g.batches[b] = true
		}
	}
	sort.Strings(names)
	checks := map[string]*columnCheck{}
	folds := map[*Change]fold{}
	for _, name := range names {
		g := groups[name]
		t, err := s.describe(ctx, name)
		if err != nil {
			return err
		}
		sc := schemaChange(s.d, g.rule, name, t, g.changes)
		if !sc.Empty() {
			// The cached description may be stale (another instance
			// created or evolved the table): look again before acting.
			s.Forget(name)
			if t, err = s.describe(ctx, name); err != nil {
				return err
			}
			sc = schemaChange(s.d, g.rule, name, t, g.changes)
		}
		if w := sc.fold; w != nil {
			for c, why := range w.refused {
				folds[c] = fold{refused: why}
			}
			for c := range w.skipped {
				folds[c] = fold{skipped: true}
			}
		}
		if t == nil && len(sc.Create) == 0 {
			if g.rule.Create && !hasRows(g.changes) {
				for _, b := range batches {
					s.skipTable(b, name)
				}
				continue
			}
			return fmt.Errorf("table %s does not exist in the %s sink: create it, or set create: true on its table rule", name, s.d.Name())
		}
		if !sc.Empty() {
			note, err := s.runDDL(ctx, sc)
			if err != nil {
				return err
			}
			for _, b := range batches {
				if g.batches[b] {
					b.Notes = append(b.Notes, note)
				}
			}
			if t, err = s.describe(ctx, name); err != nil {
				return err
			}
			if t == nil {
				return fmt.Errorf("creating table %s: it is still missing after CREATE TABLE", name)
			}
		}
		checks[name] = newColumnCheck(t, s.d, true)
	}
	// Every other table the batches write gets the dialect's exact value
	// checks (see ValueChecker), from its cached description: a record
	// the database would refuse is dead-lettered here, before the batch
	// is collapsed, even when a later change of its key supersedes it.
	if _, ok := s.d.(ValueChecker); ok {
		for _, b := range batches {
			for i := range b.changes {
				name := b.changes[i].table
				if _, done := checks[name]; done {
					continue
				}
				t, err := s.describe(ctx, name)
				if err != nil {
					return err
				}
				checks[name] = nil // a missing table is plan's error to report
				if t != nil {
					checks[name] = newColumnCheck(t, s.d, false)
				}
			}
		}
	}
	// Only now, with no pointer into b.changes left in use, drop the
	// changes that conflict with their columns.
	for _, b := range batches {
		s.applyFolds(b, folds)
		s.checkTypes(b, checks)
	}
	return nil
}

// fold is evolve: widen's verdict on one change.
type fold struct {
	refused string // why the change cannot be written
	skipped bool   // a delete before its table exists: changes nothing
}

// applyFolds dead-letters the changes evolve: widen refused (or halts
// the partition before the first under on_error: fail) and turns its
// deletes from a table that did not exist yet into skips.
func (s *Sink) applyFolds(b *PartitionBatch, folds map[*Change]fold) {
	if len(folds) == 0 {
		return
	}
	keep := b.changes[:0]
	for i := range b.changes {
		f, ok := folds[&b.changes[i].Change] // read before keep overwrites index i
		c := b.changes[i]
		switch {
		case ok && f.refused != "":
			err := fmt.Errorf("table %s: %s", c.table, f.refused)
			if c.rule.OnError == "fail" {
				b.haltAt(recordError(c.rec, err))
				b.changes = keep
				return
			}
			b.DeadLetters = append(b.DeadLetters, DeadLetter{Record: c.rec, Err: err})
			continue
		case ok && f.skipped:
			c.Op = OpSkip
		}
		keep = append(keep, c)
	}
	b.changes = keep
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

func hasRows(cs []*Change) bool {
	for _, c := range cs {
		if c.Op == OpUpsert {
			return true
		}
	}
	return false
}

// skipTable turns the batch's changes to a table that does not exist into
// skips: deleting from a table that has never been created changes nothing.
func (s *Sink) skipTable(b *PartitionBatch, table string) {
	for i := range b.changes {
		if b.changes[i].table == table {
			b.changes[i].Op = OpSkip
		}
	}
}

// columnCheck is a table's columns with their type families, built once
// per table and cycle for the type-conflict check.
type columnCheck struct {
	cols map[string]*Column
	fam  map[string]Kind
	// generic is the type-conflict check of create/evolve (conflict);
	// exact are the dialect's value checks (ValueChecker), by column name.
	generic bool
	exact   []valueCheck
}

type valueCheck struct {
	col   *Column
	check func(any) string
}

func newColumnCheck(t *Table, d Dialect, generic bool) *columnCheck {
	cc := &columnCheck{cols: make(map[string]*Column, len(t.Columns)), fam: make(map[string]Kind, len(t.Columns)), generic: generic}
	vc, _ := d.(ValueChecker)
	for i := range t.Columns {
		c := &t.Columns[i]
		cc.cols[c.Name] = c
		cc.fam[c.Name] = columnFamily(c.Type)
		if vc != nil {
			if f := vc.ValueCheck(c); f != nil {
				cc.exact = append(cc.exact, valueCheck{col: c, check: f})
			}
		}
	}
	sort.Slice(cc.exact, func(i, j int) bool { return cc.exact[i].col.Name < cc.exact[j].col.Name })
	return cc
}

// checkTypes moves the batch's changes whose values conflict with the
// type of an existing column, or that the database would refuse (the
// dialect's ValueChecker), to the dead letters, or, when the rule says
// on_error: fail, ends the batch before the first of them and halts the
// partition there (it was dead-lettered whatever the rule said). It runs
// on every change, before the batch is collapsed, so which records are
// dead letters does not depend on where batches were cut.
func (s *Sink) checkTypes(b *PartitionBatch, checks map[string]*columnCheck) {
	keep := b.changes[:0]
	for _, c := range b.changes {
		if cc := checks[c.table]; cc != nil {
			if why := cc.refused(&c.Change); why != "" {
				err := fmt.Errorf("table %s: %s", c.table, why)
				if c.rule.OnError == "fail" {
					b.haltAt(recordError(c.rec, err))
					break
				}
				b.DeadLetters = append(b.DeadLetters, DeadLetter{Record: c.rec, Err: err})
				continue
			}
		}
		keep = append(keep, c)
	}
	b.changes = keep
}

// refused says why the change cannot be written, or returns "": the
// generic type conflict of an upsert's row, then the dialect's checks of
// its row (an upsert) or key (a delete), by column name.
func (cc *columnCheck) refused(c *Change) string {
	var vals map[string]any
	switch c.Op {
	case OpUpsert:
		if cc.generic {
			if why := cc.conflict(c.Row); why != "" {
				return why
			}
		}
		vals = c.Row
	case OpDelete:
		vals = c.Key
	default:
		return ""
	}
	for i := range cc.exact {
		x := &cc.exact[i]
		v, ok := vals[x.col.Name]
		if !ok && c.Op == OpUpsert {
			v, ok = c.Key[x.col.Name]
		}
		if !ok || v == nil {
			continue
		}
		if why := x.check(v); why != "" {
			return fmt.Sprintf("value refused: field %q, column %s %s: %s", x.col.Name, x.col.Name, x.col.Type, why)
		}
	}
	return ""
}

// conflict names the first field (by name) whose value its column cannot
// hold, or returns "".
func (cc *columnCheck) conflict(row map[string]any) string {
	var bad []string
	for n, v := range row {
		if fam := cc.fam[n]; v != nil && fam != KindUnknown && fam != KindText && fam != KindJSON {
			if conflict(v, cc.cols[n]) != "" {
				bad = append(bad, n)
			}
		}
	}
	if len(bad) == 0 {
		return ""
	}
	sort.Strings(bad)
	return conflict(row[bad[0]], cc.cols[bad[0]])
}

// runDDL runs a table's schema change and returns the note for the
// ledger rows of the batches that caused it. A statement that fails is
// forgiven when describing the table again shows the change in place
// (another instance made it first).
func (s *Sink) runDDL(ctx context.Context, sc *SchemaChange) (string, error) {
	var parts []string
	if len(sc.Create) > 0 {
		stmt := s.d.CreateTable(sc.Table, sc.Create, sc.Key)
		if _, err := s.db.ExecContext(ctx, stmt); err != nil {
			s.Forget(sc.Table)
			if t, derr := s.d.Describe(ctx, s.db, sc.Table); derr != nil || t == nil {
				return "", fmt.Errorf("creating table %s: %w (statement: %s)", sc.Table, err, stmt)
			}
		}
		cols := make([]string, len(sc.Create))
		for i, c := range sc.Create {
			cols[i] = c.Name + " " + s.d.ColumnType(c.Type, !c.Nullable && contains(sc.Key, c.Name))
		}
		parts = append(parts, fmt.Sprintf("created table %s (%s) key (%s)", sc.Table, strings.Join(cols, ", "), strings.Join(sc.Key, ", ")))
		s.log.Info("created table", "table", sc.Table, "columns", strings.Join(cols, ", "), "key", strings.Join(sc.Key, ","))
	}
	for _, c := range sc.Add {
		stmt := s.d.AddColumn(sc.Table, c)
		if _, err := s.db.ExecContext(ctx, stmt); err != nil {
			t, derr := s.d.Describe(ctx, s.db, sc.Table)
			if derr != nil || t == nil || t.Column(c.Name) == nil {
				return "", fmt.Errorf("adding column %s to table %s: %w (statement: %s)", c.Name, sc.Table, err, stmt)
			}
		}
		typ := s.d.ColumnType(c.Type, false)
		parts = append(parts, fmt.Sprintf("added column %s %s NULL to %s", c.Name, typ, sc.Table))
		s.log.Info("added column", "table", sc.Table, "column", c.Name, "type", typ)
	}
	if len(sc.Widen) > 0 {
		wd, ok := s.d.(Widener)
		if !ok {
			return "", fmt.Errorf("widening columns of table %s: the %s dialect cannot widen a column (evolve: widen)", sc.Table, s.d.Name())
		}
		for _, c := range sc.Widen {
			// Described again for each: a rebuild (SQLite) writes every
			// column, the ones just added or widened included.
			t, err := s.d.Describe(ctx, s.db, sc.Table)
			if err != nil {
				return "", fmt.Errorf("describing table %s: %w", sc.Table, err)
			}
			if t == nil || t.Column(c.Name) == nil {
				return "", fmt.Errorf("widening column %s of table %s: the column is gone", c.Name, sc.Table)
			}
			key := contains(t.Key, c.Name)
			want := normType(s.d.ColumnType(c.Type, key))
			if stmt, err := s.widenColumn(ctx, wd.WidenColumn(t, c.Name, c.Type)); err != nil {
				nt, derr := s.d.Describe(ctx, s.db, sc.Table)
				if derr != nil || nt == nil || nt.Column(c.Name) == nil || normType(nt.Column(c.Name).Type) != want {
					s.Forget(sc.Table)
					return "", fmt.Errorf("widening column %s of table %s to %s: %w (statement: %s)", c.Name, sc.Table, want, err, stmt)
				}
				// another instance widened it
			}
			from := t.Column(c.Name).Type
			parts = append(parts, fmt.Sprintf("widened column %s of %s from %s to %s", c.Name, sc.Table, from, want))
			s.log.Info("widened column", "table", sc.Table, "column", c.Name, "from", from, "to", want)
		}
	}
	s.Forget(sc.Table)
	return "evolve: " + strings.Join(parts, "; "), nil
}

// widenColumn runs one column's widening statements in a transaction of
// their own: SQLite's rebuild must never stop between DROP and RENAME.
// It returns the statement that failed.
func (s *Sink) widenColumn(ctx context.Context, stmts []string) (string, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return "BEGIN", err
	}
	for _, stmt := range stmts {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			tx.Rollback()
			return stmt, err
		}
	}
	return "COMMIT", tx.Commit()
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// describe returns the table's (cached) description, or nil when it does
// not exist.
func (s *Sink) describe(ctx context.Context, name string) (*Table, error) {
	s.mu.Lock()
	t := s.tables[name]
	s.mu.Unlock()
	if t != nil {
		return t, nil
	}
	t, err := s.d.Describe(ctx, s.db, name)
	if err != nil {
		return nil, fmt.Errorf("describing table %s: %w", name, err)
	}
	if t != nil {
		s.mu.Lock()
		s.tables[name] = t
		s.mu.Unlock()
	}
	return t, nil
}

// TablePlan is what exactly plan shows for one topic.
type TablePlan struct {
	Topic   string
	Table   string
	Rule    *TableRule
	Change  *SchemaChange
	Sampled int // records decoded to work out the DDL
	// DeadLetters are the sampled records that would be dead-lettered.
	DeadLetters []string
}

// PlanTable works out, without writing, what the pipeline would do to the
// table a topic maps to: whether it exists and the DDL create or evolve
// would run for the sampled records (for example the first records the
// pipeline would read).
func (s *Sink) PlanTable(ctx context.Context, topic string, sample []*Record) (*TablePlan, error) {
	rule, table, err := s.cfg.Resolve(topic)
	if err != nil {
		return nil, err
	}
	if rule == nil {
		return nil, fmt.Errorf("no table rule matches topic %q", topic)
	}
	p := &TablePlan{Topic: topic, Table: table, Rule: rule, Sampled: len(sample)}
	t, err := s.d.Describe(ctx, s.db, table)
	if err != nil {
		return nil, fmt.Errorf("describing table %s: %w", table, err)
	}
	var changes []*Change
	var records []*Record
	for _, r := range sample {
		ch, err := s.decoder(rule).Decode(r)
		if err != nil {
			p.DeadLetters = append(p.DeadLetters, (&RecordError{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Err: err}).Error())
			continue
		}
		mapColumns(&rule.Columns, rule.Key, &ch)
		if rule.Create || rule.AddsColumns() {
			if why := s.badField(t, &ch); why != nil {
				p.DeadLetters = append(p.DeadLetters, (&RecordError{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Err: why}).Error())
				continue
			}
		}
		changes = append(changes, &ch)
		records = append(records, r)
	}
	p.Change = schemaChange(s.d, rule, table, t, changes)
	if w := p.Change.fold; w != nil {
		for i, c := range changes {
			if why := w.refused[c]; why != "" {
				r := records[i]
				p.DeadLetters = append(p.DeadLetters, (&RecordError{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Err: errors.New(why)}).Error())
			}
		}
	}
	return p, nil
}

// checkNames moves the changes with a field that cannot become a column
// (see ColumnNameError) to the dead letters, or halts their partition
// there under on_error: fail, before any DDL is worked out: one such
// field made CREATE TABLE or ALTER TABLE … ADD COLUMN "a"."b" fail the
// whole flight on every try, and PostgreSQL cut a long name to 63 bytes,
// so the column was "added" on every batch and its value never written.
//
// It checks every field without a column of a record whose rule says
// create or evolve, whether or not this batch would add it, so the dead
// letters do not depend on where batches were cut.
func (s *Sink) checkNames(ctx context.Context, batches []*PartitionBatch) error {
	for _, b := range batches {
		keep := b.changes[:0]
		for _, c := range b.changes {
			if c.rule.Create || c.rule.AddsColumns() {
				t, err := s.describe(ctx, c.table)
				if err != nil {
					return err
				}
				if why := s.badField(t, &c.Change); why != nil {
					err := fmt.Errorf("table %s: %w", c.table, why)
					if c.rule.OnError == "fail" {
						b.haltAt(recordError(c.rec, err))
						break
					}
					b.DeadLetters = append(b.DeadLetters, DeadLetter{Record: c.rec, Err: err})
					continue
				}
			}
			keep = append(keep, c)
		}
		b.changes = keep
	}
	return nil
}

// badField returns why the first field (by name) of c that has no column
// in t (nil: no table yet) cannot become one, or nil.
func (s *Sink) badField(t *Table, c *Change) error {
	var bad []string
	why := map[string]error{}
	check := func(name string) {
		if _, seen := why[name]; seen || (t != nil && t.Column(name) != nil) {
			return
		}
		err := ColumnNameError(s.d, name)
		why[name] = err
		if err != nil {
			bad = append(bad, name)
		}
	}
	for n := range c.Row {
		check(n)
	}
	for n := range c.Key {
		check(n)
	}
	for _, f := range c.Schema {
		check(f.Name)
	}
	if len(bad) == 0 {
		return nil
	}
	sort.Strings(bad)
	return why[bad[0]]
}

// ColumnNameError says why name cannot be a column of d's tables, or
// returns nil: no name is empty, holds a NUL or a dot (Quote would make
// "a.b" two names) or invalid UTF-8, and the dialect's own limits apply
// (see ColumnNamer).
func ColumnNameError(d Dialect, name string) error {
	var why string
	switch {
	case name == "":
		why = "it is empty"
	case strings.ContainsRune(name, 0):
		why = "it contains a NUL character"
	case strings.Contains(name, "."):
		why = "it contains a dot"
	case !utf8.ValidString(name):
		why = "it is not valid UTF-8"
	}
	if why == "" {
		cn, ok := d.(ColumnNamer)
		if !ok {
			return nil
		}
		err := cn.CheckColumnName(name)
		if err == nil {
			return nil
		}
		why = err.Error()
	}
	return &ColumnNameErr{Name: name, Why: why}
}

// ColumnNameErr is a field whose name cannot become a column.
type ColumnNameErr struct {
	Name string
	Why  string
}

func (e *ColumnNameErr) Error() string {
	return fmt.Sprintf("field %q cannot become a column: %s; rename it with the rule's columns: mapping, or turn create and evolve off to leave it unwritten",
		strings.ToValidUTF8(strings.ReplaceAll(clip(e.Name), "\x00", `\x00`), "\uFFFD"), e.Why)
}
