package postgres

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/exactly/exactly"
)

var _ exactly.KeyEquality = (*Dialect)(nil)

// KeyClass implements exactly.KeyEquality. Exact in Go: integer columns
// given integers or canonical integer text, text and varchar under a
// deterministic collation of the database default or "C" (byte equality of
// the text sent), char(n) (trailing spaces do not count) and uuid in its
// canonical spelling. Anything else — numeric (1 = 1.0), citext, a column
// collation of its own (possibly nondeterministic), "01" for an integer —
// is left to SameKeys.
func (d *Dialect) KeyClass(t *exactly.Table, name string) exactly.KeyClassFunc {
	col := t.Column(name)
	if col == nil {
		return nil
	}
	byteEqual := col.Collation == "" || col.Collation == `pg_catalog."C"` || col.Collation == `pg_catalog."POSIX"`
	switch typ := col.Type; {
	case typ == "bigint" || typ == "integer" || typ == "smallint":
		return intClass
	case byteEqual && (typ == "text" || strings.HasPrefix(typ, "character varying")):
		return textClass
	case byteEqual && (typ == "character" || strings.HasPrefix(typ, "character(")):
		return charClass
	case typ == "uuid":
		return uuidClass
	}
	return nil
}

func intClass(v any) (string, exactly.KeyMatch) {
	if s, ok := exactly.IntText(v); ok {
		return s, exactly.KeyExact
	}
	return "", exactly.KeyUnknown
}

// textClass: the text sent is what the column holds and compares.
func textClass(v any) (string, exactly.KeyMatch) { return text(v).(string), exactly.KeyExact }

// charClass: char(n) pads with spaces, so trailing spaces never count.
func charClass(v any) (string, exactly.KeyMatch) {
	return strings.TrimRight(text(v).(string), " "), exactly.KeyExact
}

// uuidClass knows the 8-4-4-4-12 spelling, in either case; the other
// spellings PostgreSQL reads (braces, no hyphens) are left to SameKeys.
func uuidClass(v any) (string, exactly.KeyMatch) {
	s, ok := v.(string)
	if !ok || len(s) != 36 {
		return "", exactly.KeyUnknown
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if c != '-' {
				return "", exactly.KeyUnknown
			}
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f':
		case c >= 'A' && c <= 'F':
		default:
			return "", exactly.KeyUnknown
		}
	}
	return strings.ToLower(s), exactly.KeyExact
}

// SameKeys implements exactly.KeyEquality: one window query over the keys
// cast as a write casts them, partitioned by the column's type and
// collation, i.e. by the equality its primary key index uses. A key that
// does not cast (the write would refuse it) makes the query fail; then
// each key is tried alone and those that fail are left out.
func (d *Dialect) SameKeys(ctx context.Context, q exactly.Querier, t *exactly.Table, cols []string, tuples [][]any) ([]int, error) {
	out, err := d.sameKeys(ctx, q, t, cols, tuples)
	if err == nil || d.Classify(err) != exactly.ErrData {
		return out, err
	}
	var good []int
	for i, kv := range tuples {
		if _, err := d.sameKeys(ctx, q, t, cols, [][]any{kv}); err != nil {
			if d.Classify(err) != exactly.ErrData {
				return nil, err
			}
			continue
		}
		good = append(good, i)
	}
	sub := make([][]any, len(good))
	for j, i := range good {
		sub[j] = tuples[i]
	}
	rep, err := d.sameKeys(ctx, q, t, cols, sub)
	if err != nil {
		return nil, err
	}
	out = make([]int, len(tuples))
	for i := range out {
		out[i] = i
	}
	for j, i := range good {
		out[i] = good[rep[j]]
	}
	return out, nil
}

func (d *Dialect) sameKeys(ctx context.Context, q exactly.Querier, t *exactly.Table, cols []string, tuples [][]any) ([]int, error) {
	if len(tuples) == 0 {
		return nil, nil
	}
	arrays := make([]any, len(cols))
	params := make([]string, len(cols))
	parts := make([]string, len(cols))
	for j, c := range cols {
		col := t.Column(c)
		if col == nil {
			return nil, fmt.Errorf("key column %q is not a column of table %s", c, t.Name)
		}
		vals := make([]pgtype.Text, len(tuples))
		for i, kv := range tuples {
			vals[i] = textValue(kv[j])
		}
		arrays[j] = vals
		params[j] = "$" + strconv.Itoa(j+1) + "::text[]"
		parts[j] = "s." + d.Quote(c) + "::" + probeType(col.Type)
		if col.Collation != "" {
			parts[j] += " COLLATE " + col.Collation
		}
	}
	// WITH ORDINALITY counts from 1; KeyGroups from 0.
	query := "SELECT s.exactly_i - 1, min(s.exactly_i) OVER (PARTITION BY " + strings.Join(parts, ", ") + ") - 1 FROM unnest(" +
		strings.Join(params, ", ") + ") WITH ORDINALITY AS s(" + d.list(cols, "") + ", exactly_i)"
	return exactly.KeyGroups(ctx, q, query, arrays, len(tuples))
}

// probeType is the type a key is compared as: the column's, without the
// length of a character type (an explicit cast to varchar(5) would cut a
// long key to its prefix and call it the same; the write refuses it).
func probeType(typ string) string {
	switch {
	case strings.HasPrefix(typ, "character varying("):
		return "character varying"
	case strings.HasPrefix(typ, "character("):
		return "bpchar"
	case strings.HasPrefix(typ, "bit varying("):
		return "bit varying"
	}
	return typ
}
