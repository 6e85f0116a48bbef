package kafka

import (
	"context"

	"github.com/exactly/exactly"
)

// seedFrom is the start_from that applies to a partition without an
// offsets row: the configured one at the pipeline's first start only.
// Once the first start is recorded (first not nil), or while the ledger
// holds offsets rows of the pipeline (made by an earlier version or by
// exactly adopt: RecordFirstStart then seeds nothing), a partition without
// a row was created since, and starts at its beginning.
func seedFrom(cfg *exactly.Config, first *exactly.PipelineRow, ledgerHasRows bool) string {
	if first != nil || ledgerHasRows {
		return "earliest"
	}
	return cfg.Source.StartFrom
}

// Starts is where partitions start when a member of the pipeline is
// assigned them, as Source.startOffsets decides, read without writing.
type Starts struct {
	// Stored are the partitions' offsets rows.
	Stored map[exactly.TP]exactly.Position
	// Seeds are the offsets partitions without a row are seeded at.
	Seeds map[exactly.TP]int64
	// Uncommitted are the partitions start_from group found no committed
	// offset for: they start at the log start.
	Uncommitted []exactly.TP
	// First is the pipeline's first start, nil before it; OtherRows says
	// the ledger holds offsets rows without one. Either makes partitions
	// without a row start at their beginning, not at start_from.
	First     *exactly.PipelineRow
	OtherRows bool
}

// Start is where the partition starts.
func (s *Starts) Start(tp exactly.TP) int64 {
	if p, ok := s.Stored[tp]; ok {
		return p.Next
	}
	return s.Seeds[tp]
}

// Starts resolves where each partition starts (see Starts) without
// writing to the sink or to Kafka: exactly plan's view of what run would
// do. A sink without ledger tables has no rows and no first start.
func (c *Client) Starts(ctx context.Context, sink *exactly.Sink, tps []exactly.TP) (*Starts, error) {
	s := &Starts{Stored: map[exactly.TP]exactly.Position{}, Seeds: map[exactly.TP]int64{}}
	ok, err := sink.HasLedger(ctx)
	if err != nil {
		return nil, err
	}
	if ok {
		if s.Stored, err = sink.LoadPositions(ctx, tps); err != nil {
			return nil, err
		}
		// Unreadable: taken as absent, as on a ledger of a version
		// without exactly_pipelines.
		if first, err := sink.FirstStart(ctx); err == nil && first != nil {
			s.First = first
		} else if offs, err := exactly.NewLedger(sink.DB(), sink.Dialect(), c.cfg.Pipeline).Offsets(ctx); err == nil && len(offs) > 0 {
			s.OtherRows = true
		}
	}
	var missing []exactly.TP
	for _, tp := range tps {
		if _, ok := s.Stored[tp]; !ok {
			missing = append(missing, tp)
		}
	}
	if len(missing) > 0 {
		sf := seedFrom(c.cfg, s.First, s.OtherRows)
		if s.Seeds, s.Uncommitted, err = c.StartOffsets(ctx, sf, c.cfg.Source.Group, missing); err != nil {
			return nil, err
		}
	}
	return s, nil
}
