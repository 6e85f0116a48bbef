package chaos

import (
	"errors"
	"math/rand"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// brokerFaults makes the broker answer the consumer's requests with
// retriable errors, or drop its connection, while a window is open. Only
// requests the test's own producers and readers never send are touched
// (fetches and offset listings run only after the chaos ends).
type brokerFaults struct {
	mu    sync.Mutex
	until map[int16]time.Time
	rng   *rand.Rand
	hits  map[int16]int
}

// faultKeys are the request kinds a window can break.
var faultKeys = []int16{
	int16(kmsg.Fetch), int16(kmsg.ListOffsets), int16(kmsg.Heartbeat),
	int16(kmsg.JoinGroup), int16(kmsg.SyncGroup), int16(kmsg.OffsetCommit),
}

func newBrokerFaults() *brokerFaults {
	return &brokerFaults{until: map[int16]time.Time{}, rng: rand.New(rand.NewSource(1)), hits: map[int16]int{}}
}

func (b *brokerFaults) install(c *kfake.Cluster) {
	for _, key := range faultKeys {
		key := key
		c.ControlKey(key, func(req kmsg.Request) (kmsg.Response, error, bool) {
			c.KeepControl()
			return b.answer(key, req)
		})
	}
}

// open breaks the given request kinds for d.
func (b *brokerFaults) open(keys []int16, d time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, k := range keys {
		b.until[k] = time.Now().Add(d)
	}
}

func (b *brokerFaults) clear() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.until = map[int16]time.Time{}
}

func (b *brokerFaults) hitCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, v := range b.hits {
		n += v
	}
	return n
}

var errDropped = errors.New("chaos: connection dropped by the broker")

func (b *brokerFaults) answer(key int16, req kmsg.Request) (kmsg.Response, error, bool) {
	b.mu.Lock()
	active := time.Now().Before(b.until[key])
	drop := b.rng.Intn(3) != 0
	if active {
		b.hits[key]++
	}
	b.mu.Unlock()
	if !active {
		return nil, nil, false
	}
	if drop {
		return nil, errDropped, true // the connection closes, like a broker restart
	}
	switch r := req.(type) {
	case *kmsg.FetchRequest:
		resp := r.ResponseKind().(*kmsg.FetchResponse)
		for _, t := range r.Topics {
			rt := kmsg.NewFetchResponseTopic()
			rt.Topic, rt.TopicID = t.Topic, t.TopicID
			for _, p := range t.Partitions {
				rp := kmsg.NewFetchResponseTopicPartition()
				rp.Partition = p.Partition
				rp.ErrorCode = kerr.NotLeaderForPartition.Code
				rp.HighWatermark, rp.LastStableOffset, rp.LogStartOffset = -1, -1, -1
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		if len(resp.Topics) == 0 {
			return nil, errDropped, true
		}
		return resp, nil, true
	case *kmsg.ListOffsetsRequest:
		resp := r.ResponseKind().(*kmsg.ListOffsetsResponse)
		for _, t := range r.Topics {
			rt := kmsg.NewListOffsetsResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewListOffsetsResponseTopicPartition()
				rp.Partition = p.Partition
				rp.ErrorCode = kerr.LeaderNotAvailable.Code
				rp.Offset = -1
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil, true
	case *kmsg.HeartbeatRequest:
		resp := r.ResponseKind().(*kmsg.HeartbeatResponse)
		resp.ErrorCode = kerr.RebalanceInProgress.Code // everyone rejoins
		return resp, nil, true
	case *kmsg.JoinGroupRequest:
		resp := r.ResponseKind().(*kmsg.JoinGroupResponse)
		resp.ErrorCode = kerr.CoordinatorLoadInProgress.Code
		return resp, nil, true
	case *kmsg.SyncGroupRequest:
		resp := r.ResponseKind().(*kmsg.SyncGroupResponse)
		resp.ErrorCode = kerr.RebalanceInProgress.Code
		return resp, nil, true
	}
	return nil, errDropped, true
}
