package exactly

// The sink's one cache of table descriptions: describe, the flight's
// batched describe (describeFlight), the refresh of a description its
// records outgrew (forgetStale), and Forget after DDL.

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"time"
)

// describe returns the table's description, or nil when it does not
// exist. It is the sink's one cache of table descriptions: a table that
// exists is described once, until Forget (after DDL, or a failure that may
// come from a table an operator changed); a missing one is asked again.
// A flight's tables not yet cached are described together first, when the
// dialect can (see describeFlight).
func (s *Sink) describe(ctx context.Context, name string) (*Table, error) {
	s.mu.Lock()
	t, gen := s.tables[name], s.forgets
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
		s.remember(name, t, gen)
		s.mu.Unlock()
	}
	return t, nil
}

// remember caches t, read from the catalog by a query that began when
// Forget had been called gen times, unless the table was forgotten since
// (its DDL may have run after the query read the catalog) or another
// description is cached already. s.mu must be held.
func (s *Sink) remember(name string, t *Table, gen uint64) {
	if s.forgotAt[name] > gen || s.tables[name] != nil {
		return
	}
	s.tables[name] = t
	if s.describedAt != nil {
		s.describedAt[name] = time.Now()
	}
}

// staleAfter is how long a cached description is trusted while records
// carry a field its table has no column for, under a rule that adds no
// columns (such fields are ignored): a column an operator adds is written
// from the first flight after it, not from the next restart. A table
// whose records always carry fields it leaves out is described again
// this often, with the flight's other tables in one query.
var staleAfter = 10 * time.Second

// forgetStale forgets the description of each table a batch writes
// fields to that it has no column for, when the description is older
// than staleAfter, so describeFlight reads it again.
func (s *Sink) forgetStale(batches []*PartitionBatch, now time.Time) {
	var stale []string
	s.mu.Lock()
	for _, b := range batches {
		if len(b.changes) == 0 {
			continue
		}
		c := &b.changes[0] // a batch is one partition, its changes one table
		t := s.tables[c.table]
		if t == nil || c.rule.AddsColumns() || now.Sub(s.describedAt[c.table]) < staleAfter || slices.Contains(stale, c.table) {
			continue
		}
		if lacksColumn(t, b.changes) {
			stale = append(stale, c.table)
		}
	}
	s.mu.Unlock()
	for _, n := range stale {
		s.log.Debug("records carry a field the table has no column for; describing it again", "table", n)
		s.Forget(n)
	}
}

// lacksColumn reports whether a change's row has a field t has no column
// for; rows of the shape just checked are not checked again.
func lacksColumn(t *Table, changes []change) bool {
	var last *Shape
	for i := range changes {
		c := &changes[i]
		if c.Shape != nil && c.Shape == last {
			continue
		}
		last = c.Shape
		for name := range c.Fields() {
			if t.Column(name) == nil {
				return true
			}
		}
	}
	return false
}

// describeFlight caches, in one catalog query per DescribeManyLimit
// names (ManyDescriber), the description of every table the batches
// write that is not cached yet: a first flight after a start wrote 400
// tables, and described them one query after another (750–800 ms on a
// local PostgreSQL; seconds on Azure SQL). Tables that do not exist stay
// uncached, and describe asks again for them. A failure is left to
// describe, one table at a time, to report.
func (s *Sink) describeFlight(ctx context.Context, batches []*PartitionBatch) {
	md, ok := s.d.(ManyDescriber)
	if !ok {
		return
	}
	var names []string
	var seen map[string]bool // the uncached names
	s.mu.Lock()
	gen := s.forgets
	for _, b := range batches {
		last := ""
		for i := range b.changes {
			n := b.changes[i].table
			if n == last {
				continue // a batch is one partition, its changes one table
			}
			last = n
			if s.tables[n] == nil && !seen[n] {
				if seen == nil {
					seen = map[string]bool{}
				}
				seen[n] = true
				names = append(names, n)
			}
		}
	}
	s.mu.Unlock()
	if len(names) < 2 {
		return // describe's own query is as cheap
	}
	sort.Strings(names)
	for len(names) > 0 {
		chunk := names[:min(len(names), DescribeManyLimit)]
		names = names[len(chunk):]
		got, err := md.DescribeMany(ctx, s.db, chunk)
		if err != nil {
			s.log.Debug("describing a flight's tables together failed; describing them one by one", "tables", len(chunk), "err", err)
			return
		}
		s.mu.Lock()
		for n, t := range got {
			s.remember(n, t, gen)
		}
		s.mu.Unlock()
	}
}

// Table describes a target table that must exist (see describe).
func (s *Sink) Table(ctx context.Context, name string) (*Table, error) {
	t, err := s.describe(ctx, name)
	if err != nil {
		return nil, err
	}
	if t == nil {
		return nil, fmt.Errorf("table %s does not exist in the %s sink: create it, or set create: true on its table rule", name, s.d.Name())
	}
	return t, nil
}

// Forget drops a cached table description (after DDL changed it).
func (s *Sink) Forget(name string) {
	s.mu.Lock()
	delete(s.tables, name)
	s.forgets++
	s.forgotAt[name] = s.forgets
	s.mu.Unlock()
}
