// Package kafka is the only importer of franz-go. Source consumes the
// configured topics in a consumer group (for partition assignment only),
// cuts micro-batches and hands them to the sink. Where consumption starts
// is always the sink's exactly_offsets.next_offset: Kafka's committed group
// offsets are written after each database commit as a hint for lag tools
// and are never read back as truth.
package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly/exactly"
)

// Source runs one pipeline's consumer.
type Source struct {
	cfg  *exactly.Config
	sink *exactly.Sink
	log  *slog.Logger
	cl   *kgo.Client
	// limit is how many flights may be in flight (see flightLimit).
	limit *flightLimit
	// ready is closed once cl is set: the group may assign partitions
	// (and call adjust, which uses cl) before kgo.NewClient returns.
	ready chan struct{}
	// started is closed when Run starts: the group's callbacks may run as
	// soon as the client is created, and adjust waits for it so nothing
	// is assigned, or read from the sink, before Run.
	started   chan struct{}
	startOnce sync.Once

	// mu guards parts. With BlockRebalanceOnPoll the group callbacks run
	// only while the poll loop is outside poll-to-AllowRebalance, but the
	// lock keeps that an implementation detail rather than an assumption.
	mu    sync.Mutex
	parts map[exactly.TP]*partition

	// rebalance is set when the group waits for this member to allow a
	// rebalance: no flight is launched until every one in flight has
	// settled and AllowRebalance has been called.
	rebalance atomic.Bool

	// opt is what NewSource's options set (see Option).
	opt options

	// id is the static group identity (its slot lock is held until Run
	// returns).
	id *identity
	// hard is cancelled stopGrace after Run's context ends: flights still
	// in flight then are cut (rolled back, or their outcome read from the
	// ledger on the next start) so a stop is bounded.
	hard       context.Context
	cancelHard context.CancelFunc
	// fatal is set when the member must stop (fenced by another process
	// with its instance id).
	fatal atomic.Pointer[error]
	// memberMu serializes writes of the member id file.
	memberMu sync.Mutex
	stall    stallState
	// first is the pipeline's exactly_pipelines row, read (or written)
	// on the first assignment: start_from applies only to the partitions
	// that existed when the pipeline was first started.
	// Atomic: each group session's adjust runs in a goroutine of its
	// own, and a cancelled one is not waited for.
	first atomic.Pointer[exactly.PipelineRow]
}

func (s *Source) obs() exactly.Observer { return s.opt.observer }

// partition is an assigned partition's state.
type partition struct {
	table     string // the table its records go to (whole tables go in one flight)
	next      int64  // the stored next_offset: the batch in flight, or else the buffer, starts here
	inflight  bool   // a batch of this partition is being committed
	flightTo  int64  // when in flight: where the batch ends and the buffer starts
	inflightN int    // when in flight: the batch's records
	recs      []*exactly.Record
	bytes     int64
	first     time.Time // when the oldest buffered record arrived
	paused    bool      // fetching paused: the buffer holds its share
	halted    error     // set when the partition stopped (on_error: fail, lost offsets)
	failing   failing   // its batches fail: when to try again
	cut       cut       // what its batches may carry since one ran out of time
	topicID   string    // the topic's id its offsets row was seeded in ("" unknown)
	beyond    int       // watermark checks in a row that found next beyond the log end
}

// metadataMaxAge is how often the client refreshes its metadata at the
// latest: how soon a new partition or topic, or a recreated one, is seen.
const metadataMaxAge = 15 * time.Second

// NewSource creates the Kafka client. Nothing is consumed until Run.
func NewSource(cfg *exactly.Config, sink *exactly.Sink, log *slog.Logger, opts ...Option) (*Source, error) {
	s := &Source{cfg: cfg, sink: sink, log: log, opt: newOptions(opts), parts: map[exactly.TP]*partition{}, ready: make(chan struct{}), started: make(chan struct{})}
	s.limit = newFlightLimit(cfg.Sink.MaxConns, cfg.Sink.Flights == exactly.FlightsFixed, s.flightLimitChanged)
	s.hard, s.cancelHard = context.WithCancel(context.Background())
	id, err := newIdentity(cfg)
	if err != nil {
		return nil, err
	}
	s.id = id
	base, err := clientOpts(cfg)
	if err != nil {
		id.release()
		return nil, err
	}
	if id.id != "" && cfg.Source.GroupProtocol == "consumer" {
		releaseOldSelf(base, cfg.Source.Group, id)
	}
	kopts := append(append(append([]kgo.Opt{}, base...), s.consumerOpts()...), s.opt.client...)
	cl, err := kgo.NewClient(kopts...)
	if err != nil {
		id.release()
		return nil, fmt.Errorf("creating kafka client: %w", err)
	}
	s.cl = cl
	close(s.ready)
	return s, nil
}

