package exactly

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// keyIdentities returns the collapse identity of each key tuple of one
// table write: two tuples get the same identity if and only if the
// database holds them to be the same row. The dialect's class functions
// decide in Go where they can (see KeyEquality); otherwise the database is
// asked, once for all the tuples of the write, on q (outside the batch
// transaction). Identities are the order rows are written in (lock order).
func (s *Sink) keyIdentities(ctx context.Context, q Querier, t *Table, cols []string, tuples [][]any) ([]string, error) {
	ke, _ := s.d.(KeyEquality)
	fns := make([]KeyClassFunc, len(cols))
	for i, c := range cols {
		if ke != nil {
			fns[i] = ke.KeyClass(t, c)
		} else {
			fns[i] = plainClass
		}
	}
	ids := make([]string, len(tuples))
	worst := KeyExact
	for i, kv := range tuples {
		id, m := classOf(fns, kv)
		if m == KeyUnknown {
			worst = KeyUnknown
			break
		}
		worst = min(worst, m)
		ids[i] = id
	}
	if worst == KeyExact {
		return ids, nil
	}
	if worst == KeyBucket && !bucketsClash(ids, tuples) {
		// Every bucket holds one value: its id is that value's identity.
		return ids, nil
	}
	if ke == nil || len(tuples) == 0 {
		return ids, nil // unreachable: only a KeyEquality dialect says less than exact
	}
	index := make(map[string]int, len(tuples))
	which := make([]int, len(tuples))
	var distinct [][]any
	var raws []string
	for i, kv := range tuples {
		raw := rawKey(kv)
		d, ok := index[raw]
		if !ok {
			d = len(distinct)
			index[raw] = d
			distinct = append(distinct, kv)
			raws = append(raws, raw)
		}
		which[i] = d
	}
	if len(distinct) == 1 {
		for i := range ids {
			ids[i] = raws[0]
		}
		return ids, nil
	}
	rep, err := ke.SameKeys(ctx, q, t, cols, distinct)
	if err != nil {
		return nil, fmt.Errorf("asking the database which keys of table %s are the same row: %w", t.Name, err)
	}
	if len(rep) != len(distinct) {
		return nil, fmt.Errorf("asking the database which keys of table %s are the same row: %d answers for %d keys", t.Name, len(rep), len(distinct))
	}
	for i := range tuples {
		r := rep[which[i]]
		if r < 0 || r >= len(raws) {
			r = which[i]
		}
		ids[i] = raws[r]
	}
	return ids, nil
}

// bucketsClash reports whether two different key values share a bucket.
func bucketsClash(ids []string, tuples [][]any) bool {
	first := make(map[string]string, len(ids))
	for i, id := range ids {
		raw := rawKey(tuples[i])
		if f, ok := first[id]; ok && f != raw {
			return true
		}
		first[id] = raw
	}
	return false
}

// classOf is the identity of a key tuple: the column's own for one
// column (no allocation beyond what the class function makes), else each
// column's identity prefixed by its length, so that ("a\x00b", "c") and
// ("a", "b\x00c") stay two keys. The match is the weakest of the columns'.
func classOf(fns []KeyClassFunc, kv []any) (string, KeyMatch) {
	if len(fns) == 1 {
		if fns[0] == nil {
			return "", KeyUnknown
		}
		return fns[0](kv[0])
	}
	var buf []byte
	m := KeyExact
	for i, fn := range fns {
		if fn == nil {
			return "", KeyUnknown
		}
		id, cm := fn(kv[i])
		if cm == KeyUnknown {
			return "", KeyUnknown
		}
		m = min(m, cm)
		buf = strconv.AppendInt(buf, int64(len(id)), 10)
		buf = append(buf, ':')
		buf = append(buf, id...)
	}
	return string(buf), m
}

// plainClass is the identity of a key value for a dialect without
// KeyEquality: an integer and its decimal text are one key (the database
// casts both alike); any other type is kept apart from text by a tag.
func plainClass(v any) (string, KeyMatch) {
	switch x := v.(type) {
	case int64:
		return strconv.FormatInt(x, 10), KeyExact
	case string:
		if !strings.HasPrefix(x, "\x00") {
			return x, KeyExact
		}
	}
	return "\x00" + rawKey([]any{v}), KeyExact
}

