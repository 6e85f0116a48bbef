// Package status reads where a pipeline stands, per partition: what its
// ledger committed and what Kafka holds (high watermark, log start, lag).
// Its rule: it only reads. It never writes to the sink or to Kafka; the
// exactly status command prints what it returns.
package status

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/exactly/exactly"
)

// Partition is one partition's status.
type Partition struct {
	Topic      string `json:"topic"`
	Partition  int32  `json:"partition"`
	Table      string `json:"table"`
	NextOffset *int64 `json:"next_offset"`    // null: the pipeline never reached the partition
	HighWater  *int64 `json:"high_watermark"` // null: the topic is gone from Kafka
	LogStart   *int64 `json:"log_start"`
	Lag        *int64 `json:"lag"`
	// RetentionLost counts offsets Kafka deleted below its log start before
	// the pipeline reached them (log start > next_offset): run verify.
	RetentionLost int64      `json:"retention_lost,omitempty"`
	LastBatchID   string     `json:"last_batch_id,omitempty"`
	LastBatchAt   *time.Time `json:"last_batch_at,omitempty"`
	LastStatus    string     `json:"last_status,omitempty"`
	LastError     string     `json:"last_error,omitempty"`
	// DeadLetters counts the partition's open dead letters (records not
	// in their table until redriven), DeadLettersResolved the redriven.
	DeadLetters         int64 `json:"dead_letters"`
	DeadLettersResolved int64 `json:"dead_letters_resolved"`
}

// Kafka is what Read asks Kafka (internal/kafka.Client answers it).
type Kafka interface {
	// Partitions lists the partitions of the topics the configuration matches.
	Partitions(ctx context.Context) ([]exactly.TP, error)
	Bounds(ctx context.Context, tps []exactly.TP) (map[exactly.TP]exactly.Bounds, error)
}

// Select narrows the partitions read (all, sorted) to the shown ones; an
// error refuses the selection. kafkaFailed says that all holds the
// ledger's partitions only.
type Select func(all []exactly.TP, kafkaFailed bool) ([]exactly.TP, error)

// ledgerHalf is what the ledger says of a pipeline's partitions.
type ledgerHalf struct {
	offs []exactly.OffsetRow
	last map[exactly.TP]exactly.BatchRow
	dead map[exactly.TP]exactly.DeadLetterCount
}

// Read joins the ledger's partitions with the partitions of the topics
// the configuration matches in Kafka, keeping the partitions sel keeps
// (nil keeps all). The ledger is read with ctx, then Kafka with
// kafkaCtx() (its wait starts there): when Kafka fails, kerr says why and
// st holds the ledger half (no high watermark, no lag). total counts the
// partitions before sel.
func Read(ctx context.Context, kafkaCtx func() context.Context, cfg *exactly.Config, l *exactly.Ledger, k Kafka, sel Select) (st []Partition, total int, kerr, err error) {
	var h ledgerHalf
	if h.offs, err = l.Offsets(ctx); err != nil {
		return nil, 0, nil, err
	}
	if h.last, err = l.LastBatches(ctx); err != nil {
		return nil, 0, nil, err
	}
	if h.dead, err = l.DeadLetterCounts(ctx); err != nil {
		return nil, 0, nil, err
	}
	kctx := kafkaCtx()
	live, kerr := k.Partitions(kctx)
	tps := h.partitions(live)
	total = len(tps)
	if sel != nil {
		if tps, err = sel(tps, kerr != nil); err != nil {
			return nil, 0, nil, err
		}
	}
	bounds := map[exactly.TP]exactly.Bounds{}
	if kerr == nil {
		bounds, kerr = k.Bounds(kctx, tps)
	}
	return h.join(cfg, tps, bounds), total, kerr, nil
}

// partitions lists, sorted, the partitions the ledger or Kafka (live) know.
func (h *ledgerHalf) partitions(live []exactly.TP) []exactly.TP {
	seen := map[exactly.TP]bool{}
	var tps []exactly.TP
	add := func(tp exactly.TP) {
		if !seen[tp] {
			seen[tp] = true
			tps = append(tps, tp)
		}
	}
	for _, o := range h.offs {
		add(o.TP)
	}
	for tp := range h.last {
		add(tp)
	}
	for _, tp := range live {
		add(tp)
	}
	exactly.SortTPs(tps)
	return tps
}

