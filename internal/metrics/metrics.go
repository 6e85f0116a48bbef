// Package metrics is the only importer of the Prometheus client. Metrics
// implements exactly.Observer: the source tells it what happens, it counts
// into its own registry (never the global one) and keeps the per-partition
// state the status page and /readyz read. It only watches; nothing here
// can change what is committed.
//
// Every metric has the constant label pipeline. The metrics:
//
//	exactly_records_consumed_total{table}       records read from Kafka into a batch buffer (a re-read after a failed batch counts again)
//	exactly_records_committed_total{table}      records in committed batches (the ledger's exactly_batches.records)
//	exactly_records_applied_total{table}        rows upserted or appended by committed batches (exactly_batches.upserted)
//	exactly_records_deleted_total{table}        rows deleted by committed batches (exactly_batches.deleted)
//	exactly_records_skipped_total{table}        records superseded inside a batch or carrying no change (exactly_batches.skipped)
//	exactly_records_dead_lettered_total{table}  records written to exactly_dead_letters (exactly_batches.dead_lettered)
//	exactly_batches_total{status}               partition batches by outcome: committed, failed, fenced, halted
//	exactly_batch_duration_seconds              histogram: one Sink.Commit call (decode, write, ledger, COMMIT) for all partitions of a flight
//	exactly_commit_latency_seconds              histogram: from fetching the oldest record of a flight to its durable COMMIT
//	exactly_sink_round_trips                    histogram: round trips to the database of one flight's transactions, every attempt counted (SQL Server; other drivers do not count them)
//	exactly_partition_next_offset{topic,partition}     exactly_offsets.next_offset as last committed or read
//	exactly_partition_high_watermark{topic,partition}  the partition's high watermark in Kafka
//	exactly_partition_lag{topic,partition}             high watermark minus next_offset: records not yet applied
//	exactly_partition_halted{topic,partition}          1 when the partition stopped (on_error: fail, offsets lost), else 0
//	exactly_partitions_assigned                 partitions this process owns
//	exactly_last_commit_timestamp_seconds       Unix time of the last committed batch
//	exactly_stalled{cause}                      1 while nothing moves for this cause (broker_unreachable, waiting_for_group: records wait but the group gives this member no partition), else 0
//	exactly_flight_limit                        transactions allowed in flight at once now (sink.flights: adaptive chooses it between 1 and sink.max_conns)
//	exactly_flight_limit_max                    sink.max_conns
//	exactly_errors_total{system,kind}           errors met and survived; system db (kind: connection, conflict, data, other) or kafka (the Kafka error name, timeout, network, commit_offsets, other)
//
// Go runtime and process metrics (go_*, process_*) are included.
package metrics

import (
	"errors"
	"math"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/exactly/exactly"
)

// window is how far back throughput is averaged.
const window = time.Minute

// Metrics counts what one pipeline does. Create it with New.
type Metrics struct {
	reg   *prometheus.Registry
	route func(topic string) string

	consumed, committed, applied, deleted, skipped, dead *prometheus.CounterVec
	batches                                              *prometheus.CounterVec
	batchDur, commitLat, roundTrips                      prometheus.Histogram
	next, hwm, lag, halted                               *prometheus.GaugeVec
	assigned, lastCommit                                 prometheus.Gauge
	errs                                                 *prometheus.CounterVec
	stalled                                              *prometheus.GaugeVec
	flightLimit, flightMax                               prometheus.Gauge

	mu        sync.Mutex
	parts     map[exactly.TP]*partState
	lastErr   error
	lastErrAt time.Time
	stall     Stall
	limit     [2]int // flight limit and max_conns; 0 until reported
	now       func() time.Time
}

// partState is what the status page shows of a partition.
type partState struct {
	assigned   bool
	next       int64
	hwm        int64
	lastCommit time.Time
	// pendingSince is when records were fetched that no commit has
	// covered yet; zero when nothing waits.
	pendingSince time.Time
	halted       error
	// failedRun counts the batches that failed since the last commit;
	// lastFailure is the last one's error.
	failedRun   int
	lastFailure error
	commits     []commitMark // within window, oldest first
	committed   int64        // records committed by this process
}

type commitMark struct {
	at      time.Time
	records int
}

var _ exactly.Observer = (*Metrics)(nil)

