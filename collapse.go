package exactly

import (
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"iter"
	"math"
	"math/big"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// item is one row of a table write and the change it came from, so that a
// row the database refuses can be traced back to its record.
type item struct {
	b   *PartitionBatch
	c   *change
	key []any
	// row is what an upsert writes: its record's fields over those of
	// the upserts of the key it superseded in the batch (merge of present
	// fields: a record sets the columns it carries and no other). Its
	// shape is nil when unknown or merged.
	row rowImage
	// merged says row holds fields of earlier records too.
	merged bool
	// loose says (under a version guard) this change or one of the key
	// before it in the batch carries no version (see collapse).
	loose bool
	// alone says the key's changes are written one record at a time
	// (see collapse): refused, this one has nothing to fall back on.
	alone bool
	// skips says the batch skipped a change of the key as older than
	// this one or one it superseded (see isolate).
	skips bool
	// slot numbers the key's identity (see planAcc.slot).
	slot int32
	// pre is the delete of the key earlier in the batch that this upsert
	// follows: it is applied first (the upsert then inserts a fresh row,
	// as one by one), in the table's deletes write.
	pre *item
	// prev is the change this one superseded inside the transaction. If
	// the database refuses this one, prev is tried in its place: the
	// outcome is then what applying the records one by one would give.
	prev *item
}

// write is one table's share of a transaction and its items: Upserts[i]
// came from upserts[i], Deletes[i] from deletes[i].
type write struct {
	*TableWrite
	upserts, deletes []*item
	// all are the keyed changes of the table in the batch, in order, the
	// superseded and skipped ones too (see isolate).
	all []*item
}

// sub returns the write restricted to the given items, in their order.
func (w *write) sub(items []*item) *TableWrite {
	tw := &TableWrite{Table: w.Table, Append: w.Append, Keys: w.Keys, Columns: w.Columns, Version: w.Version}
	ups := 0
	for _, it := range items {
		if it.c.Op == OpUpsert {
			ups++
		}
	}
	tw.Upserts = make([][]any, 0, ups)
	if ups < len(items) {
		tw.Deletes = make([][]any, 0, len(items)-ups)
	}
	vals := make([]any, ups*len(w.Columns)) // every row's values, one allocation
	keyAt := w.keyAt()
	var at columnsAt
	for _, it := range items {
		if it.c.Op == OpUpsert {
			n := len(w.Columns)
			tw.Upserts = append(tw.Upserts, w.row(it, keyAt, &at, vals[:n:n]))
			vals = vals[n:]
		} else {
			tw.Deletes = append(tw.Deletes, it.key)
			if tw.Version != "" {
				tw.DeleteVersions = append(tw.DeleteVersions, it.c.Version)
			}
		}
	}
	return tw
}

// keyAt says, for each of Columns, which key column it is (-1 for none,
// and for all of an append write's).
func (w *write) keyAt() []int {
	at := make([]int, len(w.Columns))
	for i, col := range w.Columns {
		at[i] = -1
		if !w.Append {
			at[i] = slices.Index(w.Keys, col)
		}
	}
	return at
}

// row puts an upsert item's values, aligned with Columns, in vals; the key
// wins over a differing value field. The row itself is left as decoded.
// A row by position (Values) is read through at, the columns' positions
// in its shape, worked out once per shape.
func (w *write) row(it *item, keyAt []int, at *columnsAt, vals []any) []any {
	row := it.row
	if row.isNil() {
		row = rowOf(&it.c.Change)
	}
	if row.v != nil {
		pos := at.of(row.shape, w.Columns)
		for i, p := range pos {
			if k := keyAt[i]; k >= 0 {
				vals[i] = it.key[k]
			} else if p >= 0 {
				vals[i] = row.v[p]
			}
		}
		return vals
	}
	for i, col := range w.Columns {
		if k := keyAt[i]; k >= 0 {
			vals[i] = it.key[k]
		} else {
			vals[i] = row.m[col]
		}
	}
	return vals
}

// columnsAt is the positions of a list of columns in the last shape
// asked for (-1: the shape lacks the column).
type columnsAt struct {
	shape *Shape
	pos   []int
}

func (at *columnsAt) of(shape *Shape, cols []string) []int {
	if shape != at.shape || at.pos == nil {
		at.shape = shape
		at.pos = make([]int, len(cols))
		for i, c := range cols {
			at.pos[i] = shape.Index(c)
		}
	}
	return at.pos
}

// rowImage is a row as an item holds it: a change's Row or Values,
// or a map merged from several changes' rows.
type rowImage struct {
	m     map[string]any
	v     []any  // by position in shape (see Change.Values)
	shape *Shape // of m or v; nil when unknown or merged
}

// rowOf is a change's row.
func rowOf(c *Change) rowImage { return rowImage{m: c.Row, v: c.Values, shape: c.Shape} }

func (f rowImage) isNil() bool { return f.m == nil && f.v == nil }

func (f rowImage) get(name string) (any, bool) {
	if f.v != nil {
		if i := f.shape.Index(name); i >= 0 {
			return f.v[i], true
		}
		return nil, false
	}
	v, ok := f.m[name]
	return v, ok
}

func (f rowImage) has(name string) bool {
	if f.v != nil {
		return f.shape.Index(name) >= 0
	}
	_, ok := f.m[name]
	return ok
}

func (f rowImage) len() int {
	if f.v != nil {
		return len(f.v)
	}
	return len(f.m)
}

// all yields the fields and their values, each once.
func (f rowImage) all() iter.Seq2[string, any] {
	return func(yield func(string, any) bool) {
		if f.v != nil {
			for i, v := range f.v {
				if !yield(f.shape.Names[i], v) {
					return
				}
			}
			return
		}
		for n, v := range f.m {
			if !yield(n, v) {
				return
			}
		}
	}
}

// items returns every item of the write, upserts first.
func (w *write) items() []*item {
	return append(append(make([]*item, 0, len(w.upserts)+len(w.deletes)), w.upserts...), w.deletes...)
}

// count moves an item's batch counters: +1 when it is written, -1 when it
// is taken back (dead-lettered).
func (it *item) count(d int) {
	if it.c.Op == OpUpsert {
		it.b.Upserted += d
	} else {
		it.b.Deleted += d
	}
}

// plan collapses the changes of all batches into one write per table, the
// last change per key winning (with a version column: the newest version,
// the later offset on a tie), and counts upserted, deleted and skipped per
// batch. Keys are the same when the database holds them to be the same row
// (see KeyEquality; q answers the questions the dialect cannot), so the
// outcome is that of applying the records one by one in offset order even
// under a case-insensitive collation. Tables are returned sorted by name,
// rows by key identity, so concurrent writers lock in the same order. Dead
// letters found while planning (a missing key) replace those of an earlier
// attempt.
func (s *Sink) plan(ctx context.Context, q Querier, batches []*PartitionBatch, tables map[string]*Table) ([]*write, error) {
	accs := map[string]*planAcc{}
	var items slab[item]
	var keys slab[any]
	for _, b := range batches {
		b.Upserted, b.Deleted, b.Skipped = 0, 0, 0
		b.DeadLetters = b.DeadLetters[:b.decodeDead]
	}
	for _, b := range batches {
		for i := range b.changes {
			c := &b.changes[i]
			if c.Op == OpSkip {
				b.Skipped++
				continue
			}
			a := accs[c.table]
			if a == nil {
				t := tables[c.table]
				n := len(b.changes)
				a = &planAcc{t: t, rule: c.rule, cols: map[string]bool{}, slot: make(map[string]int32, n), last: make([]*item, 0, n), kids: make([]string, 0, n)}
				if c.rule.Mode != "append" {
					a.keys = keyColumns(c.rule, t)
				}
				accs[c.table] = a
			}
			if c.rule.Mode == "append" {
				if c.Op != OpUpsert {
					b.Skipped++ // a tombstone has nothing to append
					continue
				}
				a.see(rowOf(&c.Change))
				it := items.one()
				*it = item{b: b, c: c, row: rowOf(&c.Change)}
				a.append = append(a.append, it)
				continue
			}
			kv, err := a.keyValues(c, keys.n(len(a.keys)))
			if err != nil && c.rule.Mode == "cdc" && c.Op == OpDelete && c.rec.Value == nil {
				// A CDC tombstone follows its key's d, which deleted the row
				// by its before image; when the rule's key is wider than the
				// record key the tombstone cannot name the row, on every
				// delete: it is skipped as it was before tombstones deleted,
				// not a dead letter per delete (or, under on_error: fail, a
				// halt no fix of the data could lift).
				b.Skipped++
				continue
			}
			if err != nil {
				if c.rule.OnError == "fail" {
					// The partition halts before it (Commit ends the batch
					// there); it was dead-lettered whatever the rule said.
					return nil, &haltError{b: b, err: recordError(c.rec, err)}
				}
				// Not decodable into a key: a dead letter like any bad record.
				b.DeadLetters = append(b.DeadLetters, DeadLetter{Record: c.rec, Err: err})
				continue
			}
			it := items.one()
			*it = item{b: b, c: c, key: kv}
			a.items = append(a.items, it)
		}
	}
	names := make([]string, 0, len(accs))
	for n := range accs {
		names = append(names, n)
	}
	sort.Strings(names)
	var writes []*write
	for _, n := range names {
		a := accs[n]
		if a.rule.Mode == "append" {
			// One write per shape here too: a row inserts the columns it
			// carries, the others take their defaults, wherever the cut.
			for _, group := range a.shapes(a.append) {
				w := &write{TableWrite: &TableWrite{Table: a.t, Append: true, Version: a.rule.Version, Part: len(writes)}, upserts: group}
				w.Columns = a.columns(group[0].row)
				writes = append(writes, w.fill())
			}
			continue
		}
		if err := s.collapse(ctx, q, a); err != nil {
			return nil, err
		}
		writes = append(writes, a.writes()...)
	}
	return writes, nil
}

// fill sets the write's rows from its items and counts them.
func (w *write) fill() *write {
	full := w.sub(w.items())
	w.Upserts, w.Deletes, w.DeleteVersions = full.Upserts, full.Deletes, full.DeleteVersions
	for _, it := range w.items() {
		it.count(+1)
	}
	return w
}

// columns are the table's columns (in table order: stable SQL text) that
// row carries, or, for row nil, that any row of the table's changes
// carried; key columns always.
func (a *planAcc) columns(row rowImage) []string {
	var out []string
	for _, c := range a.t.Columns {
		keep := a.cols[c.Name]
		if !row.isNil() {
			keep = row.has(c.Name)
		}
		if keep || slices.Contains(a.keys, c.Name) {
			out = append(out, c.Name)
		}
	}
	return out
}

// writes turns a collapsed table into its writes. A record sets the
// columns it carries and no other (merge of present fields), so upserts
// are written in groups of one shape: a row lacking a field another row
// of the batch has no longer sets that column to NULL (the outcome
// depended on where batches were cut). Deletes come first when an upsert
// follows a delete of its key; the changes of a key written one record at
// a time (see collapse) follow in layers, the n-th change of each such
// key in the n-th write. Otherwise, and with one shape (the common case),
// it is one write as ever. Keys are distinct rows, so the order of writes
// between different keys does not matter.
func (a *planAcc) writes() []*write {
	var ups, dels []*item
	var layers [][]*item // layers[i]: the (i+2)-th change of keys written one at a time
	pre := false
	for _, slot := range sortedKeys(a.kids) {
		it := a.last[slot]
		if a.serial != nil && a.serial[slot] != nil {
			ups, dels, layers = spread(a.serial[slot], it, ups, dels, layers)
			continue
		}
		if it.c.Op != OpUpsert {
			dels = append(dels, it)
			continue
		}
		if it.pre != nil {
			it.pre.b.Skipped-- // applied after all, before the upsert
			dels = append(dels, it.pre)
			pre = true
		}
		ups = append(ups, it)
	}
	newWrite := func(part int) *write {
		return &write{TableWrite: &TableWrite{Table: a.t, Keys: a.keys, Version: a.rule.Version, Part: part}, all: a.items}
	}
	shapes := a.shapes(ups)
	var out []*write
	if !pre && len(shapes) <= 1 && len(layers) == 0 {
		w := newWrite(0)
		w.upserts, w.deletes = ups, dels
		if len(ups) > 0 {
			w.Columns = a.columns(ups[0].row)
		} else {
			w.Columns = a.keys
		}
		if len(ups)+len(dels) == 0 {
			return nil
		}
		return []*write{w.fill()}
	}
	// A layer's deletes, then its upserts by shape: in the first, the
	// deletes an upsert follows.
	layer := func(ds, us []*item) {
		if len(ds) > 0 {
			w := newWrite(len(out))
			w.deletes, w.Columns = ds, a.keys
			out = append(out, w.fill())
		}
		for _, group := range a.shapes(us) {
			w := newWrite(len(out))
			w.upserts, w.Columns = group, a.columns(group[0].row)
			out = append(out, w.fill())
		}
	}
	layer(dels, ups)
	for _, l := range layers {
		var ds, us []*item
		for _, one := range l {
			if one.c.Op == OpUpsert {
				us = append(us, one)
			} else {
				ds = append(ds, one)
			}
		}
		layer(ds, us)
	}
	return out
}

// spread puts the changes of a key written one record at a time (last
// the one collapse kept) in the writes: the first with the other keys',
// each later one in a layer of its own.
func spread(chain []*item, last *item, ups, dels []*item, layers [][]*item) ([]*item, []*item, [][]*item) {
	for i, one := range chain {
		if one != last {
			one.b.Skipped-- // written after all
		}
		// Alone: its own record's fields, nothing to fall back on if
		// refused (the change before it is applied already).
		one.row, one.merged, one.pre, one.prev, one.alone = rowImage{}, false, nil, nil, true
		if one.c.Op == OpUpsert {
			one.row = rowOf(&one.c.Change)
		}
		switch {
		case i == 0 && one.c.Op == OpUpsert:
			ups = append(ups, one)
		case i == 0:
			dels = append(dels, one)
		default:
			if len(layers) < i {
				layers = append(layers, nil)
			}
			layers[i-1] = append(layers[i-1], one)
		}
	}
	return ups, dels, layers
}

// shapes groups upserts by the table columns their rows carry, in order
// of first appearance. One shape costs a map lookup per field, no
// allocation.
func (a *planAcc) shapes(ups []*item) [][]*item {
	if len(ups) == 0 {
		return nil
	}
	first, shape := ups[0].row, ups[0].row.shape
	n := -1 // first's width, counted when a row's fields differ from first's
	for _, it := range ups[1:] {
		if shape != nil && it.row.shape == shape || sameFields(it.row, first) {
			continue // the same fields, so the same columns
		}
		if n < 0 {
			n = a.width(first)
		}
		if !a.sameColumns(it.row, first, n) {
			return a.groupShapes(ups)
		}
	}
	return [][]*item{ups}
}

// sameFields reports whether two rows have the same fields: the common
// case, one lookup per field.
func sameFields(row, first rowImage) bool {
	if row.len() != first.len() {
		return false
	}
	for f := range row.all() {
		if !first.has(f) {
			return false
		}
	}
	return true
}

// sameColumns reports whether row carries the table columns first does,
// n of them.
func (a *planAcc) sameColumns(row, first rowImage, n int) bool {
	if a.width(row) != n {
		return false
	}
	for f := range row.all() {
		if a.cols[f] {
			if !first.has(f) {
				return false
			}
		}
	}
	return true
}

// groupShapes groups upserts whose rows carry different columns.
func (a *planAcc) groupShapes(ups []*item) [][]*item {
	index := map[string]int{}
	var out [][]*item
	for _, it := range ups {
		sig := strings.Join(a.columns(it.row), "\x00")
		i, ok := index[sig]
		if !ok {
			i = len(out)
			index[sig] = i
			out = append(out, nil)
		}
		out[i] = append(out[i], it)
	}
	return out
}

// width counts a row's fields that are table columns.
func (a *planAcc) width(row rowImage) int {
	n := 0
	for f := range row.all() {
		if a.cols[f] {
			n++
		}
	}
	return n
}

// collapse keeps the last change per key of a table, in the order the
// changes came (offset order within a partition), keys being compared as
// the database compares them.
//
// Under a version guard the last change alone is what one by one leaves
// only while the key's changes all carry versions (the guard then orders
// them as the batch does). The table alone knows whether a guarded change
// applies, so a key's changes are all written one record at a time, in
// order, each guarded (planAcc.serial), when:
//   - a change with a version follows one without (which passed the
//     guard: a delete without one removed the row, an upsert without one
//     wrote its fields and left the stored version, or NULL), except an
//     upsert right after a delete without a version: the delete is
//     applied first (pre), unguarded, as one by one;
//   - an upsert follows a newer delete: one by one the delete may have
//     removed the row, and the older upsert then inserts it again;
//   - upserts of different fields merge: one older than the stored row
//     sets nothing.
func (s *Sink) collapse(ctx context.Context, q Querier, a *planAcc) error {
	tuples := make([][]any, len(a.items))
	for i, it := range a.items {
		tuples[i] = it.key
	}
	ids, err := s.keyIdentities(ctx, q, a.t, a.keys, tuples)
	if err != nil {
		return err
	}
	vfam := KindUnknown // versions compare as their column does
	if col := a.t.Column(a.rule.Version); col != nil {
		vfam = columnFamily(col.Type)
	}
	for i, it := range a.items {
		b, c, kid := it.b, it.c, ids[i]
		slot, seen := a.slot[kid]
		guard := c.rule.Version != ""
		if seen {
			prev := a.last[slot]
			it.slot = slot
			older := guard && c.Version != nil && prev.c.Version != nil && compareVersionsAs(vfam, c.Version, prev.c.Version) < 0
			if guard && c.Version != nil {
				afterLoose := prev.loose && (c.Op != OpUpsert || prev.c.Op == OpUpsert || prev.c.Version != nil)
				if afterLoose || older && c.Op == OpUpsert && prev.c.Op != OpUpsert {
					a.serialize(slot)
				}
			}
			it.loose = guard && (c.Version == nil || prev.loose)
			if older {
				// Older than what the batch already holds for the key:
				// it cannot win, in the batch or in the table (after a
				// delete it may: the key is written one record at a time,
				// above). A change without a version supersedes, as the
				// SQL guard lets it through: IS NULL OR stored <= new.
				b.Skipped++
				prev.skips = true
				continue
			}
			prev.b.Skipped++ // superseded inside the batch
			it.prev, it.skips = prev, prev.skips
			if c.Op == OpUpsert {
				switch prev.c.Op {
				case OpUpsert:
					it.row, it.merged = mergeRows(prev, c)
					it.merged = it.merged || prev.merged
					it.pre = prev.pre
					if guard && it.merged {
						a.serialize(slot)
					}
				default: // after a delete: a fresh row, as one by one
					it.row, it.pre = rowOf(&c.Change), prev
				}
			}
		} else {
			slot = int32(len(a.last))
			a.slot[kid] = slot
			it.slot, it.loose = slot, guard && c.Version == nil
			a.last = append(a.last, nil)
			a.kids = append(a.kids, kid)
			if c.Op == OpUpsert {
				it.row = rowOf(&c.Change)
			}
		}
		a.last[slot] = it
		if c.Op == OpUpsert {
			a.see(rowOf(&c.Change))
		}
	}
	if a.serial != nil {
		for _, it := range a.items {
			if chain, ok := a.serial[it.slot]; ok {
				a.serial[it.slot] = append(chain, it)
			}
		}
	}
	return nil
}

// serialize has the key of slot written one record at a time (see
// collapse); its changes are gathered once all are seen.
func (a *planAcc) serialize(slot int32) {
	if a.serial == nil {
		a.serial = map[int32][]*item{}
	}
	a.serial[slot] = nil
}

// mergeRows is next's row over prev's: next's itself when it carries
// every field of prev's (the common case, without allocating: known
// without a look when both have the same shape), else a new map, which has
// no shape.
func mergeRows(prevIt *item, nextCh *change) (rowImage, bool) {
	prev, next := prevIt.row, rowOf(&nextCh.Change)
	if next.shape != nil && prev.shape == next.shape {
		return next, false
	}
	covers := next.len() >= prev.len()
	if covers {
		for f := range prev.all() {
			if !next.has(f) {
				covers = false
				break
			}
		}
	}
	if covers {
		return next, false
	}
	row := make(map[string]any, prev.len()+next.len())
	for f, v := range prev.all() {
		row[f] = v
	}
	for f, v := range next.all() {
		row[f] = v
	}
	return rowImage{m: row}, true
}

// planAcc gathers one table's changes in plan.
type planAcc struct {
	t    *Table
	rule *TableRule
	// cols says, for every field name seen in a row, whether the table
	// has that column: the rows written carry the columns seen.
	cols map[string]bool
	// seen is the shape of the last row see noted: a row of that shape
	// has no field to note.
	seen *Shape
	// keys are the key columns (not for append tables); items the keyed
	// changes in the order they came, before collapsing.
	keys   []string
	keysAt columnsAt // keys' positions in the last shape of a row by position
	items  []*item
	// slot numbers the keys' identities in the order they came; last
	// and kids are by slot: the key's last change, its identity.
	slot   map[string]int32
	last   []*item
	kids   []string
	append []*item
	// serial holds, by slot, every change of the keys written one record
	// at a time, in order (see collapse); nil when there is none.
	serial map[int32][]*item
}

// see notes the fields of a row: one map lookup per field once the
// names are known, not a search of the table's columns per field.
func (a *planAcc) see(row rowImage) {
	if row.shape != nil && row.shape == a.seen {
		return
	}
	a.seen = row.shape
	for name := range row.all() {
		if _, ok := a.cols[name]; !ok {
			a.cols[name] = a.t.Column(name) != nil
		}
	}
}

// sortedKeys returns the slots of key identities kids in the order of the
// identities (byte order, as slices.Sort orders them: the lock order).
// It sorts the identities' first eight bytes as numbers, and slots, not
// the strings themselves: fewer string comparisons, and no pointers
// moved (a write barrier each while the collector runs).
func sortedKeys(kids []string) []int32 {
	type rank struct {
		prefix uint64 // the first eight bytes, big-endian, zero-padded
		slot   int32
	}
	ranks := make([]rank, len(kids))
	for i, k := range kids {
		var b [8]byte
		copy(b[:], k)
		ranks[i] = rank{binary.BigEndian.Uint64(b[:]), int32(i)}
	}
	slices.SortFunc(ranks, func(x, y rank) int {
		if x.prefix != y.prefix {
			return cmp.Compare(x.prefix, y.prefix)
		}
		return strings.Compare(kids[x.slot], kids[y.slot])
	})
	out := make([]int32, len(ranks))
	for i, r := range ranks {
		out[i] = r.slot
	}
	return out
}

// keyColumns are the rule's key, or the table's primary key.
func keyColumns(rule *TableRule, t *Table) []string {
	if len(rule.Key) > 0 {
		return rule.Key
	}
	return t.Key
}

// keyValues takes the table's key columns from the decoded key, or from
// the row, into vals (len(a.keys) long).
func (a *planAcc) keyValues(c *change, vals []any) ([]any, error) {
	return keyValues(c, a.keys, &a.keysAt, vals)
}

// keyValues takes the key columns from the decoded key, or from the row,
// into vals (len(keys) long); at, if not nil, remembers the keys'
// positions in a row by position.
func keyValues(c *change, keys []string, at *columnsAt, vals []any) ([]any, error) {
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: table has no primary key and the rule names no key columns", errKeyMissing)
	}
	var pos []int
	if c.Values != nil && c.rule.KeyFrom != "record_key" && at != nil {
		pos = at.of(c.Shape, keys)
	}
	for i, k := range keys {
		v, ok := c.Key[k]
		if !ok && c.rule.KeyFrom != "record_key" {
			if pos != nil {
				if p := pos[i]; p >= 0 {
					v, ok = c.Values[p], true
				}
			} else {
				v, ok = c.Field(k)
			}
		}
		if !ok || v == nil {
			return nil, fmt.Errorf("%w: key column %q is absent or null", errKeyMissing, k)
		}
		vals[i] = v
	}
	return vals, nil
}

