package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/verify"
)

func newVerifyCmd(g *globals) *cobra.Command {
	var file, from string
	var asJSON bool
	var sel selector
	cmd := &cobra.Command{
		Use:   "verify -c FILE [--from TIME] [--topic PATTERN] [--table PATTERN] [--json]",
		Short: "Audit the ledger: chain unbroken, ranges re-read from Kafka hash the same, offsets lost to retention, failed batches left behind",
		Long: `verify reads the ledger and Kafka and changes nothing. It exits 0 when it
finds nothing, 1 with findings (each with topic, partition and offsets), 2 on
a usage or configuration error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := sel.check(); err != nil {
				return err
			}
			var opt verify.Options
			if from != "" {
				t, err := parseSince(from)
				if err != nil {
					return usage(err)
				}
				opt.Since = t
			}
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			env, err := openAudit(ctx, file)
			if err != nil {
				return err
			}
			defer env.Close()
			if !sel.empty() {
				opt.Select = func(tp exactly.TP) bool { return sel.matchTopic(env.cfg, tp.Topic) }
			}
			pg := newProgress(g.stderr)
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
				printReport(g, rep, selected)
			}
			if !rep.Clean() {
				return findings("verify: %d findings", len(rep.Findings))
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "config", "c", "", "configuration file (YAML)")
	cmd.Flags().StringVar(&from, "from", "", "check only batches started at or after TIME (RFC3339, or a duration ago like 24h)")
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
	return time.Time{}, fmt.Errorf("--from: got %q, expected an RFC3339 time (2025-06-10T08:00:00Z), a date (2025-06-10) or a duration ago (24h)", s)
}

func printReport(g *globals, rep *verify.Report, selected string) {
	w := g.stdout
	fmt.Fprintf(w, "pipeline %s: %d partitions%s, %d ledger rows, %d ranges re-read from Kafka (%d records)\n",
		rep.Pipeline, rep.Partitions, selected, rep.Batches, rep.Rehashed, rep.Records)
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
