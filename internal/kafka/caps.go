package kafka

import "github.com/exactly/exactly"

// caps are the limits batch.max_records and batch.max_bytes set on what a
// member holds, all computed by batchCaps. Together they bound memory
// whatever the backlog in Kafka, and share the caps fairly among the
// flights and the partitions.
type caps struct {
	// held is what the member buffers at most, over all its partitions:
	// at it Run stops polling (backpressure), and a poll takes at most
	// what is left below it. These are batch.max_records and max_bytes.
	held      int
	heldBytes int64
	// flight is a flight's share of the caps: a batch falls due when the
	// ready buffers reach it, and no flight is packed past it. It is a
	// share of sink.max_conns, not of the adaptive limit of the moment: a
	// lower limit would make records wait for bigger flights.
	flight      int
	flightBytes int64
	// partition is what one partition may buffer before its fetching is
	// paused: twice its fair share, and never less than a useful batch,
	// so one busy partition cannot crowd the others out.
	partition      int
	partitionBytes int64
	// fetchBytes bounds the client's own buffer (kgo.FetchMaxBytes): a
	// quarter of max_bytes, between 1 MiB and 32 MiB.
	fetchBytes int32
}

// batchCaps computes the caps of batch with sink.max_conns maxConns and
// partitions assigned (each taken as at least 1). None depends on the
// adaptive flight limit.
func batchCaps(batch exactly.BatchConfig, maxConns, partitions int) caps {
	slots, partitions := max(maxConns, 1), max(partitions, 1)
	return caps{
		held:           batch.MaxRecords,
		heldBytes:      batch.MaxBytes,
		flight:         max(batch.MaxRecords/slots, 1),
		flightBytes:    max(batch.MaxBytes/int64(slots), 1),
		partition:      max(2*batch.MaxRecords/partitions, min(batch.MaxRecords, 1000)),
		partitionBytes: max(2*batch.MaxBytes/int64(partitions), min(batch.MaxBytes, 1<<20)),
		fetchBytes:     int32(min(max(batch.MaxBytes/4, 1<<20), 32<<20)),
	}
}
