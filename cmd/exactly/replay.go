package main

import (
	"context"
	"errors"
	"fmt"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/kafka"
)

type replayOpts struct {
	file      string
	sel       selector
	partition int32
	from, to  int64
	dryRun    bool
}

func newReplayCmd(g *globals) *cobra.Command {
	o := replayOpts{}
	cmd := &cobra.Command{
		Use:   "replay -c FILE --topic PATTERN [--table PATTERN] [--partition P] --from A [--to B]",
		Short: "Re-read offsets [A, B) from Kafka and apply them again, idempotently, recorded in the ledger as replayed",
		Long: `replay re-reads a committed offset range (read_committed, like the pipeline)
and applies it again through the same code as the pipeline, in transactions of
at most batch.max_records records, each recorded in exactly_batches with status
"replayed". It never moves next_offset and refuses ranges beyond it.

--topic and --table (shell patterns: * ? [a-z]; at least one is required)
restrict what replay may touch: it replays [A, B) of every partition the
pipeline has committed whose topic and table match, and of no other. A
selection that matches no committed partition is refused (exit 2). Every
partition is checked (range, Kafka's log start, owner) before any is written.

It refuses a partition a member of the pipeline's consumer group owns: stop
the pipeline first. Each replay transaction locks the partition's
exactly_offsets row, the row the pipeline's batch transaction fences on, and
requires next_offset to be where it was when the replay began: a pipeline
that started meanwhile and committed newer records makes the replay stop
before it writes older values over theirs. Without a version column on the
table, replaying an older range writes older values over newer ones: --to
defaults to next_offset, so a replay ends at the current state. Append-mode tables are
refused (no key makes a second insert idempotent; use exactly dedupe).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return replay(ctx, g, cmd.Flags().Changed("to"), o)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.file, "config", "c", "", "configuration file (YAML)")
	o.sel.flags(f, "replay touches only the partitions selected")
	f.Int32Var(&o.partition, "partition", -1, "only this partition; default: every selected partition")
	f.Int64Var(&o.from, "from", -1, "first offset to replay (inclusive), in each selected partition")
	f.Int64Var(&o.to, "to", -1, "end of the range (exclusive); default: each partition's next_offset")
	f.BoolVar(&o.dryRun, "dry-run", false, "print the ranges and exit without applying")
	return cmd
}

// refuseOwned refuses when a member of the pipeline's consumer group owns
// one of the partitions (or the group is rebalancing): what the command
// would write, a running pipeline would write too.
func refuseOwned(ctx context.Context, cfg *exactly.Config, what string, tps []exactly.TP) error {
	adm, err := kafka.NewClient(cfg)
	if err != nil {
		return err
	}
	defer adm.Close()
	owners, busy, err := adm.Owners(ctx, cfg.Source.Group, tps)
	if err != nil {
		return fmt.Errorf("checking who owns %s before %s: %w", tpsText(tps), what, err)
	}
	var lines []string
	for _, tp := range tps {
		if o, ok := owners[tp]; ok {
			lines = append(lines, fmt.Sprintf("%s is owned by %s", tp, o))
		}
	}
	if len(lines) == 0 && busy == "" {
		return nil
	}
	if busy != "" {
		lines = append(lines, busy+": it may hand the partitions out at any moment")
	}
	return findings("%s refused: the pipeline is running: %s. Stop every member of consumer group %s (a member that stopped without leaving holds its partitions until source.session_timeout ends), then run %s again",
		what, strings.Join(lines, "; "), cfg.Source.Group, what)
}

func tpsText(tps []exactly.TP) string {
	s := make([]string, len(tps))
	for i, tp := range tps {
		s[i] = tp.String()
	}
	return strings.Join(s, " ")
}

// replayRange is one partition's range to replay.
type replayRange struct {
	tp             exactly.TP
	from, to, next int64
}

func replay(ctx context.Context, g *globals, toSet bool, o replayOpts) error {
	if o.file == "" {
		return usage(errMissingConfig)
	}
	if o.sel.empty() || o.from < 0 {
		return usage(errors.New("--topic (or --table) and --from are required (--from not negative): replay touches only what they select"))
	}
	if err := o.sel.check(); err != nil {
		return err
	}
	log, err := g.logger()
	if err != nil {
		return err
	}
	cfg, err := exactly.LoadConfig(o.file)
	if err != nil {
		return err
	}
	sink, err := openSink(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer sink.Close()
	kr, err := kafka.NewClient(cfg)
	if err != nil {
		return err
	}
	defer kr.Close()

	// The partitions the pipeline has committed, then the selection.
	offs, err := exactly.NewLedger(sink.DB(), sink.Dialect(), cfg.Pipeline).Offsets(ctx)
	if err != nil {
		return err
	}
	var committed, tps []exactly.TP
	next := map[exactly.TP]int64{}
	for _, off := range offs {
		committed = append(committed, off.TP)
		next[off.TP] = off.Next
		if (o.partition < 0 || off.TP.Partition == o.partition) && o.sel.matchTopic(cfg, off.TP.Topic) {
			tps = append(tps, off.TP)
		}
	}
	exactly.SortTPs(committed)
	exactly.SortTPs(tps)
	if len(tps) == 0 {
		if o.partition >= 0 {
			o.sel.more = fmt.Sprintf("--partition %d", o.partition)
		}
		return o.sel.matchedNothing("pipeline "+cfg.Pipeline+" has committed", committed)
	}

	// Every range is checked before anything is written.
	var ranges []replayRange
	for _, tp := range tps {
		r := replayRange{tp: tp, from: o.from, to: o.to, next: next[tp]}
		if !toSet {
			r.to = r.next
		}
		switch {
		case r.to > r.next:
			return usage(&exactly.ReplayRangeError{Topic: tp.Topic, Partition: tp.Partition, To: r.to, Next: r.next})
		case r.from >= r.to && len(tps) == 1:
			return usage(fmt.Errorf("%s --from %d --to %d: the range is empty", tp, r.from, r.to))
		case r.from >= r.to:
			fmt.Fprintf(g.stdout, "skipping %s: nothing committed at or after offset %d (next_offset %d)\n", tp, r.from, r.next)
			continue
		}
		ranges = append(ranges, r)
	}
	if len(ranges) == 0 {
		return usage(fmt.Errorf("--from %d: none of the %d selected partitions has committed offsets in the range", o.from, len(tps)))
	}
	sel := make([]exactly.TP, len(ranges))
	for i, r := range ranges {
		sel[i] = r.tp
	}
	if err := refuseOwned(ctx, cfg, "replay", sel); err != nil {
		return err
	}
	bounds, err := kr.Bounds(ctx, sel)
	if err != nil {
		return err
	}
	for _, r := range ranges {
		b, ok := bounds[r.tp]
		if !ok {
			return fmt.Errorf("%s does not exist in Kafka", r.tp)
		}
		if r.from < b.Start {
			return fmt.Errorf("replaying %s from %d: Kafka's log now starts at %d, offsets %d..%d were deleted (retention) and cannot be replayed; use --from %d",
				r.tp, r.from, b.Start, r.from, b.Start-1, b.Start)
		}
		if r.to < r.next {
			if rule, _, _ := cfg.Route(r.tp.Topic); rule != nil && rule.Version == "" {
				fmt.Fprintf(g.stderr, "warning: replaying %s up to %d while next_offset is %d and the table has no version column: keys changed again after offset %d will hold the replayed (older) values until those offsets are replayed too\n",
					r.tp, r.to, r.next, r.to-1)
			}
		}
	}
	if o.dryRun {
		for _, r := range ranges {
			fmt.Fprintf(g.stdout, "would replay %s offsets %d..%d (next_offset %d) in transactions of at most %d records\n",
				r.tp, r.from, r.to-1, r.next, cfg.Batch.MaxRecords)
		}
		return nil
	}
	pg := newProgress(g)
	defer pg.Done()
	for i, r := range ranges {
		if err := replayOne(ctx, g, cfg, sink, kr, r, pg, fmt.Sprintf("%d/%d", i+1, len(ranges))); err != nil {
			if i > 0 {
				return fmt.Errorf("%w (the partitions before %s were replayed)", err, r.tp)
			}
			return err
		}
	}
	return nil
}

// replayOne replays one partition's range; step ("2/5") tells the
// progress line where it is among the selected partitions.
func replayOne(ctx context.Context, g *globals, cfg *exactly.Config, sink *exactly.Sink, kr *kafka.Client, r replayRange, pg *progress, step string) error {
	tp := r.tp
	var total struct{ records, upserted, deleted, txs, resolved int }
	var ids []string
	start := r.from
	var chunk []*exactly.Record
	flush := func() error {
		if len(chunk) == 0 {
			return nil
		}
		pb := &exactly.PartitionBatch{Topic: tp.Topic, Partition: tp.Partition, From: start, Records: chunk}
		if err := sink.Replay(ctx, pb, r.next); err != nil {
			return err
		}
		total.records += len(pb.Records)
		total.upserted += pb.Upserted
		total.deleted += pb.Deleted
		total.resolved += pb.Resolved
		total.txs++
		ids = append(ids, pb.BatchID)
		start, chunk = pb.To, nil
		pg.Show(false, "replay %s %s: %d records applied, at offset %d of %d", step, tp, total.records, start, r.to)
		return nil
	}
	err := kr.Read(ctx, tp, r.from, r.to, func(rec *exactly.Record) error {
		chunk = append(chunk, rec)
		if len(chunk) >= cfg.Batch.MaxRecords {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		pg.Done()
		var re *exactly.ReplayRangeError
		if errors.As(err, &re) {
			return usage(err)
		}
		var me *exactly.ReplayMovedError
		if errors.As(err, &me) && start > r.from {
			return fmt.Errorf("replaying %s: offsets %d..%d were replayed before the pipeline moved on; rows they changed may hold older values until those offsets are replayed again: %w", tp, r.from, start-1, err)
		}
		if errors.As(err, &me) {
			return findings("%w", err)
		}
		return fmt.Errorf("replaying %s from offset %d (offsets before it were replayed): %w", tp, start, err)
	}
	pg.Clear()
	fmt.Fprintf(g.stdout, "replayed %s offsets %d..%d: %d records in %d transactions (%d upserted, %d deleted); next_offset stays %d\n",
		tp, r.from, r.to-1, total.records, total.txs, total.upserted, total.deleted, r.next)
	for _, id := range ids {
		fmt.Fprintf(g.stdout, "  ledger row %s status replayed\n", id)
	}
	if total.resolved > 0 {
		fmt.Fprintf(g.stdout, "  %d open dead letters of the range applied and marked resolved\n", total.resolved)
	}
	return nil
}
