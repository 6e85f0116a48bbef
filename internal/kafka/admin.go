package kafka

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly/exactly"
)

// Admin answers questions about the topics a pipeline reads, without
// joining its consumer group: which partitions exist, where start_from
// would start them, what their first records look like. exactly plan and
// exactly adopt use it; it never commits anything to Kafka.
type Admin struct {
	cfg *exactly.Config
	cl  *kgo.Client
	adm *kadm.Client
}

// NewAdmin creates a client for the configured brokers.
func NewAdmin(cfg *exactly.Config, extra ...kgo.Opt) (*Admin, error) {
	opts, err := ClientOpts(cfg) // brokers, source.tls and source.sasl
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(append(opts, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("creating kafka client: %w", err)
	}
	return &Admin{cfg: cfg, cl: cl, adm: kadm.NewClient(cl)}, nil
}

// Close closes the client.
func (a *Admin) Close() { a.cl.Close() }

// Partitions lists the partitions of every topic a table rule matches,
// sorted by topic and partition.
func (a *Admin) Partitions(ctx context.Context) ([]exactly.TP, error) {
	return routedPartitions(ctx, a.adm, a.cfg)
}

// routedPartitions lists the partitions of every topic a table rule of cfg
// matches, sorted by topic and partition.
func routedPartitions(ctx context.Context, adm *kadm.Client, cfg *exactly.Config) ([]exactly.TP, error) {
	topics, err := adm.ListTopics(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing topics: %w", err)
	}
	var out []exactly.TP
	for _, td := range topics.Sorted() {
		if td.IsInternal || strings.HasPrefix(td.Topic, "__") {
			continue
		}
		if _, _, ok := cfg.Route(td.Topic); !ok {
			continue
		}
		if td.Err != nil {
			return nil, fmt.Errorf("describing topic %s: %w", td.Topic, td.Err)
		}
		for _, p := range td.Partitions.Sorted() {
			out = append(out, exactly.TP{Topic: td.Topic, Partition: p.Partition})
		}
	}
	return out, nil
}

// ActiveMembers returns how many members a consumer group has right now:
// a group with members is still consuming and committing.
func (a *Admin) ActiveMembers(ctx context.Context, group string) (int, error) {
	gs, err := a.adm.DescribeGroups(ctx, group)
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

// TopicIDs returns the ids of the topics (base64, as the ledger stores
// them); a topic without one (a broker before Metadata v10) is absent.
func (a *Admin) TopicIDs(ctx context.Context, topics []string) (map[string]string, error) {
	ids, err := topicIDs(ctx, a.adm, topics)
	if err != nil {
		return nil, fmt.Errorf("reading topic ids: %w", err)
	}
	for t, id := range ids {
		if id == "" {
			delete(ids, t)
		}
	}
	return ids, nil
}

// noPartition names a partition Kafka did not list: its topic is gone, or
// has fewer partitions now (deleted and created again with fewer). It was
// "listing offsets of t[2]: <nil>".
func noPartition(tp exactly.TP, listed kadm.ListedOffsets) error {
	n := len(listed[tp.Topic])
	if n == 0 {
		return fmt.Errorf("%s: Kafka has no topic %s", tp, tp.Topic)
	}
	return fmt.Errorf("%s: Kafka has no partition %d of %s: the topic has %d partitions (deleted and created again with fewer?)", tp, tp.Partition, tp.Topic, n)
}

// Bounds are a partition's log start offset and high watermark.
type Bounds struct{ Start, End int64 }

// Bounds returns the log start and end offsets of the partitions.
func (a *Admin) Bounds(ctx context.Context, tps []exactly.TP) (map[exactly.TP]Bounds, error) {
	topics := topicsOf(tps)
	starts, err := a.adm.ListStartOffsets(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("listing log start offsets: %w", err)
	}
	ends, err := a.adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("listing end offsets: %w", err)
	}
	out := map[exactly.TP]Bounds{}
	for _, tp := range tps {
		s, ok1 := starts.Lookup(tp.Topic, tp.Partition)
		e, ok2 := ends.Lookup(tp.Topic, tp.Partition)
		if !ok1 || !ok2 {
			return nil, noPartition(tp, starts)
		}
		if s.Err != nil || e.Err != nil {
			return nil, fmt.Errorf("listing offsets of %s: %v", tp, errors.Join(s.Err, e.Err))
		}
		out[tp] = Bounds{Start: s.Offset, End: e.Offset}
	}
	return out, nil
}

// StartOffsets resolves start_from for partitions the ledger has no row
// for (see exactly.SourceConfig.StartFrom): earliest, latest,
// timestamp:<RFC3339> (the first offset whose record timestamp is at or
// after it; the end when there is none), or group (the offsets group has
// committed; a partition the group never committed starts at the log
// start, and is listed in uncommitted).
func (a *Admin) StartOffsets(ctx context.Context, startFrom, group string, tps []exactly.TP) (offsets map[exactly.TP]int64, uncommitted []exactly.TP, err error) {
	return resolveStart(ctx, a.adm, startFrom, group, tps)
}

func resolveStart(ctx context.Context, adm *kadm.Client, sf, group string, tps []exactly.TP) (map[exactly.TP]int64, []exactly.TP, error) {
	topics := topicsOf(tps)
	out := map[exactly.TP]int64{}
	var listed kadm.ListedOffsets
	var err error
	switch {
	case sf == "latest":
		// The last stable offset, not the high watermark: the records of
		// a transaction open now must not fall below the seed.
		listed, err = adm.ListCommittedOffsets(ctx, topics...)
	case strings.HasPrefix(sf, "timestamp:"):
		ts, perr := time.Parse(time.RFC3339, strings.TrimPrefix(sf, "timestamp:"))
		if perr != nil {
			return nil, nil, fmt.Errorf("start_from %s: expected timestamp:<RFC3339>: %w", sf, perr)
		}
		listed, err = adm.ListOffsetsAfterMilli(ctx, ts.UnixMilli(), topics...)
		if err == nil {
			// No record at or after it: the end, the last stable
			// offset at most (as for latest).
			var stable kadm.ListedOffsets
			if stable, err = adm.ListCommittedOffsets(ctx, topics...); err == nil {
				for t, ps := range listed {
					for p, l := range ps {
						if st, ok := stable.Lookup(t, p); ok && st.Err == nil && l.Err == nil && st.Offset < l.Offset {
							l.Offset = st.Offset
							ps[p] = l
						}
					}
				}
			}
		}
	case sf == "group":
		committed, cerr := adm.FetchOffsets(ctx, group)
		if cerr != nil {
			return nil, nil, fmt.Errorf("reading consumer group %s offsets for start_from: group: %w", group, cerr)
		}
		starts, serr := adm.ListStartOffsets(ctx, topics...)
		if serr != nil {
			return nil, nil, fmt.Errorf("listing start offsets: %w", serr)
		}
		var uncommitted []exactly.TP
		for _, tp := range tps {
			if o, ok := committed.Lookup(tp.Topic, tp.Partition); ok && o.Err == nil && o.At >= 0 {
				out[tp] = o.At
				continue
			}
			l, ok := starts.Lookup(tp.Topic, tp.Partition)
			if !ok {
				return nil, nil, noPartition(tp, starts)
			}
			if l.Err != nil {
				return nil, nil, fmt.Errorf("listing start offset of %s: %v", tp, l.Err)
			}
			out[tp] = l.Offset
			uncommitted = append(uncommitted, tp)
		}
		return out, uncommitted, nil
	default:
		listed, err = adm.ListStartOffsets(ctx, topics...)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("listing offsets for start_from %s: %w", sf, err)
	}
	for _, tp := range tps {
		l, ok := listed.Lookup(tp.Topic, tp.Partition)
		if !ok {
			return nil, nil, noPartition(tp, listed)
		}
		if l.Err != nil {
			return nil, nil, fmt.Errorf("listing offsets of %s for start_from %s: %v", tp, sf, l.Err)
		}
		out[tp] = l.Offset
	}
	return out, nil, nil
}

// Sample reads up to n records of each partition from the given offsets,
// for as long as timeout, without a consumer group. Partitions with
// nothing to read return no records.
func (a *Admin) Sample(ctx context.Context, from map[exactly.TP]int64, n int, timeout time.Duration) (map[exactly.TP][]*exactly.Record, error) {
	out := map[exactly.TP][]*exactly.Record{}
	bounds, err := a.Bounds(ctx, keys(from))
	if err != nil {
		return nil, err
	}
	parts := map[string]map[int32]kgo.Offset{}
	want := 0
	for tp, o := range from {
		if o >= bounds[tp].End {
			continue
		}
		if parts[tp.Topic] == nil {
			parts[tp.Topic] = map[int32]kgo.Offset{}
		}
		parts[tp.Topic][tp.Partition] = kgo.NewOffset().At(o)
		want += int(min(int64(n), bounds[tp].End-o))
	}
	if want == 0 {
		return out, nil
	}
	base, err := ClientOpts(a.cfg)
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(append(base, kgo.ConsumePartitions(parts), kgo.FetchIsolationLevel(kgo.ReadCommitted()))...)
	if err != nil {
		return nil, fmt.Errorf("creating kafka client: %w", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	got := 0
	for got < want && ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) {
			tp := exactly.TP{Topic: r.Topic, Partition: r.Partition}
			if len(out[tp]) >= n {
				return
			}
			rec := &exactly.Record{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Key: r.Key, Value: r.Value, Timestamp: r.Timestamp}
			for _, h := range r.Headers {
				rec.Headers = append(rec.Headers, exactly.Header{Key: h.Key, Value: h.Value})
			}
			out[tp] = append(out[tp], rec)
			got++
		})
	}
	return out, nil
}

func topicsOf(tps []exactly.TP) []string {
	set := map[string]bool{}
	var out []string
	for _, tp := range tps {
		if !set[tp.Topic] {
			set[tp.Topic] = true
			out = append(out, tp.Topic)
		}
	}
	sort.Strings(out)
	return out
}

func keys(m map[exactly.TP]int64) []exactly.TP {
	out := make([]exactly.TP, 0, len(m))
	for tp := range m {
		out = append(out, tp)
	}
	return out
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
func (a *Admin) Owners(ctx context.Context, group string, tps []exactly.TP) (owners map[exactly.TP]Owner, busy string, err error) {
	owners = map[exactly.TP]Owner{}
	want := map[exactly.TP]bool{}
	for _, tp := range tps {
		want[tp] = true
	}
	gs, err := a.adm.DescribeGroups(ctx, group)
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
	cgs, cerr := a.adm.DescribeConsumerGroups(ctx, group)
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
