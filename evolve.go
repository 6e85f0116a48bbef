package exactly

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

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
	if err := s.checkNames(ctx, batches); err != nil {
		return err
	}
	groups, names := evolvedTables(batches)
	checks := map[string]*columnCheck{}
	folds := map[*Change]fold{}
	for _, name := range names {
		if err := s.ensureTable(ctx, name, groups[name], batches, checks, folds); err != nil {
			return err
		}
	}
	if err := s.exactChecks(ctx, batches, checks); err != nil {
		return err
	}
	if err := s.confirmRefusals(ctx, batches, checks); err != nil {
		return err
	}
	// Only now, with no pointer into b.changes left in use, drop the
	// changes that conflict with their columns.
	for _, b := range batches {
		s.applyFolds(b, folds)
		s.checkTypes(b, checks)
	}
	return nil
}

// tableGroup is the changes of a flight bound for one table whose rule
// says create or evolve, and the batches they come from.
type tableGroup struct {
	rule    *TableRule
	changes []*Change
	batches map[*PartitionBatch]bool
}

// evolvedTables groups the batches' changes by table, for the tables
// whose rule says create or evolve; names are sorted.
func evolvedTables(batches []*PartitionBatch) (groups map[string]*tableGroup, names []string) {
	groups = map[string]*tableGroup{}
	for _, b := range batches {
		for i := range b.changes {
			c := &b.changes[i]
			if !c.rule.Create && c.rule.Evolve == "" {
				continue
			}
			g := groups[c.table]
			if g == nil {
				g = &tableGroup{rule: c.rule, batches: map[*PartitionBatch]bool{}}
				groups[c.table] = g
				names = append(names, c.table)
			}
			g.changes = append(g.changes, &c.Change)
			g.batches[b] = true
		}
	}
	sort.Strings(names)
	return groups, names
}

