package mysql

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"

	"github.com/exactly/exactly"
)

var _ exactly.KeyEquality = (*Dialect)(nil)

// caseInsensitive are the collation families whose equality, on printable
// ASCII, is equality after folding case and dropping trailing spaces (PAD
// SPACE; a NO PAD collation only keeps more apart). Other collations
// (German phone book, Danish, Czech, …) are left to SameKeys.
var caseInsensitive = regexp.MustCompile(`^(utf8mb4|utf8mb3|utf8|latin1|ascii)_(general|unicode|unicode_520|0900_ai|uca1400_ai|swedish|general_mysql500)(_nopad)?_ci$`)

// KeyClass implements exactly.KeyEquality. Exact in Go: integer columns
// given integers or canonical integer text, and text under a _bin
// collation (a NO PAD one byte for byte; a PAD SPACE one without trailing
// spaces, as a bucket). Text under the common case-insensitive collations
// (MariaDB's default utf8mb4_general_ci, which create: true makes) is a
// bucket when it is printable ASCII: only keys that fold alike are asked
// about. Anything else is left to SameKeys.
func (d *Dialect) KeyClass(t *exactly.Table, name string) exactly.KeyClassFunc {
	col := t.Column(name)
	if col == nil {
		return nil
	}
	typ := strings.ToLower(col.Type)
	coll := strings.ToLower(col.Collation)
	switch {
	case strings.HasPrefix(typ, "tinyint") || strings.HasPrefix(typ, "smallint") || strings.HasPrefix(typ, "mediumint") ||
		strings.HasPrefix(typ, "int") || strings.HasPrefix(typ, "bigint"):
		return intClass
	case coll == "":
		if strings.HasPrefix(typ, "varbinary") || strings.HasSuffix(typ, "blob") {
			return bytesClass
		}
	case strings.HasSuffix(coll, "_bin"):
		if strings.Contains(coll, "nopad") || strings.Contains(coll, "_0900_") {
			return binClass
		}
		return exactly.PadSpaceKeys(keyText)
	case caseInsensitive.MatchString(coll):
		return exactly.CaseFoldKeys(keyText)
	}
	return nil
}

func intClass(v any) (string, exactly.KeyMatch) {
	if s, ok := exactly.IntText(v); ok {
		return s, exactly.KeyExact
	}
	return "", exactly.KeyUnknown
}

// keyText is a key value as the text column receives it, when the value
// is text or an integer (the driver sends other types in their own forms).
func keyText(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case exactly.Decimal:
		return string(x), true
	}
	return exactly.IntText(v)
}

func bytesClass(v any) (string, exactly.KeyMatch) {
	switch x := v.(type) {
	case []byte:
		return string(x), exactly.KeyExact
	case string:
		return x, exactly.KeyExact
	}
	return "", exactly.KeyUnknown
}

func binClass(v any) (string, exactly.KeyMatch) {
	if s, ok := keyText(v); ok {
		return s, exactly.KeyExact
	}
	return "", exactly.KeyUnknown
}

// SameKeys implements exactly.KeyEquality: the keys go into a temporary
// table whose key columns have the target's types and collations (so they
// are converted as the write converts them), and a window over it groups
// them by the collation's equality. A key the column refuses (strict mode)
// is its own group. Needs window functions: MariaDB 10.2, MySQL 8.0.
func (d *Dialect) SameKeys(ctx context.Context, q exactly.Querier, t *exactly.Table, cols []string, tuples [][]any) ([]int, error) {
	h := sha1.Sum([]byte(t.Name + "\x00" + strings.Join(cols, "\x00")))
	probe := "exactly_probe_" + hex.EncodeToString(h[:8])
	defs := []string{"exactly_i INT NOT NULL"}
	for _, c := range cols {
		col := t.Column(c)
		if col == nil {
			return nil, fmt.Errorf("key column %q is not a column of table %s", c, t.Name)
		}
		def := d.Quote(c) + " " + col.Type
		if col.Collation != "" {
			def += " COLLATE " + col.Collation
		}
		defs = append(defs, def+" NULL")
	}
	// Temporary: on this session only, and no implicit commit.
	if _, err := q.ExecContext(ctx, "CREATE TEMPORARY TABLE IF NOT EXISTS "+probe+" ("+strings.Join(defs, ", ")+")"); err != nil {
		return nil, fmt.Errorf("creating key probe table: %w", err)
	}
	if _, err := q.ExecContext(ctx, "DELETE FROM "+probe); err != nil {
		return nil, fmt.Errorf("emptying key probe table: %w", err)
	}
	conv := converters(t, cols)
	head := "INSERT INTO " + probe + " (exactly_i, " + d.list(cols) + ") VALUES "
	group := "(" + marks(len(cols)+1) + ")"
	insert := func(from, to int) error {
		var sb strings.Builder
		sb.WriteString(head)
		args := make([]any, 0, (to-from)*(len(cols)+1))
		for i := from; i < to; i++ {
			if i > from {
				sb.WriteString(", ")
			}
			sb.WriteString(group)
			args = append(args, i)
			for j, v := range tuples[i] {
				args = append(args, conv[j](v))
			}
		}
		_, err := q.ExecContext(ctx, sb.String(), args...)
		return err
	}
	err := chunks(len(tuples), len(cols)+1, func(i int) int { return rowBytes(tuples[i]) }, func(from, to int) error {
		return exactly.FillKeyProbe(from, to, insert, d.Classify)
	})
	if err != nil {
		return nil, fmt.Errorf("filling key probe table: %w", err)
	}
	return exactly.KeyGroups(ctx, q, "SELECT exactly_i, MIN(exactly_i) OVER (PARTITION BY "+d.list(cols)+") FROM "+probe, nil, len(tuples))
}
