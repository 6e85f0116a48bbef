package kafka

import (
	"testing"
	"time"

	"github.com/exactly/exactly"
)

func TestBatchCaps(t *testing.T) {
	for _, tc := range []struct {
		name              string
		records           int
		bytes             int64
		slots, partitions int
		want              caps
	}{
		{"defaults, one flight, one partition", 50000, 64 << 20, 1, 1,
			caps{held: 50000, heldBytes: 64 << 20, flight: 50000, flightBytes: 64 << 20, partition: 100000, partitionBytes: 128 << 20, fetchBytes: 16 << 20}},
		{"defaults, 8 flights, 800 partitions: a partition keeps a useful batch", 50000, 64 << 20, 8, 800,
			caps{held: 50000, heldBytes: 64 << 20, flight: 6250, flightBytes: 8 << 20, partition: 1000, partitionBytes: 1 << 20, fetchBytes: 16 << 20}},
		{"4 flights, 10 partitions: twice the fair share", 50000, 64 << 20, 4, 10,
			caps{held: 50000, heldBytes: 64 << 20, flight: 12500, flightBytes: 16 << 20, partition: 10000, partitionBytes: 64 << 20 / 5, fetchBytes: 16 << 20}},
		{"tiny caps: a flight takes at least one record, the fetch at least 1 MiB", 3, 100, 8, 0,
			caps{held: 3, heldBytes: 100, flight: 1, flightBytes: 12, partition: 6, partitionBytes: 200, fetchBytes: 1 << 20}},
		{"max_records 1, no flights counted yet", 1, 1 << 30, 0, 2,
			caps{held: 1, heldBytes: 1 << 30, flight: 1, flightBytes: 1 << 30, partition: 1, partitionBytes: 1 << 30, fetchBytes: 32 << 20}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := batchCaps(exactly.BatchConfig{MaxRecords: tc.records, MaxBytes: tc.bytes}, tc.slots, tc.partitions)
			if got != tc.want {
				t.Errorf("batchCaps(%d, %d, slots %d, partitions %d)\n got %+v\nwant %+v", tc.records, tc.bytes, tc.slots, tc.partitions, got, tc.want)
			}
		})
	}
}

// TestCutHalvesOnTimeoutAndGrowsBackWhenQuick: a batch that ran out of
// time halves what the partition's next batches carry, down to one record;
// commits well within the limit grow it back by half until it is lifted,
// slow ones keep it.
func TestCutHalvesOnTimeoutAndGrowsBackWhenQuick(t *testing.T) {
	const limit, ceiling = 2 * time.Minute, 25000
	var c cut
	if c.of(29000) != 29000 || c.committed(time.Second, limit, ceiling) || c != 0 {
		t.Fatalf("no cut: a batch takes the whole buffer and a commit changes nothing; cut %d", c)
	}
	if got := c.timedOut(29000); got != 14500 || c.of(20000) != 14500 || c.of(100) != 100 {
		t.Fatalf("29,000 records ran out of time: cut %d, want 14,500", got)
	}
	if got := c.timedOut(c.of(20000)); got != 7250 {
		t.Fatalf("14,500 ran out of time again: cut %d, want 7,250", got)
	}
	for range 20 {
		c.timedOut(c.of(1 << 20))
	}
	if c != 1 || c.of(1000) != 1 {
		t.Fatalf("after many timeouts: cut %d, want 1 record, never none", c)
	}
	if c.committed(limit/4+time.Millisecond, limit, ceiling) || c != 1 {
		t.Fatalf("a commit taking over a quarter of the limit grew the cut to %d", c)
	}
	steps, prev := 0, c
	for !c.committed(time.Second, limit, ceiling) {
		if steps++; c <= prev || steps > 40 {
			t.Fatalf("step %d: cut %d after %d: want it growing, lifted within 40 quick commits", steps, c, prev)
		}
		prev = c
	}
	if c != 0 || c.of(29000) != 29000 {
		t.Fatalf("lifted: cut %d", c)
	}
	t.Logf("from 1 record to lifted (%d) in %d quick commits", ceiling, steps+1)
}

// TestDueAt: what could go in a flight falls due at once at a flight's
// share (records or bytes), a quarter interval after its oldest arrived at
// a quarter share, and an interval after it below that.
func TestDueAt(t *testing.T) {
	c := batchCaps(exactly.BatchConfig{MaxRecords: 400, MaxBytes: 4000}, 4, 10) // a share: 100 records, 1000 bytes
	oldest := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name    string
		records int
		bytes   int64
		want    time.Duration // after oldest; -1: never
	}{
		{"nothing waits", 0, 0, -1},
		{"a share of records: at once", 100, 10, 0},
		{"a share of bytes: at once", 1, 1000, 0},
		{"a quarter share of records: a quarter interval", 25, 10, 250 * time.Millisecond},
		{"a quarter share of bytes: a quarter interval", 1, 250, 250 * time.Millisecond},
		{"less: the interval", 24, 249, time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := c.dueAt(waiting{records: tc.records, bytes: tc.bytes, oldest: oldest}, time.Second)
			switch {
			case tc.want < 0 && !got.IsZero():
				t.Errorf("due at %v, want never", got)
			case tc.want >= 0 && !got.Equal(oldest.Add(tc.want)):
				t.Errorf("due %v after the oldest arrived, want %v", got.Sub(oldest), tc.want)
			}
		})
	}
}