// New returns the metrics of one pipeline. route maps a topic to its table
// name for the per-table counters (Config.Route); a topic no rule matches
// counts under table "(unrouted)".
func New(pipeline string, route func(topic string) (table string, ok bool)) *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	f := promauto{reg: reg, labels: prometheus.Labels{"pipeline": pipeline}}
	m := &Metrics{
		reg: reg,
		route: func(topic string) string {
			if t, ok := route(topic); ok {
				return t
			}
			return "(unrouted)"
		},
		consumed:  f.counterVec("exactly_records_consumed_total", "Records read from Kafka into a batch buffer; a re-read after a failed batch counts again.", "table"),
		committed: f.counterVec("exactly_records_committed_total", "Records in committed batches (exactly_batches.records).", "table"),
		applied:   f.counterVec("exactly_records_applied_total", "Rows upserted or appended by committed batches (exactly_batches.upserted).", "table"),
		deleted:   f.counterVec("exactly_records_deleted_total", "Rows deleted by committed batches (exactly_batches.deleted).", "table"),
		skipped:   f.counterVec("exactly_records_skipped_total", "Records superseded inside a batch or carrying no change (exactly_batches.skipped).", "table"),
		dead:      f.counterVec("exactly_records_dead_lettered_total", "Records written to exactly_dead_letters (exactly_batches.dead_lettered).", "table"),
		batches:   f.counterVec("exactly_batches_total", "Partition batches by outcome: committed, failed, fenced, halted.", "status"),
		batchDur:  f.histogram("exactly_batch_duration_seconds", "One Sink.Commit call (decode, write, ledger, COMMIT) for all partitions of a flight."),
		commitLat: f.histogram("exactly_commit_latency_seconds", "From fetching the oldest record of a flight to its durable COMMIT."),
		roundTrips: f.histogramBuckets("exactly_sink_round_trips", "Round trips to the database of one flight's transactions, every attempt counted (drivers that count them: SQL Server).",
			[]float64{1, 2, 3, 4, 6, 8, 12, 16, 25, 50, 100, 250, 500, 1000, 2500, 5000}),
		next:        f.gaugeVec("exactly_partition_next_offset", "exactly_offsets.next_offset as last committed or read.", "topic", "partition"),
		hwm:         f.gaugeVec("exactly_partition_high_watermark", "The partition's high watermark in Kafka.", "topic", "partition"),
		lag:         f.gaugeVec("exactly_partition_lag", "High watermark minus next_offset: records not yet applied.", "topic", "partition"),
		halted:      f.gaugeVec("exactly_partition_halted", "1 when the partition stopped (on_error: fail, offsets lost), else 0.", "topic", "partition"),
		assigned:    f.gauge("exactly_partitions_assigned", "Partitions this process owns."),
		lastCommit:  f.gauge("exactly_last_commit_timestamp_seconds", "Unix time of the last committed batch."),
		errs:        f.counterVec("exactly_errors_total", "Errors met and survived, by system (db, kafka) and kind.", "system", "kind"),
		stalled:     f.gaugeVec("exactly_stalled", "1 while nothing moves for this cause (broker_unreachable, waiting_for_group), else 0.", "cause"),
		flightLimit: f.gauge("exactly_flight_limit", "Transactions allowed in flight at once now (sink.flights: adaptive chooses it between 1 and sink.max_conns)."),
		flightMax:   f.gauge("exactly_flight_limit_max", "sink.max_conns: the most transactions in flight at once."),
		parts:       map[exactly.TP]*partState{},
		now:         time.Now,
	}
	for _, st := range []string{"committed", "failed", "fenced", "halted"} {
		m.batches.WithLabelValues(st) // present at 0 from the start
	}
	for _, c := range stallCauses {
		m.stalled.WithLabelValues(c)
	}
	return m
}

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Table returns the table a topic's records go to, "(unrouted)" when no
// rule matches: the status page rolls partitions up by it.
func (m *Metrics) Table(topic string) string { return m.route(topic) }

// Registry returns the registry, for tests and extra collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

func (m *Metrics) part(tp exactly.TP) *partState {
	p := m.parts[tp]
	if p == nil {
		p = &partState{next: -1, hwm: -1}
		m.parts[tp] = p
	}
	return p
}

func plabels(tp exactly.TP) []string { return []string{tp.Topic, itoa(tp.Partition)} }

// setOffsetsLocked updates the offset gauges of a partition.
func (m *Metrics) setOffsetsLocked(tp exactly.TP, p *partState) {
	l := plabels(tp)
	if p.next >= 0 {
		m.next.WithLabelValues(l...).Set(float64(p.next))
	}
	if p.hwm >= 0 {
		m.hwm.WithLabelValues(l...).Set(float64(p.hwm))
	}
	if p.next >= 0 && p.hwm >= 0 {
		// Negative when next_offset is beyond the log end (a recreated
		// topic, a reset cluster): shown, not hidden as 0.
		m.lag.WithLabelValues(l...).Set(float64(p.hwm - p.next))
	}
}

