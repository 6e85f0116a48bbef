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
	"net"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

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
	// started is closed when Run starts: the fields set between
	// NewSource and Run (Observer, OnCommit, OnFetch) are read by the
	// group's callbacks, which the client may run as soon as it is
	// created, so adjust waits for it.
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

	// OnCommit, when set, is called after each database commit with its
	// outcomes (tests and metrics).
	OnCommit func([]exactly.Outcome)
	// OnFetch, when set, is called on the polling goroutine with the number
	// of records each poll returned (benchmarks and metrics).
	OnFetch func(records int)

	// Observer, when set before Run, is told about assignments, fetches,
	// commits, halts and errors (metrics, status page).
	Observer exactly.Observer
	// WatermarkEvery is how often Run refreshes the high watermarks of
	// the assigned partitions for the Observer, so lag shows even when a
	// partition is idle. Default 5s.
	WatermarkEvery time.Duration
	// StallEvery is how often Run checks, and warns, why nothing moves
	// (see watchStall). Default 10s.
	StallEvery time.Duration

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
	first *exactly.PipelineRow
}

func (s *Source) obs() exactly.Observer {
	if s.Observer == nil {
		return exactly.NopObserver{}
	}
	return s.Observer
}

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
	topicID   string    // the topic's id its offsets row was seeded in ("" unknown)
	beyond    int       // watermark checks in a row that found next beyond the log end
}

// NewSource creates the Kafka client. Nothing is consumed until Run.
// metadataMaxAge is how often the client refreshes its metadata at the
// latest: how soon a new partition or topic, or a recreated one, is seen.
const metadataMaxAge = 15 * time.Second

