package main

import (
	"sync"
	"time"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/kafka"
)

// runSummary counts what a run did, for the line it logs when it stops:
// an operator who restarts an instance sees what it did since it started
// without a metrics server.
type runSummary struct {
	start time.Time
	next  exactly.Observer

	mu                              sync.Mutex
	batches, failed, records, dead  int64
	upserted, deleted, halted, errs int64
}

func newRunSummary(next exactly.Observer) *runSummary {
	if next == nil {
		next = exactly.NopObserver{}
	}
	return &runSummary{start: time.Now(), next: next}
}

var (
	_ exactly.Observer          = (*runSummary)(nil)
	_ kafka.StallObserver       = (*runSummary)(nil)
	_ kafka.FlightLimitObserver = (*runSummary)(nil)
)

// Stalled forwards to the observer it wraps: without it the metrics'
// exactly_stalled gauge would never be set once the summary wraps them.
func (s *runSummary) Stalled(cause, detail string) {
	if so, ok := s.next.(kafka.StallObserver); ok {
		so.Stalled(cause, detail)
	}
}

// FlightLimit forwards to the observer it wraps, for the same reason:
// exactly_flight_limit and the status page's card.
func (s *runSummary) FlightLimit(limit, max int) {
	if fo, ok := s.next.(kafka.FlightLimitObserver); ok {
		fo.FlightLimit(limit, max)
	}
}

func (s *runSummary) Assigned(next map[exactly.TP]int64) { s.next.Assigned(next) }
func (s *runSummary) Revoked(tps []exactly.TP)           { s.next.Revoked(tps) }
func (s *runSummary) Fetched(tp exactly.TP, records int, hw int64) {
	s.next.Fetched(tp, records, hw)
}

func (s *runSummary) Committed(outcomes []exactly.Outcome, took, waited time.Duration) {
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

func (s *runSummary) Halted(tp exactly.TP, err error) {
	s.mu.Lock()
	s.halted++
	s.mu.Unlock()
	s.next.Halted(tp, err)
}

func (s *runSummary) Failed(system, kind string, err error) {
	s.mu.Lock()
	s.errs++
	s.mu.Unlock()
	s.next.Failed(system, kind, err)
}

// attrs are the summary as log attributes.
func (s *runSummary) attrs() []any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return []any{"ran", time.Since(s.start).Round(time.Second).String(), "batches_committed", s.batches,
		"records", s.records, "upserted", s.upserted, "deleted", s.deleted, "dead_lettered", s.dead,
		"batches_failed", s.failed, "partitions_halted", s.halted, "errors_survived", s.errs}
}
