package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/verify"
)

func newVerifyCmd(g *globals) *cobra.Command {
	var file, from string
	var asJSON, all bool
	var sel selector
	cmd := &cobra.Command{
		Use:   "verify -c FILE [--from TIME | --all] [--topic PATTERN] [--table PATTERN] [--json]",
		Short: "Audit the ledger: chain unbroken, ranges re-read from Kafka hash the same, offsets lost to retention, failed batches left behind",
		Long: `verify reads the ledger and Kafka and changes nothing. By default it checks
the ledger rows of the last 24 hours (` + "`--from 24h`" + `): their ranges are re-read
from Kafka, their chain is checked against the batch before them. --from
chooses another start, --all checks the whole ledger (every range re-read:
hours on a long history). Retention loss, next_offset and open dead letters
are checked whatever the window. The output says which rows it checked.

It exits 0 when it finds nothing, 1 with findings (each with topic,
partition and offsets), 2 on a usage or configuration error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := sel.check(); err != nil {
				return err
			}
			var opt verify.Options
			switch {
			case all && from != "":
				return usage(errors.New("--all checks the whole ledger and --from a part of it: give one"))
			case all:
			default:
				if from == "" {
					from = defaultVerifyFrom
				}
				t, err := parseSince(from)
				if err != nil {
					return usage(err)
				}
				opt.Since = t
			}
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			env, err := openEnv(ctx, g, file, envOpts{sink: auditSink, kafka: true})
			if err != nil {
				return err
			}
			defer env.Close()
			opt.File = env.cfg.File
			if !sel.empty() {
				opt.Select = func(tp exactly.TP) bool { return sel.matchTopic(env.cfg, tp.Topic) }
			}
			pg := newProgress(g)
			opt.Progress = func(tp exactly.TP, done, total int, records int64) {
				pg.Show(done == total, "verify: %d/%d partitions, %d records re-read (%s)", done, total, records, tp)
			}
			rep, err := verify.Run(ctx, env.ledger, env.kafka, opt)
			pg.Done()
			if err != nil {
				return err
			}
			if rep.Partitions == 0 && !sel.empty() {
				all, err := env.ledger.Partitions(ctx)
				if err != nil {
					return err
				}
				return sel.matchedNothing("the ledger holds", all)
			}
			if asJSON {
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(rep); err != nil {
					return err
				}
			} else {
				selected := ""
				if !sel.empty() {
					selected = " (selected by " + sel.String() + ")"
				}
				printReport(g, rep, selected, from)
			}
			if !rep.Clean() {
				return findings("verify: %d findings", len(rep.Findings))
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "config", "c", "", "configuration file (YAML)")
	cmd.Flags().StringVar(&from, "from", "", "check the batches started at or after TIME (RFC3339, a date, or a duration ago like 24h or 7d); default "+defaultVerifyFrom)
	cmd.Flags().BoolVar(&all, "all", false, "check the whole ledger, every range re-read from Kafka")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	sel.flags(cmd.Flags(), "default: every topic")
	return cmd
}

// parseSince reads an RFC3339 time, a date, or a duration before now.
func parseSince(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t.UTC(), nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return time.Now().Add(-d).UTC(), nil
	}
	if n, err := strconv.Atoi(strings.TrimSuffix(s, "d")); err == nil && n > 0 && strings.HasSuffix(s, "d") {
		return time.Now().AddDate(0, 0, -n).UTC(), nil
	}
	return time.Time{}, fmt.Errorf("--from: got %q, expected an RFC3339 time (2025-06-10T08:00:00Z), a date (2025-06-10) or a duration ago (24h, 7d)", s)
}

// defaultVerifyFrom is the window verify checks without --from or --all:
// a daily audit re-reads a day of ranges, not the whole history.
const defaultVerifyFrom = "24h"

// printReport prints the report; from is the --from given ("" with --all).
func printReport(g *globals, rep *verify.Report, selected, from string) {
	w := g.stdout
	fmt.Fprintf(w, "pipeline %s: %d partitions%s, %d ledger rows, %d ranges re-read from Kafka (%d records)\n",
		rep.Pipeline, rep.Partitions, selected, rep.Batches, rep.Rehashed, rep.Records)
	switch {
	case rep.Since.IsZero():
		fmt.Fprintln(w, "checked: the whole ledger (--all)")
	case from == defaultVerifyFrom:
		fmt.Fprintf(w, "checked: ledger rows started since %s (the last %s, the default; --from TIME or --all for older ones)\n",
			rep.Since.Format(time.RFC3339), from)
	default:
		fmt.Fprintf(w, "checked: ledger rows started since %s (--from %s; --all for the whole ledger)\n", rep.Since.Format(time.RFC3339), from)
	}
	if rep.PrunedRows > 0 {
		fmt.Fprintf(w, "pruned: %d ledger rows (%d records) deleted by exactly prune; the chains start at their markers, whose ranges are not re-read\n",
			rep.PrunedRows, rep.PrunedRecords)
	}
	if rep.Batches == 0 && !rep.Since.IsZero() {
		fmt.Fprintln(w, "note: no ledger row started in that window: nothing was re-read from Kafka")
	}
	for _, n := range rep.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	if rep.Clean() {
		fmt.Fprintln(w, "OK: no findings")
		return
	}
	for _, f := range rep.Findings {
		fmt.Fprintf(w, "FINDING %s\n", f)
	}
}
