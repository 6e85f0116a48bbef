package kafka

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/exactly/exactly"
)

// finish applies a settled flight.s outcomes: committed partitions move
// on and are committed to Kafka as a hint; failed ones are re-read from the
// ledger. A partition revoked or lost meanwhile is skipped: it belongs to
// another member now, and a late Kafka commit from here could move the
// group's hint backwards. It reports whether anything failed. It runs on
// the polling goroutine before AllowRebalance, as SetOffsets requires.
func (s *Source) finish(fl *flight) (failed bool) {
	commit := map[string]map[int32]kgo.EpochOffset{}
	var rewind []exactly.TP
	for _, o := range fl.outcomes {
		b := o.Batch
		tp := exactly.TP{Topic: b.Topic, Partition: b.Partition}
		s.mu.Lock()
		p := s.parts[tp]
		if p != nil {
			p.inflight = false
			if o.Committed {
				p.next = b.To
				p.failing = failing{}
			}
		}
		s.mu.Unlock()
		if p == nil {
			continue
		}
		s.recut(fl, o)
		if o.Committed {
			if commit[b.Topic] == nil {
				commit[b.Topic] = map[int32]kgo.EpochOffset{}
			}
			commit[b.Topic][b.Partition] = kgo.EpochOffset{Epoch: -1, Offset: b.To}
		}
		var re *exactly.RecordError
		switch {
		case o.Err == nil:
		case errors.As(o.Err, &re):
			s.halt(tp, fmt.Errorf("on_error: fail: %w; fix the record's table or rule and restart, consumption resumes at offset %d", re, re.Offset))
		default:
			failed = true
			rewind = append(rewind, tp)
			var fe *exactly.FencedError
			if errors.As(o.Err, &fe) {
				s.log.Warn("batch fenced", "topic", b.Topic, "partition", b.Partition, "from", b.From, "stored", fe.Stored)
			} else {
				s.mu.Lock()
				n, wait := p.failing.again(b.From, o.Err.Error(), time.Now())
				s.mu.Unlock()
				s.log.Error("batch failed; it will be read again from the ledger offset", "topic", b.Topic,
					"partition", b.Partition, "from", b.From, "to", b.To, "batch_id", b.BatchID,
					"failures_in_a_row", n, "retry_in", wait, "err", o.Err)
				s.obs().Failed("db", s.sink.Dialect().Classify(o.Err).String(), o.Err)
			}
		}
	}
	ctx, cancel := context.WithTimeout(s.hardCtx(), time.Minute)
	defer cancel()
	if len(rewind) > 0 {
		s.rewind(ctx, rewind)
	}
	if len(commit) > 0 {
		exactly.Failpoint("before_kafka_commit")
		// A hint for lag tools only; its failure changes nothing. The
		// commit is asynchronous: it gets a context of its own, since
		// finish's ctx is cancelled when finish returns, which used to
		// cancel group commits before they were sent.
		cctx, ccancel := context.WithTimeout(context.Background(), 30*time.Second)
		s.cl.CommitOffsets(cctx, commit, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
			defer ccancel()
			if err == nil && resp != nil {
				for _, t := range resp.Topics {
					for _, p := range t.Partitions {
						if err = kerr.ErrorForCode(p.ErrorCode); err != nil {
							break
						}
					}
				}
			}
			if err != nil {
				s.log.Debug("committing group offsets (hint only)", "err", err)
				s.obs().Failed("kafka", "commit_offsets", err)
			}
		})
	}
	if s.opt.onCommit != nil {
		s.opt.onCommit(fl.outcomes)
	}
	return failed
}

// recut adjusts the cut of a partition whose batch settled (see cut): its
// next batches carry half as many records when its flight ran out of time
// (another failure says nothing of the batch's size), and more again once
// they commit quickly.
func (s *Source) recut(fl *flight, o exactly.Outcome) {
	b := o.Batch
	var re *exactly.RecordError
	var fe *exactly.FencedError
	if !o.Committed && (!fl.timedOut || o.Err == nil || errors.As(o.Err, &re) || errors.As(o.Err, &fe)) {
		return
	}
	s.mu.Lock()
	p := s.parts[exactly.TP{Topic: b.Topic, Partition: b.Partition}]
	if p == nil {
		s.mu.Unlock()
		return
	}
	if o.Committed {
		was := p.cut
		lifted := p.cut.committed(fl.took, s.opt.flightTimeout, batchCaps(s.cfg.Batch, s.cfg.Sink.MaxConns, len(s.parts)).partition)
		s.mu.Unlock()
		if lifted {
			s.log.Info("batches are no longer cut smaller: they commit well within the flight's time", "topic", b.Topic, "partition", b.Partition,
				"last_cut", int(was), "took", fl.took, "limit", s.opt.flightTimeout)
		}
		return
	}
	to := p.cut.timedOut(len(b.Records))
	s.mu.Unlock()
	s.log.Warn("a flight ran out of its time: the partition's next batches carry fewer records", "topic", b.Topic, "partition", b.Partition,
		"records", len(b.Records), "max_records", to, "limit", s.opt.flightTimeout)
}

// rewind re-reads the stored next_offset of partitions whose batch did not
// commit and moves their fetch position there. Until the database answers
// the partitions stay paused, so nothing is read from a wrong position.
func (s *Source) rewind(ctx context.Context, tps []exactly.TP) {
	stored, err := s.sink.LoadPositions(ctx, tps)
	set := map[string]map[int32]kgo.EpochOffset{}
	var resume fetchSet
	s.mu.Lock()
	for _, tp := range tps {
		p := s.parts[tp]
		if p == nil {
			continue
		}
		p.recs, p.bytes = nil, 0
		p.unpause(tp, &resume)
		epoch := int32(-1)
		if err == nil {
			if pos, ok := stored[tp]; ok {
				p.next, epoch = pos.Next, pos.Epoch
			}
		}
		if set[tp.Topic] == nil {
			set[tp.Topic] = map[int32]kgo.EpochOffset{}
		}
		set[tp.Topic][tp.Partition] = kgo.EpochOffset{Epoch: epoch, Offset: p.next}
	}
	s.mu.Unlock()
	if err != nil {
		// The database is unreachable: the in-memory next is the last
		// offset known to be stored or a fence will catch it.
		s.log.Warn("re-reading offsets after a failed batch", "partitions", fmt.Sprint(tps), "err", err)
		s.obs().Failed("db", s.sink.Dialect().Classify(err).String(), err)
	}
	s.cl.SetOffsets(set)
	s.resume(resume)
}
