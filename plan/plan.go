// Package plan works out what exactly run would do with the topics a
// pipeline reads, without writing anything: per topic the table and the
// DDL create or evolve would run for the first records each partition
// would be read from, and per partition where it starts (as the source
// decides, kafka.Admin.Starts) or why it halts when assigned. The command
// prints the plan.
package plan

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/kafka"
)

// Plan is the plan of the selected partitions, by topic.
type Plan struct {
	Topics     []Topic
	Partitions int
	// Problems counts tables missing with create off and partitions
	// that halt.
	Problems int
}

// Topic is one topic's table plan and partitions.
type Topic struct {
	Name       string
	Table      *exactly.TablePlan
	Partitions []Partition
	// Missing: the table does not exist and create is off.
	Missing bool
}

// Partition is where one partition starts, or why it halts.
type Partition struct {
	TP     exactly.TP
	Start  int64
	From   string // why it starts there
	Bounds exactly.Bounds
	Halt   string // why run halts it at assignment; "" when it does not
}

// Make plans the partitions tps of the pipeline: it reads the ledger, the
// topics' ids and bounds, and up to sample records per partition from
// where it starts.
func Make(ctx context.Context, cfg *exactly.Config, sink *exactly.Sink, adm *kafka.Client, tps []exactly.TP, sample int) (*Plan, error) {
	starts, err := adm.Starts(ctx, sink, tps)
	if err != nil {
		return nil, err
	}
	var topicIDs map[string]string
	if len(starts.Stored) > 0 {
		if topicIDs, err = adm.TopicIDs(ctx, exactly.Topics(tps)); err != nil {
			return nil, err
		}
	}
	start := map[exactly.TP]int64{}
	for _, tp := range tps {
		start[tp] = starts.Start(tp)
	}
	bounds := map[exactly.TP]exactly.Bounds{}
	var recs map[exactly.TP][]*exactly.Record
	if len(tps) > 0 {
		if bounds, err = adm.AllBounds(ctx, tps); err != nil {
			return nil, err
		}
		if sample > 0 {
			if recs, err = adm.Sample(ctx, start, sample, 5*time.Second); err != nil {
				return nil, err
			}
		}
	}
	p := &Plan{Partitions: len(tps)}
	for _, name := range exactly.Topics(tps) {
		t := Topic{Name: name}
		var sampled []*exactly.Record
		for _, tp := range tps {
			if tp.Topic == name {
				sampled = append(sampled, recs[tp]...)
			}
		}
		if t.Table, err = sink.PlanTable(ctx, name, sampled); err != nil {
			return nil, err
		}
		if t.Missing = t.Table.Change.Empty() && !t.Table.Change.Exists && !t.Table.Rule.Create; t.Missing {
			p.Problems++
		}
		for _, tp := range tps {
			if tp.Topic != name {
				continue
			}
			pp := Partition{TP: tp, Start: start[tp], From: from(cfg, starts, tp), Bounds: bounds[tp]}
			pp.Halt = Halt(tp, start[tp], bounds[tp], starts.Stored[tp].TopicID, topicIDs[tp.Topic])
			if pp.Halt != "" {
				p.Problems++
			}
			t.Partitions = append(t.Partitions, pp)
		}
		p.Topics = append(p.Topics, t)
	}
	return p, nil
}

// from says why a partition starts where it does.
func from(cfg *exactly.Config, s *kafka.Starts, tp exactly.TP) string {
	if _, ok := s.Stored[tp]; ok {
		return "ledger"
	}
	f := "start_from " + cfg.Source.StartFrom + ", no ledger row yet"
	switch {
	case s.First != nil:
		f = "created after the pipeline's first start (" + s.First.StartedAt.Format(time.RFC3339) + "): its beginning"
	case s.OtherRows:
		f = "not in the ledger, which has rows of other partitions: its beginning"
	}
	if slices.Contains(s.Uncommitted, tp) {
		f += "; the group has no offset for it: log start"
	}
	return f
}

// Halt says why run halts a partition with an offsets row at assignment,
// as the source does: a topic of another id than the row was seeded in, a
// next_offset beyond the log end, or below the log start (records deleted
// before they were applied). "" when it does not.
func Halt(tp exactly.TP, next int64, b exactly.Bounds, seededIn, now string) string {
	switch {
	case seededIn != "" && now != "" && seededIn != now:
		return fmt.Sprintf("topic recreated: %s has topic id %s, the offsets row was seeded in %s; next_offset %d (lag %d)", tp, now, seededIn, next, b.End-next)
	case next > b.End:
		return fmt.Sprintf("offsets beyond the log end: next_offset %d, the log ends at %d (lag %d)", next, b.End, b.End-next)
	case next < b.Start:
		return fmt.Sprintf("offsets %d..%d were deleted before they were applied (the log starts at %d)", next, b.Start-1, b.Start)
	}
	return ""
}