func NewSource(cfg *exactly.Config, sink *exactly.Sink, log *slog.Logger, extra ...kgo.Opt) (*Source, error) {
	s := &Source{cfg: cfg, sink: sink, log: log, parts: map[exactly.TP]*partition{}, ready: make(chan struct{}), started: make(chan struct{})}
	s.limit = newFlightLimit(cfg.Sink.MaxConns, cfg.Sink.Flights == exactly.FlightsFixed, s.flightLimitChanged)
	s.hard, s.cancelHard = context.WithCancel(context.Background())
	id, err := newIdentity(cfg)
	if err != nil {
		return nil, err
	}
	s.id = id
	patterns, literal, anyPattern := cfg.TopicPatterns()
	opts := []kgo.Opt{
		kgo.SeedBrokers(cfg.Source.Brokers...),
		kgo.ClientID(cfg.Source.ClientID),
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
		kgo.FetchMaxBytes(int32(min(max(cfg.Batch.MaxBytes/4, 1<<20), 32<<20))),
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
	sec, err := securityOpts(cfg)
	if err != nil {
		id.release()
		return nil, err
	}
	opts = append(opts, sec...)
	opts = append(opts, extra...)
	if id.id != "" && cfg.Source.GroupProtocol == "consumer" {
		plain := append([]kgo.Opt{kgo.SeedBrokers(cfg.Source.Brokers...), kgo.ClientID(cfg.Source.ClientID)}, sec...)
		releaseOldSelf(plain, cfg.Source.Group, id)
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		id.release()
		return nil, fmt.Errorf("creating kafka client: %w", err)
	}
	s.cl = cl
	close(s.ready)
	return s, nil
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

// adjust replaces the position of every newly assigned partition with the
// stored next_offset, seeding the offsets row from start_from when there is
// none. It runs in the group's goroutine; an error makes the member rejoin,
// so a short database outage is retried here first.
func (s *Source) adjust(ctx context.Context, assigned map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	<-s.ready
	select {
	case <-s.started:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	var tps []exactly.TP
	for t, ps := range assigned {
		for p := range ps {
			tps = append(tps, exactly.TP{Topic: t, Partition: p})
		}
	}
	var stored map[exactly.TP]exactly.Position
	var err error
	for attempt := 0; attempt < 10; attempt++ {
		if stored, err = s.startOffsets(ctx, tps); err == nil || ctx.Err() != nil {
			break
		}
		s.log.Warn("reading start offsets from the sink", "partitions", len(tps), "err", err, "attempt", attempt+1)
		s.obs().Failed("db", s.sink.Dialect().Classify(err).String(), err)
		time.Sleep(time.Duration(attempt+1) * 200 * time.Millisecond)
	}
	if err != nil {
		return nil, err
	}
	halts := s.checkPositions(ctx, tps, stored)
	next := make(map[exactly.TP]int64, len(stored))
	s.mu.Lock()
	for _, tp := range tps {
		pos := stored[tp]
		next[tp] = pos.Next
		table := tp.Topic
		if _, t, ok := s.cfg.Route(tp.Topic); ok {
			table = t
		}
		s.parts[tp] = &partition{table: table, next: pos.Next, topicID: pos.TopicID}
		// With the leader epoch of the last applied record the client
		// checks the log was not truncated below next_offset while the
		// pipeline was down (KIP-320): *kgo.ErrDataLoss if it was.
		assigned[tp.Topic][tp.Partition] = kgo.NewOffset().At(pos.Next).WithEpoch(pos.Epoch)
	}
	s.mu.Unlock()
	s.log.Debug("partitions assigned", "count", len(tps))
	s.obs().Assigned(next)
	for _, tp := range sortedKeys(halts) {
		s.obs().Failed("kafka", haltKind(halts[tp]), halts[tp])
		s.halt(tp, halts[tp])
	}
	return assigned, nil
}

// checkPositions compares the stored positions of newly assigned
// partitions with Kafka: a topic whose id is not the one the row was
// seeded in was recreated, a next_offset beyond the log end counts records
// Kafka does not hold (a recreated topic on a broker without ids, a reset
// or another cluster). Those partitions halt at once (see
// exactly.TopicRecreatedError, exactly.BeyondLogEndError). A row without a
// topic id gets the topic's. When Kafka cannot be asked, nothing halts
// here: the fetch's OFFSET_OUT_OF_RANGE and the watermark watch still do.
func (s *Source) checkPositions(ctx context.Context, tps []exactly.TP, stored map[exactly.TP]exactly.Position) map[exactly.TP]error {
	adm := kadm.NewClient(s.cl)
	topics := topicsOf(tps)
	ids, err := topicIDs(ctx, adm, topics)
	if err != nil {
		s.log.Warn("reading topic ids of newly assigned partitions", "topics", strings.Join(topics, ","), "err", err)
	}
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		s.log.Warn("reading the log end of newly assigned partitions", "topics", strings.Join(topics, ","), "err", err)
	}
	halts := map[exactly.TP]error{}
	for _, tp := range tps {
		pos := stored[tp]
		end := int64(-1)
		if l, ok := ends.Lookup(tp.Topic, tp.Partition); ok && l.Err == nil {
			end = l.Offset
		}
		id := ids[tp.Topic]
		switch {
		case id != "" && pos.TopicID != "" && id != pos.TopicID:
			halts[tp] = s.recreated(tp, pos.Next, end, pos.TopicID, id)
		case end >= 0 && pos.Next > end:
			halts[tp] = s.beyondEnd(tp, pos.Next, end)
		case id != "" && pos.TopicID == "":
			if err := s.sink.RecordTopicID(ctx, tp, id); err != nil {
				s.log.Warn("recording the topic id", "topic", tp.Topic, "partition", tp.Partition, "err", err)
				continue
			}
			pos.TopicID = id
			stored[tp] = pos
		}
	}
	return halts
}

func (s *Source) recreated(tp exactly.TP, next, end int64, stored, id string) error {
	return &exactly.TopicRecreatedError{Topic: tp.Topic, Partition: tp.Partition, Next: next, End: end, Stored: stored, ID: id,
		Hint: exactly.ReseedHint(s.cfg.File, tp.Topic, tp.Partition, "earliest")}
}

func (s *Source) beyondEnd(tp exactly.TP, next, end int64) error {
	return &exactly.BeyondLogEndError{Topic: tp.Topic, Partition: tp.Partition, Next: next, End: end,
		Cause: "the topic was deleted and recreated, the cluster was reset or replaced, or the log was truncated: the records the ledger counts as applied are not the ones Kafka holds",
		Hint:  exactly.ReseedHint(s.cfg.File, tp.Topic, tp.Partition, "earliest")}
}

// haltKind names a halt's cause for the errors metric.
func haltKind(err error) string {
	var (
		re *exactly.TopicRecreatedError
		be *exactly.BeyondLogEndError
		te *exactly.LogTruncatedError
	)
	switch {
	case errors.As(err, &re):
		return "topic_recreated"
	case errors.As(err, &be):
		return "beyond_log_end"
	case errors.As(err, &te):
		return "log_truncated"
	}
	return "offset_out_of_range"
}

// topicIDs returns the ids of the topics that have one (Metadata v10+).
func topicIDs(ctx context.Context, adm *kadm.Client, topics []string) (map[string]string, error) {
	out := map[string]string{}
	if len(topics) == 0 {
		return out, nil
	}
	md, err := adm.ListTopics(ctx, topics...)
	if err != nil {
		return out, err
	}
	for t, d := range md {
		if d.Err == nil {
			out[t] = idString(d.ID)
		}
	}
	return out, nil
}

// idString is a topic id as stored in the ledger: base64, "" for none.
func idString(id [16]byte) string {
	if id == ([16]byte{}) {
		return ""
	}
	return kadm.TopicID(id).String()
}

func sortedKeys(m map[exactly.TP]error) []exactly.TP {
	out := make([]exactly.TP, 0, len(m))
	for tp := range m {
		out = append(out, tp)
	}
	exactly.SortTPs(out)
	return out
}

// startOffsets returns the stored next_offset of each partition, seeding
// missing rows: start_from on the pipeline's first start (see
// recordFirstStart), the log start of partitions created since.
func (s *Source) startOffsets(ctx context.Context, tps []exactly.TP) (map[exactly.TP]exactly.Position, error) {
	if err := s.recordFirstStart(ctx); err != nil {
		return nil, err
	}
	stored, err := s.sink.LoadPositions(ctx, tps)
	if err != nil {
		return nil, err
	}
	var missing []exactly.TP
	for _, tp := range tps {
		if _, ok := stored[tp]; !ok {
			missing = append(missing, tp)
		}
	}
	if len(missing) == 0 {
		return stored, nil
	}
	seeds, err := s.seedOffsets(ctx, missing)
	if err != nil {
		return nil, err
	}
	for _, tp := range missing {
		if _, err := s.sink.SeedOffset(ctx, tp, seeds[tp]); err != nil {
			return nil, err
		}
	}
	seeded, err := s.sink.LoadPositions(ctx, missing)
	if err != nil {
		return nil, err
	}
	for tp, pos := range seeded {
		stored[tp] = pos
	}
	return stored, nil
}

// recordFirstStart reads the pipeline's exactly_pipelines row and, when
// there is none, this is the pipeline's first start: start_from is
// resolved for every partition of every topic it reads now, and those
// partitions are seeded with the row in one transaction (see
// exactly.Sink.RecordFirstStart).
func (s *Source) recordFirstStart(ctx context.Context) error {
	if s.first != nil {
		return nil
	}
	row, err := s.sink.FirstStart(ctx)
	if err != nil {
		return err
	}
	if row == nil {
		adm := kadm.NewClient(s.cl)
		tps, err := routedPartitions(ctx, adm, s.cfg)
		if err != nil {
			return err
		}
		seeds := map[exactly.TP]int64{}
		if len(tps) > 0 {
			var uncommitted []exactly.TP
			seeds, uncommitted, err = resolveStart(ctx, adm, s.cfg.Source.StartFrom, s.cfg.Source.Group, tps)
			if err != nil {
				return err
			}
			for _, tp := range uncommitted {
				s.log.Warn("start_from: group: the group has no committed offset for this partition; starting at the log start",
					"group", s.cfg.Source.Group, "topic", tp.Topic, "partition", tp.Partition, "offset", seeds[tp])
			}
		}
		row, err = s.sink.RecordFirstStart(ctx, s.cfg.Source.StartFrom, seeds)
		if err != nil {
			// Another instance recording it at the same moment (SQL
			// Server dooms the loser's transaction): its row stands.
			if again, aerr := s.sink.FirstStart(ctx); aerr == nil && again != nil {
				row, err = again, nil
			}
		}
		if err != nil {
			return err
		}
		if row.Notes == "" {
			s.log.Info("first start of the pipeline: start_from applied to the partitions that exist now; partitions created later start at their beginning",
				"start_from", s.cfg.Source.StartFrom, "partitions", len(seeds))
		}
	}
	s.first = row
	return nil
}

// seedOffsets seeds partitions the ledger has never seen, created after
// the pipeline's first start: they start at their log start, whatever
// start_from says (start_from latest would skip the records produced to
// them before this member was assigned them). It is read once per
// partition: the seeded row is the truth from then on.
func (s *Source) seedOffsets(ctx context.Context, tps []exactly.TP) (map[exactly.TP]int64, error) {
	out, _, err := resolveStart(ctx, kadm.NewClient(s.cl), "earliest", s.cfg.Source.Group, tps)
	if err != nil {
		return nil, err
	}
	for _, tp := range tps {
		s.log.Info("partition created after the pipeline's first start: starting at its beginning",
			"topic", tp.Topic, "partition", tp.Partition, "next_offset", out[tp], "first_started_at", s.first.StartedAt.Format(time.RFC3339))
	}
	return out, nil
}

// drop forgets revoked or lost partitions and the records buffered for
// them: they now belong to another member, which starts from the ledger.
func (s *Source) drop(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	s.mu.Lock()
	var tps []exactly.TP
	var resume map[string][]int32
	for t, ps := range lost {
		for _, p := range ps {
			tp := exactly.TP{Topic: t, Partition: p}
			tps = append(tps, tp)
			if q := s.parts[tp]; q != nil && (q.paused || q.halted != nil) {
				// A pause outlives the assignment: lift it, or the
				// partition would stay silent if it came back here.
				if resume == nil {
					resume = map[string][]int32{}
				}
				resume[t] = append(resume[t], p)
			}
			delete(s.parts, tp)
		}
	}
	s.mu.Unlock()
	if resume != nil {
		s.cl.ResumeFetchPartitions(resume)
	}
	s.log.Debug("partitions revoked", "count", len(tps))
	s.obs().Revoked(tps)
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
	interval := s.cfg.Batch.Interval.D()
	var (
		flights   []*flight
		blocked   bool // a poll returned since the last AllowRebalance
		backoff   time.Duration
		notBefore time.Time // after a failed flight, the next waits
	)
	// reap applies the flights that ended.
	reap := func() {
		keep := flights[:0]
		for _, fl := range flights {
			select {
			case <-fl.done:
				s.limit.ended(time.Now(), fl.committed(), fl.waited, len(flights)-1)
				if s.finish(fl) {
					backoff = min(max(2*backoff, 100*time.Millisecond), 5*time.Second)
					notBefore = time.Now().Add(backoff)
				} else {
					backoff = 0
				}
			default:
				keep = append(keep, fl)
			}
		}
		clear(flights[len(keep):])
		flights = keep
	}
	for {
		if ctx.Err() != nil {
			s.settle(flights)
			return nil
		}
		if err := s.fatal.Load(); err != nil {
			s.settle(flights)
			return *err
		}
		now := time.Now()
		s.limit.tick(now, len(flights))
		slots := s.slots()
		rebalance := s.rebalance.Load()
		if blocked && !rebalance && len(flights) < slots && !now.Before(notBefore) {
			flights = append(flights, s.launch(now, slots-len(flights))...)
		}
		if blocked && len(flights) == 0 {
			// Nothing in flight: let a waiting rebalance run now
			// (revoking only buffered records), or an idle member would
			// hold the whole group up.
			s.rebalance.Store(false)
			s.cl.AllowRebalance()
			blocked, rebalance = false, false
		}
		s.mu.Lock()
		buffered, bytes, oldest := s.bufferedLocked()
		s.mu.Unlock()
		full := buffered >= s.cfg.Batch.MaxRecords || bytes >= s.cfg.Batch.MaxBytes

		// Wait for records, for a flight to end, or for the next batch to
		// fall due, whichever comes first. A flight's end is always a
		// wake-up; a due time is one only when a flight could be
		// launched then, or a past due time would spin.
		wake := now.Add(interval)
		if due := oldest.Add(interval); !oldest.IsZero() && len(flights) < slots && !rebalance && due.Before(wake) {
			wake = due
		}
		if notBefore.After(wake) {
			wake = notBefore
		}
		pctx, cancel := context.WithDeadline(ctx, wake)
		stops := make([]func() bool, 0, len(flights))
		for _, fl := range flights {
			stops = append(stops, context.AfterFunc(fl.ctx, cancel))
		}
		if full {
			if len(flights) > 0 || blocked || now.Before(notBefore) {
				<-pctx.Done()
			} else {
				// Block rebalances without taking records: a poll with
				// a cancelled context returns at once, holding them.
				cctx, ccancel := context.WithCancel(ctx)
				ccancel()
				s.cl.PollRecords(cctx, 1)
				blocked = true
			}
		} else {
			fetches := s.cl.PollRecords(pctx, s.cfg.Batch.MaxRecords-buffered)
			blocked = true
			if fetches.IsClientClosed() {
				for _, stop := range stops {
					stop()
				}
				cancel()
				s.settle(flights)
				return errors.New("kafka client closed")
			}
			s.handleErrors(ctx, fetches)
			s.buffer(fetches)
			if s.OnFetch != nil {
				s.OnFetch(fetches.NumRecords())
			}
		}
		for _, stop := range stops {
			stop()
		}
		cancel()
		reap()
	}
}

// bufferedLocked returns the records and bytes buffered and not yet in a
// flight, and when the oldest of those that could be launched now arrived
// (see launchable); zero if none.
func (s *Source) bufferedLocked() (n int, bytes int64, oldest time.Time) {
	busy := s.busyLocked()
	for _, p := range s.parts {
		n += len(p.recs)
		bytes += p.bytes
		if s.launchable(p, busy) && (oldest.IsZero() || p.first.Before(oldest)) {
			oldest = p.first
		}
	}
	return n, bytes, oldest
}

// busyLocked returns the tables in a flight when a table must be in one
// flight at a time (the dialect is not exactly.SharedTables), else nil.
func (s *Source) busyLocked() map[string]bool {
	if st, ok := s.sink.Dialect().(exactly.SharedTables); ok && st.SharedTables() {
		return nil
	}
	busy := map[string]bool{}
	for _, p := range s.parts {
		if p.inflight {
			busy[p.table] = true
		}
	}
	return busy
}

// launchable says whether a partition's buffer could go in a flight now.
func (s *Source) launchable(p *partition, busy map[string]bool) bool {
	return len(p.recs) > 0 && p.halted == nil && !p.inflight && !busy[p.table] && !time.Now().Before(p.failing.retryAt)
}

// buffer appends polled records to their partitions' buffers, dropping
// records of partitions no longer assigned and records below the position
// the partition expects (left over from before a rewind). A partition whose
// buffer holds more than its share of the batch caps is paused, so one busy
// partition cannot crowd the others out while memory stays bounded.
func (s *Source) buffer(fetches kgo.Fetches) {
	type seen struct {
		tp      exactly.TP
		n       int
		highWat int64
	}
	var observed []seen
	defer func() { // after the unlock below: observers never run under mu
		for _, o := range observed {
			s.obs().Fetched(o.tp, o.n, o.highWat)
		}
	}()
	// Halts found below run after the unlock (halt takes mu).
	halts := map[exactly.TP]error{}
	defer func() {
		for _, tp := range sortedKeys(halts) {
			s.obs().Failed("kafka", haltKind(halts[tp]), halts[tp])
			s.halt(tp, halts[tp])
		}
	}()
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	shareRecs, shareBytes := s.shareLocked()
	var pause map[string][]int32
	ids := map[string]string{}
	fetches.EachTopic(func(t kgo.FetchTopic) { ids[t.Topic] = idString(t.TopicID) })
	fetches.EachPartition(func(ft kgo.FetchTopicPartition) {
		tp := exactly.TP{Topic: ft.Topic, Partition: ft.Partition}
		p := s.parts[tp]
		if p == nil || p.halted != nil {
			return
		}
		if id := ids[ft.Topic]; id != "" && p.topicID != "" && id != p.topicID && len(ft.Records) > 0 {
			// Records of another topic of the same name: the topic
			// was recreated while this member owned it. Not one of
			// them is applied.
			halts[tp] = s.recreated(tp, p.next, ft.HighWatermark, p.topicID, id)
			return
		}
		before := len(p.recs)
		defer func() { observed = append(observed, seen{tp, len(p.recs) - before, ft.HighWatermark}) }()
		slab := make([]exactly.Record, len(ft.Records)) // one allocation, not one per record
		for i, r := range ft.Records {
			want := p.next
			if p.inflight {
				want = p.flightTo
			}
			if n := len(p.recs); n > 0 {
				want = p.recs[n-1].Offset + 1
			}
			if r.Offset < want {
				continue
			}
			rec := &slab[i]
			*rec = exactly.Record{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset,
				Key: r.Key, Value: r.Value, Timestamp: r.Timestamp, LeaderEpoch: r.LeaderEpoch}
			for _, h := range r.Headers {
				rec.Headers = append(rec.Headers, exactly.Header{Key: h.Key, Value: h.Value})
			}
			if len(p.recs) == 0 {
				p.first = now
			}
			p.recs = append(p.recs, rec)
			p.bytes += int64(len(r.Key) + len(r.Value))
		}
		if !p.paused && (len(p.recs) >= shareRecs || p.bytes >= shareBytes) {
			p.paused = true
			if pause == nil {
				pause = map[string][]int32{}
			}
			pause[tp.Topic] = append(pause[tp.Topic], tp.Partition)
		}
	})
	if pause != nil {
		s.cl.PauseFetchPartitions(pause)
	}
}

// shareLocked is the most one partition may buffer before it is paused:
// twice its fair share of the batch caps, and never less than a useful
// batch.
func (s *Source) shareLocked() (int, int64) {
	n := max(len(s.parts), 1)
	recs := max(2*s.cfg.Batch.MaxRecords/n, min(s.cfg.Batch.MaxRecords, 1000))
	bytes := max(2*s.cfg.Batch.MaxBytes/int64(n), min(s.cfg.Batch.MaxBytes, 1<<20))
	return recs, bytes
}

// handleErrors logs fetch errors with their coordinates. An out-of-range
// offset means records below the log start were deleted before they were
// applied: the partition halts loudly instead of jumping over them.
func (s *Source) handleErrors(ctx context.Context, fetches kgo.Fetches) {
	for _, fe := range fetches.Errors() {
		if errors.Is(fe.Err, context.DeadlineExceeded) || errors.Is(fe.Err, context.Canceled) {
			continue
		}
		if isGroupError(fe.Err) {
			s.groupError(fe.Err)
			continue
		}
		if fe.Topic == "" {
			// Not about a partition (a client-wide error: no broker
			// reachable, an authentication failure): say what is known.
			s.log.Warn("kafka client error", "brokers", strings.Join(s.cfg.Source.Brokers, ","), "group", s.cfg.Source.Group, "err", fe.Err)
			s.obs().Failed("kafka", kafkaErrorKind(fe.Err), fe.Err)
			continue
		}
		tp := exactly.TP{Topic: fe.Topic, Partition: fe.Partition}
		var dl *kgo.ErrDataLoss
		if errors.As(fe.Err, &dl) {
			s.dataLoss(tp, dl)
			continue
		}
		if errors.Is(fe.Err, kerr.OffsetOutOfRange) {
			s.mu.Lock()
			p := s.parts[tp]
			var next int64
			if p != nil {
				next = p.next
			}
			s.mu.Unlock()
			if p == nil || p.halted != nil {
				continue
			}
			adm := kadm.NewClient(s.cl)
			if ends, err := adm.ListEndOffsets(ctx, tp.Topic); err == nil {
				if l, ok := ends.Lookup(tp.Topic, tp.Partition); ok && l.Err == nil && next > l.Offset {
					be := s.beyondEnd(tp, next, l.Offset)
					s.obs().Failed("kafka", haltKind(be), be)
					s.halt(tp, be)
					continue
				}
			}
			gap := &exactly.GapError{Topic: tp.Topic, Partition: tp.Partition, Want: next, Got: -1}
			if starts, err := adm.ListStartOffsets(ctx, tp.Topic); err == nil {
				if l, ok := starts.Lookup(tp.Topic, tp.Partition); ok {
					gap.Got = l.Offset
				}
			}
			gap.Hint = "run exactly verify, then accept the loss: " + exactly.ReseedHint(s.cfg.File, tp.Topic, tp.Partition, fmt.Sprint(max(gap.Got, 0)))
			s.obs().Failed("kafka", "offset_out_of_range", gap)
			s.halt(tp, gap)
			continue
		}
		s.log.Warn("fetch error", "topic", fe.Topic, "partition", fe.Partition, "err", fe.Err)
		s.obs().Failed("kafka", kafkaErrorKind(fe.Err), fe.Err)
	}
}

// dataLoss handles franz-go's report that the log was truncated below
// what it had consumed (KIP-320; an unclean leader election): it moved the
// cursor back to where the log diverged. When that is below what the
// pipeline applied, or may have applied in the flight in progress, the
// partition halts: the tables hold records Kafka no longer has, and the
// records written in their place would be skipped (buffer drops what is
// below the expected offset). Otherwise only buffered records were lost:
// they are dropped and read again from the new position.
func (s *Source) dataLoss(tp exactly.TP, dl *kgo.ErrDataLoss) {
	s.mu.Lock()
	p := s.parts[tp]
	if p == nil || p.halted != nil {
		s.mu.Unlock()
		return
	}
	applied := p.next
	if p.inflight {
		applied = p.flightTo
	}
	if dl.ResetTo >= applied {
		keep := p.recs[:0]
		for _, r := range p.recs {
			if r.Offset < dl.ResetTo {
				keep = append(keep, r)
			}
		}
		clear(p.recs[len(keep):])
		p.recs = keep
		s.mu.Unlock()
		s.log.Warn("log truncated above the applied offset: buffered records dropped and read again", "topic", tp.Topic, "partition", tp.Partition,
			"applied_to", applied, "reset_to", dl.ResetTo, "consumed_to", dl.ConsumedTo)
		return
	}
	next := p.next
	s.mu.Unlock()
	err := &exactly.LogTruncatedError{Topic: tp.Topic, Partition: tp.Partition, Next: next, Epoch: dl.ConsumedToEpoch, ResetTo: dl.ResetTo,
		Hint: exactly.ReseedHint(s.cfg.File, tp.Topic, tp.Partition, fmt.Sprint(dl.ResetTo))}
	s.obs().Failed("kafka", haltKind(err), err)
	s.halt(tp, err)
}

// halt stops a partition: its buffer is dropped and fetching paused.
func (s *Source) halt(tp exactly.TP, err error) {
	s.mu.Lock()
	if p := s.parts[tp]; p != nil {
		p.halted, p.recs, p.bytes = err, nil, 0
	}
	s.mu.Unlock()
	s.cl.PauseFetchPartitions(map[string][]int32{tp.Topic: {tp.Partition}})
	s.log.Error("partition halted", "topic", tp.Topic, "partition", tp.Partition, "err", err)
	s.obs().Halted(tp, err)
}

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
	share, shareBytes := max(s.cfg.Batch.MaxRecords/slots, 1), max(s.cfg.Batch.MaxBytes/int64(slots), 1)
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
	var resume map[string][]int32
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
			if p.paused {
				p.paused = false
				if resume == nil {
					resume = map[string][]int32{}
				}
				resume[c.tp.Topic] = append(resume[c.tp.Topic], c.tp.Partition)
			}
		}
	}
	s.mu.Unlock()
	if resume != nil {
		s.cl.ResumeFetchPartitions(resume)
	}
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

