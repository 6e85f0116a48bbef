package main

import (
	"context"
	"errors"
	"fmt"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/kafka"
	rp "github.com/exactly/exactly/replay"
)

type replayOpts struct {
	file      string
	sel       selector
	partition int32
	from, to  int64
	dryRun    bool
	toSet     bool // --to was given
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
			o.toSet = cmd.Flags().Changed("to")
			return replay(ctx, g, o)
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

// refuseOwned refuses (exit 1) when a member of the pipeline's consumer
// group owns one of tps or the group is rebalancing (kafka.OwnedError).
func refuseOwned(ctx context.Context, adm *kafka.Client, cfg *exactly.Config, what string, tps []exactly.TP) error {
	err := adm.RefuseOwned(ctx, cfg.Source.Group, what, tps)
	if owned := (*kafka.OwnedError)(nil); errors.As(err, &owned) {
		return findings("%w", err)
	}
	return err
}

func replay(ctx context.Context, g *globals, o replayOpts) error {
	if o.file == "" {
		return usage(errMissingConfig)
	}
	if o.sel.empty() || o.from < 0 || (o.toSet && o.to < 0) {
		return usage(errors.New("--topic (or --table) and --from are required (--from and --to not negative): replay touches only what they select"))
	}
	if err := o.sel.check(); err != nil {
		return err
	}
	mode := writeSink
	if o.dryRun {
		mode = drySink // creates nothing, not even the ledger tables
	}
	e, err := openEnv(ctx, g, o.file, envOpts{sink: mode, kafka: true})
	if err != nil {
		return err
	}
	defer e.Close()
	cfg, sink, kr := e.cfg, e.sink, e.kafka
	ranges, err := replayRanges(ctx, g, cfg, sink, o)
	if err != nil {
		return err
	}
	if err := refuseOwned(ctx, e.kafka, cfg, "replay", rp.Partitions(ranges)); err != nil {
		return err
	}
	warnings, err := rp.CheckLog(ctx, cfg, kr, ranges)
	if err != nil {
		return err
	}
	for _, w := range warnings {
		fmt.Fprintln(g.stderr, "warning: "+w)
	}
	if o.dryRun {
		for _, r := range ranges {
			fmt.Fprintf(g.stdout, "would replay %s offsets %d..%d (next_offset %d) in transactions of at most %d records\n",
				r.TP, r.From, r.To-1, r.Next, cfg.Batch.MaxRecords)
		}
		return nil
	}
	pg := newProgress(g)
	defer pg.Done()
	for i, r := range ranges {
		if err := replayOne(ctx, g, cfg, sink, kr, r, pg, fmt.Sprintf("%d/%d", i+1, len(ranges))); err != nil {
			if i > 0 {
				return fmt.Errorf("%w (the partitions before %s were replayed)", err, r.TP)
			}
			return err
		}
	}
	return nil
}

// replayRanges selects the partitions the pipeline has committed and
// checks the range in each (package replay) before anything is written.
func replayRanges(ctx context.Context, g *globals, cfg *exactly.Config, sink *exactly.Sink, o replayOpts) ([]rp.Range, error) {
	offs, err := exactly.NewLedger(sink.DB(), sink.Dialect(), cfg.Pipeline).Offsets(ctx)
	if err != nil {
		return nil, err
	}
	var committed, tps []exactly.TP
	next := map[exactly.TP]int64{}
	ids := map[exactly.TP]string{}
	for _, off := range offs {
		committed = append(committed, off.TP)
		next[off.TP], ids[off.TP] = off.Next, off.TopicID
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
		return nil, o.sel.matchedNothing("pipeline "+cfg.Pipeline+" has committed", committed)
	}
	to := o.to
	if !o.toSet {
		to = -1 // each partition's next_offset
	}
	ranges, skipped, err := rp.Ranges(tps, next, o.from, to)
	for i := range ranges {
		ranges[i].TopicID = ids[ranges[i].TP] // CheckLog refuses another topic's log
	}
	for _, r := range skipped {
		fmt.Fprintf(g.stdout, "skipping %s: nothing committed at or after offset %d (next_offset %d)\n", r.TP, r.From, r.Next)
	}
	var re *exactly.ReplayRangeError
	if errors.As(err, &re) || errors.As(err, new(*rp.EmptyError)) {
		return nil, usage(err)
	}
	return ranges, err
}

// replayOne replays one partition's range; step ("2/5") tells the
// progress line where it is among the selected partitions.
func replayOne(ctx context.Context, g *globals, cfg *exactly.Config, sink *exactly.Sink, kr *kafka.Client, r rp.Range, pg *progress, step string) error {
	res, err := rp.Run(ctx, sink, kr, r, cfg.Batch.MaxRecords, func(res rp.Result) {
		pg.Show(false, "replay %s %s: %d records applied, at offset %d of %d", step, r.TP, res.Records, res.At, r.To)
	})
	if err != nil {
		pg.Done()
		var re *exactly.ReplayRangeError
		if errors.As(err, &re) {
			return usage(err)
		}
		return err
	}
	pg.Clear()
	fmt.Fprintf(g.stdout, "replayed %s offsets %d..%d: %d records in %d transactions (%d upserted, %d deleted); next_offset stays %d\n",
		r.TP, r.From, r.To-1, res.Records, res.Txs, res.Upserted, res.Deleted, r.Next)
	for _, id := range res.BatchIDs {
		fmt.Fprintf(g.stdout, "  ledger row %s status replayed\n", id)
	}
	if res.Resolved > 0 {
		fmt.Fprintf(g.stdout, "  %d open dead letters of the range applied and marked resolved\n", res.Resolved)
	}
	return nil
}
