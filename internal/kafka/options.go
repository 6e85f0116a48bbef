package kafka

import (
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly/exactly"
)

// Option configures a Source. As with franz-go's kgo.Opt, every option is
// given to NewSource and none changes afterwards: the group's callbacks,
// which read them, may run as soon as the client exists.
type Option func(*options)

type options struct {
	observer       exactly.Observer
	onCommit       func([]exactly.Outcome)
	onFetch        func(records int)
	watermarkEvery time.Duration
	stallEvery     time.Duration
	flightTimeout  time.Duration
	client         []kgo.Opt
}

// Observe tells o about assignments, fetches, commits, halts and errors
// (metrics, status page). o may also implement StallObserver and
// FlightLimitObserver. Default: nobody is told.
func Observe(o exactly.Observer) Option { return func(op *options) { op.observer = o } }

// OnCommit calls fn after each database commit with its outcomes (tests
// and benchmarks), on the polling goroutine.
func OnCommit(fn func([]exactly.Outcome)) Option { return func(op *options) { op.onCommit = fn } }

// OnFetch calls fn on the polling goroutine with the number of records
// each poll returned (benchmarks).
func OnFetch(fn func(records int)) Option { return func(op *options) { op.onFetch = fn } }

// WatermarkEvery is how often Run refreshes the high watermarks of the
// assigned partitions for the observer, so lag shows even when a
// partition is idle, and checks they still hold next_offset. Default 5s.
func WatermarkEvery(d time.Duration) Option { return func(op *options) { op.watermarkEvery = d } }

// StallEvery is how often Run checks, and warns, why nothing moves (see
// watchStall). Default 10s.
func StallEvery(d time.Duration) Option { return func(op *options) { op.stallEvery = d } }

// FlightTimeout bounds a flight's transaction: one still going then is
// cut (rolled back, or its outcome read back from the ledger), and its
// partitions' next batches carry half as many records (see cut), until
// one fits. Default 2 minutes; tests shorten it.
func FlightTimeout(d time.Duration) Option { return func(op *options) { op.flightTimeout = d } }

// KafkaClient adds franz-go client options after those the configuration
// sets, overriding them (tests: a shorter metadata age).
func KafkaClient(opts ...kgo.Opt) Option {
	return func(op *options) { op.client = append(op.client, opts...) }
}

// flightTimeout is FlightTimeout's default: far above what a flight of
// the default caps takes on a healthy database (seconds), so only a stuck
// or overwhelmed one meets it.
const flightTimeout = 2 * time.Minute

func newOptions(opts []Option) options {
	op := options{observer: exactly.NopObserver{}, watermarkEvery: 5 * time.Second, stallEvery: 10 * time.Second, flightTimeout: flightTimeout}
	for _, o := range opts {
		o(&op)
	}
	if op.observer == nil {
		op.observer = exactly.NopObserver{}
	}
	if op.watermarkEvery <= 0 {
		op.watermarkEvery = 5 * time.Second
	}
	if op.stallEvery <= 0 {
		op.stallEvery = 10 * time.Second
	}
	if op.flightTimeout <= 0 {
		op.flightTimeout = flightTimeout
	}
	return op
}