// finish applies a settled flight.s outcomes: committed partitions move
// on and are committed to Kafka as a hint; failed ones are re-read from the
// ledger. A partition revoked or lost meanwhile is skipped: it belongs to
// another member now, and a late Kafka commit from here could move the
// group's hint backwards. It reports whether anything failed. It runs on
// the polling goroutine before AllowRebalance, as SetOffsets requires.
func (s *Source) finish(fl *flight) (failed bool) {
	commit := map[string]map[int32]kgo.EpochOffset{}
	var rewind []exactly.TP
	for _, o := range fl.outcomes {
		b := o.Batch
		tp := exactly.TP{Topic: b.Topic, Partition: b.Partition}
		s.mu.Lock()
		p := s.parts[tp]
		if p != nil {
			p.inflight = false
			if o.Committed {
				p.next = b.To
				p.failing = failing{}
			}
		}
		s.mu.Unlock()
		if p == nil {
			continue
		}
		if o.Committed {
			if commit[b.Topic] == nil {
				commit[b.Topic] = map[int32]kgo.EpochOffset{}
			}
			commit[b.Topic][b.Partition] = kgo.EpochOffset{Epoch: -1, Offset: b.To}
		}
		var re *exactly.RecordError
		switch {
		case o.Err == nil:
		case errors.As(o.Err, &re):
			s.halt(tp, fmt.Errorf("on_error: fail: %w; fix the record's table or rule and restart, consumption resumes at offset %d", re, re.Offset))
		default:
			failed = true
			rewind = append(rewind, tp)
			var fe *exactly.FencedError
			if errors.As(o.Err, &fe) {
				s.log.Warn("batch fenced", "topic", b.Topic, "partition", b.Partition, "from", b.From, "stored", fe.Stored)
			} else {
				s.mu.Lock()
				n, wait := p.failing.again(b.From, o.Err.Error(), time.Now())
				s.mu.Unlock()
				s.log.Error("batch failed; it will be read again from the ledger offset", "topic", b.Topic,
					"partition", b.Partition, "from", b.From, "to", b.To, "batch_id", b.BatchID,
					"failures_in_a_row", n, "retry_in", wait, "err", o.Err)
				s.obs().Failed("db", s.sink.Dialect().Classify(o.Err).String(), o.Err)
			}
		}
	}
	ctx, cancel := context.WithTimeout(s.hardCtx(), time.Minute)
	defer cancel()
	if len(rewind) > 0 {
		s.rewind(ctx, rewind)
	}
	if len(commit) > 0 {
		exactly.Failpoint("before_kafka_commit")
		// A hint for lag tools only; its failure changes nothing. The
		// commit is asynchronous: it gets a context of its own, since
		// finish's ctx is cancelled when finish returns, which used to
		// cancel group commits before they were sent.
		cctx, ccancel := context.WithTimeout(context.Background(), 30*time.Second)
		s.cl.CommitOffsets(cctx, commit, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
			defer ccancel()
			if err == nil && resp != nil {
				for _, t := range resp.Topics {
					for _, p := range t.Partitions {
						if err = kerr.ErrorForCode(p.ErrorCode); err != nil {
							break
						}
					}
				}
			}
			if err != nil {
				s.log.Debug("committing group offsets (hint only)", "err", err)
				s.obs().Failed("kafka", "commit_offsets", err)
			}
		})
	}
	if s.OnCommit != nil {
		s.OnCommit(fl.outcomes)
	}
	return failed
}

