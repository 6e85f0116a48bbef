package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/kafka"
	"github.com/exactly/exactly/plan"
)

func newPlanCmd(g *globals) *cobra.Command {
	var file string
	var sample int
	var sel selector
	cmd := &cobra.Command{
		Use:   "plan -c FILE [--topic PATTERN] [--table PATTERN]",
		Short: "Dry run: per topic the table, the DDL create/evolve would run, the key, the column mapping and where each partition starts",
		Long: `plan reads Kafka's metadata, the sink's tables and ledger, and the first
records each partition would be read from, and prints what exactly run
would do with them. It writes nothing, neither to the sink nor to Kafka.
Exit 1 when a topic maps to a table that is missing and not created.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return usage(errMissingConfig)
			}
			if err := sel.check(); err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			e, err := openEnv(ctx, g, file, envOpts{sink: lookSink, kafka: true})
			if err != nil {
				return err
			}
			defer e.Close()
			return runPlan(ctx, g, e.cfg, e.sink, e.kafka, sample, &sel)
		},
	}
	cmd.Flags().StringVarP(&file, "config", "c", "", "configuration file (YAML)")
	cmd.Flags().IntVar(&sample, "sample", 100, "records read per partition to work out the DDL")
	sel.flags(cmd.Flags(), "default: every topic a rule matches")
	return cmd
}

func runPlan(ctx context.Context, g *globals, cfg *exactly.Config, sink *exactly.Sink, adm *kafka.Client, sample int, sel *selector) error {
	out := g.stdout
	tps, err := adm.Partitions(ctx)
	if err != nil {
		return err
	}
	selected := ""
	if all := tps; !sel.empty() {
		if tps = sel.filter(cfg, tps); len(tps) == 0 {
			return sel.matchedNothing("of the topics in Kafka the rules match", all)
		}
		selected = fmt.Sprintf(" (selected by %s: %d of %d)", sel, len(tps), len(all))
	}
	p, err := plan.Make(ctx, cfg, sink, adm, tps, sample)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "plan: pipeline %s · sink %s · start_from %s · %d topic(s), %d partition(s)%s · nothing is written\n",
		cfg.Pipeline, cfg.Sink.Driver, cfg.Source.StartFrom, len(p.Topics), p.Partitions, selected)
	if len(p.Topics) == 0 {
		fmt.Fprintln(out, "no topic in Kafka matches the table rules")
	}
	for _, t := range p.Topics {
		printPlanTopic(out, sink.Dialect(), t)
	}
	if p.Problems > 0 {
		return findings("plan: %d problem(s): tables missing with create off, partitions that halt", p.Problems)
	}
	return nil
}

// printPlanTopic prints one topic's table plan and partitions.
func printPlanTopic(out io.Writer, d exactly.Dialect, t plan.Topic) {
	p, r := t.Table, t.Table.Rule
	state := "exists"
	if !p.Change.Exists {
		state = "missing"
	}
	fmt.Fprintf(out, "\n%s → table %s (%s)\n", t.Name, p.Table, state)
	fmt.Fprintf(out, "  format %s · mode %s · key %s · on_error %s\n", r.Format, r.Mode, plan.DescribeKey(r), r.OnError)
	fmt.Fprintf(out, "  columns: %s\n", plan.DescribeColumns(r))
	if r.Create || r.Evolve != "" {
		fmt.Fprintf(out, "  types: %s\n", plan.DescribeTypes(r))
	}
	switch {
	case !p.Change.Empty():
		fmt.Fprintf(out, "  DDL (from %d sampled record(s)):\n", p.Sampled)
		for _, s := range p.Change.Statements(d) {
			fmt.Fprintf(out, "    %s;\n", s)
		}
	case t.Missing:
		fmt.Fprintf(out, "  PROBLEM: the table does not exist and create is off: its batches would fail until it is created (or set create: true)\n")
	case !p.Change.Exists:
		fmt.Fprintf(out, "  DDL: none yet: no sampled record carries a row; the table is created from the first batch that does\n")
	default:
		fmt.Fprintf(out, "  DDL: none needed (from %d sampled record(s))\n", p.Sampled)
	}
	if len(p.Change.Ignored) > 0 {
		fmt.Fprintf(out, "  ignored fields (no column; evolve is off): %s\n", strings.Join(p.Change.Ignored, ", "))
	}
	for i, dl := range p.DeadLetters {
		if i == 3 {
			fmt.Fprintf(out, "  … %d more sampled record(s) would be dead letters\n", len(p.DeadLetters)-3)
			break
		}
		fmt.Fprintf(out, "  dead letter: %s\n", dl)
	}
	for _, pp := range t.Partitions {
		b := pp.Bounds
		// What run does with a row the log no longer agrees with: it
		// halts the partition at assignment.
		if pp.Halt != "" {
			fmt.Fprintf(out, "  partition %d: HALTS when assigned: %s · Kafka %d..%d; see exactly reseed\n",
				pp.TP.Partition, pp.Halt, b.Start, b.End)
			continue
		}
		fmt.Fprintf(out, "  partition %d: starts at %d (%s) · Kafka %d..%d · %d to read\n",
			pp.TP.Partition, pp.Start, pp.From, b.Start, b.End, max(0, b.End-pp.Start))
	}
}
