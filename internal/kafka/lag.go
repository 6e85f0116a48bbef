package kafka

import (
	"context"
	"errors"
	"net"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/exactly/exactly"
)

// watchWatermarks reports the high watermark of every assigned partition
// to the Observer every WatermarkEvery, so lag is known for partitions
// that receive nothing (fetch responses only carry it when they carry
// records). It also halts an owned partition whose topic was recreated
// (another topic id) or whose next_offset is beyond the log end on two
// checks in a row (a reset cluster, a recreated topic on a broker
// without ids): the client fetches from next_offset in a log that ends
// below it and gets nothing, so without this check the member stayed
// ready with lag 0 and never applied the new records.
func (s *Source) watchWatermarks(ctx context.Context) {
	every := s.opt.watermarkEvery
	adm := kadm.NewClient(s.cl)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.mu.Lock()
		topics := map[string]bool{}
		for tp := range s.parts {
			topics[tp.Topic] = true
		}
		s.mu.Unlock()
		if len(topics) == 0 {
			continue
		}
		names := make([]string, 0, len(topics))
		for t := range topics {
			names = append(names, t)
		}
		lctx, cancel := context.WithTimeout(ctx, every)
		ends, err := adm.ListEndOffsets(lctx, names...)
		ids, _ := topicIDs(lctx, adm, names) // none when it fails: the ends still tell
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				s.log.Debug("listing end offsets for lag", "err", err)
				s.obs().Failed("kafka", kafkaErrorKind(err), err)
			}
			continue
		}
		halts := map[exactly.TP]error{}
		ends.Each(func(o kadm.ListedOffset) {
			if o.Err != nil {
				return
			}
			tp := exactly.TP{Topic: o.Topic, Partition: o.Partition}
			s.mu.Lock()
			p, mine := s.parts[tp]
			if mine && p.halted == nil {
				switch id := ids[tp.Topic]; {
				case id != "" && p.topicID != "" && id != p.topicID:
					halts[tp] = s.recreated(tp, p.next, o.Offset, p.topicID, id)
				case o.Offset < p.next:
					if p.beyond++; p.beyond >= 2 {
						halts[tp] = s.beyondEnd(tp, p.next, o.Offset)
					}
				default:
					p.beyond = 0
				}
			}
			s.mu.Unlock()
			if mine {
				s.obs().Fetched(tp, 0, o.Offset)
			}
		})
		for _, tp := range sortedKeys(halts) {
			s.obs().Failed("kafka", haltKind(halts[tp]), halts[tp])
			s.halt(tp, halts[tp])
		}
	}
}

// kafkaErrorKind names a broker error for the errors metric: the Kafka
// error code's name when there is one, else a coarse word.
func kafkaErrorKind(err error) string {
	var ke *kerr.Error
	switch {
	case errors.As(err, &ke):
		return strings.ToLower(ke.Message)
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return "network"
	}
	return "other"
}