// join computes the status of each of tps from the ledger and the bounds
// Kafka gave (none for a topic gone from Kafka, or Kafka unreachable).
func (h *ledgerHalf) join(cfg *exactly.Config, tps []exactly.TP, bounds map[exactly.TP]exactly.Bounds) []Partition {
	next := map[exactly.TP]int64{}
	for _, o := range h.offs {
		next[o.TP] = o.Next
	}
	out := make([]Partition, 0, len(tps))
	for _, tp := range tps {
		s := Partition{Topic: tp.Topic, Partition: tp.Partition,
			DeadLetters: h.dead[tp].Open, DeadLettersResolved: h.dead[tp].Resolved}
		if _, table, ok := cfg.Route(tp.Topic); ok {
			s.Table = table
		}
		n, hasNext := next[tp]
		if hasNext {
			s.NextOffset = &n
		}
		if b, ok := bounds[tp]; ok {
			hw, ls := b.End, b.Start
			s.HighWater, s.LogStart = &hw, &ls
			lag := hw - ls // never started: everything retained is to do
			if hasNext {
				lag = hw - n // negative: next_offset beyond the log end (a recreated topic, a reset cluster)
				s.RetentionLost = max(ls-n, 0)
			}
			s.Lag = &lag
		}
		if b, ok := h.last[tp]; ok {
			at := b.StartedAt
			if !b.CommittedAt.IsZero() {
				at = b.CommittedAt
			}
			s.LastBatchID, s.LastBatchAt, s.LastStatus, s.LastError = b.BatchID, &at, b.Status, b.Error
		}
		out = append(out, s)
	}
	return out
}

// Waiting sums the positive lag of st: the records Kafka holds that the
// pipeline has yet to apply.
func Waiting(st []Partition) int64 {
	var lag int64
	for _, s := range st {
		if s.Lag != nil && *s.Lag > 0 {
			lag += *s.Lag
		}
	}
	return lag
}

// LedgerSummary is what the ledger says on its own of the partitions st.
type LedgerSummary struct {
	LastBatchAt time.Time // zero: never
	DeadLetters int64     // open
	FailedLast  int64     // partitions whose last batch failed
	Partitions  int
}

// SummarizeLedger sums st without Kafka.
func SummarizeLedger(st []Partition) LedgerSummary {
	sum := LedgerSummary{Partitions: len(st)}
	for _, s := range st {
		sum.DeadLetters += s.DeadLetters
		if s.LastStatus == exactly.StatusFailed {
			sum.FailedLast++
		}
		if s.LastBatchAt != nil && s.LastBatchAt.After(sum.LastBatchAt) {
			sum.LastBatchAt = *s.LastBatchAt
		}
	}
	return sum
}

// shown is the set of partitions st shows.
func shown(st []Partition) map[exactly.TP]bool {
	m := make(map[exactly.TP]bool, len(st))
	for _, s := range st {
		m[exactly.TP{Topic: s.Topic, Partition: s.Partition}] = true
	}
	return m
}

// Chain is the chain check of the shown partitions (exactly.Chain, the
// rule verify and the status page apply).
type Chain struct {
	Batches int64        `json:"committed_batches"` // committed rows followed
	Breaks  []ChainBreak `json:"breaks"`
}

// ChainBreak is one break of a partition's chain.
type ChainBreak struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Kind      string `json:"kind"`
	From      int64  `json:"from"` // inclusive
	To        int64  `json:"to"`   // exclusive
	Problem   string `json:"problem"`
}

// ReadChain checks the chain of committed batches of the partitions st
// shows. The offsets are read again first: rows committed after that
// read are left out, so a running pipeline does not look broken.
func ReadChain(ctx context.Context, l *exactly.Ledger, st []Partition) (*Chain, error) {
	offs, err := l.Offsets(ctx)
	if err != nil {
		return nil, err
	}
	show := shown(st)
	breaks, n, err := l.CheckChainsOf(ctx, offs, func(tp exactly.TP) bool { return show[tp] })
	if err != nil {
		return nil, err
	}
	out := &Chain{Batches: n, Breaks: []ChainBreak{}}
	for _, b := range breaks {
		out.Breaks = append(out.Breaks, ChainBreak{Topic: b.Topic, Partition: b.Partition, Kind: string(b.Kind),
			From: b.From, To: b.To, Problem: b.Problem()})
	}
	return out, nil
}