// rewind re-reads the stored next_offset of partitions whose batch did not
// commit and moves their fetch position there. Until the database answers
// the partitions stay paused, so nothing is read from a wrong position.
func (s *Source) rewind(ctx context.Context, tps []exactly.TP) {
	stored, err := s.sink.LoadPositions(ctx, tps)
	set := map[string]map[int32]kgo.EpochOffset{}
	var resume map[string][]int32
	s.mu.Lock()
	for _, tp := range tps {
		p := s.parts[tp]
		if p == nil {
			continue
		}
		p.recs, p.bytes = nil, 0
		if p.paused {
			p.paused = false
			if resume == nil {
				resume = map[string][]int32{}
			}
			resume[tp.Topic] = append(resume[tp.Topic], tp.Partition)
		}
		epoch := int32(-1)
		if err == nil {
			if pos, ok := stored[tp]; ok {
				p.next, epoch = pos.Next, pos.Epoch
			}
		}
		if set[tp.Topic] == nil {
			set[tp.Topic] = map[int32]kgo.EpochOffset{}
		}
		set[tp.Topic][tp.Partition] = kgo.EpochOffset{Epoch: epoch, Offset: p.next}
	}
	s.mu.Unlock()
	if err != nil {
		// The database is unreachable: the in-memory next is the last
		// offset known to be stored or a fence will catch it.
		s.log.Warn("re-reading offsets after a failed batch", "partitions", fmt.Sprint(tps), "err", err)
		s.obs().Failed("db", s.sink.Dialect().Classify(err).String(), err)
	}
	s.cl.SetOffsets(set)
	if resume != nil {
		s.cl.ResumeFetchPartitions(resume)
	}
}