// ensureTable creates or evolves one table for its group's changes, notes
// the DDL in the ledger rows of the batches that caused it, and adds the
// table's column check to checks and evolve: widen's verdicts to folds.
func (s *Sink) ensureTable(ctx context.Context, name string, g *tableGroup, batches []*PartitionBatch, checks map[string]*columnCheck, folds map[*Change]fold) error {
	t, err := s.describe(ctx, name)
	if err != nil {
		return err
	}
	sc := schemaChange(s.d, g.rule, name, t, g.changes)
	if !sc.Empty() || sc.fold != nil && len(sc.fold.refused) > 0 {
		// The cached description may be stale (another instance
		// created or evolved the table, an operator recreated it): look
		// again before acting or refusing.
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
			return nil
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
	return nil
}

// exactChecks gives every other table the batches write the dialect's
// exact value checks (see ValueChecker), from its cached description: a
// record the database would refuse is dead-lettered before the batch is
// collapsed, even when a later change of its key supersedes it.
func (s *Sink) exactChecks(ctx context.Context, batches []*PartitionBatch, checks map[string]*columnCheck) error {
	if _, ok := s.d.(ValueChecker); !ok {
		return nil
	}
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
	return nil
}

// confirmRefusals describes again every table whose check refuses a
// change of the flight, and checks against what it reads: the refusal
// may come from a description cached before an operator altered the
// table or dropped and created it again with other types, and a flight
// that commits never forgets it (a record fitting the new text column
// was a dead letter for the old integer one, for as long as the process
// ran). It costs a catalog query per such table and flight, only when
// something is refused.
func (s *Sink) confirmRefusals(ctx context.Context, batches []*PartitionBatch, checks map[string]*columnCheck) error {
	var again []string
	seen := map[string]bool{}
	for _, b := range batches {
		for i := range b.changes {
			c := &b.changes[i]
			cc := checks[c.table]
			if cc == nil || seen[c.table] || cc.refused(&c.Change) == "" {
				continue
			}
			seen[c.table] = true
			again = append(again, c.table)
		}
	}
	for _, name := range again {
		s.Forget(name)
		t, err := s.describe(ctx, name)
		if err != nil {
			return err
		}
		generic := checks[name].generic
		checks[name] = nil // gone: the write says so
		if t != nil {
			checks[name] = newColumnCheck(t, s.d, generic)
		}
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

// skipTable turns the batch's changes to a table that does not exist into
// skips: deleting from a table that has never been created changes nothing.
func (s *Sink) skipTable(b *PartitionBatch, table string) {
	for i := range b.changes {
		if b.changes[i].table == table {
			b.changes[i].Op = OpSkip
		}
	}
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
			cols[i] = c.Name + " " + s.d.ColumnType(c.Type, !c.Nullable && slices.Contains(sc.Key, c.Name))
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
			key := slices.Contains(t.Key, c.Name)
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

// checkNames moves the changes with a field that cannot become a column
// (see ColumnNameError) to the dead letters, or halts their partition
// there under on_error: fail, before any DDL is worked out: one such
// field would make CREATE TABLE or ALTER TABLE … ADD COLUMN "a"."b" fail
// the whole flight on every try, and PostgreSQL cuts a long name to 63
// bytes, so the column would be "added" on every batch and its value
// never written.
//
// It checks every field without a column of a record whose rule says
// create or evolve, whether or not this batch would add it, so the dead
// letters do not depend on where batches were cut.
//
// Each table is described once per call: describe caches only a table
// that exists, and one catalog query per record of a table create: true
// has yet to make cost a backlog's first flight minutes (past its
// deadline, so the table was never made).
func (s *Sink) checkNames(ctx context.Context, batches []*PartitionBatch) error {
	described := map[string]*Table{}
	checks := map[string]*nameCheck{}
	for _, b := range batches {
		keep := b.changes[:0]
		for _, c := range b.changes {
			if c.rule.Create || c.rule.AddsColumns() {
				t, seen := described[c.table]
				if !seen {
					var err error
					if t, err = s.describe(ctx, c.table); err != nil {
						return err
					}
					described[c.table] = t
					checks[c.table] = s.newNameCheck(t, c.rule)
				}
				if why := checks[c.table].bad(&c.Change); why != nil {
					if b.refuse(c, fmt.Errorf("table %s: %w", c.table, why)) {
						break
					}
					continue
				}
			}
			keep = append(keep, c)
		}
		b.changes = keep
	}
	return nil
}

// spellings maps the folded form of each of t's columns to its spelling,
// on a database that folds column names (see ColumnFolder); nil on one
// that does not.
func (s *Sink) spellings(t *Table) map[string]string {
	f, ok := s.d.(ColumnFolder)
	if !ok {
		return nil
	}
	m := map[string]string{}
	if t != nil {
		for _, c := range t.Columns {
			m[f.FoldColumnName(c.Name)] = c.Name
		}
	}
	return m
}

// nameCheck checks, record by record in offset order, the field names
// of one table's changes under create or evolve (see badField): run
// (checkNames) and exactly plan (PlanTable) build it the same way.
type nameCheck struct {
	s       *Sink
	t       *Table
	claimed map[string]string
	w       *widening
	adds    bool
}

func (s *Sink) newNameCheck(t *Table, rule *TableRule) *nameCheck {
	nc := &nameCheck{s: s, t: t, claimed: s.spellings(t), adds: t == nil || rule.AddsColumns()}
	if nc.claimed != nil && rule.Evolve == "widen" {
		nc.w = foldWiden(s.d, t, nil)
	}
	return nc
}

// bad says why c cannot be written under the rule's create or evolve, or
// returns nil and claims c's spellings.
func (nc *nameCheck) bad(c *Change) error {
	return nc.s.badField(nc.t, c, nc.claimed, nc.w, nc.adds)
}

// badField returns why the first field (by name) of c that has no column
// in t (nil: no table yet) cannot become one, or nil. claimed (nil when
// the database tells names apart by case) holds the spellings of t's
// columns and of the fields of the records accepted before c, by folded
// form: a field folding onto another spelling is refused, and c's fields
// are added when it is accepted. Records are checked in offset order, so
// the first spelling a table meets is the one kept wherever batches are
// cut. w (nil unless the rule says evolve: widen) is the table's fold of
// the records accepted before c: c is folded into it, and its spellings
// are claimed only when the fold takes it, for the fields of a record the
// fold refuses never become columns (claiming them made a later record a
// dead letter in one batch and a row when cut one record a batch), nor
// yet those the fold has seen only as null (see widening.makes). adds
// says whether c's new fields become columns at all: not those of a
// table that exists when the rule says create but not evolve (they are
// ignored, and claiming them made a later record a dead letter only when
// both came in one batch).
func (s *Sink) badField(t *Table, c *Change, claimed map[string]string, w *widening, adds bool) error {
	var bad []string
	why := map[string]error{}
	var mine map[string]string // c's own new fields, by folded form
	fold, _ := s.d.(ColumnFolder)
	check := func(name string) {
		if _, seen := why[name]; seen || (t != nil && t.Column(name) != nil) {
			return
		}
		err := ColumnNameError(s.d, name)
		flag := name
		if err == nil && claimed != nil {
			flag, err = s.caseClash(fold.FoldColumnName(name), name, claimed, &mine)
		}
		why[name] = err
		if err != nil {
			why[flag] = err
			bad = append(bad, flag)
		}
	}
	for n := range c.Fields() {
		check(n)
	}
	for n := range c.Key {
		check(n)
	}
	for _, f := range c.Schema {
		check(f.Name)
	}
	if len(bad) == 0 {
		if w.takes(s.d, c) && adds {
			for f, name := range mine {
				if w.makes(name, c) {
					claimed[f] = name
				}
			}
		}
		return nil
	}
	sort.Strings(bad)
	return why[bad[0]]
}

// caseClash says why name, folded to f, cannot become a column next to a
// column or field spelt otherwise, and which spelling to report it under
// (of two in one record, the first by name whichever map order met them),
// or returns nil; it notes name in *mine.
func (s *Sink) caseClash(f, name string, claimed map[string]string, mine *map[string]string) (string, error) {
	if other, ok := claimed[f]; ok && other != name {
		return name, &ColumnNameErr{Name: name, Why: fmt.Sprintf("it differs only in case from %q, which the table or an earlier record has, and %s does not tell column names apart by case", clip(other), s.d.Name())}
	}
	if *mine == nil {
		*mine = map[string]string{}
	}
	if other, ok := (*mine)[f]; ok && other != name {
		a, b := min(name, other), max(name, other)
		return a, &ColumnNameErr{Name: a, Why: fmt.Sprintf("the record also has %q, which differs only in case, and %s does not tell column names apart by case", clip(b), s.d.Name())}
	}
	(*mine)[f] = name
	return name, nil
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

func hasRows(cs []*Change) bool {
	for _, c := range cs {
		if c.Op == OpUpsert {
			return true
		}
	}
	return false
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

// columnCheck is a table's columns with their type families, built once
// per table and flight for the type-conflict check.
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
				if b.refuse(c, fmt.Errorf("table %s: %s", c.table, why)) {
					break
				}
				continue
			}
		}
		keep = append(keep, c)
	}
	b.changes = keep
}

// refuse takes a change the checks refused out of the batch: a dead letter,
// or under on_error: fail the end of the batch, which halts before it (it
// was dead-lettered whatever the rule said). It reports whether the batch
// ends there.
func (b *PartitionBatch) refuse(c change, err error) (ends bool) {
	if c.rule.OnError == "fail" {
		b.haltAt(recordError(c.rec, err))
		return true
	}
	b.DeadLetters = append(b.DeadLetters, DeadLetter{Record: c.rec, Err: err})
	return false
}

// refused says why the change cannot be written, or returns "": the
// generic type conflict of an upsert's row, then the dialect's checks of
// its row (an upsert) or key (a delete), by column name.
func (cc *columnCheck) refused(c *Change) string {
	switch c.Op {
	case OpUpsert:
		if cc.generic {
			if why := cc.conflict(c); why != "" {
				return why
			}
		}
	case OpDelete:
	default:
		return ""
	}
	for i := range cc.exact {
		x := &cc.exact[i]
		var v any
		var ok bool
		if c.Op == OpUpsert {
			if v, ok = c.Field(x.col.Name); !ok {
				v, ok = c.Key[x.col.Name]
			}
		} else {
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
func (cc *columnCheck) conflict(c *Change) string {
	var bad []string
	for n, v := range c.Fields() {
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
	v, _ := c.Field(bad[0])
	return conflict(v, cc.cols[bad[0]])
}

// haltAt ends the batch before the record of re (on_error: fail): the
// records, and the dead letters found so far, from it on are dropped, and
// the partition halts there.
func (b *PartitionBatch) haltAt(re *RecordError) {
	b.Halt = re
	keep := b.Records[:0]
	for _, r := range b.Records {
		if r.Offset < re.Offset {
			keep = append(keep, r)
		}
	}
	b.Records = keep
	dls := b.DeadLetters[:0]
	for _, dl := range b.DeadLetters {
		if dl.Record.Offset < re.Offset {
			dls = append(dls, dl)
		}
	}
	b.DeadLetters = dls
	b.decodeDead = min(b.decodeDead, len(dls))
	b.fillRange()
}
