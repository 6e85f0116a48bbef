package kafka

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/exactly/exactly"
)

// Stall causes.
const (
	StallBrokerUnreachable = "broker_unreachable"
	StallWaitingForGroup   = "waiting_for_group"
)

// Stall is why this member applies nothing although it should: no broker
// answers, or records wait in its topics while the group gives it no
// partition. The zero Stall means nothing is in the way.
type Stall struct {
	Cause  string    // StallBrokerUnreachable, StallWaitingForGroup or ""
	Detail string    // what is known: brokers and error, group state and members, records waiting
	Since  time.Time // when this cause was first seen
}

// StallObserver is told, on every check, why the member stalls (cause ""
// once it moves again). An Observer may implement it.
type StallObserver interface {
	Stalled(cause, detail string)
}

type stallState struct {
	mu sync.Mutex
	s  Stall
}

// Stall returns why this member stalls, if it does.
func (s *Source) Stall() Stall {
	s.stall.mu.Lock()
	defer s.stall.mu.Unlock()
	return s.stall.s
}

// watchStall checks soon after the start and then every StallEvery why
// nothing moves, and says it: a WARN each time, the Stall for /readyz and
// the status page, the observer for the metric. Before, an unreachable
// broker at start-up logged "running" and then nothing for 150s, and a
// member left without partitions by a stuck group said nothing at all.
func (s *Source) watchStall(ctx context.Context) {
	every := s.opt.stallEvery
	first := min(3*time.Second, every)
	t := time.NewTimer(first)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cause, detail := s.checkStall(ctx, min(every/2, 3*time.Second))
		if ctx.Err() != nil {
			return
		}
		s.setStall(cause, detail)
		t.Reset(every)
	}
}

func (s *Source) setStall(cause, detail string) {
	s.stall.mu.Lock()
	prev := s.stall.s
	if cause != prev.Cause {
		s.stall.s.Since = time.Now()
	}
	s.stall.s.Cause, s.stall.s.Detail = cause, detail
	since := s.stall.s.Since
	s.stall.mu.Unlock()
	switch {
	case cause != "":
		s.log.Warn("nothing moves: "+detail, "cause", cause, "for", time.Since(since).Round(time.Second),
			"group", s.cfg.Source.Group, "instance_id", s.id.id)
	case prev.Cause != "":
		s.log.Info("moving again", "was", prev.Cause, "for", time.Since(prev.Since).Round(time.Second))
	}
	if so, ok := s.obs().(StallObserver); ok {
		so.Stalled(cause, detail)
	}
}

// checkStall returns why nothing moves, or "" when nothing is in the way:
// the member owns partitions and a broker answers, or it owns none and no
// record waits beyond the ledger (more members than partitions).
func (s *Source) checkStall(ctx context.Context, timeout time.Duration) (cause, detail string) {
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := s.cl.Ping(pctx); err != nil {
		return StallBrokerUnreachable, fmt.Sprintf("no broker answers (%s): %v", strings.Join(s.cfg.Source.Brokers, ","), err)
	}
	if s.Assigned() > 0 {
		return "", ""
	}
	waiting, topics, err := s.unappliedRecords(pctx)
	if err != nil {
		s.log.Debug("counting records waiting for the group", "err", err)
		return "", ""
	}
	if waiting == 0 {
		return "", ""
	}
	return StallWaitingForGroup, fmt.Sprintf("%d records wait in %s but this member has no partition: %s",
		waiting, strings.Join(topics, ","), s.describeGroup(pctx))
}

// unappliedRecords counts the records of the consumed topics beyond the
// ledger's next_offset (a partition the ledger has not seen counts whole).
func (s *Source) unappliedRecords(ctx context.Context) (int64, []string, error) {
	topics := s.cl.GetConsumeTopics()
	if len(topics) == 0 {
		return 0, nil, nil
	}
	sort.Strings(topics)
	ends, err := kadm.NewClient(s.cl).ListEndOffsets(ctx, topics...)
	if err != nil {
		return 0, nil, err
	}
	var tps []exactly.TP
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err == nil {
			tps = append(tps, exactly.TP{Topic: o.Topic, Partition: o.Partition})
		}
	})
	stored, err := s.sink.LoadOffsets(ctx, tps)
	if err != nil {
		return 0, nil, err
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err == nil {
			n += max(o.Offset-stored[exactly.TP{Topic: o.Topic, Partition: o.Partition}], 0)
		}
	})
	return n, topics, nil
}

// describeGroup says what the coordinator says of the group: its state and
// members.
func (s *Source) describeGroup(ctx context.Context) string {
	group := s.cfg.Source.Group
	g, err := describeGroup(ctx, kadm.NewClient(s.cl), group)
	if err != nil {
		return fmt.Sprintf("group %q: describing it: %v", group, err)
	}
	members := make([]string, 0, len(g.Members))
	for _, m := range g.Members {
		members = append(members, m.ID+"@"+m.Host)
	}
	sort.Strings(members)
	me := s.id.id
	if me == "" {
		me, _ = s.cl.GroupMetadata()
	}
	return fmt.Sprintf("group %q is %s with %d members [%s] (this member: %s)", group, g.State, len(members), strings.Join(members, " "), me)
}