// rawKey is an injective text form of Go key values: each value's type
// tag, length and text. Two tuples have the same rawKey only if they are
// equal Go values, so it never merges keys the database keeps apart.
func rawKey(kv []any) string {
	var buf []byte
	for _, v := range kv {
		var tag byte
		var text string
		switch x := v.(type) {
		case nil:
			tag = 'n'
		case int64:
			tag, text = 'i', strconv.FormatInt(x, 10)
		case string:
			tag, text = 's', x
		case []byte:
			tag, text = 'b', string(x)
		case Decimal:
			tag, text = 'd', string(x)
		case JSON:
			tag, text = 'j', string(x)
		case bool:
			tag, text = 't', strconv.FormatBool(x)
		case float64:
			tag, text = 'g', strconv.FormatFloat(x, 'g', -1, 64)
		case time.Time:
			tag, text = 'T', x.Format(time.RFC3339Nano)
		default:
			tag, text = 'x', fmt.Sprintf("%T:%v", v, v)
		}
		buf = append(buf, tag)
		buf = strconv.AppendInt(buf, int64(len(text)), 10)
		buf = append(buf, ':')
		buf = append(buf, text...)
	}
	return string(buf)
}

// IntText returns the canonical decimal text of an integer key value: an
// int64, or text already in canonical form ("12", "-3"; not "012", "+3",
// " 3", "1.0" or "-0"), as the database would print the integer it reads.
// ok is false for anything else: only the database knows what it makes of
// "0x1F" or " 1". Dialects use it in their class functions.
func IntText(v any) (string, bool) {
	var s string
	switch x := v.(type) {
	case int64:
		return strconv.FormatInt(x, 10), true
	case string:
		s = x
	case Decimal:
		s = string(x)
	default:
		return "", false
	}
	digits := strings.TrimPrefix(s, "-")
	if digits == "" || len(digits) > 19 || (digits[0] == '0' && (len(digits) > 1 || len(s) > 1)) {
		return "", false
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return "", false
		}
	}
	if _, err := strconv.ParseInt(s, 10, 64); err != nil {
		return "", false
	}
	return s, true
}

// PadSpaceKeys is the KeyClassFunc of a text column under a binary PAD
// SPACE collation (MySQL's *_bin, SQL Server's *_BIN and *_BIN2): trailing
// spaces do not count. text reads a key value as the column receives it.
func PadSpaceKeys(text func(any) (string, bool)) KeyClassFunc {
	return func(v any) (string, KeyMatch) {
		s, ok := text(v)
		if !ok {
			return "", KeyUnknown
		}
		return strings.TrimRight(s, " "), KeyBucket
	}
}

// CaseFoldKeys is the KeyClassFunc of a text column under a case-
// insensitive PAD SPACE collation: for printable ASCII, Go can say which
// keys fall together (case and trailing spaces do not count); anything
// else (accents, other scripts) is asked of the database.
func CaseFoldKeys(text func(any) (string, bool)) KeyClassFunc {
	return func(v any) (string, KeyMatch) {
		s, ok := text(v)
		if !ok {
			return "", KeyUnknown
		}
		for i := 0; i < len(s); i++ {
			if s[i] < 0x20 || s[i] > 0x7e {
				return "", KeyUnknown
			}
		}
		return strings.ToLower(strings.TrimRight(s, " ")), KeyBucket
	}
}

// FillKeyProbe inserts the key tuples [from, to) into a dialect's key
// probe table with insert (one statement). When the database refuses the
// statement for a value (classify says ErrData), the tuples are inserted
// one by one and those refused are left out: a key the column refuses is
// its own group (see KeyGroups), and its row is refused by the write too.
func FillKeyProbe(from, to int, insert func(from, to int) error, classify func(error) ErrorKind) error {
	err := insert(from, to)
	if err == nil || classify(err) != ErrData {
		return err
	}
	for i := from; i < to; i++ {
		if err := insert(i, i+1); err != nil && classify(err) != ErrData {
			return err
		}
	}
	return nil
}

// KeyGroups runs a dialect's grouping query over n key tuples and returns
// SameKeys's answer. The query answers rows of (i, the least i of its
// group), i counting the tuples from 0; a tuple it does not answer (left
// out of the probe) is its own group.
func KeyGroups(ctx context.Context, q Querier, query string, args []any, n int) ([]int, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("grouping keys: %w", err)
	}
	defer rows.Close()
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	for rows.Next() {
		var i, rep int
		if err := rows.Scan(&i, &rep); err != nil {
			return nil, err
		}
		if i < 0 || i >= len(out) || rep < 0 || rep > i {
			return nil, fmt.Errorf("grouping keys: unexpected answer (%d, %d) for %d keys", i, rep, len(out))
		}
		out[i] = rep
	}
	return out, rows.Err()
}
