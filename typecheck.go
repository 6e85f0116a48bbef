package exactly

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

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