// Assigned implements exactly.Observer.
func (m *Metrics) Assigned(next map[exactly.TP]int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for tp, n := range next {
		p := m.part(tp)
		p.assigned, p.next, p.pendingSince, p.halted = true, n, time.Time{}, nil
		m.halted.WithLabelValues(plabels(tp)...).Set(0)
		m.setOffsetsLocked(tp, p)
	}
	m.assigned.Set(float64(m.assignedLocked()))
}

// Revoked implements exactly.Observer.
func (m *Metrics) Revoked(tps []exactly.TP) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, tp := range tps {
		if p := m.parts[tp]; p != nil {
			p.assigned, p.pendingSince = false, time.Time{}
		}
		// Another member reports these now.
		l := plabels(tp)
		m.lag.DeleteLabelValues(l...)
		m.hwm.DeleteLabelValues(l...)
		m.next.DeleteLabelValues(l...)
		m.halted.DeleteLabelValues(l...)
	}
	m.assigned.Set(float64(m.assignedLocked()))
}

func (m *Metrics) assignedLocked() int {
	n := 0
	for _, p := range m.parts {
		if p.assigned {
			n++
		}
	}
	return n
}

// Fetched implements exactly.Observer.
func (m *Metrics) Fetched(tp exactly.TP, records int, highWatermark int64) {
	if records > 0 {
		m.consumed.WithLabelValues(m.route(tp.Topic)).Add(float64(records))
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.part(tp)
	if !p.assigned {
		return
	}
	if records > 0 && p.pendingSince.IsZero() {
		p.pendingSince = m.now()
	}
	if highWatermark >= 0 {
		p.hwm = highWatermark
	}
	m.setOffsetsLocked(tp, p)
}

// Committed implements exactly.Observer.
func (m *Metrics) Committed(outcomes []exactly.Outcome, took, waited time.Duration) {
	m.batchDur.Observe(took.Seconds())
	if len(outcomes) > 0 && outcomes[0].RoundTrips > 0 { // the same for every outcome of the call
		m.roundTrips.Observe(float64(outcomes[0].RoundTrips))
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	anyCommitted := false
	for _, o := range outcomes {
		b := o.Batch
		tp := exactly.TP{Topic: b.Topic, Partition: b.Partition}
		var fe *exactly.FencedError
		switch {
		case o.Committed:
			anyCommitted = true
			table := m.route(b.Topic)
			m.batches.WithLabelValues("committed").Inc()
			m.committed.WithLabelValues(table).Add(float64(len(b.Records)))
			m.applied.WithLabelValues(table).Add(float64(b.Upserted))
			m.deleted.WithLabelValues(table).Add(float64(b.Deleted))
			m.skipped.WithLabelValues(table).Add(float64(b.Skipped))
			m.dead.WithLabelValues(table).Add(float64(len(b.DeadLetters)))
			p := m.part(tp)
			p.lastCommit, p.committed = now, p.committed+int64(len(b.Records))
			p.next, p.pendingSince = b.To, time.Time{}
			p.failedRun, p.lastFailure = 0, nil
			p.commits = append(p.commits, commitMark{at: now, records: len(b.Records)})
			p.commits = trim(p.commits, now)
			if p.assigned { // revoked meanwhile: another member reports it
				m.setOffsetsLocked(tp, p)
			}
		case errorsAs(o.Err, &fe):
			m.batches.WithLabelValues("fenced").Inc()
			if p := m.parts[tp]; p != nil && p.assigned && fe.Stored >= 0 {
				p.next = fe.Stored
				m.setOffsetsLocked(tp, p)
			}
		case isHalt(o.Err):
			m.batches.WithLabelValues("halted").Inc()
		default:
			m.batches.WithLabelValues("failed").Inc()
			p := m.part(tp)
			p.failedRun++
			p.lastFailure = o.Err
		}
	}
	if anyCommitted {
		m.commitLat.Observe(waited.Seconds())
		m.lastCommit.Set(float64(now.UnixNano()) / 1e9)
	}
}

// Halted implements exactly.Observer.
func (m *Metrics) Halted(tp exactly.TP, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.part(tp).halted = err
	m.halted.WithLabelValues(plabels(tp)...).Set(1)
}

// Failed implements exactly.Observer.
func (m *Metrics) Failed(system, kind string, err error) {
	m.errs.WithLabelValues(system, kind).Inc()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lastErr, m.lastErrAt = err, m.now()
}

func trim(c []commitMark, now time.Time) []commitMark {
	i := 0
	for i < len(c) && now.Sub(c[i].at) > window {
		i++
	}
	return c[i:]
}

// LagUnknown is Partition.Lag when the lag is not known.
const LagUnknown = math.MinInt64

// Partition is a snapshot of one partition for the status page and the
// readiness check.
type Partition struct {
	exactly.TP
	Assigned      bool
	NextOffset    int64 // -1 unknown
	HighWatermark int64 // -1 unknown
	Lag           int64 // LagUnknown when unknown; negative when next_offset is beyond the log end
	// RecordsPerSec is the committed records per second over the last minute.
	RecordsPerSec float64
	// Committed counts the records this process committed.
	Committed  int64
	LastCommit time.Time
	// Stuck is how long records fetched for the partition have waited
	// without a commit covering them (0 when nothing waits). A healthy
	// partition stays below a few batch intervals; a failing database or
	// a halted partition grows it.
	Stuck  time.Duration
	Halted error
	// FailedInARow counts the batches that failed since the last commit,
	// LastFailure the last one's error.
	FailedInARow int
	LastFailure  error
}

// Snapshot returns every partition seen, sorted by topic and partition.
func (m *Metrics) Snapshot() []Partition {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	out := make([]Partition, 0, len(m.parts))
	for tp, p := range m.parts {
		p.commits = trim(p.commits, now)
		n := 0
		for _, c := range p.commits {
			n += c.records
		}
		s := Partition{TP: tp, Assigned: p.assigned, NextOffset: p.next, HighWatermark: p.hwm, Lag: LagUnknown,
			RecordsPerSec: float64(n) / window.Seconds(), Committed: p.committed, LastCommit: p.lastCommit, Halted: p.halted,
			FailedInARow: p.failedRun, LastFailure: p.lastFailure}
		if p.next >= 0 && p.hwm >= 0 {
			s.Lag = p.hwm - p.next
		}
		if !p.pendingSince.IsZero() {
			s.Stuck = now.Sub(p.pendingSince)
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Topic != out[j].Topic {
			return out[i].Topic < out[j].Topic
		}
		return out[i].Partition < out[j].Partition
	})
	return out
}

// LastError returns the last error met and when, or nil.
func (m *Metrics) LastError() (error, time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lastErr, m.lastErrAt
}

// promauto registers metrics with the pipeline label on one registry.
type promauto struct {
	reg    *prometheus.Registry
	labels prometheus.Labels
}

func (f promauto) counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: f.labels}, labels)
	f.reg.MustRegister(c)
	return c
}

