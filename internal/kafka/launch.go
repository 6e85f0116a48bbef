package kafka

import (
	"context"
	"log/slog"
	"sort"
	"time"

	"github.com/exactly/exactly"
)

// slots is how many flights may be in flight now: sink.max_conns, or
// fewer as the adaptive limit finds best (see flightLimit).
func (s *Source) slots() int { return s.limit.Limit() }

// FlightLimitObserver is told the adaptive flight limit when it is first
// used and whenever it changes. An Observer may implement it.
type FlightLimitObserver interface {
	FlightLimit(limit, max int)
}

func (s *Source) flightLimitChanged(limit, max int) {
	s.log.Debug("flight limit", "limit", limit, "max_conns", max)
	if o, ok := s.obs().(FlightLimitObserver); ok {
		o.FlightLimit(limit, max)
	}
}

// flight is one transaction's batches being committed.
type flight struct {
	ctx      context.Context // done when the transaction settled
	done     <-chan struct{}
	outcomes []exactly.Outcome
	waited   time.Duration // from fetching its oldest record to settling
}

// committed is how many offsets the flight's committed batches covered
// (read once done is closed).
func (fl *flight) committed() int64 {
	var n int64
	for _, o := range fl.outcomes {
		if o.Committed {
			n += o.Batch.To - o.Batch.From
		}
	}
	return n
}

// launch starts up to free flights when batches are due: the buffered
// records that could go in a flight (see launchable) reach a flight's share of
// batch.max_records or batch.max_bytes, or the oldest of them has waited
// batch.interval. They are packed into at most free flights (see pack);
// each commits in the background in one transaction on its own
// connection. What does not fit waits for the next free connection.
func (s *Source) launch(now time.Time, free int) []*flight {
	slots := s.slots()
	s.mu.Lock()
	busy := s.busyLocked()
	var (
		ready  []candidate
		n      int
		bytes  int64
		oldest time.Time
	)
	for tp, p := range s.parts {
		if !s.launchable(p, busy) {
			continue
		}
		ready = append(ready, candidate{tp: tp, table: p.table, first: p.first, records: len(p.recs), bytes: p.bytes, failing: p.failing.n > 0})
		n += len(p.recs)
		bytes += p.bytes
		if oldest.IsZero() || p.first.Before(oldest) {
			oldest = p.first
		}
	}
	c := batchCaps(s.cfg.Batch, s.cfg.Sink.MaxConns, len(s.parts))
	share, shareBytes := c.flight, c.flightBytes
	due := n > 0 && (n >= share || bytes >= shareBytes || !now.Before(oldest.Add(s.cfg.Batch.Interval.D())))
	if !due {
		s.mu.Unlock()
		return nil
	}
	// Spread what is ready over the free connections, at most a share of
	// the caps each: small flights keep every connection busy and let
	// one decode while others write.
	target := max(min(share, (n+free-1)/free), 1)
	targetBytes := max(min(shareBytes, (bytes+int64(free)-1)/int64(free)), 1)
	packed := isolateFailing(ready, free, func(ready []candidate, free int) [][]candidate {
		return pack(ready, free, target, targetBytes, busy == nil)
	})
	var resume fetchSet
	groups := make([][]*exactly.PartitionBatch, len(packed))
	oldests := make([]time.Time, len(packed))
	for i, g := range packed {
		for _, c := range g {
			p := s.parts[c.tp]
			groups[i] = append(groups[i], &exactly.PartitionBatch{Topic: c.tp.Topic, Partition: c.tp.Partition, From: p.next, Records: p.recs,
				Failed: p.failing.last(p.next), Epochs: true})
			if oldests[i].IsZero() || p.first.Before(oldests[i]) {
				oldests[i] = p.first
			}
			p.inflight, p.flightTo, p.inflightN = true, p.recs[len(p.recs)-1].Offset+1, len(p.recs)
			p.recs, p.bytes = nil, 0
			p.unpause(c.tp, &resume)
		}
	}
	s.mu.Unlock()
	s.resume(resume)
	if s.log.Enabled(context.Background(), slog.LevelDebug) {
		for _, g := range groups {
			n := 0
			for _, b := range g {
				n += len(b.Records)
			}
			s.log.Debug("flight launched", "partitions", len(g), "records", n, "in_flight_before", slots-free)
		}
	}
	out := make([]*flight, len(groups))
	for i, g := range groups {
		out[i] = s.fly(g, oldests[i])
	}
	return out
}

// candidate is a partition whose buffer could go in a flight.
type candidate struct {
	tp      exactly.TP
	table   string
	first   time.Time // when its oldest buffered record arrived
	records int
	bytes   int64
	failing bool // its last batch failed (see isolateFailing)
}

// pack fills at most n flights in turn, each until it holds target
// records or targetBytes, with the ready partitions' whole buffers (a
// buffer holds at most a share plus one fetch, see buffer). Tables go
// oldest first, so none starves, and a table's partitions one after the
// other, so a flight writes a table with one statement. With shared
// (exactly.SharedTables) a table bigger than what is left of a flight goes
// on in the next; without, a table is never split over two flights (its
// partitions go whole into the flight that took its first). What does not
// fit in n flights waits.
func pack(ready []candidate, n int, target int, targetBytes int64, shared bool) [][]candidate {
	sort.Slice(ready, func(i, j int) bool {
		if !ready[i].first.Equal(ready[j].first) {
			return ready[i].first.Before(ready[j].first)
		}
		if ready[i].tp.Topic != ready[j].tp.Topic {
			return ready[i].tp.Topic < ready[j].tp.Topic
		}
		return ready[i].tp.Partition < ready[j].tp.Partition
	})
	var tables []string // in the order of their oldest partition
	byTable := map[string][]candidate{}
	for _, c := range ready {
		if byTable[c.table] == nil {
			tables = append(tables, c.table)
		}
		byTable[c.table] = append(byTable[c.table], c)
	}
	var flights [][]candidate
	var cur []candidate
	var recs int
	var bytes int64
tables:
	for _, t := range tables {
		for i, c := range byTable[t] {
			if len(cur) > 0 && (recs >= target || bytes >= targetBytes) && (shared || i == 0) {
				flights = append(flights, cur)
				cur, recs, bytes = nil, 0, 0
				if len(flights) == n {
					break tables
				}
			}
			cur = append(cur, c)
			recs += c.records
			bytes += c.bytes
		}
	}
	if len(cur) > 0 {
		flights = append(flights, cur)
	}
	return flights
}

// fly commits one flight's batches in the background.
func (s *Source) fly(batches []*exactly.PartitionBatch, oldest time.Time) *flight {
	fctx, finished := context.WithCancel(context.Background())
	fl := &flight{ctx: fctx, done: fctx.Done()}
	go func() {
		defer finished()
		// The transaction is not tied to the run's context: a flight in
		// flight at shutdown finishes (commits or rolls back) instead of
		// being cut.
		cctx, cancel := context.WithTimeout(s.hardCtx(), 2*time.Minute)
		defer cancel()
		began := time.Now()
		fl.outcomes = s.sink.Commit(cctx, batches)
		if s.log.Enabled(cctx, slog.LevelDebug) {
			n := 0
			for _, b := range batches {
				n += len(b.Records)
			}
			s.log.Debug("flight settled", "partitions", len(batches), "records", n, "took", time.Since(began))
		}
		// Told at once, before the poll loop picks the flight up, so the
		// metrics trail the ledger by as little as possible.
		fl.waited = time.Since(oldest)
		s.obs().Committed(fl.outcomes, time.Since(began), fl.waited)
	}()
	return fl
}
