package kafka

import (
	"context"
	"fmt"
	"sort"
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
	dg, err := r.adm.DescribeGroups(ctx, group)
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
