package mysql

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/exactly/exactly"
)

// Statement limits. A prepared statement takes at most 65535 placeholders;
// an interpolated one must fit max_allowed_packet, which is 4 MiB on MySQL
// 5.7, 16 MiB on MariaDB and 64 MiB on MySQL 8 by default. Statements are
// kept well below both; a single larger row is sent on its own.
const maxParams = 65535

var maxStatementBytes = 2 << 20

// Apply implements exactly.Dialect: chunked multi-row INSERT … ON
// DUPLICATE KEY UPDATE for upserts (plain INSERT for append tables), and
// chunked multi-row DELETEs. Any error is returned at once; the caller
// rolls the transaction back (a lock-wait timeout only undid the failing
// statement, so committing after it would commit a partial batch).
func (d *Dialect) Apply(ctx context.Context, tx *exactly.Tx, w *exactly.TableWrite) error {
	if len(w.Upserts) > 0 {
		head, tail := d.upsertSQL(w)
		conv := converters(w.Table, w.Columns)
		err := chunks(len(w.Upserts), len(w.Columns), func(i int) int { return rowBytes(w.Upserts[i]) }, func(from, to int) error {
			var sb strings.Builder
			sb.Grow(len(head) + len(tail) + (to-from)*(2+3*len(w.Columns)))
			sb.WriteString(head)
			args := make([]any, 0, (to-from)*len(w.Columns))
			group := "(" + marks(len(w.Columns)) + ")"
			for i := from; i < to; i++ {
				if i > from {
					sb.WriteString(", ")
				}
				sb.WriteString(group)
				for j, v := range w.Upserts[i] {
					args = append(args, conv[j](v))
				}
			}
			sb.WriteString(tail)
			if _, err := tx.ExecContext(ctx, sb.String(), args...); err != nil {
				return fmt.Errorf("upserting rows %d..%d: %w", from, to-1, err)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	if len(w.Deletes) > 0 {
		perRow := len(w.Keys)
		if w.Version != "" {
			perRow += 2
		}
		conv := converters(w.Table, w.Keys)
		vconv := converters(w.Table, []string{w.Version})[0]
		err := chunks(len(w.Deletes), perRow, func(i int) int { return rowBytes(w.Deletes[i]) }, func(from, to int) error {
			q, args := d.deleteSQL(w, from, to, conv, vconv)
			if _, err := tx.ExecContext(ctx, q, args...); err != nil {
				return fmt.Errorf("deleting rows %d..%d: %w", from, to-1, err)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// upsertSQL returns the statement around the VALUES groups.
//
// The key columns are assigned too: under a case-insensitive collation
// "ABC" updates the row of "abc", and the row then holds the key as its
// last change spelt it, as applying the records one by one leaves it (an
// unchanged key costs InnoDB nothing: it compares before it updates).
//
// With a version guard every assignment is IF(not older, VALUES(c), c).
// MySQL evaluates the assignments left to right and later ones see the
// new values of earlier ones; the version column is assigned last so that
// every condition reads the stored version.
// VALUES() is what MariaDB understands; MySQL 8 still accepts it (with a
// deprecation warning).
func (d *Dialect) upsertSQL(w *exactly.TableWrite) (head, tail string) {
	head = "INSERT INTO " + d.Quote(w.Table.Name) + " (" + d.list(w.Columns) + ") VALUES "
	if w.Append {
		return head, ""
	}
	var set []string
	assign := func(c string) {
		q := d.Quote(c)
		if w.Version == "" {
			set = append(set, q+" = VALUES("+q+")")
			return
		}
		v := d.Quote(w.Version)
		set = append(set, q+" = IF(VALUES("+v+") IS NULL OR "+v+" IS NULL OR "+v+" <= VALUES("+v+"), VALUES("+q+"), "+q+")")
	}
	hasVersion := false
	for _, c := range w.Columns {
		switch {
		case c == w.Version:
			hasVersion = true
		default:
			assign(c)
		}
	}
	if hasVersion {
		assign(w.Version)
	}
	if len(set) == 0 { // only key columns: nothing to update
		k := d.Quote(w.Keys[0])
		set = append(set, k+" = "+k)
	}
	return head, " ON DUPLICATE KEY UPDATE " + strings.Join(set, ", ")
}

// deleteSQL deletes rows from..to of w.Deletes: by key tuples, or with a
// version guard one (key AND not-newer) term per row.
func (d *Dialect) deleteSQL(w *exactly.TableWrite, from, to int, conv []func(any) any, vconv func(any) any) (string, []any) {
	var sb strings.Builder
	sb.WriteString("DELETE FROM " + d.Quote(w.Table.Name) + " WHERE ")
	var args []any
	if w.Version == "" {
		tuple := "(" + marks(len(w.Keys)) + ")"
		if len(w.Keys) == 1 {
			sb.WriteString(d.Quote(w.Keys[0]) + " IN (")
			tuple = "?"
		} else {
			sb.WriteString("(" + d.list(w.Keys) + ") IN (")
		}
		for i := from; i < to; i++ {
			if i > from {
				sb.WriteString(", ")
			}
			sb.WriteString(tuple)
			for j, v := range w.Deletes[i] {
				args = append(args, conv[j](v))
			}
		}
		sb.WriteString(")")
		return sb.String(), args
	}
	var eq []string
	for _, k := range w.Keys {
		eq = append(eq, d.Quote(k)+" = ?")
	}
	v := d.Quote(w.Version)
	term := "(" + strings.Join(eq, " AND ") + " AND (? IS NULL OR " + v + " IS NULL OR " + v + " <= ?))"
	for i := from; i < to; i++ {
		if i > from {
			sb.WriteString(" OR ")
		}
		sb.WriteString(term)
		for j, kv := range w.Deletes[i] {
			args = append(args, conv[j](kv))
		}
		ver := vconv(w.DeleteVersions[i])
		args = append(args, ver, ver)
	}
	return sb.String(), args
}

// chunks calls fn over consecutive row ranges that keep each statement
// under maxParams placeholders and about maxStatementBytes of text.
func chunks(n, perRow int, size func(int) int, fn func(from, to int) error) error {
	maxRows := maxParams / max(perRow, 1)
	for from := 0; from < n; {
		to, bytes := from, 0
		for to < n && to-from < maxRows {
			b := size(to) + 4*perRow
			if to > from && bytes+b > maxStatementBytes {
				break
			}
			bytes += b
			to++
		}
		if err := fn(from, to); err != nil {
			return err
		}
		from = to
	}
	return nil
}

// rowBytes estimates a row's size once interpolated (escaping may double
// a string).
func rowBytes(row []any) int {
	n := 0
	for _, v := range row {
		switch x := v.(type) {
		case string:
			n += 2*len(x) + 2
		case []byte:
			n += 2*len(x) + 10
		case exactly.Decimal:
			n += len(x) + 2
		case exactly.JSON:
			n += 2*len(x) + 2
		default:
			n += 28
		}
	}
	return n
}

// converters returns, per column, the conversion of a decoded value to
// what the driver should send for that column's type.
func converters(t *exactly.Table, cols []string) []func(any) any {
	out := make([]func(any) any, len(cols))
	for i, c := range cols {
		typ := ""
		if col := t.Column(c); col != nil {
			typ = strings.ToLower(col.Type)
		}
		switch {
		case typ == "date":
			out[i] = dateValue
		case strings.HasPrefix(typ, "datetime"), strings.HasPrefix(typ, "timestamp"):
			out[i] = timeValue
		case strings.HasPrefix(typ, "time"):
			out[i] = clockValue
		default:
			out[i] = value
		}
	}
	return out
}

// value maps a decoded value to a driver value: exact decimals and JSON as
// text, times in UTC (the session's time zone).
func value(v any) any {
	switch x := v.(type) {
	case exactly.Decimal:
		return string(x)
	case exactly.JSON:
		return string(x)
	case time.Time:
		return x.UTC()
	}
	return v
}

// timeValue also accepts RFC 3339 text (as JSON carries timestamps) and
// stores the instant in UTC: MySQL would reject the zone suffix.
func timeValue(v any) any {
	if s, ok := v.(string); ok {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return t.UTC()
		}
	}
	return value(v)
}

// dateValue writes a date as its calendar day, in the zone it was given.
func dateValue(v any) any {
	switch x := v.(type) {
	case time.Time:
		return x.Format("2006-01-02")
	case string:
		if t, err := time.Parse(time.RFC3339Nano, x); err == nil {
			return t.Format("2006-01-02")
		}
	}
	return value(v)
}

// clockValue writes a time of day (a TIME column) from a time.Time.
func clockValue(v any) any {
	if t, ok := v.(time.Time); ok {
		return t.Format("15:04:05.999999")
	}
	return value(v)
}
