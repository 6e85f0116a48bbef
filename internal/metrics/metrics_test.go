package metrics

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/exactly/exactly"
)

func route(topic string) (string, bool) {
	if strings.HasPrefix(topic, "shop.") {
		return strings.TrimPrefix(topic, "shop."), true
	}
	return "", false
}

func TestCountersGaugesAndStuck(t *testing.T) {
	m := New("p", route)
	clock := time.Unix(1_700_000_000, 0)
	m.now = func() time.Time { return clock }
	tp := exactly.TP{Topic: "shop.orders", Partition: 2}
	m.Assigned(map[exactly.TP]int64{tp: 10})
	m.Fetched(tp, 5, 20)
	if got := testutil.ToFloat64(m.lag.WithLabelValues("shop.orders", "2")); got != 10 {
		t.Errorf("lag after fetch = %v, want 20-10", got)
	}
	if got := testutil.ToFloat64(m.consumed.WithLabelValues("orders")); got != 5 {
		t.Errorf("consumed = %v, want 5", got)
	}
	clock = clock.Add(3 * time.Minute)
	if s := m.Snapshot(); len(s) != 1 || s[0].Stuck != 3*time.Minute {
		t.Fatalf("stuck after 3m without a commit: %+v", s)
	}
	b := &exactly.PartitionBatch{Topic: tp.Topic, Partition: tp.Partition, From: 10, To: 15,
		Records: make([]*exactly.Record, 5), Upserted: 3, Deleted: 1, DeadLetters: make([]exactly.DeadLetter, 1)}
	m.Committed([]exactly.Outcome{{Batch: b, Committed: true}}, time.Second, 2*time.Second)
	for name, c := range map[string]float64{
		"committed": testutil.ToFloat64(m.committed.WithLabelValues("orders")),
		"applied":   testutil.ToFloat64(m.applied.WithLabelValues("orders")),
		"deleted":   testutil.ToFloat64(m.deleted.WithLabelValues("orders")),
		"dead":      testutil.ToFloat64(m.dead.WithLabelValues("orders")),
		"batches":   testutil.ToFloat64(m.batches.WithLabelValues("committed")),
		"next":      testutil.ToFloat64(m.next.WithLabelValues("shop.orders", "2")),
		"lag":       testutil.ToFloat64(m.lag.WithLabelValues("shop.orders", "2")),
	} {
		want := map[string]float64{"committed": 5, "applied": 3, "deleted": 1, "dead": 1, "batches": 1, "next": 15, "lag": 5}[name]
		if c != want {
			t.Errorf("%s = %v, want %v", name, c, want)
		}
	}
	s := m.Snapshot()[0]
	if s.Stuck != 0 || s.Committed != 5 || s.RecordsPerSec != 5.0/60 {
		t.Errorf("after the commit: %+v", s)
	}
	// A fenced batch moves next to what the database holds.
	m.Committed([]exactly.Outcome{{Batch: &exactly.PartitionBatch{Topic: tp.Topic, Partition: tp.Partition, From: 15, To: 18},
		Err: &exactly.FencedError{Topic: tp.Topic, Partition: 2, Want: 15, Stored: 18}}}, 0, 0)
	if got := testutil.ToFloat64(m.batches.WithLabelValues("fenced")); got != 1 {
		t.Errorf("fenced = %v", got)
	}
	if got := testutil.ToFloat64(m.next.WithLabelValues("shop.orders", "2")); got != 18 {
		t.Errorf("next after fence = %v, want 18", got)
	}
	m.Committed([]exactly.Outcome{{Batch: b, Err: errors.New("connection reset")}}, 0, 0)
	if got := testutil.ToFloat64(m.batches.WithLabelValues("failed")); got != 1 {
		t.Errorf("failed = %v", got)
	}
	m.Failed("db", "connection", errors.New("connection reset"))
	if got := testutil.ToFloat64(m.errs.WithLabelValues("db", "connection")); got != 1 {
		t.Errorf("errors = %v", got)
	}
	m.Halted(tp, errors.New("on_error: fail"))
	if got := testutil.ToFloat64(m.halted.WithLabelValues("shop.orders", "2")); got != 1 {
		t.Errorf("halted = %v", got)
	}
	m.Fetched(exactly.TP{Topic: "other", Partition: 0}, 3, 9) // not assigned: counted, no state
	if got := testutil.ToFloat64(m.consumed.WithLabelValues("(unrouted)")); got != 3 {
		t.Errorf("unrouted consumed = %v", got)
	}
	m.Revoked([]exactly.TP{tp})
	if got := testutil.ToFloat64(m.assigned); got != 0 {
		t.Errorf("assigned after revoke = %v", got)
	}
	if n := testutil.CollectAndCount(m.lag); n != 0 {
		t.Errorf("lag series of a revoked partition still exported: %d", n)
	}
	// A cycle that was in flight during the revoke finishes afterwards:
	// counted, but its partition's gauges stay with the new owner.
	m.Committed([]exactly.Outcome{{Batch: b, Committed: true}}, 0, 0)
	if n := testutil.CollectAndCount(m.next); n != 0 {
		t.Errorf("a late commit re-exported a revoked partition's next_offset: %d series", n)
	}
	if got := testutil.ToFloat64(m.committed.WithLabelValues("orders")); got != 10 {
		t.Errorf("late commit not counted: %v", got)
	}
}

