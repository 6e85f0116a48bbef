package kafka

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly/exactly"
)

// Read delivers, in offset order, every committed record of tp with from
// <= offset < to. from must not be below the log start offset.
//
// Where the range ends is known without guessing from time: transaction
// markers are fetched too (KeepControlRecords, never delivered), so the
// read is done once it has seen any offset at or past end-1, where end is
// min(to, last stable offset). Without an open transaction, offset end-1
// is always visible (a record or a marker; an aborted record's marker
// comes after it and below the last stable offset), so a slow fetch is
// waited for, never mistaken for the end (until ReadStall passes without any
// record: an error). Only when a transaction is open at the last stable
// offset can end-1 be an aborted record no fetch shows; then a poll idle
// for ReadIdle ends the read.
func (c *Client) Read(ctx context.Context, tp exactly.TP, from, to int64, fn func(*exactly.Record) error) error {
	if from >= to {
		return nil
	}
	b, err := c.Bounds(ctx, []exactly.TP{tp})
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
	opts := append(append([]kgo.Opt{}, c.readOpts()...), kgo.KeepControlRecords(), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
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
		pctx, cancel := context.WithTimeout(ctx, c.idle)
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
			if time.Since(progress) > c.stall {
				return fmt.Errorf("reading %s: nothing arrived for %s at offset %d, the range ends at %d", tp, c.stall, seen+1, end)
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

// readOpts are the options of a client that reads a range: read_committed
// as Source, an out-of-range offset an error, and fetches the broker holds
// open at most 250ms.
func (c *Client) readOpts() []kgo.Opt {
	return append(append([]kgo.Opt{}, c.base...),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NoResetOffset()),
		kgo.FetchMaxWait(250*time.Millisecond))
}

// Sample reads up to n records of each partition from the given offsets,
// for as long as timeout, without a consumer group. Partitions with
// nothing to read return no records.
func (c *Client) Sample(ctx context.Context, from map[exactly.TP]int64, n int, timeout time.Duration) (map[exactly.TP][]*exactly.Record, error) {
	out := map[exactly.TP][]*exactly.Record{}
	bounds, err := c.AllBounds(ctx, keys(from))
	if err != nil {
		return nil, err
	}
	parts := map[string]map[int32]kgo.Offset{}
	want := 0
	for tp, o := range from {
		if o >= bounds[tp].End {
			continue
		}
		if parts[tp.Topic] == nil {
			parts[tp.Topic] = map[int32]kgo.Offset{}
		}
		parts[tp.Topic][tp.Partition] = kgo.NewOffset().At(o)
		want += int(min(int64(n), bounds[tp].End-o))
	}
	if want == 0 {
		return out, nil
	}
	opts := append(append([]kgo.Opt{}, c.base...), kgo.ConsumePartitions(parts), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("creating kafka client: %w", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	got := 0
	for got < want && ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) {
			tp := exactly.TP{Topic: r.Topic, Partition: r.Partition}
			if len(out[tp]) >= n {
				return
			}
			rec := &exactly.Record{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Key: r.Key, Value: r.Value, Timestamp: r.Timestamp}
			for _, h := range r.Headers {
				rec.Headers = append(rec.Headers, exactly.Header{Key: h.Key, Value: h.Value})
			}
			out[tp] = append(out[tp], rec)
			got++
		})
	}
	return out, nil
}
