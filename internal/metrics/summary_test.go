package metrics_test

import (
	"errors"
	"testing"
	"time"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/kafka"
	"github.com/exactly/exactly/internal/metrics"
)

var (
	_ kafka.StallObserver       = (*metrics.Summary)(nil)
	_ kafka.FlightLimitObserver = (*metrics.Summary)(nil)
)

// counting is an observer that counts what a Summary forwards to it.
type counting struct {
	exactly.NopObserver
	committed, stalled, limits int
}

func (c *counting) Committed([]exactly.Outcome, time.Duration, time.Duration) { c.committed++ }
func (c *counting) Stalled(string, string)                                    { c.stalled++ }
func (c *counting) FlightLimit(int, int)                                      { c.limits++ }

func TestSummaryCountsAndForwards(t *testing.T) {
	next := &counting{}
	s := metrics.NewSummary(next)
	b := &exactly.PartitionBatch{Records: make([]*exactly.Record, 5), Upserted: 3, Deleted: 1, DeadLetters: make([]exactly.DeadLetter, 1)}
	s.Committed([]exactly.Outcome{{Batch: b, Committed: true}, {Batch: b, Err: errors.New("x")}}, time.Second, 0)
	s.Halted(exactly.TP{Topic: "a"}, errors.New("halt"))
	s.Failed("sink", "connect", errors.New("down"))
	s.Stalled("cause", "detail")
	s.FlightLimit(1, 4)
	got := map[string]any{}
	attrs := s.Attrs()
	for i := 0; i+1 < len(attrs); i += 2 {
		got[attrs[i].(string)] = attrs[i+1]
	}
	for k, want := range map[string]int64{"batches_committed": 1, "records": 5, "upserted": 3, "deleted": 1, "dead_lettered": 1,
		"batches_failed": 1, "partitions_halted": 1, "errors_survived": 1} {
		if got[k] != want {
			t.Errorf("%s: got %v, want %d", k, got[k], want)
		}
	}
	if next.committed != 1 || next.stalled != 1 || next.limits != 1 {
		t.Errorf("forwarded: got %+v, want each event once", next)
	}
	metrics.NewSummary(nil).Stalled("no observer", "") // nil wraps nothing, and does not panic
}
