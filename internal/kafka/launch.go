package kafka

import (
	"context"
	"errors"
	"log/slog"
	"slices"
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
	took     time.Duration // its commit
	timedOut bool          // it ran out of its time (FlightTimeout)
}

// errFlightTimeout is the cause of a flight's context when the flight ran
// out of its time, told apart from a stop's cut and from the database's
// own errors (a driver reports both as context.DeadlineExceeded or a
// connection error).
var errFlightTimeout = errors.New("the flight ran out of its time")

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

// launch starts up to free flights when batches are due (see dueAt): the
// buffered records that could go in a flight (see launchable) reach a
// flight's share of batch.max_records or batch.max_bytes, or a quarter of
// it once the oldest of them has waited a quarter of batch.interval, or
// the oldest has waited batch.interval. They are packed into at most free
// flights (see pack); each commits in the background in one transaction
// on its own connection. What does not fit waits for the next free
// connection.
func (s *Source) launch(now time.Time, free int) []*flight {
	slots := s.slots()
	s.mu.Lock()
	busy := s.busyLocked()
	var (
		ready []candidate
		w     waiting
	)
	for tp, p := range s.parts {
		if !s.launchable(p, busy) {
			continue
		}
		recs, recBytes := p.nextBatch()
		ready = append(ready, candidate{tp: tp, table: p.table, first: p.first, records: recs, bytes: recBytes, failing: p.failing.n > 0})
		w.add(recs, recBytes, p.first)
	}
	lim := batchCaps(s.cfg.Batch, s.cfg.Sink.MaxConns, len(s.parts))
	share, shareBytes := lim.flight, lim.flightBytes
	n, bytes := w.records, w.bytes
	if due := lim.dueAt(w, s.cfg.Batch.Interval.D()); due.IsZero() || now.Before(due) {
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
			if oldests[i].IsZero() || p.first.Before(oldests[i]) {
				oldests[i] = p.first
			}
			groups[i] = append(groups[i], &exactly.PartitionBatch{Topic: c.tp.Topic, Partition: c.tp.Partition, From: p.next, Records: p.take(c, lim, &resume),
				Failed: p.failing.last(p.next), Epochs: true})
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

// nextBatch is how many of the partition's buffered records its next
// batch takes, all unless they are cut (see cut), and their bytes.
func (p *partition) nextBatch() (int, int64) {
	n := p.cut.of(len(p.recs))
	if n == len(p.recs) {
		return n, p.bytes
	}
	var bytes int64
	for _, r := range p.recs[:n] {
		bytes += int64(len(r.Key) + len(r.Value))
	}
	return n, bytes
}

// take moves the candidate's records (see nextBatch) from the buffer into
// a batch in flight and returns them. The partition fetches again unless
// what stays buffered still holds its share of the caps. p.first stays:
// the rest is due as soon as the batch settles, not an interval later.
func (p *partition) take(c candidate, lim caps, resume *fetchSet) []*exactly.Record {
	recs := p.recs[:c.records:c.records]
	p.inflight, p.flightTo, p.inflightN = true, recs[len(recs)-1].Offset+1, len(recs)
	if c.records == len(p.recs) {
		p.recs, p.bytes = nil, 0
	} else {
		// A copy: the rest must not keep the batch's records alive
		// once it settled.
		p.recs, p.bytes = slices.Clone(p.recs[c.records:]), p.bytes-c.bytes
	}
	if len(p.recs) < lim.partition && p.bytes < lim.partitionBytes {
		p.unpause(c.tp, resume)
	}
	return recs
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
		cctx, cancel := context.WithTimeoutCause(s.hardCtx(), s.opt.flightTimeout, errFlightTimeout)
		defer cancel()
		began := time.Now()
		fl.outcomes = s.sink.Commit(cctx, batches)
		fl.took, fl.timedOut = time.Since(began), errors.Is(context.Cause(cctx), errFlightTimeout)
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