// TestEveryDocumentedMetricIsRegistered keeps the package comment (and the
// README table copied from it) honest.
func TestEveryDocumentedMetricIsRegistered(t *testing.T) {
	m := New("p", route)
	tp := exactly.TP{Topic: "shop.a", Partition: 0}
	m.Assigned(map[exactly.TP]int64{tp: 0})
	m.Fetched(tp, 1, 1)
	b := &exactly.PartitionBatch{Topic: tp.Topic, To: 1, Records: make([]*exactly.Record, 1)}
	m.Committed([]exactly.Outcome{{Batch: b, Committed: true}}, 0, 0)
	m.Halted(tp, errors.New("x"))
	m.Failed("kafka", "timeout", errors.New("x"))
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, f := range fams {
		have[f.GetName()] = true
	}
	documented := []string{"exactly_records_consumed_total", "exactly_records_committed_total", "exactly_records_applied_total",
		"exactly_records_deleted_total", "exactly_records_skipped_total", "exactly_records_dead_lettered_total", "exactly_batches_total",
		"exactly_batch_duration_seconds", "exactly_commit_latency_seconds", "exactly_partition_next_offset",
		"exactly_partition_high_watermark", "exactly_partition_lag", "exactly_partition_halted", "exactly_partitions_assigned",
		"exactly_last_commit_timestamp_seconds", "exactly_errors_total", "exactly_stalled", "exactly_flight_limit", "exactly_flight_limit_max", "exactly_sink_round_trips"}
	for _, n := range documented {
		if !have[n] {
			t.Errorf("%s is documented but not exported", n)
		}
		delete(have, n)
	}
	for n := range have {
		if strings.HasPrefix(n, "exactly_") {
			t.Errorf("%s is exported but not documented", n)
		}
	}
}

// TestRoundTripsPerFlight: a Commit call's round trips (the same on every
// outcome) are one observation; a driver that does not count them adds
// none.
func TestRoundTripsPerFlight(t *testing.T) {
	m := New("p", route)
	b := func(p int32) *exactly.PartitionBatch {
		return &exactly.PartitionBatch{Topic: "shop.orders", Partition: p, From: 0, To: 1, Records: make([]*exactly.Record, 1)}
	}
	m.Committed([]exactly.Outcome{{Batch: b(0), Committed: true, RoundTrips: 3}, {Batch: b(1), Committed: true, RoundTrips: 3}}, time.Second, time.Second)
	m.Committed([]exactly.Outcome{{Batch: b(0), Committed: true}}, time.Second, time.Second)
	var pb dto.Metric
	if err := m.roundTrips.Write(&pb); err != nil {
		t.Fatal(err)
	}
	if h := pb.GetHistogram(); h.GetSampleCount() != 1 || h.GetSampleSum() != 3 {
		t.Errorf("exactly_sink_round_trips: %d observations summing %v, want 1 of 3", h.GetSampleCount(), h.GetSampleSum())
	}
}
