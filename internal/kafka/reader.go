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
	// Idle is how long a read waits for a fetch before it decides nothing
	// more can come, when a transaction is open at the end of the range.
	// Default 10s.
	Idle time.Duration
	// Stall is how long a read waits for a record it knows exists before
	// it fails. Default 60s.
	Stall time.Duration
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
	sec, err := securityOpts(cfg) // source.tls and source.sasl
	if err != nil {
		return nil, err
	}
	opts = append(opts, sec...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("creating kafka client: %w", err)
	}
	return &Reader{opts: opts, cl: cl, adm: kadm.NewClient(cl), Idle: 10 * time.Second, Stall: time.Minute}, nil
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
// <= offset < to. from must not be below the log start offset.
//
// Where the range ends is known without guessing from time: transaction
// markers are fetched too (KeepControlRecords, never delivered), so the
// read is done once it has seen any offset at or past end-1, where end is
// min(to, last stable offset). Without an open transaction, offset end-1
// is always visible (a record or a marker; an aborted record's marker
// comes after it and below the last stable offset), so a slow fetch is
// waited for, never mistaken for the end (until Stall passes without any
// record: an error). Only when a transaction is open at the last stable
// offset can end-1 be an aborted record no fetch shows; then a poll idle
// for Idle ends the read.
func (r *Reader) Read(ctx context.Context, tp exactly.TP, from, to int64, fn func(*exactly.Record) error) error {
	if from >= to {
		return nil
	}
	b, err := r.Bounds(ctx, []exactly.TP{tp})
	if err != nil {
		return err
	}
	bounds, ok := b[tp]
	if !ok {
		return fmt.Errorf("reading %s: the partition does not exist", tp)
	}
	end := min(to, bounds.Stable)
	if from >= end {
		return nil
	}
	opts := append(append([]kgo.Opt{}, r.opts...), kgo.KeepControlRecords(), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
		tp.Topic: {tp.Partition: kgo.NewOffset().At(from)},
	}))
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("creating kafka client: %w", err)
	}
	defer cl.Close()
	openTxn := bounds.Stable < bounds.End && end == bounds.Stable
	seen := from - 1 // the highest offset any fetch has shown
	progress := time.Now()
	for seen < end-1 {
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
			return fmt.Errorf("reading %s from offset %d: %w", tp, seen+1, fe.Err)
		}
		if fetches.NumRecords() == 0 {
			if openTxn {
				return nil // end-1 may be an aborted record no fetch shows
			}
			if time.Since(progress) > r.Stall {
				return fmt.Errorf("reading %s: nothing arrived for %s at offset %d, the range ends at %d", tp, r.Stall, seen+1, end)
			}
			continue
		}
		progress = time.Now()
		var ferr error
		fetches.EachRecord(func(kr *kgo.Record) {
			if ferr != nil || kr.Offset <= seen {
				return
			}
			seen = kr.Offset
			if kr.Attrs.IsControl() || kr.Offset >= to {
				return
			}
			rec := &exactly.Record{Topic: kr.Topic, Partition: kr.Partition, Offset: kr.Offset,
				Key: kr.Key, Value: kr.Value, Timestamp: kr.Timestamp}
			for _, h := range kr.Headers {
				rec.Headers = append(rec.Headers, exactly.Header{Key: h.Key, Value: h.Value})
			}
			ferr = fn(rec)
		})
		if ferr != nil {
			return ferr
		}
	}
	return nil
}
