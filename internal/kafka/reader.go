package kafka

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly/exactly"
)

// Reader re-reads offset ranges outside any consumer group, for the audit
// and repair commands. It reads with read_committed, exactly like Source,
// so a range hashes the same as when it was applied.
type Reader struct {
	opts []kgo.Opt
	cl   *kgo.Client
	adm  *kadm.Client
	// Idle is how long a read waits for more records before it decides the
	// rest of the range is gone (compacted, or only transaction markers).
	// Default 1.5s.
	Idle time.Duration
}

// NewReader connects to the configured brokers.
func NewReader(cfg *exactly.Config, extra ...kgo.Opt) (*Reader, error) {
	opts := append([]kgo.Opt{
		kgo.SeedBrokers(cfg.Source.Brokers...),
		kgo.ClientID(cfg.Source.ClientID),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NoResetOffset()),
		kgo.FetchMaxWait(250 * time.Millisecond),
	}, extra...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("creating kafka client: %w", err)
	}
	return &Reader{opts: opts, cl: cl, adm: kadm.NewClient(cl), Idle: 1500 * time.Millisecond}, nil
}

// Compacted reports whether the topic's cleanup.policy includes compact:
// records of an applied range may then legitimately be gone.
func (r *Reader) Compacted(ctx context.Context, topic string) (bool, error) {
	rcs, err := r.adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		return false, fmt.Errorf("describing topic %s: %w", topic, err)
	}
	rc, err := rcs.On(topic, nil)
	if err != nil {
		return false, fmt.Errorf("describing topic %s: %w", topic, err)
	}
	if rc.Err != nil {
		return false, fmt.Errorf("describing topic %s: %w", topic, rc.Err)
	}
	for _, c := range rc.Configs {
		if c.Key == "cleanup.policy" && c.Value != nil && strings.Contains(*c.Value, "compact") {
			return true, nil
		}
	}
	return false, nil
}

// Close closes the client.
func (r *Reader) Close() { r.cl.Close() }

// Partitions lists the partitions of every existing topic that match.
func (r *Reader) Partitions(ctx context.Context, match func(topic string) bool) ([]exactly.TP, error) {
	topics, err := r.adm.ListTopics(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing topics: %w", err)
	}
	var out []exactly.TP
	for _, t := range topics.Sorted() {
		if !match(t.Topic) {
			continue
		}
		for _, p := range t.Partitions.Numbers() {
			out = append(out, exactly.TP{Topic: t.Topic, Partition: p})
		}
	}
	exactly.SortTPs(out)
	return out, nil
}

// Bounds returns the log start, high watermark and last stable offset of
// each partition. Partitions of topics that do not exist are absent.
func (r *Reader) Bounds(ctx context.Context, tps []exactly.TP) (map[exactly.TP]exactly.Bounds, error) {
	set := map[string]bool{}
	var topics []string
	for _, tp := range tps {
		if !set[tp.Topic] {
			set[tp.Topic] = true
			topics = append(topics, tp.Topic)
		}
	}
	out := map[exactly.TP]exactly.Bounds{}
	if len(topics) == 0 {
		return out, nil
	}
	starts, err := r.adm.ListStartOffsets(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("listing log start offsets: %w", err)
	}
	ends, err := r.adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("listing high watermarks: %w", err)
	}
	stable, err := r.adm.ListCommittedOffsets(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("listing last stable offsets: %w", err)
	}
	for _, tp := range tps {
		s, ok1 := starts.Lookup(tp.Topic, tp.Partition)
		e, ok2 := ends.Lookup(tp.Topic, tp.Partition)
		c, ok3 := stable.Lookup(tp.Topic, tp.Partition)
		if !ok1 || !ok2 || !ok3 || s.Err != nil || e.Err != nil || c.Err != nil {
			continue
		}
		out[tp] = exactly.Bounds{Start: s.Offset, End: e.Offset, Stable: c.Offset}
	}
	return out, nil
}

// Read delivers, in offset order, every committed record of tp with from
// <= offset < to. It returns when the record at to-1 arrived, or when no
// record came for Idle (the rest of the range holds only transaction
// markers, was compacted away, or is beyond the last stable offset). from
// must not be below the log start offset.
func (r *Reader) Read(ctx context.Context, tp exactly.TP, from, to int64, fn func(*exactly.Record) error) error {
	if from >= to {
		return nil
	}
	opts := append(append([]kgo.Opt{}, r.opts...), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
		tp.Topic: {tp.Partition: kgo.NewOffset().At(from)},
	}))
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("creating kafka client: %w", err)
	}
	defer cl.Close()
	next := from
	for next < to {
		pctx, cancel := context.WithTimeout(ctx, r.Idle)
		fetches := cl.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if fetches.IsClientClosed() {
			return errors.New("kafka client closed")
		}
		for _, fe := range fetches.Errors() {
			if errors.Is(fe.Err, context.DeadlineExceeded) || errors.Is(fe.Err, context.Canceled) {
				continue
			}
			return fmt.Errorf("reading %s from offset %d: %w", tp, next, fe.Err)
		}
		got := 0
		var ferr error
		fetches.EachRecord(func(kr *kgo.Record) {
			if ferr != nil || kr.Offset < next || kr.Offset >= to {
				return
			}
			got++
			rec := &exactly.Record{Topic: kr.Topic, Partition: kr.Partition, Offset: kr.Offset,
				Key: kr.Key, Value: kr.Value, Timestamp: kr.Timestamp}
			for _, h := range kr.Headers {
				rec.Headers = append(rec.Headers, exactly.Header{Key: h.Key, Value: h.Value})
			}
			next = kr.Offset + 1
			ferr = fn(rec)
		})
		if ferr != nil {
			return ferr
		}
		if got == 0 && fetches.NumRecords() == 0 {
			return nil // idle: nothing more in range
		}
		if fetches.NumRecords() > 0 && got == 0 {
			// Only records beyond to: the range is complete.
			last := int64(-1)
			fetches.EachRecord(func(kr *kgo.Record) { last = max(last, kr.Offset) })
			if last >= to {
				return nil
			}
		}
	}
	return nil
}