func (f promauto) gaugeVec(name, help string, labels ...string) *prometheus.GaugeVec {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: f.labels}, labels)
	f.reg.MustRegister(g)
	return g
}

func (f promauto) gauge(name, help string) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: f.labels})
	f.reg.MustRegister(g)
	return g
}

// histogram buckets span 5 ms to ~80 s, covering batch intervals of
// "every few seconds" and a slow database.
func (f promauto) histogram(name, help string) prometheus.Histogram {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, ConstLabels: f.labels,
		Buckets: prometheus.ExponentialBuckets(0.005, 2, 15)})
	f.reg.MustRegister(h)
	return h
}

func (f promauto) histogramBuckets(name, help string, buckets []float64) prometheus.Histogram {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, ConstLabels: f.labels, Buckets: buckets})
	f.reg.MustRegister(h)
	return h
}

func itoa(p int32) string { return strconv.FormatInt(int64(p), 10) }

func errorsAs(err error, fe **exactly.FencedError) bool { return errors.As(err, fe) }

func isHalt(err error) bool {
	var re *exactly.RecordError
	return errors.As(err, &re)
}

// stallCauses are the causes of kafka.Stall (the metrics package does not
// import the source).
var stallCauses = []string{"broker_unreachable", "waiting_for_group"}

// Stall is why the member applies nothing although it should, as the
// source last said (see kafka.Source.Stall).
type Stall struct {
	Cause, Detail string
	Since         time.Time
}

// Stalled implements kafka.StallObserver.
func (m *Metrics) Stalled(cause, detail string) {
	m.mu.Lock()
	if cause != m.stall.Cause {
		m.stall.Since = m.now()
	}
	m.stall.Cause, m.stall.Detail = cause, detail
	m.mu.Unlock()
	for _, c := range stallCauses {
		v := 0.0
		if c == cause {
			v = 1
		}
		m.stalled.WithLabelValues(c).Set(v)
	}
}

// FlightLimit implements kafka.FlightLimitObserver.
func (m *Metrics) FlightLimit(limit, max int) {
	m.mu.Lock()
	m.limit = [2]int{limit, max}
	m.mu.Unlock()
	m.flightLimit.Set(float64(limit))
	m.flightMax.Set(float64(max))
}

// Flights returns the flight limit and sink.max_conns last reported (0, 0
// before the source reported any).
func (m *Metrics) Flights() (limit, max int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.limit[0], m.limit[1]
}

// Stall returns the last stall the source reported.
func (m *Metrics) Stall() Stall {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stall
}
