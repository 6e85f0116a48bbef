package exactly

import (
	"context"
	"fmt"
	"time"
)

// prepare decodes the batch's records, routes them to tables and fills the
// range, hash and dead letters. Records whose decoding fails are dead
// letters, or halt the partition when their rule says on_error: fail.
// Decoders that fetch first (Preparer) do so here; their error fails the
// batch, so an unreachable schema registry never dead-letters good records.
func (s *Sink) prepare(ctx context.Context, b *PartitionBatch) error {
	b.StartedAt = time.Now().UTC()
	b.changes = b.changes[:0]
	b.DeadLetters = nil
	b.Halt = nil
	b.Notes = nil
	if err := s.prefetch(ctx, b.Records); err != nil {
		b.fillRange() // for the failed ledger row
		return err
	}
	// A batch is one partition: one topic, one rule, one decoder.
	rule, table, refused := s.cfg.Resolve(b.Topic)
	ok := rule != nil
	var dec Decoder
	if ok {
		dec = s.decoder(rule)
	}
	if cap(b.changes) < len(b.Records) {
		b.changes = make([]change, 0, len(b.Records))
	}
	for i, rec := range b.Records {
		var ch Change
		var err error
		switch {
		case !ok:
			err = fmt.Errorf("no table rule matches topic %q", rec.Topic)
		case refused != nil:
			// Never written: the name would reach the ledger or
			// another schema. Reported per the rule's on_error.
			err = refused
		default:
			ch, err = dec.Decode(rec)
			if err == nil {
				mapColumns(&rule.Columns, rule.Key, &ch)
			}
		}
		if err != nil {
			if rule != nil && rule.OnError == "fail" {
				b.Halt = recordError(rec, err)
				b.Records = b.Records[:i]
				break
			}
			b.DeadLetters = append(b.DeadLetters, DeadLetter{Record: rec, Err: err})
			continue
		}
		b.changes = append(b.changes, change{rec: rec, rule: rule, table: table, Change: ch})
	}
	b.decodeDead = len(b.DeadLetters)
	b.fillRange()
	return nil
}

// prefetch lets decoders that implement Preparer fetch what the records
// need, once per rule.
func (s *Sink) prefetch(ctx context.Context, recs []*Record) error {
	var byRule map[*TableRule][]*Record
	var (
		lastTopic string
		rule      *TableRule
		prep      bool
	)
	for i, rec := range recs {
		if i == 0 || rec.Topic != lastTopic { // a batch is one topic: route once
			lastTopic = rec.Topic
			var ok bool
			rule, _, ok = s.cfg.Route(rec.Topic)
			prep = false
			if ok {
				_, prep = s.decoder(rule).(Preparer)
			}
		}
		if !prep {
			continue
		}
		if byRule == nil {
			byRule = map[*TableRule][]*Record{}
		}
		byRule[rule] = append(byRule[rule], rec)
	}
	for rule, rs := range byRule {
		if err := s.decoder(rule).(Preparer).Prepare(ctx, rs); err != nil {
			return fmt.Errorf("preparing to decode %s: %w", rule.Topics, err)
		}
	}
	return nil
}

func (s *Sink) decoder(rule *TableRule) Decoder {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.decs[rule]
	if d == nil {
		d, _ = s.decode(rule) // validated in NewSink
		s.decs[rule] = d
	}
	return d
}

// mapColumns applies a rule's column mapping to a decoded change, in
// place: fields not in include (when include is set) or in exclude are
// dropped from the row and the schema, then fields are renamed. Key
// fields are renamed too and never dropped: a key column named in key: is
// kept even when include leaves it out. Fields the table has no column
// for are dealt with later (ignored, or added by evolve).
func mapColumns(m *ColumnMapping, key []string, ch *Change) {
	if len(m.Include) == 0 && len(m.Exclude) == 0 && len(m.Rename) == 0 {
		return
	}
	keep := func(field string) bool {
		col := renamed(m, field)
		for _, k := range key {
			if k == col {
				return true
			}
		}
		for _, x := range m.Exclude {
			if x == field {
				return false
			}
		}
		if len(m.Include) == 0 {
			return true
		}
		for _, in := range m.Include {
			if in == field {
				return true
			}
		}
		return false
	}
	if ch.HasRow() {
		row := make(map[string]any, ch.NumFields())
		for f, v := range ch.Fields() {
			if keep(f) {
				put(m, row, f, v)
			}
		}
		// The decoder's shape named the fields before mapping.
		ch.Row, ch.Values, ch.Shape = row, nil, nil
	}
	if ch.Key != nil && len(m.Rename) > 0 {
		k := make(map[string]any, len(ch.Key))
		for f, v := range ch.Key {
			put(m, k, f, v)
		}
		ch.Key = k
	}
	if ch.Schema != nil {
		// The decoder's slice may be shared between records: copy.
		fields := make([]Field, 0, len(ch.Schema))
		for _, f := range ch.Schema {
			if keep(f.Name) && !shadowed(m, f.Name, ch.Schema) {
				f.Name = renamed(m, f.Name)
				fields = append(fields, f)
			}
		}
		ch.Schema = fields
	}
}

func renamed(m *ColumnMapping, field string) string {
	if c, ok := m.Rename[field]; ok && c != "" {
		return c
	}
	return field
}

// put sets field f's value under its column name. A field renamed to a
// column wins over a field of that very name (rename: {new_price: price}
// with both present writes new_price), in whichever order the map gives
// them: it was one or the other at random.
func put(m *ColumnMapping, row map[string]any, f string, v any) {
	col := renamed(m, f)
	if col == f {
		for from, to := range m.Rename {
			if to == f && from != f {
				if _, ok := row[f]; ok {
					return // the renamed field is in already
				}
			}
		}
	}
	row[col] = v
}

// shadowed reports whether schema field name is dropped because another
// field present in the schema is renamed to it.
func shadowed(m *ColumnMapping, name string, fields []Field) bool {
	if renamed(m, name) != name {
		return false
	}
	for _, f := range fields {
		if f.Name != name && renamed(m, f.Name) == name {
			return true
		}
	}
	return false
}
