package bench

import (
	"context"
	"fmt"
	"math"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly/exactly"
)

// latency produces at a fixed rate into fresh topics while the pipeline
// runs, and measures produce timestamp → database commit per record.
func latency(ctx context.Context, o Options, cfg *exactly.Config, brokers, topics []string) (*Latency, error) {
	encode, err := encoder(o.Format)
	if err != nil {
		return nil, err
	}
	rec := newLatencyRecorder(o, topics)
	latCfg := *cfg
	p, err := startPipeline(ctx, o, &latCfg, rec.onCommit, nil)
	if err != nil {
		return nil, err
	}
	stopped := false
	defer func() {
		if !stopped {
			p.stop()
		}
	}()
	o.Progress("latency: waiting for the %d partitions to be assigned", rec.nparts)
	deadline := time.Now().Add(time.Minute)
	for p.src.Assigned() < rec.nparts {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("only %d of %d partitions assigned after a minute", p.src.Assigned(), rec.nparts)
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return nil, err
		}
	}

	o.Progress("latency: producing %d records/s for %s", o.Rate, o.Duration)
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(time.Millisecond))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	stopSampling := rec.sampleLag()
	start := min(steadyAfter, o.Duration/4)
	rec.countSteadyFrom(start)
	n, elapsed, err := produceAtRate(ctx, o, cl, topics, encode, rec.produced)
	if err != nil {
		stopSampling()
		return nil, err
	}
	deadline = time.Now().Add(2 * time.Minute)
	for c := rec.committedRecords(); c < n; c = rec.committedRecords() {
		if time.Now().After(deadline) {
			stopSampling()
			return nil, fmt.Errorf("only %d of %d records committed two minutes after producing stopped", c, n)
		}
		if err := sleep(ctx, 20*time.Millisecond); err != nil {
			stopSampling()
			return nil, err
		}
	}
	stopSampling()
	stopped = true
	if err := p.stop(); err != nil {
		return nil, err
	}
	return rec.result(o, n, elapsed, start), nil
}

// produceAtRate produces o.Rate records a second for o.Duration, counting
// them per partition in produced, and returns how many it produced and
// how long that took.
func produceAtRate(ctx context.Context, o Options, cl *kgo.Client, topics []string, encode func(row) (key, value []byte), produced []atomic.Int64) (int64, time.Duration, error) {
	var perr atomic.Pointer[error]
	start := time.Now()
	var n int64
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for now := start; now.Sub(start) < o.Duration; now = <-tick.C {
		if err := ctx.Err(); err != nil {
			return 0, 0, err
		}
		target := int64(now.Sub(start).Seconds() * float64(o.Rate))
		for ; n < target; n++ {
			t, pt := place(n, o.Topics, o.Partitions)
			id := int64(o.Records) + n
			key, value := encode(makeRow(id, o.RecordBytes))
			produced[t*o.Partitions+int(pt)].Add(1)
			cl.Produce(ctx, &kgo.Record{Topic: topics[t], Partition: pt, Key: key,
				Value: value, Timestamp: time.Now()}, func(_ *kgo.Record, err error) {
				if err != nil {
					perr.CompareAndSwap(nil, &err)
				}
			})
		}
	}
	tick.Stop()
	elapsed := time.Since(start)
	if err := cl.Flush(ctx); err != nil {
		return 0, 0, err
	}
	if e := perr.Load(); e != nil {
		return 0, 0, fmt.Errorf("producing: %w", *e)
	}
	return n, elapsed, nil
}

// latencyRecorder keeps, per partition, what was produced and committed,
// and the latency of every committed record.
type latencyRecorder struct {
	nparts   int
	index    map[string]int // topic → its number
	parts    int            // partitions per topic
	produced []atomic.Int64
	next     []atomic.Int64 // the next offset to commit
	maxLag   atomic.Int64   // the most records a partition was behind, sampled

	mu      sync.Mutex
	lats    []float32
	perPart [][]float32
	// steadyFrom is when the start is over (tables created, the flight
	// limit settled): steady holds the latencies of the records produced
	// from then on.
	steadyFrom time.Time
	steady     []float32
	committed  int64
	batches    int
}