// compareVersionsAs orders two versions as a column of family fam
// compares them after the write's conversion: in a numeric column "10"
// and 9 are numbers (compared as text, "10" < "9" let the older change
// win inside a batch, where one by one the guard kept the newer), in a
// text column numbers are their decimal text.
func compareVersionsAs(fam Kind, a, b any) int {
	switch fam {
	case KindInt64, KindDecimal:
		if x, ok := numberOrText(a); ok {
			if y, ok := numberOrText(b); ok {
				return x.Cmp(y)
			}
		}
	case KindText:
		if x, ok := versionText(a); ok {
			if y, ok := versionText(b); ok {
				return strings.Compare(x, y)
			}
		}
	}
	return compareVersions(a, b)
}

// numberOrText reads a number, or decimal text, exactly.
func numberOrText(v any) (*big.Rat, bool) {
	if s, ok := v.(string); ok {
		return ratOf(strings.TrimSpace(s))
	}
	return number(v)
}

// versionText is a version as a text column holds it.
func versionText(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case Decimal:
		return string(x), true
	case int64:
		return strconv.FormatInt(x, 10), true
	}
	return "", false
}

// compareVersions orders two version values: -1, 0 or +1. nil (unknown)
// orders before everything; numbers compare exactly, times as instants,
// anything else as text.
func compareVersions(a, b any) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return -1
	case b == nil:
		return 1
	}
	if x, ok := number(a); ok {
		if y, ok := number(b); ok {
			return x.Cmp(y)
		}
	}
	if x, ok := a.(time.Time); ok {
		if y, ok := b.(time.Time); ok {
			return x.Compare(y)
		}
	}
	return strings.Compare(fmt.Sprint(a), fmt.Sprint(b))
}