// consumerOpts are the client options of the group member, after those
// of every client (clientOpts: brokers, client id, source.tls and
// source.sasl).
func (s *Source) consumerOpts() []kgo.Opt {
	cfg, id := s.cfg, s.id
	patterns, literal, anyPattern := cfg.TopicPatterns()
	opts := []kgo.Opt{
		kgo.ConsumerGroup(cfg.Source.Group),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.SessionTimeout(cfg.Source.SessionTimeout.D()),
		kgo.RebalanceTimeout(cfg.Source.RebalanceTimeout.D()),
		// Three heartbeats per session: with franz-go's fixed 3s default a
		// session shorter than ~9s expires between heartbeats and the
		// member churns forever.
		kgo.HeartbeatInterval(heartbeatInterval(cfg.Source.SessionTimeout.D())),
		// Kafka's group offsets are never the truth.
		kgo.DisableAutoCommit(),
		// Flushes run between a poll and AllowRebalance, so a revoke never
		// races a batch of the partition it takes away.
		kgo.BlockRebalanceOnPoll(),
		kgo.AdjustFetchOffsetsFn(s.adjust),
		kgo.OnPartitionsRevoked(s.drop),
		kgo.OnPartitionsLost(s.drop),
		kgo.OnPartitionsCallbackBlocked(func(context.Context, *kgo.Client) { s.rebalance.Store(true) }),
		// Records of aborted transactions are never applied.
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Out of range is an error, not a silent jump past lost records.
		kgo.ConsumeResetOffset(kgo.NoResetOffset()),
		// Bound the client's own buffer: one fetch of at most a quarter
		// of batch.max_bytes, and small per-partition slices, so 800
		// partitions do not each hold a MiB.
		kgo.FetchMaxBytes(batchCaps(cfg.Batch, 1, 1).fetchBytes),
		kgo.FetchMaxPartitionBytes(256 << 10),
		// A fetch the broker holds open delays every partition resumed
		// meanwhile (a resume does not interrupt it): franz-go's 5s
		// default stalled a paused partition for 5s after its batch
		// committed. Kafka Connect's default is 500ms.
		kgo.FetchMaxWait(fetchMaxWait(cfg.Batch.Interval.D())),
		// A partition added to a topic, a topic created to match a
		// pattern, or one deleted and created again is seen at the next
		// metadata refresh: with franz-go's 5 min default (Kafka's
		// metadata.max.age.ms) their records waited up to 5 min with
		// /readyz ready and no warning, and a recreated topic under a
		// pattern rule went unassigned, not halted, as long. One Metadata
		// request per member every 15s.
		kgo.MetadataMaxAge(metadataMaxAge),
	}
	if id.id != "" {
		opts = append(opts, kgo.InstanceID(id.id))
	}
	if cfg.Source.GroupProtocol == "consumer" {
		// KIP-848: the broker assigns (its "uniform" assignor for a
		// sticky balancer). A broker without it falls back to classic.
		opts = append(opts, kgo.ServerSideBalancer())
	}
	if anyPattern {
		opts = append(opts, kgo.ConsumeRegex(), kgo.ConsumeTopics(patterns...))
	} else {
		opts = append(opts, kgo.ConsumeTopics(literal...))
	}
	return opts
}

// fetchMaxWait is how long the broker may hold a fetch open waiting for
// records: a quarter of the batch interval, between 50ms and 500ms.
func fetchMaxWait(interval time.Duration) time.Duration {
	return min(max(interval/4, 50*time.Millisecond), 500*time.Millisecond)
}

// heartbeatInterval is a third of the session timeout, at most franz-go's
// default of 3s.
func heartbeatInterval(session time.Duration) time.Duration {
	return min(max(session/3, 100*time.Millisecond), 3*time.Second)
}

// Assigned returns how many partitions this member currently owns.
func (s *Source) Assigned() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.parts)
}

// Held returns the records this member holds in memory: buffered, and in
// batches in flight. Backpressure bounds it by the batch caps, whatever
// the backlog in Kafka (see buffer and Run).
func (s *Source) Held() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, p := range s.parts {
		n += len(p.recs)
		if p.inflight {
			n += p.inflightN
		}
	}
	return n
}

