package kafka

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A stop is bounded: SIGTERM must end the process well within the 10s a
// supervisor waits (Kubernetes sends SIGKILL after 30s, and a killed
// member is one more dead member in the group). Before, a stop waited
// for the flights (up to 2 minutes against an unreachable database) and
// for franz-go's Close, which waits for a JoinGroup in progress: 41–58s
// while the group rebalanced.
var (
	// stopGrace is how long the flights in flight at a stop may take to
	// commit or roll back before their contexts are cancelled.
	stopGrace = 4 * time.Second
	// stopCut is how long a cancelled flight may take to return before it
	// is abandoned: the database rolls its transaction back when the
	// connection goes, or it committed, and the ledger says which on the
	// next start. Either way nothing is lost or applied twice.
	stopCut = time.Second
	// leaveWait bounds the LeaveGroup of on_stop: leave.
	leaveWait = 1500 * time.Millisecond
	// closeWait bounds the Kafka client's Close.
	closeWait = 1500 * time.Millisecond
)

// GroupFencedError is returned by Run when another process joined the
// group with this member's instance id: two processes with one identity
// would take each other's partitions in turn forever, so this one stops.
type GroupFencedError struct {
	Group, InstanceID string
	Err               error
}

func (e *GroupFencedError) Error() string {
	return fmt.Sprintf("fenced out of consumer group %q: another process joined with this member's instance id %q (%v); "+
		"each running process needs its own: unset source.instance_id to derive <hostname>-<slot>, or give each process its own", e.Group, e.InstanceID, e.Err)
}

func (e *GroupFencedError) Unwrap() error { return e.Err }

// groupError handles an error of the group management loop (franz-go
// hands them over as a fetch error without topic or partition). Being
// fenced by another member with this instance id is fatal; the rest are
// retried by the client and only logged, with the group's coordinates.
func (s *Source) groupError(err error) {
	if s.id.id != "" && errors.Is(err, kerr.FencedInstanceID) {
		var fatal error = &GroupFencedError{Group: s.cfg.Source.Group, InstanceID: s.id.id, Err: err}
		s.fatal.CompareAndSwap(nil, &fatal)
		return
	}
	if errors.Is(err, kerr.UnreleasedInstanceID) {
		// KIP-848: the broker still holds the instance id for an earlier
		// member. Usually a process of this identity that died before its
		// member id was kept (see releaseOldSelf): the id is released
		// when that session ends, and the client keeps trying. Exiting
		// would only start the same wait again.
		s.log.Warn("the broker still holds this member's instance id for an earlier member; waiting for that session to end (session_timeout)",
			"group", s.cfg.Source.Group, "instance_id", s.id.id,
			"hint", "if another live process uses this instance id, give each process its own", "err", err)
		s.obs().Failed("kafka", kafkaErrorKind(err), err)
		return
	}
	s.log.Warn("consumer group error; rejoining", "group", s.cfg.Source.Group, "instance_id", s.id.id,
		"protocol", s.cfg.Source.GroupProtocol, "err", err)
	s.obs().Failed("kafka", kafkaErrorKind(err), err)
}

// settle waits for the flights in flight, at most until stopGrace after
// the stop plus stopCut, applies those that ended and lets a waiting
// rebalance go on. A flight that has not returned by then is abandoned
// (see stopCut).
func (s *Source) settle(flights []*flight) {
	abandon := time.NewTimer(stopGrace + stopCut)
	defer abandon.Stop()
	left := 0
	for _, fl := range flights {
		select {
		case <-fl.done:
			s.finish(fl)
		case <-abandon.C:
			left++
			abandon.Reset(0)
		}
	}
	if left > 0 {
		s.log.Warn("stopping with flights that did not settle; the database rolls them back or they committed, and the ledger says which on the next start",
			"flights", left)
	}
	s.cl.AllowRebalance()
}