// number reads an integer, float or decimal version exactly.
func number(v any) (*big.Rat, bool) {
	switch x := v.(type) {
	case int64:
		return new(big.Rat).SetInt64(x), true
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, false
		}
		return new(big.Rat).SetFloat64(x), true
	case Decimal:
		return ratOf(string(x))
	}
	return nil, false
}

// ratOf parses decimal text exactly, refusing exponents beyond ±1000:
// big.Rat would expand "1e999999999" digit by digit, and one such value in
// a record must not stall the sink.
func ratOf(s string) (*big.Rat, bool) {
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		exp, err := strconv.Atoi(strings.TrimPrefix(s[i+1:], "+"))
		if err != nil || exp < -1000 || exp > 1000 {
			return nil, false
		}
	}
	return new(big.Rat).SetString(s)
}

// slab hands out values from chunks allocated together: a flight's items
// and keys live and die together, so one allocation per chunk replaces
// one per record. A chunk is never grown (that would move what was handed
// out); a full one is left to its holders and a new one started.
type slab[T any] struct{ chunk []T }

const slabChunk = 512

// one returns a zero value.
func (s *slab[T]) one() *T {
	if len(s.chunk) == cap(s.chunk) {
		s.chunk = make([]T, 0, slabChunk)
	}
	s.chunk = s.chunk[:len(s.chunk)+1]
	return &s.chunk[len(s.chunk)-1]
}

// n returns n zero values, a slice whose capacity is n: appending to it
// cannot reach the next one handed out.
func (s *slab[T]) n(n int) []T {
	if n > slabChunk/8 {
		return make([]T, n)
	}
	if cap(s.chunk)-len(s.chunk) < n {
		s.chunk = make([]T, 0, slabChunk)
	}
	start := len(s.chunk)
	s.chunk = s.chunk[:start+n]
	return s.chunk[start : start+n : start+n]
}
