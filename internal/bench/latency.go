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
	nparts := o.Topics * o.Partitions
	index := make(map[string]int, len(topics))
	for i, t := range topics {
		index[t] = i
	}
	part := func(topic string, p int32) int { return index[topic]*o.Partitions + int(p) }
	produced := make([]atomic.Int64, nparts)
	next := make([]atomic.Int64, nparts)
	var (
		mu        sync.Mutex
		lats      []float32
		perPart   = make([][]float32, nparts)
		committed int64
		batches   int
	)
	onCommit := func(outs []exactly.Outcome) {
		now := time.Now()
		mu.Lock()
		defer mu.Unlock()
		for _, oc := range outs {
			if !oc.Committed {
				continue
			}
			b := oc.Batch
			i := part(b.Topic, b.Partition)
			next[i].Store(b.To)
			batches++
			for _, r := range b.Records {
				ms := float32(now.Sub(r.Timestamp).Seconds() * 1000)
				lats = append(lats, ms)
				perPart[i] = append(perPart[i], ms)
			}
			committed += int64(len(b.Records))
		}
	}
	latCfg := *cfg
	p, err := startPipeline(ctx, o, &latCfg, onCommit, nil)
	if err != nil {
		return nil, err
	}
	stopped := false
	defer func() {
		if !stopped {
			p.stop()
		}
	}()
	o.Progress("latency: waiting for the %d partitions to be assigned", nparts)
	deadline := time.Now().Add(time.Minute)
	for p.src.Assigned() < nparts {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("only %d of %d partitions assigned after a minute", p.src.Assigned(), nparts)
		}
		time.Sleep(50 * time.Millisecond)
	}

	o.Progress("latency: producing %d records/s for %s", o.Rate, o.Duration)
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(time.Millisecond))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	var maxLag atomic.Int64
	sampleDone := make(chan struct{})
	sampleStop := make(chan struct{})
	go func() {
		defer close(sampleDone)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-sampleStop:
				return
			case <-tick.C:
			}
			for i := range produced {
				if lag := produced[i].Load() - next[i].Load(); lag > maxLag.Load() {
					maxLag.Store(lag)
				}
			}
		}
	}()
	var perr atomic.Pointer[error]
	start := time.Now()
	var n int64
	tick := time.NewTicker(5 * time.Millisecond)
	for now := start; now.Sub(start) < o.Duration; now = <-tick.C {
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
		return nil, err
	}
	if e := perr.Load(); e != nil {
		return nil, fmt.Errorf("producing: %w", *e)
	}
	deadline = time.Now().Add(2 * time.Minute)
	for {
		mu.Lock()
		c := committed
		mu.Unlock()
		if c >= n {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("only %d of %d records committed two minutes after producing stopped", c, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(sampleStop)
	<-sampleDone
	stopped = true
	if err := p.stop(); err != nil {
		return nil, err
	}
	l := &Latency{Rate: o.Rate, Seconds: elapsed.Seconds(), Records: int(n), Achieved: float64(n) / elapsed.Seconds(),
		MaxPartitionLag: maxLag.Load(), Partitions: nparts, Batches: batches}
	l.P50Ms, l.P99Ms, l.MaxMs = percentile(lats, 0.50), percentile(lats, 0.99), percentile(lats, 1)
	for _, pp := range perPart {
		if len(pp) > 0 {
			l.PartitionsCommitted++
			l.WorstPartitionP99Ms = math.Max(l.WorstPartitionP99Ms, percentile(pp, 0.99))
		}
	}
	return l, nil
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
