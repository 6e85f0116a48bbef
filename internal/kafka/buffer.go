package kafka

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly/exactly"
)

// bufferedLocked returns the records and bytes buffered and not yet in a
// flight, and what could go in a flight now: the next batches (see
// nextBatch) of the partitions that could be launched (see launchable).
func (s *Source) bufferedLocked() (n int, bytes int64, ready waiting) {
	busy := s.busyLocked()
	for _, p := range s.parts {
		n += len(p.recs)
		bytes += p.bytes
		if s.launchable(p, busy) {
			recs, recBytes := p.nextBatch()
			ready.add(recs, recBytes, p.first)
		}
	}
	return n, bytes, ready
}

// waiting is what buffered records could go in a flight now.
type waiting struct {
	records int
	bytes   int64
	oldest  time.Time // when the oldest of them arrived
}

// add counts a partition's next batch: its records and bytes, and when
// its oldest record arrived.
func (w *waiting) add(records int, bytes int64, first time.Time) {
	w.records += records
	w.bytes += bytes
	if w.oldest.IsZero() || first.Before(w.oldest) {
		w.oldest = first
	}
}

// busyLocked returns the tables in a flight when a table must be in one
// flight at a time (the dialect is not exactly.SharedTables), else nil.
func (s *Source) busyLocked() map[string]bool {
	if st, ok := s.sink.Dialect().(exactly.SharedTables); ok && st.SharedTables() {
		return nil
	}
	busy := map[string]bool{}
	for _, p := range s.parts {
		if p.inflight {
			busy[p.table] = true
		}
	}
	return busy
}

// launchable says whether a partition's buffer could go in a flight now.
func (s *Source) launchable(p *partition, busy map[string]bool) bool {
	return len(p.recs) > 0 && p.halted == nil && !p.inflight && !busy[p.table] && !time.Now().Before(p.failing.retryAt)
}

// buffer appends polled records to their partitions' buffers, dropping
// records of partitions no longer assigned and records below the position
// the partition expects (left over from before a rewind). A partition whose
// buffer holds more than its share of the batch caps is paused, so one busy
// partition cannot crowd the others out while memory stays bounded.
func (s *Source) buffer(fetches kgo.Fetches) {
	type seen struct {
		tp      exactly.TP
		n       int
		highWat int64
	}
	var observed []seen
	defer func() { // after the unlock below: observers never run under mu
		for _, o := range observed {
			s.obs().Fetched(o.tp, o.n, o.highWat)
		}
	}()
	// Halts found below run after the unlock (halt takes mu).
	halts := map[exactly.TP]error{}
	defer func() {
		for _, tp := range sortedKeys(halts) {
			s.obs().Failed("kafka", haltKind(halts[tp]), halts[tp])
			s.halt(tp, halts[tp])
		}
	}()
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	c := batchCaps(s.cfg.Batch, s.cfg.Sink.MaxConns, len(s.parts))
	var pause fetchSet
	ids := map[string]string{}
	fetches.EachTopic(func(t kgo.FetchTopic) { ids[t.Topic] = idString(t.TopicID) })
	fetches.EachPartition(func(ft kgo.FetchTopicPartition) {
		tp := exactly.TP{Topic: ft.Topic, Partition: ft.Partition}
		p := s.parts[tp]
		if p == nil || p.halted != nil {
			return
		}
		if id := ids[ft.Topic]; id != "" && p.topicID != "" && id != p.topicID && len(ft.Records) > 0 {
			// Records of another topic of the same name: the topic
			// was recreated while this member owned it. Not one of
			// them is applied.
			halts[tp] = s.recreated(tp, p.next, ft.HighWatermark, p.topicID, id)
			return
		}
		before := len(p.recs)
		defer func() { observed = append(observed, seen{tp, len(p.recs) - before, ft.HighWatermark}) }()
		slab := make([]exactly.Record, len(ft.Records)) // one allocation, not one per record
		for i, r := range ft.Records {
			want := p.next
			if p.inflight {
				want = p.flightTo
			}
			if n := len(p.recs); n > 0 {
				want = p.recs[n-1].Offset + 1
			}
			if r.Offset < want {
				continue
			}
			rec := &slab[i]
			*rec = exactly.Record{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset,
				Key: r.Key, Value: r.Value, Timestamp: r.Timestamp, LeaderEpoch: r.LeaderEpoch}
			for _, h := range r.Headers {
				rec.Headers = append(rec.Headers, exactly.Header{Key: h.Key, Value: h.Value})
			}
			if len(p.recs) == 0 {
				p.first = now
			}
			p.recs = append(p.recs, rec)
			p.bytes += int64(len(r.Key) + len(r.Value))
		}
		if !p.paused && (len(p.recs) >= c.partition || p.bytes >= c.partitionBytes) {
			p.paused = true
			pause.add(tp)
		}
	})
	s.pause(pause)
}

