// Package workload is the checkable CDC workload of the demo and the crash
// tests: it produces inserts, updates and deletes of a small key space into
// several topics, derives the expected table state from an independent
// read_committed read of those topics (not from what the producer believed
// it wrote), and compares it with the real tables and the ledger.
package workload

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Topics of the workload and their tables.
const (
	TopicCustomers = "demo.customers"
	TopicOrders    = "demo.orders"
	TopicEvents    = "demo.events"
	TableCustomers = "demo_customers"
	TableOrders    = "demo_orders"
	TableEvents    = "demo_events"
)

// Topics lists the workload's topics.
var Topics = []string{TopicCustomers, TopicOrders, TopicEvents}

// DDL returns the statements creating the workload's tables for a driver.
func DDL(driver string) []string {
	text, suffix := "TEXT", ""
	switch driver {
	case "mysql":
		text, suffix = "VARCHAR(200)", " DEFAULT CHARSET=utf8mb4" // the names hold "✓"
	case "sqlserver":
		text = "NVARCHAR(200)"
	}
	return []string{
		"CREATE TABLE " + TableCustomers + " (id BIGINT PRIMARY KEY, name " + text + " NOT NULL, balance BIGINT, version BIGINT)" + suffix,
		"CREATE TABLE " + TableOrders + " (id BIGINT PRIMARY KEY, customer_id BIGINT, amount BIGINT, status " + text + ")" + suffix,
		"CREATE TABLE " + TableEvents + " (event_id BIGINT NOT NULL, kind " + text + ", customer_id BIGINT)" + suffix,
	}
}

// Drop returns statements removing the workload's tables.
func Drop() []string {
	return []string{
		"DROP TABLE IF EXISTS " + TableCustomers,
		"DROP TABLE IF EXISTS " + TableOrders,
		"DROP TABLE IF EXISTS " + TableEvents,
	}
}

// Rules is the tables section of a configuration for the workload.
const Rules = `tables:
  - topics: '^demo\.(customers|orders)$'
    table: 'demo_$1'
    mode: upsert
    key: [id]
  - topics: demo.events
    table: demo_events
    mode: append
`

// Generator produces the workload deterministically from a seed. It is
// safe for concurrent use (several producers share one event sequence).
type Generator struct {
	mu        sync.Mutex
	rng       *rand.Rand
	customers int
	orders    int
	event     int64
	version   int64
	live      map[string]bool
}

// NewGenerator returns a generator over a key space of the given size.
func NewGenerator(seed int64, keys int) *Generator {
	return &Generator{rng: rand.New(rand.NewSource(seed)), customers: keys, orders: 2 * keys, live: map[string]bool{}}
}

// Next returns the next record: about 40% customers, 40% orders, 20%
// events; of the upserts about 1 in 8 is a delete (a tombstone).
func (g *Generator) Next() *kgo.Record {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := g.rng.Intn(10)
	switch {
	case n < 4:
		id := g.rng.Intn(g.customers) + 1
		key := []byte(fmt.Sprintf(`{"id":%d}`, id))
		k := "c" + strconv.Itoa(id)
		if g.live[k] && g.rng.Intn(8) == 0 {
			delete(g.live, k)
			return &kgo.Record{Topic: TopicCustomers, Key: key}
		}
		g.live[k] = true
		g.version++
		v, _ := json.Marshal(map[string]any{"id": id, "name": fmt.Sprintf("customer %d v%d ✓", id, g.version),
			"balance": g.rng.Intn(1_000_000) - 500_000, "version": g.version})
		return &kgo.Record{Topic: TopicCustomers, Key: key, Value: v}
	case n < 8:
		id := g.rng.Intn(g.orders) + 1
		key := []byte(strconv.Itoa(id)) // a scalar key; the row's id is in the value
		k := "o" + strconv.Itoa(id)
		if g.live[k] && g.rng.Intn(8) == 0 {
			delete(g.live, k)
			return &kgo.Record{Topic: TopicOrders, Key: key}
		}
		g.live[k] = true
		statuses := []string{"new", "paid", "shipped", "returned"}
		v, _ := json.Marshal(map[string]any{"id": id, "customer_id": g.rng.Intn(g.customers) + 1,
			"amount": g.rng.Intn(100_000), "status": statuses[g.rng.Intn(len(statuses))]})
		return &kgo.Record{Topic: TopicOrders, Key: key, Value: v}
	default:
		g.event++
		v, _ := json.Marshal(map[string]any{"event_id": g.event, "kind": []string{"view", "click", "buy"}[g.rng.Intn(3)],
			"customer_id": g.rng.Intn(g.customers) + 1})
		return &kgo.Record{Topic: TopicEvents, Key: []byte(strconv.FormatInt(g.event, 10)), Value: v}
	}
}

