package sqlserver

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/exactly/exactly"
)

var _ exactly.KeyEquality = (*Dialect)(nil)

// KeyClass implements exactly.KeyEquality. SQL Server compares text with
// trailing spaces ignored under every collation (ANSI padding), and the
// common collations (the default SQL_Latin1_General_CP1_CI_AS, Azure
// SQL's) are case-insensitive: 'abc' and 'ABC ' are one key. Exact in Go:
// integer columns given integers or canonical integer text. A bucket:
// text under a binary collation (trailing spaces dropped) and printable
// ASCII under a case-insensitive one (folded to lower case too); only keys
// that share a bucket are asked about. Anything else (accents, other
// scripts, a case-sensitive collation's ignorable characters) is left to
// SameKeys.
func (d *Dialect) KeyClass(t *exactly.Table, name string) exactly.KeyClassFunc {
	col := t.Column(name)
	if col == nil {
		return nil
	}
	typ := strings.ToLower(col.Type)
	coll := strings.ToUpper(col.Collation)
	switch {
	case typ == "tinyint" || typ == "smallint" || typ == "int" || typ == "bigint":
		return intClass
	case !strings.Contains(typ, "char"):
		return nil
	case strings.HasSuffix(coll, "_BIN") || strings.HasSuffix(coll, "_BIN2"):
		return exactly.PadSpaceKeys(keyTextOf)
	case strings.Contains(coll, "_CI_") || strings.HasSuffix(coll, "_CI"):
		return exactly.CaseFoldKeys(keyTextOf)
	}
	return nil
}

func intClass(v any) (string, exactly.KeyMatch) {
	if s, ok := exactly.IntText(v); ok {
		return s, exactly.KeyExact
	}
	return "", exactly.KeyUnknown
}

// keyTextOf is a key value as a text column receives it (see textValue).
func keyTextOf(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case exactly.Decimal:
		return string(x), true
	case int64:
		return strconv.FormatInt(x, 10), true
	}
	return "", false
}

// SameKeys implements exactly.KeyEquality: the keys go into a #temp table
// of this session whose key columns have the target's types and
// collations (so they are converted as the write converts them), and a
// window over it groups them by the collation's equality. A key the column
// refuses is its own group.
func (d *Dialect) SameKeys(ctx context.Context, q exactly.Querier, t *exactly.Table, cols []string, tuples [][]any) ([]int, error) {
	var sig strings.Builder
	sig.WriteString(t.Name)
	defs := []string{"exactly_i INT NOT NULL"}
	conv := make([]func(any) any, len(cols))
	for i, c := range cols {
		col := t.Column(c)
		if col == nil {
			return nil, fmt.Errorf("key column %q is not a column of table %s", c, t.Name)
		}
		typ := col.Type
		if col.Collation != "" && !strings.Contains(strings.ToLower(typ), " collate ") {
			typ += " COLLATE " + col.Collation
		}
		defs = append(defs, d.Quote(c)+" "+typ+" NULL")
		sig.WriteString("\x00" + c + "\x00" + typ)
		conv[i] = converter(col)
	}
	h := sha1.Sum([]byte(sig.String()))
	probe := "#exactly_probe_" + hex.EncodeToString(h[:8])
	if _, err := q.ExecContext(ctx, "IF OBJECT_ID(N'tempdb.."+probe+"') IS NULL CREATE TABLE "+probe+" ("+strings.Join(defs, ", ")+"); DELETE FROM "+probe); err != nil {
		return nil, fmt.Errorf("creating key probe table: %w", err)
	}
	per := len(cols) + 1
	insert := func(from, to int) error {
		var sb strings.Builder
		sb.WriteString("INSERT INTO " + probe + " (exactly_i, " + d.list(cols, "") + ") VALUES ")
		args := make([]any, 0, (to-from)*per)
		for i := from; i < to; i++ {
			if i > from {
				sb.WriteString(", ")
			}
			sb.WriteString("(")
			for j := 0; j < per; j++ {
				if j > 0 {
					sb.WriteString(", ")
				}
				sb.WriteString("@p" + strconv.Itoa(len(args)+j+1))
			}
			sb.WriteString(")")
			args = append(args, int64(i))
			for j, v := range tuples[i] {
				args = append(args, conv[j](v))
			}
		}
		_, err := q.ExecContext(ctx, sb.String(), args...)
		return err
	}
	// At most 2100 parameters and 1000 rows per INSERT … VALUES.
	step := min(1000, 2000/per)
	for from := 0; from < len(tuples); from += step {
		to := min(from+step, len(tuples))
		if err := exactly.FillKeyProbe(from, to, insert, d.Classify); err != nil {
			return nil, fmt.Errorf("filling key probe table: %w", err)
		}
	}
	return exactly.KeyGroups(ctx, q, "SELECT exactly_i, MIN(exactly_i) OVER (PARTITION BY "+d.list(cols, "")+") FROM "+probe, nil, len(tuples))
}