// Ping reaches a broker: the readiness check of the status server.
func (s *Source) Ping(ctx context.Context) error {
	if err := s.cl.Ping(ctx); err != nil {
		return fmt.Errorf("pinging the kafka brokers: %w", err)
	}
	return nil
}

// watchWatermarks reports the high watermark of every assigned partition
// to the Observer every WatermarkEvery, so lag is known for partitions
// that receive nothing (fetch responses only carry it when they carry
// records). It also halts an owned partition whose topic was recreated
// (another topic id) or whose next_offset is beyond the log end on two
// checks in a row (a reset cluster, a recreated topic on a broker
// without ids): the client fetches from next_offset in a log that ends
// below it and gets nothing, so without this check the member stayed
// ready with lag 0 and never applied the new records.
func (s *Source) watchWatermarks(ctx context.Context) {
	every := s.WatermarkEvery
	if every <= 0 {
		every = 5 * time.Second
	}
	adm := kadm.NewClient(s.cl)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.mu.Lock()
		topics := map[string]bool{}
		for tp := range s.parts {
			topics[tp.Topic] = true
		}
		s.mu.Unlock()
		if len(topics) == 0 {
			continue
		}
		names := make([]string, 0, len(topics))
		for t := range topics {
			names = append(names, t)
		}
		lctx, cancel := context.WithTimeout(ctx, every)
		ends, err := adm.ListEndOffsets(lctx, names...)
		ids, _ := topicIDs(lctx, adm, names) // none when it fails: the ends still tell
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				s.log.Debug("listing end offsets for lag", "err", err)
				s.obs().Failed("kafka", kafkaErrorKind(err), err)
			}
			continue
		}
		halts := map[exactly.TP]error{}
		ends.Each(func(o kadm.ListedOffset) {
			if o.Err != nil {
				return
			}
			tp := exactly.TP{Topic: o.Topic, Partition: o.Partition}
			s.mu.Lock()
			p, mine := s.parts[tp]
			if mine && p.halted == nil {
				switch id := ids[tp.Topic]; {
				case id != "" && p.topicID != "" && id != p.topicID:
					halts[tp] = s.recreated(tp, p.next, o.Offset, p.topicID, id)
				case o.Offset < p.next:
					if p.beyond++; p.beyond >= 2 {
						halts[tp] = s.beyondEnd(tp, p.next, o.Offset)
					}
				default:
					p.beyond = 0
				}
			}
			s.mu.Unlock()
			if mine {
				s.obs().Fetched(tp, 0, o.Offset)
			}
		})
		for _, tp := range sortedKeys(halts) {
			s.obs().Failed("kafka", haltKind(halts[tp]), halts[tp])
			s.halt(tp, halts[tp])
		}
	}
}

// kafkaErrorKind names a broker error for the errors metric: the Kafka
// error code's name when there is one, else a coarse word.
func kafkaErrorKind(err error) string {
	var ke *kerr.Error
	switch {
	case errors.As(err, &ke):
		return strings.ToLower(ke.Message)
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return "network"
	}
	return "other"
}
