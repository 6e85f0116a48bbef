package kafka

import (
	"testing"

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
