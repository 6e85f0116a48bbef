package kafka

import (
	"context"
	"fmt"
	"sort"

	"github.com/exactly/exactly"
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
func (c *Client) Group(ctx context.Context, group string) (*GroupState, error) {
	return describeGroup(ctx, c.adm, group)
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

// ActiveMembers returns how many members a consumer group has right now:
// a group with members is still consuming and committing.
func (c *Client) ActiveMembers(ctx context.Context, group string) (int, error) {
	gs, err := c.adm.DescribeGroups(ctx, group)
	if err != nil {
		return 0, fmt.Errorf("describing consumer group %s: %w", group, err)
	}
	g, ok := gs[group]
	if !ok {
		return 0, nil
	}
	if g.Err != nil {
		return 0, fmt.Errorf("describing consumer group %s: %w", group, g.Err)
	}
	return len(g.Members), nil
}

// Owner is the group member a partition is assigned to now.
type Owner struct {
	Member, Instance, Client, Host string
}

func (o Owner) String() string {
	s := "member " + o.Member
	if o.Instance != "" {
		s += " (instance " + o.Instance + ")"
	}
	return s + " of client " + o.Client + " on " + o.Host
}

// Owners returns the members of group that own the given partitions now,
// in a classic group (DescribeGroups) or a KIP-848 consumer group
// (ConsumerGroupDescribe). A group with members that is rebalancing owns
// every partition its members subscribe to: the rebalance may hand any of
// them out, so busy is set and the caller must treat them as owned. exactly
// replay and exactly reseed refuse to touch an owned partition: a running
// pipeline would write over them or be written over.
func (c *Client) Owners(ctx context.Context, group string, tps []exactly.TP) (owners map[exactly.TP]Owner, busy string, err error) {
	owners = map[exactly.TP]Owner{}
	want := map[exactly.TP]bool{}
	for _, tp := range tps {
		want[tp] = true
	}
	gs, err := c.adm.DescribeGroups(ctx, group)
	if err != nil {
		return nil, "", fmt.Errorf("describing consumer group %s: %w", group, err)
	}
	if g, ok := gs[group]; ok && g.Err == nil && len(g.Members) > 0 {
		for _, m := range g.Members {
			c, ok := m.Assigned.AsConsumer()
			if !ok {
				continue
			}
			for _, t := range c.Topics {
				for _, p := range t.Partitions {
					if tp := (exactly.TP{Topic: t.Topic, Partition: p}); want[tp] {
						owners[tp] = Owner{Member: m.MemberID, Instance: deref(m.InstanceID), Client: m.ClientID, Host: m.ClientHost}
					}
				}
			}
		}
		if g.State != "Stable" && g.State != "Empty" && g.State != "Dead" {
			busy = fmt.Sprintf("consumer group %s is in state %s with %d member(s)", group, g.State, len(g.Members))
		}
	}
	// A KIP-848 group is not in DescribeGroups' answer (or is, without
	// assignments): ask ConsumerGroupDescribe too. A broker without it
	// answers with an error that says so; the classic answer stands.
	cgs, cerr := c.adm.DescribeConsumerGroups(ctx, group)
	if cerr == nil {
		if g, ok := cgs[group]; ok && g.Err == nil {
			for _, m := range g.Members {
				for t, ps := range m.Assignment {
					for p := range ps {
						for tp := range want {
							// A broker may name the topic by its id only
							// (kfake does; kadm keeps no id): a partition
							// of an unnamed topic is taken as owned.
							if tp.Partition == p && (tp.Topic == t || t == "") {
								owners[tp] = Owner{Member: m.MemberID, Instance: deref(m.InstanceID), Client: m.ClientID, Host: m.ClientHost}
							}
						}
					}
				}
			}
			if len(g.Members) > 0 && g.State != "Stable" && g.State != "Empty" && g.State != "Dead" && busy == "" {
				busy = fmt.Sprintf("consumer group %s is in state %s with %d member(s)", group, g.State, len(g.Members))
			}
		}
	}
	return owners, busy, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