// stop leaves the group as source.on_stop says and closes the client,
// each step bounded (see closeWait), then releases the slot lock.
func (s *Source) stop() {
	defer s.cancelHard()
	s.cl.AllowRebalance()
	if s.id.id != "" && s.cfg.Source.OnStop == "leave" {
		ctx, cancel := context.WithTimeout(context.Background(), leaveWait)
		if err := s.leaveStatic(ctx); err != nil {
			s.log.Warn("leaving the consumer group; its partitions move when this member's session ends",
				"group", s.cfg.Source.Group, "instance_id", s.id.id, "session_timeout", s.cfg.Source.SessionTimeout.D(), "err", err)
		} else {
			s.log.Debug("left the consumer group", "group", s.cfg.Source.Group, "instance_id", s.id.id)
		}
		cancel()
	}
	if !closeThenRelease(s.cl.Close, s.id.release, closeWait) {
		// Close waits for a JoinGroup or SyncGroup in progress, which the
		// coordinator may hold for the whole rebalance timeout.
		s.log.Info("not waiting for the Kafka client to close (a group join in progress)", "group", s.cfg.Source.Group)
	}
}

// closeThenRelease closes the Kafka client, waiting at most wait, and
// releases the slot lock only once the client is closed, whenever that
// is (or when the process exits and the kernel drops the lock). Releasing
// it at the stop, with an abandoned Close still holding a JoinGroup that
// names this instance id, let a process started meanwhile on the host
// take the same slot and identity, and the old join, answered after the
// new one's, fence the newcomer out of the group (it exits).
func closeThenRelease(closeClient, release func(), wait time.Duration) (closed bool) {
	done := make(chan struct{})
	go func() {
		closeClient()
		release()
		close(done)
	}()
	select {
	case <-done:
		return true
	case <-time.After(wait):
		return false
	}
}

// leaveStatic removes this static member from the group (KIP-345 member
// removal: a LeaveGroup naming the instance id; KIP-848: a heartbeat with
// epoch -1), so its partitions are reassigned at once instead of when its
// session ends. franz-go's Close never leaves for a static member.
func (s *Source) leaveStatic(ctx context.Context) error {
	member, _ := s.cl.GroupMetadata()
	id := s.id.id
	reason := "exactly: stopping (source.on_stop: leave)"
	if s.cfg.Source.GroupProtocol == "consumer" {
		if member == "" {
			return nil
		}
		req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
		req.Group, req.MemberID, req.MemberEpoch, req.InstanceID = s.cfg.Source.Group, member, -1, &id
		resp, err := req.RequestWith(ctx, s.cl)
		if err != nil {
			return err
		}
		if err := kerr.ErrorForCode(resp.ErrorCode); err != nil && !errors.Is(err, kerr.UnknownMemberID) {
			return err
		}
		return nil
	}
	req := kmsg.NewPtrLeaveGroupRequest()
	req.Group = s.cfg.Source.Group
	m := kmsg.NewLeaveGroupRequestMember()
	m.InstanceID, m.MemberID, m.Reason = &id, member, &reason
	req.Members = append(req.Members, m)
	resp, err := req.RequestWith(ctx, s.cl)
	if err != nil {
		return err
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return err
	}
	for _, m := range resp.Members {
		if err := kerr.ErrorForCode(m.ErrorCode); err != nil && !errors.Is(err, kerr.UnknownMemberID) {
			return err
		}
	}
	return nil
}

// isGroupError reports whether a fetch error came from the group
// management loop.
func isGroupError(err error) bool {
	var gs *kgo.ErrGroupSession
	return errors.As(err, &gs)
}

// hardCtx is the context of the flights' database work: cancelled
// stopGrace after a stop (see stopGrace).
func (s *Source) hardCtx() context.Context {
	if s.hard == nil {
		return context.Background()
	}
	return s.hard
}

// InstanceID is this member's static group identity ("" when dynamic).
func (s *Source) InstanceID() string { return s.id.id }
