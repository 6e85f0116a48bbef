package kafka

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly/exactly"
)

// adjust replaces the position of every newly assigned partition with the
// stored next_offset, seeding the offsets row from start_from when there is
// none. It runs in the group's goroutine; an error makes the member rejoin,
// so a short database outage is retried here first.
func (s *Source) adjust(ctx context.Context, assigned map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	<-s.ready
	select {
	case <-s.started:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	var tps []exactly.TP
	for t, ps := range assigned {
		for p := range ps {
			tps = append(tps, exactly.TP{Topic: t, Partition: p})
		}
	}
	var stored map[exactly.TP]exactly.Position
	var err error
	for attempt := 0; attempt < 10; attempt++ {
		if stored, err = s.startOffsets(ctx, tps); err == nil || ctx.Err() != nil {
			break
		}
		s.log.Warn("reading start offsets from the sink", "partitions", len(tps), "err", err, "attempt", attempt+1)
		s.obs().Failed("db", s.sink.Dialect().Classify(err).String(), err)
		select {
		case <-time.After(time.Duration(attempt+1) * 200 * time.Millisecond):
		case <-ctx.Done():
		}
	}
	if err != nil {
		return nil, err
	}
	halts := s.checkPositions(ctx, tps, stored)
	next := make(map[exactly.TP]int64, len(stored))
	s.mu.Lock()
	for _, tp := range tps {
		pos := stored[tp]
		next[tp] = pos.Next
		table := tp.Topic
		if _, t, ok := s.cfg.Route(tp.Topic); ok {
			table = t
		}
		s.parts[tp] = &partition{table: table, next: pos.Next, topicID: pos.TopicID}
		// With the leader epoch of the last applied record the client
		// checks the log was not truncated below next_offset while the
		// pipeline was down (KIP-320): *kgo.ErrDataLoss if it was.
		assigned[tp.Topic][tp.Partition] = kgo.NewOffset().At(pos.Next).WithEpoch(pos.Epoch)
	}
	s.mu.Unlock()
	s.log.Debug("partitions assigned", "count", len(tps))
	s.obs().Assigned(next)
	for _, tp := range sortedKeys(halts) {
		s.obs().Failed("kafka", haltKind(halts[tp]), halts[tp])
		s.halt(tp, halts[tp])
	}
	return assigned, nil
}

// checkPositions compares the stored positions of newly assigned
// partitions with Kafka: a topic whose id is not the one the row was
// seeded in was recreated, a next_offset beyond the log end counts records
// Kafka does not hold (a recreated topic on a broker without ids, a reset
// or another cluster). Those partitions halt at once (see
// exactly.TopicRecreatedError, exactly.BeyondLogEndError). A row without a
// topic id gets the topic's. When Kafka cannot be asked, nothing halts
// here: the fetch's OFFSET_OUT_OF_RANGE and the watermark watch still do.
func (s *Source) checkPositions(ctx context.Context, tps []exactly.TP, stored map[exactly.TP]exactly.Position) map[exactly.TP]error {
	adm := kadm.NewClient(s.cl)
	topics := exactly.Topics(tps)
	ids, err := topicIDs(ctx, adm, topics)
	if err != nil {
		s.log.Warn("reading topic ids of newly assigned partitions", "topics", strings.Join(topics, ","), "err", err)
	}
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		s.log.Warn("reading the log end of newly assigned partitions", "topics", strings.Join(topics, ","), "err", err)
	}
	halts := map[exactly.TP]error{}
	for _, tp := range tps {
		pos := stored[tp]
		end := int64(-1)
		if l, ok := ends.Lookup(tp.Topic, tp.Partition); ok && l.Err == nil {
			end = l.Offset
		}
		id := ids[tp.Topic]
		switch {
		case id != "" && pos.TopicID != "" && id != pos.TopicID:
			halts[tp] = s.recreated(tp, pos.Next, end, pos.TopicID, id)
		case end >= 0 && pos.Next > end:
			halts[tp] = s.beyondEnd(tp, pos.Next, end)
		case id != "" && pos.TopicID == "":
			if err := s.sink.RecordTopicID(ctx, tp, id); err != nil {
				s.log.Warn("recording the topic id", "topic", tp.Topic, "partition", tp.Partition, "err", err)
				continue
			}
			pos.TopicID = id
			stored[tp] = pos
		}
	}
	return halts
}

func (s *Source) recreated(tp exactly.TP, next, end int64, stored, id string) error {
	return &exactly.TopicRecreatedError{Topic: tp.Topic, Partition: tp.Partition, Next: next, End: end, Stored: stored, ID: id,
		Hint: exactly.ReseedHint(s.cfg.File, tp.Topic, tp.Partition, "earliest")}
}

func (s *Source) beyondEnd(tp exactly.TP, next, end int64) error {
	return &exactly.BeyondLogEndError{Topic: tp.Topic, Partition: tp.Partition, Next: next, End: end,
		Cause: "the topic was deleted and recreated, the cluster was reset or replaced, or the log was truncated: the records the ledger counts as applied are not the ones Kafka holds",
		Hint:  exactly.ReseedHint(s.cfg.File, tp.Topic, tp.Partition, "earliest")}
}

// haltKind names a halt's cause for the errors metric.
func haltKind(err error) string {
	var (
		re *exactly.TopicRecreatedError
		be *exactly.BeyondLogEndError
		te *exactly.LogTruncatedError
	)
	switch {
	case errors.As(err, &re):
		return "topic_recreated"
	case errors.As(err, &be):
		return "beyond_log_end"
	case errors.As(err, &te):
		return "log_truncated"
	}
	return "offset_out_of_range"
}

