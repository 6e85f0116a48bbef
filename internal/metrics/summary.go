package metrics

import (
	"sync"
	"time"

	"github.com/exactly/exactly"
)

// Summary counts what a run did, for the line exactly run logs when it
// stops: an operator who restarts an instance sees what it did since it
// started without a metrics server. It forwards every event to the
// observer it wraps. (Its compile-time checks against internal/kafka's
// StallObserver and FlightLimitObserver are in summary_test.go: metrics
// does not import the Kafka package.)
type Summary struct {
	start time.Time
	next  exactly.Observer

	mu                              sync.Mutex
	batches, failed, records, dead  int64
	upserted, deleted, halted, errs int64
}

// NewSummary wraps next (nil: nothing) in a Summary.
func NewSummary(next exactly.Observer) *Summary {
	if next == nil {
		next = exactly.NopObserver{}
	}
	return &Summary{start: time.Now(), next: next}
}

var _ exactly.Observer = (*Summary)(nil)

// Stalled forwards to the observer it wraps: without it the metrics'
// exactly_stalled gauge would never be set once the summary wraps them.
func (s *Summary) Stalled(cause, detail string) {
	if so, ok := s.next.(interface{ Stalled(cause, detail string) }); ok {
		so.Stalled(cause, detail)
	}
}

// FlightLimit forwards to the observer it wraps, for the same reason:
// exactly_flight_limit and the status page's card.
func (s *Summary) FlightLimit(limit, max int) {
	if fo, ok := s.next.(interface{ FlightLimit(limit, max int) }); ok {
		fo.FlightLimit(limit, max)
	}
}

func (s *Summary) Assigned(next map[exactly.TP]int64) { s.next.Assigned(next) }
func (s *Summary) Revoked(tps []exactly.TP)           { s.next.Revoked(tps) }
func (s *Summary) Fetched(tp exactly.TP, records int, hw int64) {
	s.next.Fetched(tp, records, hw)
}

func (s *Summary) Committed(outcomes []exactly.Outcome, took, waited time.Duration) {
	s.mu.Lock()
	for _, o := range outcomes {
		if !o.Committed {
			s.failed++
			continue
		}
		b := o.Batch
		s.batches++
		s.records += int64(len(b.Records))
		s.upserted += int64(b.Upserted)
		s.deleted += int64(b.Deleted)
		s.dead += int64(len(b.DeadLetters))
	}
	s.mu.Unlock()
	s.next.Committed(outcomes, took, waited)
}

func (s *Summary) Halted(tp exactly.TP, err error) {
	s.mu.Lock()
	s.halted++
	s.mu.Unlock()
	s.next.Halted(tp, err)
}

func (s *Summary) Failed(system, kind string, err error) {
	s.mu.Lock()
	s.errs++
	s.mu.Unlock()
	s.next.Failed(system, kind, err)
}

// Attrs are the summary as log attributes.
func (s *Summary) Attrs() []any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return []any{"ran", time.Since(s.start).Round(time.Second).String(), "batches_committed", s.batches,
		"records", s.records, "upserted", s.upserted, "deleted", s.deleted, "dead_lettered", s.dead,
		"batches_failed", s.failed, "partitions_halted", s.halted, "errors_survived", s.errs}
}
