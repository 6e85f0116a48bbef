package kafka

import (
	"time"

	"github.com/exactly/exactly"
)

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

// cut is the most records a partition's next batch may carry since a
// flight of it ran out of its time (see FlightTimeout); 0 when the caps
// alone bound it. A batch too slow for the limit used to be retried with
// as many records or more (the buffer refills while it fails) and ran out
// of time again, forever: a backlog's first flight of ~29,000 records with
// create: true on MariaDB held a pipeline at 3,000 of 51,000. Only where
// batches are cut changes, and the same stream gives the same tables and
// the same dead letters wherever that is.
type cut int

// of is how many of n buffered records the partition's next batch takes.
func (c cut) of(n int) int {
	if c > 0 {
		return min(n, int(c))
	}
	return n
}

// timedOut halves what the partition's next batches may carry, from what
// the batch that ran out of time carried, down to one record, and returns
// the new cut.
func (c *cut) timedOut(carried int) int {
	*c = cut(max(carried/2, 1))
	return int(*c)
}

// committed grows the cut back by half after a batch of the partition
// committed in took, a quarter of limit or less, so a slow spell does not
// leave the pipeline at tiny batches; a slower commit keeps it, as the
// cut is about as much as commits in limit/2. At ceiling (what a partition
// buffers, caps.partition) the cut is lifted: it reports so.
func (c *cut) committed(took, limit time.Duration, ceiling int) (lifted bool) {
	if *c == 0 || took > limit/4 {
		return false
	}
	*c += max(*c/2, 1)
	if int(*c) >= ceiling {
		*c = 0
		return true
	}
	return false
}

// dueAt is when the records that could go in a flight now (w) fall due:
// at once when they reach a flight's share of the caps; early (a
// quarter of batch.interval after the oldest arrived) when they reach a
// quarter of it; batch.interval after it otherwise. Zero when nothing
// waits. The early rule keeps a free connection from idling while a
// useful batch waits for a full share: at 25,000 records/s over 800
// tables a share took half a second to fill, half the p99. What goes
// before batch.interval is at least a quarter share (split over the free
// connections), so slow topics still go once an interval and the ledger
// rows per record stay bounded.
func (c caps) dueAt(w waiting, interval time.Duration) time.Time {
	switch {
	case w.records == 0:
		return time.Time{}
	case w.records >= c.flight || w.bytes >= c.flightBytes:
		return w.oldest
	case w.records >= max(c.flight/early, 1) || w.bytes >= max(c.flightBytes/early, 1):
		return w.oldest.Add(interval / early)
	}
	return w.oldest.Add(interval)
}

// early is the fraction, of a flight's share and of batch.interval, at
// which records fall due early (see dueAt).
const early = 4