// Produce writes n records at about rate records/s (0: as fast as
// possible) with an idempotent producer, and waits until all are acked.
func Produce(ctx context.Context, brokers []string, g *Generator, n int, rate int) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(TopicEvents),
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))
	if err != nil {
		return err
	}
	defer cl.Close()
	start := time.Now()
	errc := make(chan error, 1)
	for i := 0; i < n; i++ {
		if rate > 0 {
			if wait := time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(rate))); wait > 0 {
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(wait):
				}
			}
		}
		cl.Produce(ctx, g.Next(), func(_ *kgo.Record, err error) {
			if err != nil {
				select {
				case errc <- err:
				default:
				}
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return err
	}
	select {
	case err := <-errc:
		return fmt.Errorf("producing: %w", err)
	default:
	}
	return nil
}

// EndOffsets returns the high watermark of every partition of the topics.
func EndOffsets(ctx context.Context, brokers []string, topics ...string) (map[string]map[int32]int64, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topics...)
	if err != nil {
		return nil, err
	}
	out := map[string]map[int32]int64{}
	ends.Each(func(l kadm.ListedOffset) {
		if out[l.Topic] == nil {
			out[l.Topic] = map[int32]int64{}
		}
		out[l.Topic][l.Partition] = l.Offset
	})
	return out, nil
}

// ReadAll reads every committed record of the topics, from the start to
// the end offsets listed when it begins, with read_committed isolation.
// Records of aborted transactions are not returned. Transaction markers
// occupy offsets too (the last offset of a partition is often a commit or
// abort marker), so they are read to know where a partition ends, and
// dropped. Every transaction must be finished: a read_committed reader
// stops at an open transaction.
func ReadAll(ctx context.Context, brokers []string, topics ...string) ([]*kgo.Record, error) {
	return read(ctx, brokers, kgo.ReadCommitted(), topics)
}

// ReadAborted returns the records of aborted transactions: those a
// read_uncommitted reader sees and a read_committed reader does not.
func ReadAborted(ctx context.Context, brokers []string, topics ...string) ([]*kgo.Record, error) {
	committed, err := read(ctx, brokers, kgo.ReadCommitted(), topics)
	if err != nil {
		return nil, err
	}
	all, err := read(ctx, brokers, kgo.ReadUncommitted(), topics)
	if err != nil {
		return nil, err
	}
	type at struct {
		t string
		p int32
		o int64
	}
	seen := make(map[at]bool, len(committed))
	for _, r := range committed {
		seen[at{r.Topic, r.Partition, r.Offset}] = true
	}
	var out []*kgo.Record
	for _, r := range all {
		if !seen[at{r.Topic, r.Partition, r.Offset}] {
			out = append(out, r)
		}
	}
	return out, nil
}

// DataEnds returns, per partition, the offset after its last record: where
// a sink's next_offset must arrive. A trailing transaction marker is not a
// record, so a consumer that applied everything may stop short of the high
// watermark.
func DataEnds(recs []*kgo.Record) map[string]map[int32]int64 {
	out := map[string]map[int32]int64{}
	for _, r := range recs {
		if out[r.Topic] == nil {
			out[r.Topic] = map[int32]int64{}
		}
		if r.Offset+1 > out[r.Topic][r.Partition] {
			out[r.Topic][r.Partition] = r.Offset + 1
		}
	}
	return out
}

func read(ctx context.Context, brokers []string, iso kgo.IsolationLevel, topics []string) ([]*kgo.Record, error) {
	ends, err := EndOffsets(ctx, brokers, topics...)
	if err != nil {
		return nil, err
	}
	parts := map[string]map[int32]kgo.Offset{}
	remaining := 0
	for t, ps := range ends {
		parts[t] = map[int32]kgo.Offset{}
		for p, end := range ps {
			if end > 0 {
				parts[t][p] = kgo.NewOffset().AtStart()
				remaining++
			}
		}
	}
	if remaining == 0 {
		return nil, nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumePartitions(parts),
		kgo.FetchIsolationLevel(iso), kgo.KeepControlRecords())
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	var out []*kgo.Record
	done := map[string]map[int32]bool{}
	for remaining > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		for _, fe := range fs.Errors() {
			return nil, fmt.Errorf("reading %s[%d]: %w", fe.Topic, fe.Partition, fe.Err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			end := ends[r.Topic][r.Partition]
			if r.Offset >= end {
				return
			}
			if !r.Attrs.IsControl() {
				out = append(out, r)
			}
			if r.Offset == end-1 {
				if done[r.Topic] == nil {
					done[r.Topic] = map[int32]bool{}
				}
				if !done[r.Topic][r.Partition] {
					done[r.Topic][r.Partition] = true
					remaining--
				}
			}
		})
	}
	return out, nil
}
