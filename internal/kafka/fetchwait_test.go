package kafka

import (
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly/exactly"
)

// TestFetchWaitFollowsTheBatchInterval pins the fix of a stall: a resume
// does not interrupt a fetch the broker holds open for the partitions not
// paused, so with franz-go's 5s default a partition paused for holding its
// share waited up to 5s after its batch was launched (the bench's
// 300,000-record run spent half its time so; 800 topics at 25,000 ev/s
// had a p99 of 21.7s). The broker may hold a fetch at most a quarter of
// the batch interval, between 50ms and 500ms.
func TestFetchWaitFollowsTheBatchInterval(t *testing.T) {
	for _, c := range []struct {
		interval, want time.Duration
	}{
		{time.Second, 250 * time.Millisecond},
		{10 * time.Second, 500 * time.Millisecond},
		{50 * time.Millisecond, 50 * time.Millisecond},
	} {
		cfg, err := exactly.ParseConfig(strings.NewReader(`pipeline: p
source: {brokers: [127.0.0.1:1]}
sink: {driver: sqlite, dsn: x.db}
batch: {interval: `+c.interval.String()+`}
tables:
  - {topics: t, key: [id]}
`), "test.yaml")
		if err != nil {
			t.Fatal(err)
		}
		s, err := NewSource(cfg, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		got := s.cl.OptValue(kgo.FetchMaxWait)
		s.cl.Close()
		if got != c.want {
			t.Errorf("batch.interval %v: the client's fetch max wait is %v, want %v", c.interval, got, c.want)
		}
	}
}
