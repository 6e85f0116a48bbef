package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os/signal"
	"strconv"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/kafka"
	"github.com/exactly/exactly/status"
)

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
			st, total, kerr, err := status.Read(ctx, kafkaCtx, env.cfg, env.ledger, env.kafka, sel.picker(env.cfg))
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
				kerr = &status.KafkaDown{Wait: kafkaWait, TimedOut: kctx.Err() != nil, Err: status.KafkaCause(kctx, env.cfg.Source.Brokers, kerr)}
			}
			reseeds, err := status.Reseeds(ctx, env.ledger, st)
			if err != nil {
				return err
			}
			prunes, err := status.Prunes(ctx, env.ledger, st)
			if err != nil {
				return err
			}
			var chain *status.Chain
			if withChain {
				if chain, err = status.ReadChain(ctx, env.ledger, st); err != nil {
					return err
				}
			}
			rep := statusReport{pipeline: env.cfg.Pipeline, group: env.cfg.Source.Group, st: st, total: total, sel: &sel,
				reseeds: reseeds, prunes: prunes, chain: chain, groupState: group, gerr: gerr, kerr: kerr}
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

// picker chooses the partitions status shows among all it found: those
// the selection matches, an error naming what there was when none does.
func (sel *selector) picker(cfg *exactly.Config) func(all []exactly.TP, kafkaFailed bool) ([]exactly.TP, error) {
	return func(all []exactly.TP, kafkaFailed bool) ([]exactly.TP, error) {
		if sel.empty() {
			return all, nil
		}
		tps := sel.filter(cfg, all)
		if len(tps) == 0 {
			what := "the ledger and Kafka hold"
			if kafkaFailed {
				what = "the ledger holds (Kafka did not answer)"
			}
			return nil, sel.matchedNothing(what, all)
		}
		return tps, nil
	}
}

// statusReport is what exactly status prints.
type statusReport struct {
	pipeline, group string
	st              []status.Partition
	total           int
	sel             *selector
	reseeds         []status.Reseed
	prunes          []status.Pruned
	chain           *status.Chain // nil without --chain
	groupState      *kafka.GroupState
	gerr, kerr      error
}

func (r *statusReport) print(g *globals, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		out := map[string]any{"pipeline": r.pipeline, "partitions": r.st, "group": r.groupState, "reseeds": r.reseeds, "pruned": r.prunes}
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
	printPrunes(g, r.prunes)
	printChain(g, r.chain)
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

// printChain prints the chain check; nothing without --chain (c nil).
func printChain(g *globals, c *status.Chain) {
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

func printReseeds(g *globals, rs []status.Reseed) {
	if len(rs) == 0 {
		return
	}
	fmt.Fprintf(g.stdout, "\nreseeded (exactly reseed):\n")
	for _, r := range rs {
		fmt.Fprintf(g.stdout, "  %s[%d] next_offset %d -> %d by %s at %s: %s (ledger row %s)\n",
			r.Topic, r.Partition, r.From, r.To, r.By, r.At.Format(time.RFC3339), r.Reason, r.BatchID)
	}
}

// printPrunes lists the markers of exactly prune the chains start at.
func printPrunes(g *globals, ps []status.Pruned) {
	if len(ps) == 0 {
		return
	}
	fmt.Fprintf(g.stdout, "\npruned (exactly prune; the chain starts at the marker's end):\n")
	for _, p := range ps {
		fmt.Fprintf(g.stdout, "  %s[%d] offsets %d..%d: %d ledger rows (%d records) committed before %s, last pruned by %s at %s (ledger row %s)\n",
			p.Topic, p.Partition, p.From, p.To-1, p.Rows, p.Records, p.Before.Format(time.RFC3339), p.By, p.At.Format(time.RFC3339), p.BatchID)
	}
}

// printLedgerHalf closes a status printed without Kafka: why, and what
// the ledger says on its own.
func printLedgerHalf(g *globals, st []status.Partition, kerr error) {
	sum := status.SummarizeLedger(st)
	fmt.Fprintf(g.stdout, "\n%s\n", kerr)
	last := "never"
	if !sum.LastBatchAt.IsZero() {
		last = sum.LastBatchAt.UTC().Format(time.RFC3339)
	}
	fmt.Fprintf(g.stdout, "ledger: %d partitions, last batch %s, %d open dead letters, %d partitions whose last batch failed; high watermarks, lag and the consumer group are unknown\n",
		sum.Partitions, last, sum.DeadLetters, sum.FailedLast)
}

// printStatus prints the partitions as a table; without Kafka (noKafka)
// the high watermark and the lag are ?, not - (a topic gone from Kafka).
func printStatus(g *globals, st []status.Partition, noKafka bool) {
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
func printGroup(g *globals, name string, group *kafka.GroupState, err error, st []status.Partition) {
	if err != nil {
		fmt.Fprintf(g.stdout, "\ngroup %s: %v\n", name, err)
		return
	}
	fmt.Fprintf(g.stdout, "\ngroup %s: %s, %d members", name, group.State, len(group.Members))
	for _, m := range group.Members {
		fmt.Fprintf(g.stdout, "\n  %s@%s: %d partitions", m.ID, m.Host, m.Partitions)
	}
	fmt.Fprintln(g.stdout)
	lag := status.Waiting(st)
	switch {
	case lag > 0 && len(group.Members) == 0:
		fmt.Fprintf(g.stdout, "%d records wait and no member is running\n", lag)
	case lag > 0 && group.State != "Stable" && group.Protocol != "consumer":
		// A KIP-848 group reconciling keeps applying what it owns.
		fmt.Fprintf(g.stdout, "%d records wait while the group is %s: the members apply nothing until it settles\n", lag, group.State)
	}
}
