package exactly

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
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
// field would make CREATE TABLE or ALTER TABLE … ADD COLUMN "a"."b" fail
// the whole flight on every try, and PostgreSQL cuts a long name to 63
// bytes, so the column would be "added" on every batch and its value
// never written.
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

func hasRows(cs []*Change) bool {
	for _, c := range cs {
		if c.Op == OpUpsert {
			return true
		}
	}
	return false
}
