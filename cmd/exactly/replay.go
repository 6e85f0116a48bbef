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
	topic     string
	partition int32
	from, to  int64
	dryRun    bool
}

func newReplayCmd(g *globals) *cobra.Command {
	o := replayOpts{}
	cmd := &cobra.Command{
		Use:   "replay -c FILE --topic T --partition P --from A [--to B]",
		Short: "Re-read offsets [A, B) from Kafka and apply them again, idempotently, recorded in the ledger as replayed",
		Long: `replay re-reads a committed offset range (read_committed, like the pipeline)
and applies it again through the same code as the pipeline, in transactions of
at most batch.max_records records, each recorded in exactly_batches with status
"replayed". It never moves next_offset and refuses ranges beyond it.

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
	f.StringVar(&o.topic, "topic", "", "topic to replay")
	f.Int32Var(&o.partition, "partition", -1, "partition to replay")
	f.Int64Var(&o.from, "from", -1, "first offset to replay (inclusive)")
	f.Int64Var(&o.to, "to", -1, "end of the range (exclusive); default: the partition's next_offset")
	f.BoolVar(&o.dryRun, "dry-run", false, "print the range and exit without applying")
	return cmd
}

// refuseOwned refuses when a member of the pipeline's consumer group owns
// one of the partitions (or the group is rebalancing): what the command
// would write, a running pipeline would write too.
func refuseOwned(ctx context.Context, cfg *exactly.Config, what string, tps []exactly.TP) error {
	adm, err := kafka.NewAdmin(cfg)
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

func replay(ctx context.Context, g *globals, toSet bool, o replayOpts) error {
	if o.file == "" {
		return usage(errMissingConfig)
	}
	if o.topic == "" || o.partition < 0 || o.from < 0 {
		return usage(errors.New("--topic, --partition and --from are required (--from and --partition not negative)"))
	}
	log, err := g.logger()
	if err != nil {
		return err
	}
	cfg, err := exactly.LoadConfig(o.file)
	if err != nil {
		return err
	}
	if _, _, ok := cfg.Route(o.topic); !ok {
		return usage(fmt.Errorf("--topic %s: no table rule in %s matches it", o.topic, cfg.File))
	}
	sink, err := openSink(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer sink.Close()
	kr, err := kafka.NewReader(cfg)
	if err != nil {
		return err
	}
	defer kr.Close()
	tp := exactly.TP{Topic: o.topic, Partition: o.partition}
	stored, err := sink.LoadOffsets(ctx, []exactly.TP{tp})
	if err != nil {
		return err
	}
	next, ok := stored[tp]
	if !ok {
		return usage(fmt.Errorf("%s: the pipeline %s has never committed this partition; nothing to replay", tp, cfg.Pipeline))
	}
	if !toSet {
		o.to = next
	}
	switch {
	case o.to > next:
		return usage(&exactly.ReplayRangeError{Topic: tp.Topic, Partition: tp.Partition, To: o.to, Next: next})
	case o.from >= o.to:
		return usage(fmt.Errorf("--from %d --to %d: the range is empty", o.from, o.to))
	}
	if err := refuseOwned(ctx, cfg, "replay", []exactly.TP{tp}); err != nil {
		return err
	}
	bounds, err := kr.Bounds(ctx, []exactly.TP{tp})
	if err != nil {
		return err
	}
	b, ok := bounds[tp]
	if !ok {
		return fmt.Errorf("%s does not exist in Kafka", tp)
	}
	if o.from < b.Start {
		return fmt.Errorf("replaying %s from %d: Kafka's log now starts at %d, offsets %d..%d were deleted (retention) and cannot be replayed; use --from %d",
			tp, o.from, b.Start, o.from, b.Start-1, b.Start)
	}
	if o.to < next {
		rule, _, _ := cfg.Route(o.topic)
		if rule.Version == "" {
			fmt.Fprintf(g.stderr, "warning: replaying up to %d while next_offset is %d and the table has no version column: keys changed again after offset %d will hold the replayed (older) values until those offsets are replayed too\n",
				o.to, next, o.to-1)
		}
	}
	if o.dryRun {
		fmt.Fprintf(g.stdout, "would replay %s offsets %d..%d (next_offset %d) in transactions of at most %d records\n",
			tp, o.from, o.to-1, next, cfg.Batch.MaxRecords)
		return nil
	}
	pg := newProgress(g.stderr)
	var total struct{ records, upserted, deleted, txs int }
	var ids []string
	start := o.from
	var chunk []*exactly.Record
	flush := func() error {
		if len(chunk) == 0 {
			return nil
		}
		pb := &exactly.PartitionBatch{Topic: tp.Topic, Partition: tp.Partition, From: start, Records: chunk}
		if err := sink.Replay(ctx, pb, next); err != nil {
			return err
		}
		total.records += len(pb.Records)
		total.upserted += pb.Upserted
		total.deleted += pb.Deleted
		total.txs++
		ids = append(ids, pb.BatchID)
		start, chunk = pb.To, nil
		pg.Show(false, "replay %s: %d records applied, at offset %d of %d", tp, total.records, start, o.to)
		return nil
	}
	err = kr.Read(ctx, tp, o.from, o.to, func(r *exactly.Record) error {
		chunk = append(chunk, r)
		if len(chunk) >= cfg.Batch.MaxRecords {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	pg.Done()
	if err != nil {
		var re *exactly.ReplayRangeError
		if errors.As(err, &re) {
			return usage(err)
		}
		var me *exactly.ReplayMovedError
		if errors.As(err, &me) && start > o.from {
			return fmt.Errorf("replaying %s: offsets %d..%d were replayed before the pipeline moved on; rows they changed may hold older values until those offsets are replayed again: %w", tp, o.from, start-1, err)
		}
		if errors.As(err, &me) {
			return findings("%w", err)
		}
		return fmt.Errorf("replaying %s from offset %d (offsets before it were replayed): %w", tp, start, err)
	}
	fmt.Fprintf(g.stdout, "replayed %s offsets %d..%d: %d records in %d transactions (%d upserted, %d deleted); next_offset stays %d\n",
		tp, o.from, o.to-1, total.records, total.txs, total.upserted, total.deleted, next)
	for _, id := range ids {
		fmt.Fprintf(g.stdout, "  ledger row %s status replayed\n", id)
	}
	return nil
}