// topicIDs returns the ids of the topics that have one (Metadata v10+).
func topicIDs(ctx context.Context, adm *kadm.Client, topics []string) (map[string]string, error) {
	out := map[string]string{}
	if len(topics) == 0 {
		return out, nil
	}
	md, err := adm.ListTopics(ctx, topics...)
	if err != nil {
		return out, err
	}
	for t, d := range md {
		if d.Err == nil {
			out[t] = idString(d.ID)
		}
	}
	return out, nil
}

// idString is a topic id as stored in the ledger: base64, "" for none.
func idString(id [16]byte) string {
	if id == ([16]byte{}) {
		return ""
	}
	return kadm.TopicID(id).String()
}

func sortedKeys(m map[exactly.TP]error) []exactly.TP {
	out := make([]exactly.TP, 0, len(m))
	for tp := range m {
		out = append(out, tp)
	}
	exactly.SortTPs(out)
	return out
}

// startOffsets returns the stored next_offset of each partition, seeding
// missing rows: start_from on the pipeline's first start (see
// recordFirstStart), the log start of partitions created since.
func (s *Source) startOffsets(ctx context.Context, tps []exactly.TP) (map[exactly.TP]exactly.Position, error) {
	if err := s.recordFirstStart(ctx); err != nil {
		return nil, err
	}
	stored, err := s.sink.LoadPositions(ctx, tps)
	if err != nil {
		return nil, err
	}
	var missing []exactly.TP
	for _, tp := range tps {
		if _, ok := stored[tp]; !ok {
			missing = append(missing, tp)
		}
	}
	if len(missing) == 0 {
		return stored, nil
	}
	seeds, err := s.seedOffsets(ctx, missing)
	if err != nil {
		return nil, err
	}
	for _, tp := range missing {
		if _, err := s.sink.SeedOffset(ctx, tp, seeds[tp]); err != nil {
			return nil, err
		}
	}
	seeded, err := s.sink.LoadPositions(ctx, missing)
	if err != nil {
		return nil, err
	}
	for tp, pos := range seeded {
		stored[tp] = pos
	}
	return stored, nil
}

// recordFirstStart reads the pipeline's exactly_pipelines row and, when
// there is none, this is the pipeline's first start: start_from is
// resolved for every partition of every topic it reads now, and those
// partitions are seeded with the row in one transaction (see
// exactly.Sink.RecordFirstStart).
func (s *Source) recordFirstStart(ctx context.Context) error {
	if s.first.Load() != nil {
		return nil
	}
	row, err := s.sink.FirstStart(ctx)
	if err != nil {
		return err
	}
	if row == nil {
		adm := kadm.NewClient(s.cl)
		tps, err := routedPartitions(ctx, adm, s.cfg)
		if err != nil {
			return err
		}
		seeds := map[exactly.TP]int64{}
		if len(tps) > 0 {
			var uncommitted []exactly.TP
			seeds, uncommitted, err = resolveStart(ctx, adm, s.cfg.Source.StartFrom, s.cfg.Source.Group, tps)
			if err != nil {
				return err
			}
			for _, tp := range uncommitted {
				s.log.Warn("start_from: group: the group has no committed offset for this partition; starting at the log start",
					"group", s.cfg.Source.Group, "topic", tp.Topic, "partition", tp.Partition, "offset", seeds[tp])
			}
		}
		row, err = s.sink.RecordFirstStart(ctx, s.cfg.Source.StartFrom, seeds)
		if err != nil {
			// Another instance recording it at the same moment (SQL
			// Server dooms the loser's transaction): its row stands.
			if again, aerr := s.sink.FirstStart(ctx); aerr == nil && again != nil {
				row, err = again, nil
			}
		}
		if err != nil {
			return err
		}
		if row.Notes == "" {
			s.log.Info("first start of the pipeline: start_from applied to the partitions that exist now; partitions created later start at their beginning",
				"start_from", s.cfg.Source.StartFrom, "partitions", len(seeds))
		}
	}
	s.first.Store(row)
	return nil
}

// seedOffsets seeds partitions the ledger has never seen, created after
// the pipeline's first start: they start at their log start, whatever
// start_from says (start_from latest would skip the records produced to
// them before this member was assigned them). It is read once per
// partition: the seeded row is the truth from then on.
func (s *Source) seedOffsets(ctx context.Context, tps []exactly.TP) (map[exactly.TP]int64, error) {
	first := s.first.Load()
	out, _, err := resolveStart(ctx, kadm.NewClient(s.cl), seedFrom(s.cfg, first, true), s.cfg.Source.Group, tps)
	if err != nil {
		return nil, err
	}
	for _, tp := range tps {
		s.log.Info("partition created after the pipeline's first start: starting at its beginning",
			"topic", tp.Topic, "partition", tp.Partition, "next_offset", out[tp], "first_started_at", first.StartedAt.Format(time.RFC3339))
	}
	return out, nil
}

// drop forgets revoked or lost partitions and the records buffered for
// them: they now belong to another member, which starts from the ledger.
func (s *Source) drop(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	s.mu.Lock()
	var tps []exactly.TP
	var resume fetchSet
	for t, ps := range lost {
		for _, p := range ps {
			tp := exactly.TP{Topic: t, Partition: p}
			tps = append(tps, tp)
			if q := s.parts[tp]; q != nil && (q.paused || q.halted != nil) {
				// A pause outlives the assignment: lift it, or the
				// partition would stay silent if it came back here.
				resume.add(tp)
			}
			delete(s.parts, tp)
		}
	}
	s.mu.Unlock()
	s.resume(resume)
	s.log.Debug("partitions revoked", "count", len(tps))
	s.obs().Revoked(tps)
}
