package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/kafka"
)

// partitionStatus is one line of exactly status.
type partitionStatus struct {
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

// defaultKafkaWait bounds how long status waits for Kafka before it prints
// the ledger half alone: an operator looking at an outage needs the ledger
// now, not after the client's retries.
const defaultKafkaWait = 5 * time.Second

func newStatusCmd(g *globals) *cobra.Command {
	var file string
	var asJSON, withChain bool
	var sel selector
	kafkaWait := defaultKafkaWait
	cmd := &cobra.Command{
		Use:   "status -c FILE [--topic PATTERN] [--table PATTERN] [--json]",
		Short: "Per partition: table, committed next_offset, Kafka high watermark, lag, last batch",
		Long: `status prints one line per partition: from the ledger (committed
next_offset, open dead letters, last batch and its status) and from Kafka
(high watermark, lag, the consumer group). It changes nothing.

When Kafka does not answer within --kafka-timeout (5s), status still prints
the ledger half, with ? for the high watermark and the lag, and
"Kafka unreachable: <cause>" (in JSON: "kafka_error"). Exit 0 when both
halves were read, 1 when Kafka was unreachable (the ledger half is printed),
2 on a usage or configuration error; a ledger it cannot read is an error
(exit 1, nothing printed).

--chain also checks, without Kafka, that each shown partition's committed
batches follow each other without gap or overlap and end at next_offset
(the rule verify applies; a replayed range is not an overlap, a reseed
restarts the chain). It reads every committed ledger row. A break is
printed, not an exit code: exactly verify judges.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := sel.check(); err != nil {
				return err
			}
			if kafkaWait <= 0 {
				return usage(fmt.Errorf("--kafka-timeout: got %s, expected a positive duration like 5s", kafkaWait))
			}
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			env, err := openEnv(ctx, g, file, envOpts{sink: auditSink, kafka: true})
			if err != nil {
				return err
			}
			defer env.Close()
			// The wait for Kafka starts at the first Kafka request, after
			// the ledger is read: a slow database must not use it up and
			// make a healthy broker look unreachable.
			var kctx context.Context
			cancel := context.CancelFunc(func() {})
			defer func() { cancel() }()
			kafkaCtx := func() context.Context {
				if kctx == nil {
					kctx, cancel = context.WithTimeout(ctx, kafkaWait)
				}
				return kctx
			}
			st, total, kerr, err := readStatus(ctx, kafkaCtx, env, &sel)
			if err != nil {
				return err
			}
			kctx = kafkaCtx()
			// Who holds the partitions, and whether the group is stuck:
			// records waiting while nobody, or a rebalance, holds them.
			var group *kafka.GroupState
			var gerr error
			if kerr == nil {
				group, gerr = env.kafka.Group(kctx, env.cfg.Source.Group)
			}
			if kerr != nil {
				kerr = &kafkaDown{wait: kafkaWait, timedOut: kctx.Err() != nil, err: kafkaCause(kctx, env.cfg, kerr)}
			}
			reseeds, err := selectedReseeds(ctx, env, st)
			if err != nil {
				return err
			}
			var chain *chainStatus
			if withChain {
				if chain, err = readChain(ctx, env, st); err != nil {
					return err
				}
			}
			rep := statusReport{pipeline: env.cfg.Pipeline, group: env.cfg.Source.Group, st: st, total: total, sel: &sel,
				reseeds: reseeds, chain: chain, groupState: group, gerr: gerr, kerr: kerr}
			if err := rep.print(g, asJSON); err != nil {
				return err
			}
			if kerr != nil {
				return &exitError{code: 1, err: fmt.Errorf("status: only the ledger half is shown: %w", kerr)}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "config", "c", "", "configuration file (YAML)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	cmd.Flags().BoolVar(&withChain, "chain", false, "also check the ledger's chain of committed batches, without Kafka (reads every committed row)")
	cmd.Flags().DurationVar(&kafkaWait, "kafka-timeout", defaultKafkaWait, "how long to wait for Kafka before printing the ledger half alone")
	sel.flags(cmd.Flags(), "default: every topic")
	return cmd
}

// statusReport is what exactly status prints.
type statusReport struct {
	pipeline, group string
	st              []partitionStatus
	total           int
	sel             *selector
	reseeds         []reseedStatus
	chain           *chainStatus // nil without --chain
	groupState      *kafka.GroupState
	gerr, kerr      error
}

func (r *statusReport) print(g *globals, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		out := map[string]any{"pipeline": r.pipeline, "partitions": r.st, "group": r.groupState, "reseeds": r.reseeds}
		if r.chain != nil {
			out["chain"] = r.chain
		}
		if r.gerr != nil {
			out["group_error"] = r.gerr.Error()
		}
		if r.kerr != nil {
			out["kafka_error"] = r.kerr.Error()
		}
		return enc.Encode(out)
	}
	printStatus(g, r.st, r.kerr != nil)
	printReseeds(g, r.reseeds)
	r.chain.print(g)
	if !r.sel.empty() {
		fmt.Fprintf(g.stdout, "%d of %d partitions, selected by %s\n", len(r.st), r.total, r.sel)
	}
	if r.kerr != nil {
		printLedgerHalf(g, r.st, r.kerr)
	} else {
		printGroup(g, r.group, r.groupState, r.gerr, r.st)
	}
	return nil
}

// chainStatus is the chain check of the shown partitions (exactly.Chain,
// the rule verify and the status page apply).
type chainStatus struct {
	Batches int64        `json:"committed_batches"` // committed rows followed
	Breaks  []chainBreak `json:"breaks"`
}

type chainBreak struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Kind      string `json:"kind"`
	From      int64  `json:"from"` // inclusive
	To        int64  `json:"to"`   // exclusive
	Problem   string `json:"problem"`
}

// readChain checks the chain of committed batches of the partitions st
// shows. The offsets are read again first: rows committed after that
// read are left out, so a running pipeline does not look broken.
func readChain(ctx context.Context, env *env, st []partitionStatus) (*chainStatus, error) {
	offs, err := env.ledger.Offsets(ctx)
	if err != nil {
		return nil, err
	}
	shown := map[exactly.TP]bool{}
	for _, s := range st {
		shown[exactly.TP{Topic: s.Topic, Partition: s.Partition}] = true
	}
	breaks, n, err := env.ledger.CheckChainsOf(ctx, offs, func(tp exactly.TP) bool { return shown[tp] })
	if err != nil {
		return nil, err
	}
	out := &chainStatus{Batches: n, Breaks: []chainBreak{}}
	for _, b := range breaks {
		out.Breaks = append(out.Breaks, chainBreak{Topic: b.Topic, Partition: b.Partition, Kind: string(b.Kind),
			From: b.From, To: b.To, Problem: b.Problem()})
	}
	return out, nil
}

func (c *chainStatus) print(g *globals) {
	if c == nil {
		return
	}
	if len(c.Breaks) == 0 {
		fmt.Fprintf(g.stdout, "\nchain: unbroken: %d committed batches follow each other without gap or overlap and end at next_offset\n", c.Batches)
		return
	}
	fmt.Fprintf(g.stdout, "\nchain: %d break(s) in %d committed batches (exactly verify tells what Kafka holds there):\n", len(c.Breaks), c.Batches)
	for _, b := range c.Breaks {
		fmt.Fprintf(g.stdout, "  %s[%d]: %s\n", b.Topic, b.Partition, b.Problem)
	}
}

// reseedStatus is one exactly reseed of a shown partition.
type reseedStatus struct {
	Topic     string    `json:"topic"`
	Partition int32     `json:"partition"`
	From      int64     `json:"from"`
	To        int64     `json:"to"`
	By        string    `json:"by"`
	At        time.Time `json:"at"`
	Reason    string    `json:"reason"`
	BatchID   string    `json:"batch_id"`
}

// selectedReseeds returns the reseeded ledger rows of the partitions st
// shows, oldest first.
func selectedReseeds(ctx context.Context, env *env, st []partitionStatus) ([]reseedStatus, error) {
	rows, err := env.ledger.Reseeds(ctx)
	if err != nil {
		return nil, err
	}
	shown := map[exactly.TP]bool{}
	for _, s := range st {
		shown[exactly.TP{Topic: s.Topic, Partition: s.Partition}] = true
	}
	out := []reseedStatus{}
	for _, r := range rows {
		if shown[r.TP()] {
			out = append(out, reseedStatus{Topic: r.Topic, Partition: r.Partition, From: r.From, To: r.To, By: r.Writer,
				At: r.StartedAt, Reason: r.Notes, BatchID: r.BatchID})
		}
	}
	return out, nil
}

func printReseeds(g *globals, rs []reseedStatus) {
	if len(rs) == 0 {
		return
	}
	fmt.Fprintf(g.stdout, "\nreseeded (exactly reseed):\n")
	for _, r := range rs {
		fmt.Fprintf(g.stdout, "  %s[%d] next_offset %d -> %d by %s at %s: %s (ledger row %s)\n",
			r.Topic, r.Partition, r.From, r.To, r.By, r.At.Format(time.RFC3339), r.Reason, r.BatchID)
	}
}

// kafkaDown is Kafka not answering status within its wait.
type kafkaDown struct {
	wait     time.Duration
	timedOut bool // nothing answered within wait (not a refusal)
	err      error
}

func (e *kafkaDown) Error() string {
	if e.timedOut {
		return fmt.Sprintf("Kafka unreachable: %v (no answer within %s)", e.err, e.wait)
	}
	return fmt.Sprintf("Kafka unreachable: %v", e.err)
}

func (e *kafkaDown) Unwrap() error { return e.err }

// kafkaCause names why Kafka did not answer. The client retries until the
// wait ends and then says only "context deadline exceeded"; a plain TCP
// dial of the configured brokers tells a refused connection or an unknown
// host from a broker that accepts connections but does not answer.
func kafkaCause(kctx context.Context, cfg *exactly.Config, err error) error {
	if !errors.Is(err, context.DeadlineExceeded) || kctx.Err() == nil {
		return err
	}
	var dials []string
	for _, b := range cfg.Source.Brokers {
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

// readStatus joins the ledger's partitions with the partitions of the
// topics the configuration matches in Kafka, keeping the partitions sel
// selects (a selection that matches none is a usage error). The ledger is
// read with ctx, then Kafka with kafkaCtx() (its wait starts there): when
// Kafka fails, kerr says why and st holds the ledger half (no high
// watermark, no lag).
func readStatus(ctx context.Context, kafkaCtx func() context.Context, env *env, sel *selector) (st []partitionStatus, total int, kerr, err error) {
	offs, err := env.ledger.Offsets(ctx)
	if err != nil {
		return nil, 0, nil, err
	}
	last, err := env.ledger.LastBatches(ctx)
	if err != nil {
		return nil, 0, nil, err
	}
	dead, err := env.ledger.DeadLetterCounts(ctx)
	if err != nil {
		return nil, 0, nil, err
	}
	seen := map[exactly.TP]bool{}
	var tps []exactly.TP
	next := map[exactly.TP]int64{}
	for _, o := range offs {
		next[o.TP] = o.Next
		seen[o.TP] = true
		tps = append(tps, o.TP)
	}
	for tp := range last {
		if !seen[tp] {
			seen[tp] = true
			tps = append(tps, tp)
		}
	}
	kctx := kafkaCtx()
	live, kerr := env.kafka.Partitions(kctx)
	for _, tp := range live {
		if !seen[tp] {
			seen[tp] = true
			tps = append(tps, tp)
		}
	}
	exactly.SortTPs(tps)
	total = len(tps)
	if all := tps; !sel.empty() {
		if tps = sel.filter(env.cfg, tps); len(tps) == 0 {
			what := "the ledger and Kafka hold"
			if kerr != nil {
				what = "the ledger holds (Kafka did not answer)"
			}
			return nil, 0, nil, sel.matchedNothing(what, all)
		}
	}
	bounds := map[exactly.TP]exactly.Bounds{}
	if kerr == nil {
		bounds, kerr = env.kafka.Bounds(kctx, tps)
	}
	out := make([]partitionStatus, 0, len(tps))
	for _, tp := range tps {
		s := partitionStatus{Topic: tp.Topic, Partition: tp.Partition,
			DeadLetters: dead[tp].Open, DeadLettersResolved: dead[tp].Resolved}
		if _, table, ok := env.cfg.Route(tp.Topic); ok {
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
		if b, ok := last[tp]; ok {
			at := b.StartedAt
			if !b.CommittedAt.IsZero() {
				at = b.CommittedAt
			}
			s.LastBatchID, s.LastBatchAt, s.LastStatus, s.LastError = b.BatchID, &at, b.Status, b.Error
		}
		out = append(out, s)
	}
	return out, total, kerr, nil
}

// printLedgerHalf closes a status printed without Kafka: why, and what
// the ledger says on its own.
func printLedgerHalf(g *globals, st []partitionStatus, kerr error) {
	var dead, failed int64
	var lastAt time.Time
	for _, s := range st {
		dead += s.DeadLetters
		if s.LastStatus == exactly.StatusFailed {
			failed++
		}
		if s.LastBatchAt != nil && s.LastBatchAt.After(lastAt) {
			lastAt = *s.LastBatchAt
		}
	}
	fmt.Fprintf(g.stdout, "\n%s\n", kerr)
	last := "never"
	if !lastAt.IsZero() {
		last = lastAt.UTC().Format(time.RFC3339)
	}
	fmt.Fprintf(g.stdout, "ledger: %d partitions, last batch %s, %d open dead letters, %d partitions whose last batch failed; high watermarks, lag and the consumer group are unknown\n",
		len(st), last, dead, failed)
}

// printStatus prints the partitions as a table; without Kafka (noKafka)
// the high watermark and the lag are ?, not - (a topic gone from Kafka).
func printStatus(g *globals, st []partitionStatus, noKafka bool) {
	tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tTABLE\tNEXT_OFFSET\tHIGH_WATERMARK\tLAG\tDEAD_LETTERS\tLAST_BATCH\tLAST_BATCH_AT\tSTATUS")
	opt := func(p *int64) string {
		if p == nil {
			return "-"
		}
		return strconv.FormatInt(*p, 10)
	}
	fromKafka := func(p *int64) string {
		if noKafka {
			return "?"
		}
		return opt(p)
	}
	for _, s := range st {
		id, at, status := "-", "-", "-"
		if s.LastBatchID != "" {
			id, at, status = s.LastBatchID, s.LastBatchAt.Format(time.RFC3339), s.LastStatus
		}
		if s.RetentionLost > 0 {
			status += fmt.Sprintf(" (LOST %d offsets to retention: run exactly verify)", s.RetentionLost)
		}
		table := s.Table
		if table == "" {
			table = "-"
		}
		dl := strconv.FormatInt(s.DeadLetters, 10)
		if s.DeadLettersResolved > 0 {
			dl += fmt.Sprintf(" (+%d resolved)", s.DeadLettersResolved)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Topic, s.Partition, table,
			opt(s.NextOffset), fromKafka(s.HighWater), fromKafka(s.Lag), dl, id, at, status)
	}
	tw.Flush()
}

// printGroup says who holds the partitions, and why nothing moves when
// records wait and nobody does.
func printGroup(g *globals, name string, group *kafka.GroupState, err error, st []partitionStatus) {
	if err != nil {
		fmt.Fprintf(g.stdout, "\ngroup %s: %v\n", name, err)
		return
	}
	fmt.Fprintf(g.stdout, "\ngroup %s: %s, %d members", name, group.State, len(group.Members))
	for _, m := range group.Members {
		fmt.Fprintf(g.stdout, "\n  %s@%s: %d partitions", m.ID, m.Host, m.Partitions)
	}
	fmt.Fprintln(g.stdout)
	var lag int64
	for _, s := range st {
		if s.Lag != nil && *s.Lag > 0 {
			lag += *s.Lag
		}
	}
	switch {
	case lag > 0 && len(group.Members) == 0:
		fmt.Fprintf(g.stdout, "%d records wait and no member is running\n", lag)
	case lag > 0 && group.State != "Stable" && group.Protocol != "consumer":
		// A KIP-848 group reconciling keeps applying what it owns.
		fmt.Fprintf(g.stdout, "%d records wait while the group is %s: the members apply nothing until it settles\n", lag, group.State)
	}
}
