package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"os/user"
	"slices"
	"sort"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/kafka"
)

type redriveOpts struct {
	file      string
	sel       selector
	partition int32
	from, to  int64
	apply     bool
	by        string
}

func newRedriveCmd(g *globals) *cobra.Command {
	o := redriveOpts{}
	cmd := &cobra.Command{
		Use:   "redrive -c FILE [--topic PATTERN] [--table PATTERN] [--partition P] [--from A] [--to B] [--apply]",
		Short: "Re-apply open dead letters after their cause is fixed, marking them resolved in the same transaction",
		Long: `redrive re-applies the open dead letters of the selected partitions (all by
default), in offset order, through the same code as the pipeline: per
partition one transaction applies them, marks them resolved (resolved_at,
resolved_by, resolved_batch) and writes a ledger row with status "redriven".
Without --apply it only lists what it would redrive.

A dead letter is older than what the pipeline applied after it: redrive
reads the partition from the dead letter to next_offset in Kafka and leaves
open any dead letter whose key changed again since (it prints the newer
offset): applying it would write an older state over a newer one. On a table
with a version column a later upsert with a version leaves it to the version
guard; a later delete still leaves it open (a deleted row keeps no version). A record
that still fails stays open with its new error. Exit 0 when every selected
dead letter is resolved, 1 when some stay open, 2 on a usage error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return redrive(ctx, g, o)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.file, "config", "c", "", "configuration file (YAML)")
	o.sel.flags(f, "default: every topic with open dead letters")
	f.Int32Var(&o.partition, "partition", -1, "only this partition")
	f.Int64Var(&o.from, "from", 0, "only dead letters at or after this offset")
	f.Int64Var(&o.to, "to", 1<<62, "only dead letters before this offset (exclusive)")
	f.BoolVar(&o.apply, "apply", false, "apply; without it redrive only lists")
	f.StringVar(&o.by, "by", defaultBy(), "who redrives, recorded in exactly_dead_letters.resolved_by")
	return cmd
}

// defaultBy names the person redriving: user@host.
func defaultBy() string {
	name := os.Getenv("USER")
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	host, _ := os.Hostname()
	return name + "@" + host
}

func redrive(ctx context.Context, g *globals, o redriveOpts) error {
	if o.file == "" {
		return usage(errMissingConfig)
	}
	if err := o.sel.check(); err != nil {
		return err
	}
	// With --apply the sink adds the resolved_* columns to an older
	// ledger; without, it only lists and creates nothing.
	mode := drySink
	if o.apply {
		mode = writeSink
	}
	e, err := openEnv(ctx, g, o.file, envOpts{sink: mode, kafka: true})
	if err != nil {
		return err
	}
	defer e.Close()
	cfg, sink, kr := e.cfg, e.sink, e.kafka
	ledger := exactly.NewLedger(sink.DB(), sink.Dialect(), cfg.Pipeline)
	counts, err := ledger.DeadLetterCounts(ctx)
	if err != nil {
		return err
	}
	if !o.sel.empty() {
		// A selection that matches no partition of the ledger is most
		// often a typo: refuse it as status and verify do, rather than
		// say there is nothing to redrive.
		all, err := ledger.Partitions(ctx)
		if err != nil {
			return err
		}
		if len(o.sel.filter(cfg, all)) == 0 {
			return o.sel.matchedNothing("the ledger holds", all)
		}
	}
	var tps []exactly.TP
	for tp, c := range counts {
		if c.Open > 0 && o.sel.matchTopic(cfg, tp.Topic) && (o.partition < 0 || tp.Partition == o.partition) {
			tps = append(tps, tp)
		}
	}
	exactly.SortTPs(tps)
	replaced, err := replacedLog(ctx, ledger, kr, tps)
	if err != nil {
		return err
	}
	pg := newProgress(g)
	var open, resolved, left int
	for i, tp := range tps {
		dls, err := ledger.DeadLetters(ctx, tp, o.from, o.to, true)
		if err != nil {
			return err
		}
		open += len(dls)
		dls, held := holdReplaced(g, tp, dls, replaced, o.apply)
		left += held
		if len(dls) == 0 {
			continue
		}
		if !o.apply {
			fmt.Fprintf(g.stdout, "would redrive %s: %d open dead letters, offsets %d..%d; first error: %s\n",
				tp, len(dls), dls[0].Record.Offset, dls[len(dls)-1].Record.Offset, exactly.RedactError(errors.New(dls[0].Error)))
			continue
		}
		pg.Show(false, "redrive: %d/%d partitions, %d dead letters resolved (%s)", i, len(tps), resolved, tp)
		res, err := sink.Redrive(ctx, tp, dls, kr, o.by)
		if err != nil {
			pg.Done()
			return fmt.Errorf("redriving (partitions before %s are done): %w", tp, err)
		}
		pg.Clear()
		resolved += len(res.Resolved)
		left += len(res.Superseded) + len(res.Failing)
		if len(res.Resolved) > 0 {
			fmt.Fprintf(g.stdout, "redrove %s: %d dead letters applied and resolved in batch %s (offsets %d..%d)\n",
				tp, len(res.Resolved), res.BatchID, res.Resolved[0], res.Resolved[len(res.Resolved)-1])
		}
		for _, off := range sortedKeys(res.Superseded) {
			fmt.Fprintf(g.stdout, "left open %s@%d: the pipeline applied a newer change of the same key at offset %d; applying this one would bring back an older state\n",
				tp, off, res.Superseded[off])
		}
		for _, off := range sortedKeys(res.Failing) {
			fmt.Fprintf(g.stdout, "left open %s@%d: still fails: %s\n", tp, off, exactly.RedactError(errors.New(res.Failing[off])))
		}
	}
	pg.Done()
	switch {
	case open == 0:
		fmt.Fprintln(g.stdout, "no open dead letters selected")
	case !o.apply:
		fmt.Fprintf(g.stdout, "%d open dead letters; run again with --apply to redrive them\n", open)
	default:
		fmt.Fprintf(g.stdout, "%d of %d dead letters resolved, %d left open\n", resolved, open, left)
		if left > 0 {
			return findings("redrive: %d dead letters left open", left)
		}
	}
	return nil
}

// replacedLog returns why a dead letter of tp can no longer be checked
// against the newer changes of its key the pipeline applied, which
// redrive reads from Kafka ("" when it can): the topic was deleted and
// created again (another topic id than exactly_offsets recorded), or the
// dead letter was written before the partition's last exactly reseed
// (the log it came from was replaced or skipped since). Read from the
// new log, no newer change would be found, and the dead letter's older
// state would be written over the pipeline's newer one.
func replacedLog(ctx context.Context, ledger *exactly.Ledger, kr *kafka.Client, tps []exactly.TP) (func(exactly.TP, *exactly.DeadLetterRow) string, error) {
	offs, err := ledger.Offsets(ctx)
	if err != nil {
		return nil, err
	}
	recorded := map[exactly.TP]string{}
	var known []exactly.TP
	for _, off := range offs {
		if off.TopicID != "" && slices.Contains(tps, off.TP) {
			recorded[off.TP] = off.TopicID
			known = append(known, off.TP)
		}
	}
	var now map[string]string
	if len(known) > 0 {
		if now, err = kr.TopicIDs(ctx, exactly.Topics(known)); err != nil {
			return nil, err
		}
	}
	rs, err := ledger.Reseeds(ctx)
	if err != nil {
		return nil, err
	}
	lastReseed := map[exactly.TP]string{}
	for _, r := range rs { // oldest first
		lastReseed[r.TP()] = r.BatchID
	}
	return func(tp exactly.TP, d *exactly.DeadLetterRow) string {
		if id, was := now[tp.Topic], recorded[tp]; id != "" && was != "" && id != was {
			return fmt.Sprintf("the topic was deleted and created again since (topic id %s then, %s now): the newer changes of its key the pipeline applied can no longer be read, and applying it could bring back an older state; see exactly verify", was, id)
		}
		if r := lastReseed[tp]; r != "" && d.BatchID < r {
			return fmt.Sprintf("it was dead-lettered before exactly reseed moved the partition (ledger row %s): the log it came from cannot be checked for newer changes of its key, and applying it could bring back an older state", r)
		}
		return ""
	}, nil
}

// holdReplaced prints each dead letter of dls that replaced gives a
// reason for as left open (would be, without apply) and returns the
// others and how many it held.
func holdReplaced(g *globals, tp exactly.TP, dls []exactly.DeadLetterRow, replaced func(exactly.TP, *exactly.DeadLetterRow) string, apply bool) ([]exactly.DeadLetterRow, int) {
	verb := "left open"
	if !apply {
		verb = "would leave open"
	}
	var keep []exactly.DeadLetterRow
	for i := range dls {
		if why := replaced(tp, &dls[i]); why != "" {
			fmt.Fprintf(g.stdout, "%s %s@%d: %s\n", verb, tp, dls[i].Record.Offset, why)
			continue
		}
		keep = append(keep, dls[i])
	}
	return keep, len(dls) - len(keep)
}

func sortedKeys[V any](m map[int64]V) []int64 {
	out := make([]int64, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}