// handleErrors logs fetch errors with their coordinates. An out-of-range
// offset means records below the log start were deleted before they were
// applied: the partition halts loudly instead of jumping over them.
func (s *Source) handleErrors(ctx context.Context, fetches kgo.Fetches) {
	for _, fe := range fetches.Errors() {
		if errors.Is(fe.Err, context.DeadlineExceeded) || errors.Is(fe.Err, context.Canceled) {
			continue
		}
		if isGroupError(fe.Err) {
			s.groupError(fe.Err)
			continue
		}
		if fe.Topic == "" {
			// Not about a partition (a client-wide error: no broker
			// reachable, an authentication failure): say what is known.
			s.log.Warn("kafka client error", "brokers", strings.Join(s.cfg.Source.Brokers, ","), "group", s.cfg.Source.Group, "err", fe.Err)
			s.obs().Failed("kafka", kafkaErrorKind(fe.Err), fe.Err)
			continue
		}
		tp := exactly.TP{Topic: fe.Topic, Partition: fe.Partition}
		var dl *kgo.ErrDataLoss
		if errors.As(fe.Err, &dl) {
			s.dataLoss(tp, dl)
			continue
		}
		if errors.Is(fe.Err, kerr.OffsetOutOfRange) {
			s.mu.Lock()
			p := s.parts[tp]
			var next int64
			if p != nil {
				next = p.next
			}
			s.mu.Unlock()
			if p == nil || p.halted != nil {
				continue
			}
			adm := kadm.NewClient(s.cl)
			if ends, err := adm.ListEndOffsets(ctx, tp.Topic); err == nil {
				if l, ok := ends.Lookup(tp.Topic, tp.Partition); ok && l.Err == nil && next > l.Offset {
					be := s.beyondEnd(tp, next, l.Offset)
					s.obs().Failed("kafka", haltKind(be), be)
					s.halt(tp, be)
					continue
				}
			}
			gap := &exactly.GapError{Topic: tp.Topic, Partition: tp.Partition, Want: next, Got: -1}
			if starts, err := adm.ListStartOffsets(ctx, tp.Topic); err == nil {
				if l, ok := starts.Lookup(tp.Topic, tp.Partition); ok {
					gap.Got = l.Offset
				}
			}
			gap.Hint = "run exactly verify, then accept the loss: " + exactly.ReseedHint(s.cfg.File, tp.Topic, tp.Partition, fmt.Sprint(max(gap.Got, 0)))
			s.obs().Failed("kafka", "offset_out_of_range", gap)
			s.halt(tp, gap)
			continue
		}
		s.log.Warn("fetch error", "topic", fe.Topic, "partition", fe.Partition, "err", fe.Err)
		s.obs().Failed("kafka", kafkaErrorKind(fe.Err), fe.Err)
	}
}

// dataLoss handles franz-go's report that the log was truncated below
// what it had consumed (KIP-320; an unclean leader election): it moved the
// cursor back to where the log diverged. When that is below what the
// pipeline applied, or may have applied in the flight in progress, the
// partition halts: the tables hold records Kafka no longer has, and the
// records written in their place would be skipped (buffer drops what is
// below the expected offset). Otherwise only buffered records were lost:
// they are dropped and read again from the new position.
func (s *Source) dataLoss(tp exactly.TP, dl *kgo.ErrDataLoss) {
	s.mu.Lock()
	p := s.parts[tp]
	if p == nil || p.halted != nil {
		s.mu.Unlock()
		return
	}
	applied := p.next
	if p.inflight {
		applied = p.flightTo
	}
	if dl.ResetTo >= applied {
		keep := p.recs[:0]
		var bytes int64
		for _, r := range p.recs {
			if r.Offset < dl.ResetTo {
				keep = append(keep, r)
				bytes += int64(len(r.Key) + len(r.Value))
			}
		}
		clear(p.recs[len(keep):])
		p.recs, p.bytes = keep, bytes
		// The dropped records are read again from the reset point: a
		// partition paused for its full buffer must fetch (were its buffer
		// now empty, no flight would ever take it and resume it).
		var resume fetchSet
		p.unpause(tp, &resume)
		s.mu.Unlock()
		s.resume(resume)
		s.log.Warn("log truncated above the applied offset: buffered records dropped and read again", "topic", tp.Topic, "partition", tp.Partition,
			"applied_to", applied, "reset_to", dl.ResetTo, "consumed_to", dl.ConsumedTo)
		return
	}
	next := p.next
	s.mu.Unlock()
	err := &exactly.LogTruncatedError{Topic: tp.Topic, Partition: tp.Partition, Next: next, Epoch: dl.ConsumedToEpoch, ResetTo: dl.ResetTo,
		Hint: exactly.ReseedHint(s.cfg.File, tp.Topic, tp.Partition, fmt.Sprint(dl.ResetTo))}
	s.obs().Failed("kafka", haltKind(err), err)
	s.halt(tp, err)
}

// halt stops a partition: its buffer is dropped and fetching paused.
func (s *Source) halt(tp exactly.TP, err error) {
	s.mu.Lock()
	if p := s.parts[tp]; p != nil {
		p.halted, p.recs, p.bytes = err, nil, 0
	}
	s.mu.Unlock()
	s.pause(fetchSet{tp.Topic: {tp.Partition}})
	s.log.Error("partition halted", "topic", tp.Topic, "partition", tp.Partition, "err", err)
	s.obs().Halted(tp, err)
}

// fetchSet collects, under mu, the partitions whose fetching is to be
// paused or resumed, for one call of the client after the unlock.
type fetchSet map[string][]int32

func (f *fetchSet) add(tp exactly.TP) {
	if *f == nil {
		*f = fetchSet{}
	}
	(*f)[tp.Topic] = append((*f)[tp.Topic], tp.Partition)
}

// unpause lifts p's pause, adding it to resume, when it is paused: its
// buffer went in a flight or was dropped, so it may fetch its share again.
func (p *partition) unpause(tp exactly.TP, resume *fetchSet) {
	if p.paused {
		p.paused = false
		resume.add(tp)
	}
}

// pause pauses fetching the partitions of f, if any.
func (s *Source) pause(f fetchSet) {
	if len(f) > 0 {
		s.cl.PauseFetchPartitions(f)
	}
}

// resume resumes fetching the partitions of f, if any.
func (s *Source) resume(f fetchSet) {
	if len(f) > 0 {
		s.cl.ResumeFetchPartitions(f)
	}
}