// Run consumes until ctx ends. Flights in flight when ctx ends are
// finished (their transactions commit or roll back); buffered records not
// yet in a batch are abandoned and read again next time.
//
// Up to sink.max_conns flights commit at once, each one transaction on
// its own connection. A partition has at most one batch in flight, so its
// batches commit in order. Where the dialect allows (exactly.SharedTables,
// PostgreSQL) two flights may write one table: its partitions hold
// different keys when the topic is keyed, and when they do not the
// database orders the writers (a deadlock it breaks is retried).
// Elsewhere a table is in one flight at a time, as the databases' range
// locks deadlock concurrent writers even on disjoint keys. A connection
// whose flight settled takes the next ready partitions at once: one
// flight decodes while the database works on the others, and nobody
// waits for the slowest.
//
// The loop keeps fetching while flights commit, yet a partition is never
// revoked while its batch is in flight: with BlockRebalanceOnPoll a
// rebalance waits from the moment a poll returns until AllowRebalance.
// When the group says a rebalance is waiting, no flight is launched, the
// ones in flight settle and AllowRebalance lets it run; an idle member
// allows it at once. A flight is launched only after a poll returned,
// never between AllowRebalance and the next poll, when a revoke may be
// running.
func (s *Source) Run(ctx context.Context) error {
	s.startOnce.Do(func() { close(s.started) })
	defer s.stop()
	// A stop gives the flights in flight stopGrace to settle, then cuts
	// them (see settle).
	defer context.AfterFunc(ctx, func() { time.AfterFunc(stopGrace, s.cancelHard) })()
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go s.watchWatermarks(wctx)
	go s.watchStall(wctx)
	go s.watchMember(wctx)
	var r runState
	for {
		if ctx.Err() != nil {
			s.settle(r.flights)
			return nil
		}
		if err := s.fatal.Load(); err != nil {
			s.settle(r.flights)
			return *err
		}
		now := time.Now()
		s.limit.tick(now, len(r.flights))
		slots := s.slots()
		rebalance := s.rebalance.Load()
		if r.blocked && !rebalance && len(r.flights) < slots && !now.Before(r.notBefore) {
			r.flights = append(r.flights, s.launch(now, slots-len(r.flights))...)
		}
		if r.blocked && len(r.flights) == 0 {
			// Nothing in flight: let a waiting rebalance run now
			// (revoking only buffered records), or an idle member would
			// hold the whole group up.
			s.rebalance.Store(false)
			s.cl.AllowRebalance()
			r.blocked, rebalance = false, false
		}
		if closed := s.poll(ctx, &r, now, slots, rebalance); closed {
			s.settle(r.flights)
			return errors.New("kafka client closed")
		}
		s.reap(&r)
	}
}

// runState is what Run's loop carries from one turn to the next.
type runState struct {
	flights   []*flight
	blocked   bool // a poll returned since the last AllowRebalance
	backoff   time.Duration
	notBefore time.Time // after a failed flight, the next waits
}

// poll waits for records, for a flight to end, or for the next batch to
// fall due, whichever comes first, and buffers what a poll returned. A
// flight's end is always a wake-up; a due time is one only when a flight
// could be launched then, or a past due time would spin. When the buffers
// are full nothing is polled (backpressure). It reports whether the client
// was closed.
func (s *Source) poll(ctx context.Context, r *runState, now time.Time, slots int, rebalance bool) (closed bool) {
	interval := s.cfg.Batch.Interval.D()
	s.mu.Lock()
	buffered, bytes, ready := s.bufferedLocked()
	c := batchCaps(s.cfg.Batch, s.cfg.Sink.MaxConns, len(s.parts))
	s.mu.Unlock()
	full := buffered >= c.held || bytes >= c.heldBytes

	wake := now.Add(interval)
	if due := c.dueAt(ready, interval); !due.IsZero() && len(r.flights) < slots && !rebalance && due.Before(wake) {
		wake = due
	}
	if r.notBefore.After(wake) {
		wake = r.notBefore
	}
	pctx, cancel := context.WithDeadline(ctx, wake)
	defer cancel()
	for _, fl := range r.flights {
		defer context.AfterFunc(fl.ctx, cancel)()
	}
	if full {
		if len(r.flights) > 0 || r.blocked || now.Before(r.notBefore) {
			<-pctx.Done()
		} else {
			// Block rebalances without taking records: a poll with
			// a cancelled context returns at once, holding them.
			cctx, ccancel := context.WithCancel(ctx)
			ccancel()
			s.cl.PollRecords(cctx, 1)
			r.blocked = true
		}
		return false
	}
	fetches := s.cl.PollRecords(pctx, c.held-buffered)
	r.blocked = true
	if fetches.IsClientClosed() {
		return true
	}
	s.handleErrors(ctx, fetches)
	s.buffer(fetches)
	if s.opt.onFetch != nil {
		s.opt.onFetch(fetches.NumRecords())
	}
	return false
}

// reap applies the flights that ended. After a failed one the next flight
// waits, twice as long after each failure in a row (100ms to 5s).
func (s *Source) reap(r *runState) {
	running := 0 // flights still in flight as this turn reaps
	for _, fl := range r.flights {
		select {
		case <-fl.done:
		default:
			running++
		}
	}
	keep := r.flights[:0]
	for _, fl := range r.flights {
		select {
		case <-fl.done:
			now := time.Now()
			s.limit.ended(now, fl.committed(), fl.waited, len(r.flights)-1)
			if s.finish(fl) {
				s.limit.failedBeside(now, running)
				r.backoff = min(max(2*r.backoff, 100*time.Millisecond), 5*time.Second)
				r.notBefore = time.Now().Add(r.backoff)
			} else {
				r.backoff = 0
			}
		default:
			keep = append(keep, fl)
		}
	}
	clear(r.flights[len(keep):])
	r.flights = keep
}

// Ping reaches a broker: the readiness check of the status server.
func (s *Source) Ping(ctx context.Context) error {
	if err := s.cl.Ping(ctx); err != nil {
		return fmt.Errorf("pinging the kafka brokers: %w", err)
	}
	return nil
}
