package sqlite

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

// affinity is a column's type affinity, from its declared type by
// SQLite's rules (https://sqlite.org/datatype3.html, 3.1).
func affinity(decl string) byte {
	t := strings.ToUpper(decl)
	switch {
	case strings.Contains(t, "INT"):
		return 'i'
	case strings.Contains(t, "CHAR"), strings.Contains(t, "CLOB"), strings.Contains(t, "TEXT"):
		return 't'
	case t == "" || strings.Contains(t, "BLOB"):
		return 'b'
	case strings.Contains(t, "REAL"), strings.Contains(t, "FLOA"), strings.Contains(t, "DOUB"):
		return 'r'
	}
	return 'n'
}

// fold applies a built-in collation to text: NOCASE folds ASCII only,
// RTRIM ignores trailing spaces. ok is false for a collation SQLite does
// not build in.
func fold(coll, s string) (string, bool) {
	switch strings.ToUpper(coll) {
	case "", "BINARY":
		return s, true
	case "NOCASE":
		return asciiLower(s), true
	case "RTRIM":
		return strings.TrimRight(s, " "), true
	}
	return "", false
}

func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if b[j] >= 'A' && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// KeyClass implements exactly.KeyEquality. A value is stored by the
// column's affinity, then compared by storage class and, for text, by
// the collation of the key's index. Exact in Go: text in a TEXT column
// (numbers become their decimal text), integers and canonical integer text
// in an INTEGER or NUMERIC column, anything in a BLOB column (nothing is
// converted). Left to SameKeys: "01", "1.0" or " 1" for an INTEGER column
// (SQLite may make them the integer 1), floats, REAL columns.
func (d *Dialect) KeyClass(t *exactly.Table, name string) exactly.KeyClassFunc {
	col := t.Column(name)
	if col == nil {
		return nil
	}
	if _, ok := fold(col.Collation, ""); !ok {
		return nil
	}
	coll := col.Collation
	aff := affinity(col.Type)
	return func(v any) (string, exactly.KeyMatch) {
		switch x := value(v).(type) {
		case int64:
			if aff == 'r' {
				break
			}
			if aff == 't' {
				s, _ := fold(coll, strconv.FormatInt(x, 10))
				return "t" + s, exactly.KeyExact
			}
			return "i" + strconv.FormatInt(x, 10), exactly.KeyExact
		case string:
			switch aff {
			case 't', 'b':
				s, _ := fold(coll, x)
				return "t" + s, exactly.KeyExact
			case 'i', 'n':
				if s, ok := exactly.IntText(x); ok {
					return "i" + s, exactly.KeyExact
				}
			}
		case []byte:
			if aff != 'r' {
				return "b" + string(x), exactly.KeyExact
			}
		}
		return "", exactly.KeyUnknown
	}
}

// SameKeys implements exactly.KeyEquality: the keys go into a temporary
// table whose key columns have the target's declared types and index
// collations (so affinity converts them as the write does), and a window
// groups them by SQLite's own comparison.
func (d *Dialect) SameKeys(ctx context.Context, q exactly.Querier, t *exactly.Table, cols []string, tuples [][]any) ([]int, error) {
	h := sha1.Sum([]byte(t.Name + "\x00" + strings.Join(cols, "\x00")))
	probe := d.Quote("temp.exactly_probe_" + hex.EncodeToString(h[:8]))
	defs := []string{"exactly_i INTEGER NOT NULL"}
	for _, c := range cols {
		col := t.Column(c)
		if col == nil {
			return nil, fmt.Errorf("key column %q is not a column of table %s", c, t.Name)
		}
		def := d.Quote(c) + " " + col.Type
		if col.Collation != "" {
			def += " COLLATE " + d.Quote(col.Collation)
		}
		defs = append(defs, def)
	}
	if _, err := q.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS "+probe+" ("+strings.Join(defs, ", ")+")"); err != nil {
		return nil, fmt.Errorf("creating key probe table: %w", err)
	}
	if _, err := q.ExecContext(ctx, "DELETE FROM "+probe); err != nil {
		return nil, fmt.Errorf("emptying key probe table: %w", err)
	}
	ins := "INSERT INTO " + probe + " VALUES (" + marks(len(cols)+1) + ")"
	for i, kv := range tuples {
		args := append([]any{int64(i)}, values(kv)...)
		if _, err := q.ExecContext(ctx, ins, args...); err != nil {
			return nil, fmt.Errorf("filling key probe table: %w", err)
		}
	}
	return exactly.KeyGroups(ctx, q, "SELECT exactly_i, MIN(exactly_i) OVER (PARTITION BY "+d.list(cols)+") FROM "+probe, nil, len(tuples))
}
