package exactly

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// PartitionBatch is the records of one partition that one transaction
// applies: from From (the stored next_offset, inclusive) to To (the last
// record's offset + 1, exclusive). Offsets inside may be sparse.
type PartitionBatch struct {
	Topic     string
	Partition int32
	From      int64
	Records   []*Record

	// Filled by the sink while preparing the transaction.
	To          int64
	MinOffset   int64
	MaxOffset   int64
	Hash        string
	Upserted    int
	Deleted     int
	Skipped     int
	DeadLetters []DeadLetter
	BatchID     string
	StartedAt   time.Time
	// Halt, when set, says the partition stops at Halt.Offset (on_error:
	// fail): the batch holds only the records before it.
	Halt *RecordError
	// Notes say what create/evolve did to tables before this batch was
	// applied; they go to the ledger row's notes column.
	Notes []string

	changes []change
}

// DeadLetter is a record that could not be applied, and why.
type DeadLetter struct {
	Record *Record
	Err    error
}

// change is one decoded record bound for a table.
type change struct {
	rec   *Record
	rule  *TableRule
	table string
	Change
}

// errKeyMissing marks a record whose key columns are absent.
var errKeyMissing = errors.New("key missing")

// prepare decodes the batch's records, routes them to tables and fills the
// range, hash and dead letters. Records whose decoding fails are dead
// letters, or halt the partition when their rule says on_error: fail.
func (s *Sink) prepare(b *PartitionBatch) {
	b.StartedAt = time.Now().UTC()
	b.changes = b.changes[:0]
	b.DeadLetters = nil
	b.Halt = nil
	b.Notes = nil
	for i, rec := range b.Records {
		rule, table, ok := s.cfg.Route(rec.Topic)
		var ch Change
		var err error
		if !ok {
			err = fmt.Errorf("no table rule matches topic %q", rec.Topic)
		} else {
			ch, err = s.decoder(rule).Decode(rec)
			if err == nil {
				mapColumns(&rule.Columns, rule.Key, &ch)
			}
		}
		if err != nil {
			if rule != nil && rule.OnError == "fail" {
				b.Halt = &RecordError{Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset, Err: err}
				b.Records = b.Records[:i]
				break
			}
			b.DeadLetters = append(b.DeadLetters, DeadLetter{Record: rec, Err: err})
			continue
		}
		b.changes = append(b.changes, change{rec: rec, rule: rule, table: table, Change: ch})
	}
	b.To = b.From
	b.MinOffset, b.MaxOffset = -1, -1
	if n := len(b.Records); n > 0 {
		b.MinOffset, b.MaxOffset = b.Records[0].Offset, b.Records[n-1].Offset
		b.To = b.MaxOffset + 1
	}
	b.Hash = HashRecords(b.Records)
}

// plan collapses the changes of all batches into one TableWrite per table,
// the last change per key winning, and counts upserted, deleted and
// skipped per batch. Tables are returned sorted by name, rows by key, so
// concurrent writers lock in the same order.
func (s *Sink) plan(batches []*PartitionBatch, tables map[string]*Table) ([]*TableWrite, error) {
	type slot struct {
		b   *PartitionBatch
		c   *change
		key []any
		kid string
	}
	type acc struct {
		t      *Table
		rule   *TableRule
		cols   map[string]bool
		order  []string
		last   map[string]*slot
		append []*slot
	}
	accs := map[string]*acc{}
	for _, b := range batches {
		b.Upserted, b.Deleted, b.Skipped = 0, 0, 0
	}
	for _, b := range batches {
		for i := range b.changes {
			c := &b.changes[i]
			if c.Op == OpSkip {
				b.Skipped++
				continue
			}
			t := tables[c.table]
			a := accs[c.table]
			if a == nil {
				a = &acc{t: t, rule: c.rule, cols: map[string]bool{}, last: map[string]*slot{}}
				accs[c.table] = a
			}
			if c.rule.Mode == "append" {
				if c.Op != OpUpsert {
					b.Skipped++ // a tombstone has nothing to append
					continue
				}
				for name := range c.Row {
					if t.Column(name) != nil {
						a.cols[name] = true
					}
				}
				a.append = append(a.append, &slot{b: b, c: c})
				continue
			}
			keys := keyColumns(c.rule, t)
			kv, err := keyValues(c, keys)
			if err != nil {
				// Not decodable into a key: a dead letter like any bad record.
				b.DeadLetters = append(b.DeadLetters, DeadLetter{Record: c.rec, Err: err})
				continue
			}
			kid := keyID(kv)
			if prev := a.last[kid]; prev != nil {
				prev.b.Skipped++ // superseded inside the batch
			} else {
				a.order = append(a.order, kid)
			}
			a.last[kid] = &slot{b: b, c: c, key: kv, kid: kid}
			if c.Op == OpUpsert {
				for name := range c.Row {
					if t.Column(name) != nil {
						a.cols[name] = true
					}
				}
			}
		}
	}
	names := make([]string, 0, len(accs))
	for n := range accs {
		names = append(names, n)
	}
	sort.Strings(names)
	var writes []*TableWrite
	for _, n := range names {
		a := accs[n]
		w := &TableWrite{Table: a.t, Append: a.rule.Mode == "append", Version: a.rule.Version}
		if !w.Append {
			w.Keys = keyColumns(a.rule, a.t)
			for _, k := range w.Keys {
				a.cols[k] = true
			}
		}
		for _, c := range a.t.Columns { // table order: stable SQL text
			if a.cols[c.Name] {
				w.Columns = append(w.Columns, c.Name)
			}
		}
		row := func(c *change) []any {
			vals := make([]any, len(w.Columns))
			for i, col := range w.Columns {
				vals[i] = c.Row[col]
			}
			return vals
		}
		if w.Append {
			for _, sl := range a.append {
				w.Upserts = append(w.Upserts, row(sl.c))
				sl.b.Upserted++
			}
		} else {
			sort.Strings(a.order)
			for _, kid := range a.order {
				sl := a.last[kid]
				switch sl.c.Op {
				case OpUpsert:
					for i, k := range w.Keys { // the key wins over a differing value field
						sl.c.Row[k] = sl.key[i]
					}
					w.Upserts = append(w.Upserts, row(sl.c))
					sl.b.Upserted++
				case OpDelete:
					w.Deletes = append(w.Deletes, sl.key)
					if w.Version != "" {
						w.DeleteVersions = append(w.DeleteVersions, sl.c.Version)
					}
					sl.b.Deleted++
				}
			}
		}
		if len(w.Upserts)+len(w.Deletes) > 0 {
			writes = append(writes, w)
		}
	}
	return writes, nil
}

// keyColumns are the rule's key, or the table's primary key.
func keyColumns(rule *TableRule, t *Table) []string {
	if len(rule.Key) > 0 {
		return rule.Key
	}
	return t.Key
}

// keyValues takes the key columns from the decoded key, or from the row.
func keyValues(c *change, keys []string) ([]any, error) {
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: table has no primary key and the rule names no key columns", errKeyMissing)
	}
	vals := make([]any, len(keys))
	for i, k := range keys {
		v, ok := c.Key[k]
		if !ok && c.rule.KeyFrom != "record_key" {
			v, ok = c.Row[k]
		}
		if !ok || v == nil {
			return nil, fmt.Errorf("%w: key column %q is absent or null", errKeyMissing, k)
		}
		vals[i] = v
	}
	return vals, nil
}

// keyID is a collapse identity for key values.
func keyID(vals []any) string {
	var sb strings.Builder
	for _, v := range vals {
		fmt.Fprintf(&sb, "%v\x00", v)
	}
	return sb.String()
}
