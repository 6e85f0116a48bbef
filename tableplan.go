package exactly

import (
	"context"
	"errors"
	"fmt"
)

// TablePlan is what exactly plan shows for one topic.
type TablePlan struct {
	Topic   string
	Table   string
	Rule    *TableRule
	Change  *SchemaChange
	Sampled int // records decoded to work out the DDL
	// DeadLetters are the sampled records that would be dead-lettered.
	DeadLetters []string
}

// PlanTable works out, without writing, what the pipeline would do to the
// table a topic maps to: whether it exists and the DDL create or evolve
// would run for the sampled records (for example the first records the
// pipeline would read).
func (s *Sink) PlanTable(ctx context.Context, topic string, sample []*Record) (*TablePlan, error) {
	rule, table, err := s.cfg.Resolve(topic)
	if err != nil {
		return nil, err
	}
	if rule == nil {
		return nil, fmt.Errorf("no table rule matches topic %q", topic)
	}
	p := &TablePlan{Topic: topic, Table: table, Rule: rule, Sampled: len(sample)}
	t, err := s.d.Describe(ctx, s.db, table)
	if err != nil {
		return nil, fmt.Errorf("describing table %s: %w", table, err)
	}
	var changes []*Change
	var records []*Record
	names := s.newNameCheck(t, rule)
	for _, r := range sample {
		ch, err := s.decoder(rule).Decode(r)
		if err != nil {
			if re := (*RecordError)(nil); !errors.As(err, &re) {
				err = &RecordError{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Err: err}
			}
			p.DeadLetters = append(p.DeadLetters, err.Error()) // a decoder's error names its record
			continue
		}
		mapColumns(&rule.Columns, rule.Key, &ch)
		if rule.Create || rule.AddsColumns() {
			if why := names.bad(&ch); why != nil {
				p.DeadLetters = append(p.DeadLetters, (&RecordError{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Err: why}).Error())
				continue
			}
		}
		changes = append(changes, &ch)
		records = append(records, r)
	}
	p.Change = schemaChange(s.d, rule, table, t, changes)
	if w := p.Change.fold; w != nil {
		for i, c := range changes {
			if why := w.refused[c]; why != "" {
				r := records[i]
				p.DeadLetters = append(p.DeadLetters, (&RecordError{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Err: errors.New(why)}).Error())
			}
		}
	}
	return p, nil
}
