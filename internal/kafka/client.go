package kafka

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly/exactly"
)

// Client answers the tools' questions about the topics a pipeline reads,
// without joining its consumer group: which partitions exist and their
// bounds, where start_from would start them, who owns them, what records
// a range holds. exactly plan, adopt, reseed, replay, redrive, status,
// check and verify use it; it never commits anything to Kafka. It reads
// with read_committed, exactly like Source, so a range hashes the same as
// when it was applied.
type Client struct {
	cfg   *exactly.Config
	base  []kgo.Opt // brokers, client id, source.tls and source.sasl
	cl    *kgo.Client
	adm   *kadm.Client
	idle  time.Duration // see ReadIdle
	stall time.Duration // see ReadStall
}

// ClientOption configures a Client; every option is given to NewClient.
type ClientOption func(*Client)

// ReadIdle is how long a Read waits for a fetch before it decides nothing
// more can come, when a transaction is open at the end of the range.
// Default 10s.
func ReadIdle(d time.Duration) ClientOption { return func(c *Client) { c.idle = d } }

// ReadStall is how long a Read waits for a record it knows exists before
// it fails. Default 60s.
func ReadStall(d time.Duration) ClientOption { return func(c *Client) { c.stall = d } }

// NewClient creates a client for the configured brokers.
func NewClient(cfg *exactly.Config, opts ...ClientOption) (*Client, error) {
	base, err := clientOpts(cfg)
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(base...)
	if err != nil {
		return nil, fmt.Errorf("creating kafka client: %w", err)
	}
	c := &Client{cfg: cfg, base: base, cl: cl, adm: kadm.NewClient(cl), idle: 10 * time.Second, stall: time.Minute}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// Close closes the client.
func (c *Client) Close() { c.cl.Close() }

// Partitions lists the partitions of every topic a table rule matches,
// sorted by topic and partition.
func (c *Client) Partitions(ctx context.Context) ([]exactly.TP, error) {
	return routedPartitions(ctx, c.adm, c.cfg)
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

// TopicIDs returns the ids of the topics (base64, as the ledger stores
// them); a topic without one (a broker before Metadata v10) is absent.
func (c *Client) TopicIDs(ctx context.Context, topics []string) (map[string]string, error) {
	ids, err := topicIDs(ctx, c.adm, topics)
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

// Bounds returns the log start, high watermark and last stable offset of
// each partition Kafka has; a partition it lacks (its topic is gone, or
// has fewer partitions now) or could not answer for is absent.
func (c *Client) Bounds(ctx context.Context, tps []exactly.TP) (map[exactly.TP]exactly.Bounds, error) {
	out, _, err := c.bounds(ctx, tps)
	return out, err
}

// AllBounds is Bounds where every partition must exist: one Kafka lacks,
// or could not answer for, is an error that names it.
func (c *Client) AllBounds(ctx context.Context, tps []exactly.TP) (map[exactly.TP]exactly.Bounds, error) {
	out, lacking, err := c.bounds(ctx, tps)
	if err != nil {
		return nil, err
	}
	for _, tp := range tps {
		if err := lacking[tp]; err != nil {
			return nil, err
		}
	}
	return out, nil
}

// bounds returns the bounds of the partitions Kafka has and, for those it
// lacks or could not answer for, why.
func (c *Client) bounds(ctx context.Context, tps []exactly.TP) (map[exactly.TP]exactly.Bounds, map[exactly.TP]error, error) {
	out, lacking := map[exactly.TP]exactly.Bounds{}, map[exactly.TP]error{}
	topics := exactly.Topics(tps)
	if len(topics) == 0 {
		return out, lacking, nil
	}
	starts, err := c.adm.ListStartOffsets(ctx, topics...)
	if err != nil {
		return nil, nil, fmt.Errorf("listing log start offsets: %w", err)
	}
	ends, err := c.adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return nil, nil, fmt.Errorf("listing high watermarks: %w", err)
	}
	stable, err := c.adm.ListCommittedOffsets(ctx, topics...)
	if err != nil {
		return nil, nil, fmt.Errorf("listing last stable offsets: %w", err)
	}
	for _, tp := range tps {
		s, ok1 := starts.Lookup(tp.Topic, tp.Partition)
		e, ok2 := ends.Lookup(tp.Topic, tp.Partition)
		l, ok3 := stable.Lookup(tp.Topic, tp.Partition)
		switch {
		case !ok1 || !ok2 || !ok3:
			lacking[tp] = noPartition(tp, starts)
		case s.Err != nil || e.Err != nil || l.Err != nil:
			lacking[tp] = fmt.Errorf("listing offsets of %s: %v", tp, errors.Join(s.Err, e.Err, l.Err))
		default:
			out[tp] = exactly.Bounds{Start: s.Offset, End: e.Offset, Stable: l.Offset}
		}
	}
	return out, lacking, nil
}

// noPartition names a partition Kafka did not list: its topic is gone, or
// has fewer partitions now (deleted and created again with fewer). It was
// "listing offsets of t[2]: <nil>".
func noPartition(tp exactly.TP, listed kadm.ListedOffsets) error {
	n := 0
	for p, o := range listed[tp.Topic] {
		if p >= 0 && !errors.Is(o.Err, kerr.UnknownTopicOrPartition) { // an unknown topic is listed as one such entry
			n++
		}
	}
	if n == 0 {
		return fmt.Errorf("%s: Kafka has no topic %s", tp, tp.Topic)
	}
	return fmt.Errorf("%s: Kafka has no partition %d of %s: the topic has %d partitions (deleted and created again with fewer?)", tp, tp.Partition, tp.Topic, n)
}

// StartOffsets resolves start_from for partitions the ledger has no row
// for (see exactly.SourceConfig.StartFrom): earliest, latest,
// timestamp:<RFC3339> (the first offset whose record timestamp is at or
// after it; the end when there is none), or group (the offsets group has
// committed; a partition the group never committed starts at the log
// start, and is listed in uncommitted).
func (c *Client) StartOffsets(ctx context.Context, startFrom, group string, tps []exactly.TP) (offsets map[exactly.TP]int64, uncommitted []exactly.TP, err error) {
	return resolveStart(ctx, c.adm, startFrom, group, tps)
}

func resolveStart(ctx context.Context, adm *kadm.Client, sf, group string, tps []exactly.TP) (map[exactly.TP]int64, []exactly.TP, error) {
	topics := exactly.Topics(tps)
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

// Compacted reports whether the topic's cleanup.policy includes compact:
// records of an applied range may then legitimately be gone.
func (c *Client) Compacted(ctx context.Context, topic string) (bool, error) {
	rcs, err := c.adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		return false, fmt.Errorf("describing topic %s: %w", topic, err)
	}
	rc, err := rcs.On(topic, nil)
	if err != nil {
		return false, fmt.Errorf("describing topic %s: %w", topic, err)
	}
	if rc.Err != nil {
		return false, fmt.Errorf("describing topic %s: %w", topic, rc.Err)
	}
	for _, c := range rc.Configs {
		if c.Key == "cleanup.policy" && c.Value != nil && strings.Contains(*c.Value, "compact") {
			return true, nil
		}
	}
	return false, nil
}

func keys(m map[exactly.TP]int64) []exactly.TP {
	out := make([]exactly.TP, 0, len(m))
	for tp := range m {
		out = append(out, tp)
	}
	return out
}
