package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"os/user"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/exactly/exactly"
	rs "github.com/exactly/exactly/reseed"
)

type reseedOpts struct {
	file       string
	topic      string
	partitions []int32
	to         string
	reason     string
	dryRun     bool
	rewind     bool
}

func newReseedCmd(g *globals) *cobra.Command {
	o := reseedOpts{}
	cmd := &cobra.Command{
		Use:   "reseed -c FILE --topic T --partition P[,P…] --to earliest|latest|OFFSET --reason TEXT",
		Short: "Move a halted partition's next_offset (a recreated topic, a reset cluster, a truncated log), recorded in the ledger with who and why",
		Long: `reseed is the audited way out of a halt only an operator can decide: the
partition's stored next_offset is beyond the end of its log (the topic was
deleted and recreated, the cluster was reset or replaced), its topic has
another id, or its log was truncated below what was applied. It moves
next_offset to --to (earliest: the log start; latest: the last stable offset;
or an offset between the two) and writes an exactly_batches row of status
"reseeded" — from the old next_offset to the new one, who (OS user@host) and
why (--reason) — in the same transaction. The stored leader epoch is cleared
and the topic's current id recorded. exactly verify explains the break in the
chain with that row; exactly status shows it.

It refuses a partition a member of the pipeline's consumer group owns (or
while the group rebalances): stop the pipeline first. It refuses to move
next_offset back on the same topic while the log still holds it (the
records in between would be applied a second time: duplicates in append
tables) unless --rewind says the log was rewritten.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return reseed(ctx, g, o)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.file, "config", "c", "", "configuration file (YAML)")
	f.StringVar(&o.topic, "topic", "", "topic of the partitions")
	f.Int32SliceVar(&o.partitions, "partition", nil, "partition(s) to reseed, e.g. 0 or 0,1,2")
	f.StringVar(&o.to, "to", "", "where the partitions resume: earliest, latest or an offset")
	f.StringVar(&o.reason, "reason", "", "why (required; written to the ledger row)")
	f.BoolVar(&o.dryRun, "dry-run", false, "print the moves and exit without writing")
	f.BoolVar(&o.rewind, "rewind", false, "allow moving next_offset back on a log that still holds it (records re-applied: after an unclean leader election rewrote the log)")
	return cmd
}

// operator names who runs a command: OS user@host.
func operator() string {
	name := "unknown"
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	return name + "@" + host
}

func reseed(ctx context.Context, g *globals, o reseedOpts) error {
	if o.file == "" {
		return usage(errMissingConfig)
	}
	o.reason = strings.TrimSpace(o.reason)
	if o.topic == "" || len(o.partitions) == 0 || o.to == "" || o.reason == "" {
		return usage(errors.New("--topic, --partition, --to and --reason are required"))
	}
	var offset int64 = -1
	if o.to != "earliest" && o.to != "latest" {
		n, err := strconv.ParseInt(o.to, 10, 64)
		if err != nil || n < 0 {
			return usage(fmt.Errorf("--to %s: expected earliest, latest or an offset (a number, not negative)", o.to))
		}
		offset = n
	}
	e, err := openEnv(ctx, g, o.file, envOpts{kafka: true})
	if err != nil {
		return err
	}
	defer e.Close()
	cfg, adm := e.cfg, e.kafka
	if _, _, ok := cfg.Route(o.topic); !ok {
		return usage(fmt.Errorf("--topic %s: no table rule in %s matches it", o.topic, cfg.File))
	}
	var tps []exactly.TP
	for _, p := range o.partitions {
		if p < 0 {
			return usage(fmt.Errorf("--partition %d: not a partition", p))
		}
		tps = append(tps, exactly.TP{Topic: o.topic, Partition: p})
	}
	mode := writeSink
	if o.dryRun {
		mode = drySink // creates nothing, not even the ledger tables
	}
	if err := e.openSink(ctx, mode); err != nil {
		return err
	}
	stored, err := e.sink.LoadPositions(ctx, tps)
	if err != nil {
		return err
	}
	for _, tp := range tps {
		if _, ok := stored[tp]; !ok {
			return usage(fmt.Errorf("%s: the pipeline %s has no exactly_offsets row for it: it starts at its beginning when first assigned, nothing to reseed", tp, cfg.Pipeline))
		}
	}
	bounds, err := adm.AllBounds(ctx, tps)
	if err != nil {
		return err
	}
	latest, _, err := adm.StartOffsets(ctx, "latest", cfg.Source.Group, tps)
	if err != nil {
		return err
	}
	ids, err := adm.TopicIDs(ctx, []string{o.topic})
	if err != nil {
		return err
	}
	to, err := rs.Targets(tps, o.to, offset, bounds, latest)
	if err == nil {
		err = rs.CheckRewind(tps, stored, bounds, ids[o.topic], to, o.rewind)
	}
	if err != nil {
		return usage(err)
	}
	if err := refuseOwned(ctx, adm, cfg, "reseed", tps); err != nil {
		return err
	}
	who := operator()
	for _, tp := range tps {
		from := stored[tp].Next
		if o.dryRun {
			fmt.Fprintf(g.stdout, "would reseed %s: next_offset %d -> %d (--to %s; Kafka holds %d..%d), by %s: %s\n",
				tp, from, to[tp], o.to, bounds[tp].Start, bounds[tp].End, who, o.reason)
			continue
		}
		from, id, err := e.sink.Reseed(ctx, exactly.Reseed{TP: tp, To: to[tp], TopicID: ids[o.topic], Who: who, Why: o.reason})
		if err != nil {
			return err
		}
		fmt.Fprintf(g.stdout, "reseeded %s: next_offset %d -> %d (--to %s), ledger row %s status reseeded by %s: %s\n",
			tp, from, to[tp], o.to, id, who, o.reason)
	}
	return nil
}
