package kafka

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// releaseOldSelf lets a restarted static member of a KIP-848 group take
// its place at once. Under that protocol the broker refuses a second
// member with a live instance id (UNRELEASED_INSTANCE_ID) until the first
// one's session ends (45s by default), where a classic group replaces it
// on the spot. A process killed without leaving is such a first one. So a
// new process asks the coordinator which member holds its instance id
// (ConsumerGroupDescribe; else the member id kept in a file, see
// noteMember) and first sends, for that member, the heartbeat a clean
// stop would have sent (epoch -2, a static member's temporary departure):
// its partitions stay reserved for the instance id, and the new process
// inherits them when it joins. The slot lock makes sure the old process
// is dead: only one live process on the host holds an identity derived
// from the host. (A configured instance id has no such guarantee: a
// second live process with it takes the place, as in a classic group.)
func releaseOldSelf(opts []kgo.Opt, group string, id *identity) {
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	// Who holds the instance id, as the coordinator says: this covers a
	// process killed before it could keep its member id.
	old := heldBy(ctx, cl, group, id.id)
	if old == "" && id.memberFile != "" {
		b, _ := os.ReadFile(id.memberFile)
		old = strings.TrimSpace(string(b))
	}
	if old == "" {
		return
	}
	id.member = old
	inst := id.id
	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.Group, req.MemberID, req.MemberEpoch, req.InstanceID = group, old, -2, &inst
	resp, err := req.RequestWith(ctx, cl)
	if err == nil {
		err = kerr.ErrorForCode(resp.ErrorCode)
	}
	if err != nil && !errors.Is(err, kerr.UnknownMemberID) {
		// Best effort: at worst the member waits for the old session.
		return
	}
}

// noteMember keeps the member id of a static KIP-848 member in its file
// whenever it changes (see releaseOldSelf).
func (s *Source) noteMember() {
	s.memberMu.Lock()
	defer s.memberMu.Unlock()
	if s.id.memberFile == "" || s.cfg.Source.GroupProtocol != "consumer" {
		return
	}
	m, _ := s.cl.GroupMetadata()
	if m == "" || m == s.id.member {
		return
	}
	s.id.member = m
	tmp := s.id.memberFile + ".tmp"
	if err := os.WriteFile(tmp, []byte(m+"\n"), 0o644); err == nil {
		_ = os.Rename(tmp, s.id.memberFile)
	} else {
		s.log.Debug("keeping the group member id", "file", filepath.Base(s.id.memberFile), "err", err)
	}
}

// watchMember keeps the member id file current while Run runs: franz-go
// makes a KIP-848 member's id before its first heartbeat, and a process
// killed between that heartbeat and the file's update would leave its
// successor unable to release it.
func (s *Source) watchMember(ctx context.Context) {
	if s.id.memberFile == "" || s.cfg.Source.GroupProtocol != "consumer" {
		return
	}
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		s.noteMember()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// heldBy returns the member id that holds instance id in a KIP-848 group,
// or "" when none does or the broker does not say.
func heldBy(ctx context.Context, cl *kgo.Client, group, instance string) string {
	req := kmsg.NewPtrConsumerGroupDescribeRequest()
	req.Groups = []string{group}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return ""
	}
	for _, g := range resp.Groups {
		if g.Group != group || g.ErrorCode != 0 {
			continue
		}
		for _, m := range g.Members {
			if m.InstanceID != nil && *m.InstanceID == instance {
				return m.MemberID
			}
		}
	}
	return ""
}
