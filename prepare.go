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
