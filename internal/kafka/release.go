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
// on the spot. A process killed without leaving is such a first one. So
// the member id the broker knew this identity by is kept in a file (see
// noteMember), and a new process first sends, for that member, the
// heartbeat a clean stop would have sent (epoch -2, a static member's
// temporary departure): its partitions stay reserved for the instance id,
// and the new process inherits them when it joins. The slot lock makes
// sure the old process is dead: only one live process on the host holds
// an identity derived from the host.
func releaseOldSelf(opts []kgo.Opt, group string, id *identity) {
	if id.memberFile == "" {
		return
	}
	b, err := os.ReadFile(id.memberFile)
	old := strings.TrimSpace(string(b))
	if err != nil || old == "" {
		return
	}
	id.member = old
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
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