func newLatencyRecorder(o Options, topics []string) *latencyRecorder {
	nparts := o.Topics * o.Partitions
	r := &latencyRecorder{nparts: nparts, index: make(map[string]int, len(topics)), parts: o.Partitions,
		produced: make([]atomic.Int64, nparts), next: make([]atomic.Int64, nparts), perPart: make([][]float32, nparts)}
	for i, t := range topics {
		r.index[t] = i
	}
	return r
}

// onCommit records the committed batches' latencies (Source.OnCommit).
func (r *latencyRecorder) onCommit(outs []exactly.Outcome) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, oc := range outs {
		if !oc.Committed {
			continue
		}
		b := oc.Batch
		i := r.index[b.Topic]*r.parts + int(b.Partition)
		r.next[i].Store(b.To)
		r.batches++
		for _, rec := range b.Records {
			ms := float32(now.Sub(rec.Timestamp).Seconds() * 1000)
			r.lats = append(r.lats, ms)
			r.perPart[i] = append(r.perPart[i], ms)
			if !r.steadyFrom.IsZero() && !rec.Timestamp.Before(r.steadyFrom) {
				r.steady = append(r.steady, ms)
			}
		}
		r.committed += int64(len(b.Records))
	}
}

// countSteadyFrom has the records produced from d on counted apart too.
func (r *latencyRecorder) countSteadyFrom(d time.Duration) {
	r.mu.Lock()
	r.steadyFrom = time.Now().Add(d)
	r.mu.Unlock()
}

// steadyAfter is how long the start lasts (a quarter of the latency phase
// at most), as the latency phase reports it apart: the first flights
// create the tables (800 in the seed user's workload) and the adaptive
// flight limit finds its level.
const steadyAfter = 5 * time.Second

func (r *latencyRecorder) committedRecords() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.committed
}

// sampleLag samples every partition's lag ten times a second until the
// function it returns is called.
func (r *latencyRecorder) sampleLag() (stop func()) {
	done, quit := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-quit:
				return
			case <-tick.C:
			}
			for i := range r.produced {
				if lag := r.produced[i].Load() - r.next[i].Load(); lag > r.maxLag.Load() {
					r.maxLag.Store(lag)
				}
			}
		}
	}()
	return func() {
		close(quit)
		<-done
	}
}

// result is the measurement of n records produced over elapsed.
func (r *latencyRecorder) result(o Options, n int64, elapsed, start time.Duration) *Latency {
	r.mu.Lock()
	defer r.mu.Unlock()
	l := &Latency{Rate: o.Rate, Seconds: elapsed.Seconds(), Records: int(n), Achieved: float64(n) / elapsed.Seconds(),
		MaxPartitionLag: r.maxLag.Load(), Partitions: r.nparts, Batches: r.batches}
	l.P50Ms, l.P99Ms, l.MaxMs = percentile(r.lats, 0.50), percentile(r.lats, 0.99), percentile(r.lats, 1)
	l.SteadyAfterS, l.SteadyP50Ms, l.SteadyP99Ms = start.Seconds(), percentile(r.steady, 0.50), percentile(r.steady, 0.99)
	for _, pp := range r.perPart {
		if len(pp) > 0 {
			l.PartitionsCommitted++
			l.WorstPartitionP99Ms = math.Max(l.WorstPartitionP99Ms, percentile(pp, 0.99))
		}
	}
	return l
}

// percentile sorts xs in place and returns the q-quantile (nearest rank).
func percentile(xs []float32, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	sort.Slice(xs, func(i, j int) bool { return xs[i] < xs[j] })
	i := int(math.Ceil(q*float64(len(xs)))) - 1
	i = min(max(i, 0), len(xs)-1)
	return float64(xs[i])
}

// sleep waits d, or until ctx is done (its error).
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