// Reseed is one exactly reseed of a shown partition.
type Reseed struct {
	Topic     string    `json:"topic"`
	Partition int32     `json:"partition"`
	From      int64     `json:"from"`
	To        int64     `json:"to"`
	By        string    `json:"by"`
	At        time.Time `json:"at"`
	Reason    string    `json:"reason"`
	BatchID   string    `json:"batch_id"`
}

// Reseeds returns the reseeded ledger rows of the partitions st shows,
// oldest first.
func Reseeds(ctx context.Context, l *exactly.Ledger, st []Partition) ([]Reseed, error) {
	rows, err := l.Reseeds(ctx)
	if err != nil {
		return nil, err
	}
	return reseedsOf(rows, shown(st)), nil
}

func reseedsOf(rows []exactly.BatchRow, show map[exactly.TP]bool) []Reseed {
	out := []Reseed{}
	for _, r := range rows {
		if show[r.TP()] {
			out = append(out, Reseed{Topic: r.Topic, Partition: r.Partition, From: r.From, To: r.To, By: r.Writer,
				At: r.StartedAt, Reason: r.Notes, BatchID: r.BatchID})
		}
	}
	return out
}

// Pruned is the marker of exactly prune a shown partition's chain starts
// at: the ledger rows deleted below To.
type Pruned struct {
	Topic     string    `json:"topic"`
	Partition int32     `json:"partition"`
	From      int64     `json:"from"` // inclusive
	To        int64     `json:"to"`   // exclusive: the chain starts here
	Rows      int64     `json:"rows"` // ledger rows deleted
	Records   int64     `json:"records"`
	Before    time.Time `json:"before"` // the last prune's cut
	By        string    `json:"by"`
	At        time.Time `json:"at"` // when the last prune ran
	Prunes    int64     `json:"prunes"`
	BatchID   string    `json:"batch_id"`
}

// Prunes returns the markers the chains of the partitions st shows start
// at (newer than their last reseed).
func Prunes(ctx context.Context, l *exactly.Ledger, st []Partition) ([]Pruned, error) {
	rs, err := l.Reseeds(ctx)
	if err != nil {
		return nil, err
	}
	ms, err := l.Markers(ctx)
	if err != nil {
		return nil, err
	}
	return prunesOf(rs, ms, shown(st)), nil
}

func prunesOf(reseeds, markers []exactly.BatchRow, show map[exactly.TP]bool) []Pruned {
	last := map[exactly.TP]*exactly.BatchRow{}
	for i := range reseeds {
		last[reseeds[i].TP()] = &reseeds[i]
	}
	cur := map[exactly.TP]*exactly.BatchRow{}
	for i := range markers {
		m := &markers[i]
		if show[m.TP()] && exactly.ChainStart(last[m.TP()], m) == m {
			cur[m.TP()] = m
		}
	}
	out := []Pruned{}
	for _, m := range cur {
		n, _ := exactly.ParsePruneNotes(m.Notes) // unreadable: zeros; verify says so
		out = append(out, Pruned{Topic: m.Topic, Partition: m.Partition, From: m.From, To: m.To, Rows: n.Rows(),
			Records: n.Records, Before: n.Before, By: m.Writer, At: n.At, Prunes: n.Prunes, BatchID: m.BatchID})
	}
	slices.SortFunc(out, func(a, b Pruned) int {
		return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	return out
}

// KafkaDown is Kafka not answering within its wait.
type KafkaDown struct {
	Wait     time.Duration
	TimedOut bool // nothing answered within Wait (not a refusal)
	Err      error
}

func (e *KafkaDown) Error() string {
	if e.TimedOut {
		return fmt.Sprintf("Kafka unreachable: %v (no answer within %s)", e.Err, e.Wait)
	}
	return fmt.Sprintf("Kafka unreachable: %v", e.Err)
}

func (e *KafkaDown) Unwrap() error { return e.Err }

// KafkaCause names why Kafka did not answer. The client retries until the
// wait ends and then says only "context deadline exceeded"; a plain TCP
// dial of the configured brokers tells a refused connection or an unknown
// host from a broker that accepts connections but does not answer.
func KafkaCause(kctx context.Context, brokers []string, err error) error {
	if !errors.Is(err, context.DeadlineExceeded) || kctx.Err() == nil {
		return err
	}
	var dials []string
	for _, b := range brokers {
		c, derr := net.DialTimeout("tcp", b, time.Second)
		if derr != nil {
			dials = append(dials, derr.Error())
			continue
		}
		c.Close()
		dials = append(dials, b+" accepts connections but did not answer")
	}
	return errors.New(strings.Join(dials, "; "))
}
