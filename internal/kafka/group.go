package kafka

import (
	"context"
	"fmt"
	"sort"

	"github.com/twmb/franz-go/pkg/kadm"
)

// GroupMember is one member of a consumer group as its coordinator sees it.
type GroupMember struct {
	ID         string `json:"id"` // the instance id of a static member, else the member id
	Static     bool   `json:"static"`
	Host       string `json:"host"`
	Partitions int    `json:"partitions"` // assigned (classic groups: as the leader assigned them)
}

// GroupState is a consumer group as its coordinator describes it.
type GroupState struct {
	Group    string        `json:"group"`
	State    string        `json:"state"` // Stable, PreparingRebalance, CompletingRebalance, Empty, Dead
	Protocol string        `json:"protocol"`
	Members  []GroupMember `json:"members"`
}

// Group describes a consumer group (exactly status).
func (r *Reader) Group(ctx context.Context, group string) (*GroupState, error) {
	return describeGroup(ctx, r.adm, group)
}

// describeGroup asks the coordinator for a classic group (DescribeGroups)
// and, when that names no member, for a KIP-848 consumer group
// (ConsumerGroupDescribe): a group_protocol: consumer group is not in the
// classic answer, or is there empty (kfake: Stable, 0 members; Kafka:
// an error), so status said "no member is running" beside a live member.
func describeGroup(ctx context.Context, adm *kadm.Client, group string) (*GroupState, error) {
	st, cerr := describeClassic(ctx, adm, group)
	if cerr == nil && len(st.Members) > 0 {
		return st, nil
	}
	if cgs, err := adm.DescribeConsumerGroups(ctx, group); err == nil {
		if g, ok := cgs[group]; ok && g.Err == nil && len(g.Members) > 0 {
			st := &GroupState{Group: group, State: g.State, Protocol: "consumer"}
			for _, m := range g.Members {
				gm := GroupMember{ID: m.MemberID, Host: m.ClientHost}
				if m.InstanceID != nil {
					gm.ID, gm.Static = *m.InstanceID, true
				}
				for _, ps := range m.Assignment {
					gm.Partitions += len(ps)
				}
				st.Members = append(st.Members, gm)
			}
			sort.Slice(st.Members, func(i, j int) bool { return st.Members[i].ID < st.Members[j].ID })
			return st, nil
		}
	}
	return st, cerr
}

func describeClassic(ctx context.Context, adm *kadm.Client, group string) (*GroupState, error) {
	dg, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return nil, fmt.Errorf("describing consumer group %s: %w", group, err)
	}
	d, ok := dg[group]
	if !ok {
		return nil, fmt.Errorf("describing consumer group %s: not in the answer", group)
	}
	if d.Err != nil {
		return nil, fmt.Errorf("describing consumer group %s: %w", group, d.Err)
	}
	st := &GroupState{Group: group, State: d.State, Protocol: d.Protocol}
	for _, m := range d.Members {
		gm := GroupMember{ID: m.MemberID, Host: m.ClientHost}
		if m.InstanceID != nil {
			gm.ID, gm.Static = *m.InstanceID, true
		}
		if a, ok := m.Assigned.AsConsumer(); ok {
			for _, t := range a.Topics {
				gm.Partitions += len(t.Partitions)
			}
		}
		st.Members = append(st.Members, gm)
	}
	sort.Slice(st.Members, func(i, j int) bool { return st.Members[i].ID < st.Members[j].ID })
	return st, nil
}
