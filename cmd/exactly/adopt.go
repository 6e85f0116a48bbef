package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/adopt"
	"github.com/exactly/exactly/internal/spark"
)

func newAdoptCmd(g *globals) *cobra.Command {
	var file, checkpoint, group, timestamp string
	var apply bool
	cmd := &cobra.Command{
		Use:   "adopt -c FILE (--spark-checkpoint DIR|URL | --group G | --timestamp T) [--apply]",
		Short: "Take over a running pipeline: seed exactly_offsets from a Spark checkpoint, a consumer group or a timestamp",
		Long: `adopt seeds exactly_offsets for the partitions the ledger has no row for, so
that exactly starts where the pipeline it replaces stopped: at the last
committed micro-batch of a Spark Structured Streaming checkpoint, at the
offsets a Kafka consumer group committed (Kafka Connect's connect-NAME, a
hand-written consumer), or at the first record at or after a timestamp.

It prints what it would do and writes only with --apply. It never moves a
row the ledger already has: once there is a row the ledger is the truth.
Stop the old pipeline first.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return usage(errMissingConfig)
			}
			n := 0
			for _, s := range []string{checkpoint, group, timestamp} {
				if s != "" {
					n++
				}
			}
			if n != 1 {
				return usage(errors.New("adopt: expected exactly one of --spark-checkpoint DIR, --group G, --timestamp T"))
			}
			if timestamp != "" {
				if _, err := time.Parse(time.RFC3339, timestamp); err != nil {
					return usage(fmt.Errorf("--timestamp: got %q, expected an RFC3339 time like 2026-01-02T15:04:05Z", timestamp))
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			e, err := openEnv(ctx, g, file, envOpts{kafka: true})
			if err != nil {
				return err
			}
			defer e.Close()
			return adoptRun(ctx, e, checkpoint, group, timestamp, apply)
		},
	}
	cmd.Flags().StringVarP(&file, "config", "c", "", "configuration file (YAML)")
	cmd.Flags().StringVar(&checkpoint, "spark-checkpoint", "", "a Spark Structured Streaming checkpoint (with offsets/ and commits/): a directory, or in Azure storage abfss://CONTAINER@ACCOUNT.dfs.core.windows.net/PATH or https://ACCOUNT.blob.core.windows.net/CONTAINER/PATH[?SAS] (auth: SAS, AZURE_STORAGE_KEY, AZURE_STORAGE_CONNECTION_STRING or Entra ID)")
	cmd.Flags().StringVar(&group, "group", "", "a Kafka consumer group whose committed offsets to start from")
	cmd.Flags().StringVar(&timestamp, "timestamp", "", "start each partition at its first record at or after this RFC3339 time")
	cmd.Flags().BoolVar(&apply, "apply", false, "write exactly_offsets (default: print the plan only)")
	return cmd
}

// adopt reads the wanted offsets from one of the three sources, compares
// them with Kafka and the ledger (package adopt decides), prints the plan,
// and writes it with apply.
func adoptRun(ctx context.Context, e *env, checkpoint, group, timestamp string, apply bool) error {
	pg := newProgress(e.g)
	defer pg.Done()
	cfg, adm := e.cfg, e.kafka
	var a *adopt.Adoption
	var err error
	switch {
	case checkpoint != "":
		pg.Show(true, "adopt: reading the Spark checkpoint %s…", checkpoint)
		var st spark.Store = spark.Dir(checkpoint)
		var note []string
		if spark.IsURL(checkpoint) {
			az, err := spark.OpenAzure(checkpoint)
			if err != nil {
				return usage(err)
			}
			st, note = az, []string{"read the checkpoint from Azure storage with " + az.Auth}
		}
		if a, err = adopt.FromSpark(ctx, cfg, adm, st); err == nil {
			a.Notes = append(note, a.Notes...)
		}
	case group != "":
		pg.Show(true, "adopt: reading consumer group %s's offsets…", group)
		a, err = adopt.FromKafka(ctx, cfg, adm, "group", group)
	default:
		pg.Show(true, "adopt: finding the first offset at or after %s in every partition…", timestamp)
		a, err = adopt.FromKafka(ctx, cfg, adm, "timestamp:"+timestamp, "")
	}
	if err != nil {
		return err
	}
	pg.Show(true, "adopt: comparing %d partitions with Kafka and the ledger…", len(a.Want))
	return adoptFinish(ctx, e, a, pg, apply)
}

// adoptFinish prints the decided plan and writes it with apply.
func adoptFinish(ctx context.Context, e *env, a *adopt.Adoption, pg *progress, apply bool) error {
	if err := e.openSink(ctx, lookSink); err != nil {
		return err
	}
	if err := a.Compare(ctx, e.kafka, e.sink); err != nil {
		return err
	}
	out := e.g.stdout
	pg.Clear()
	printAdoption(out, a)
	if len(a.Problems) > 0 {
		return findings("adopt: %d problem(s); nothing written", len(a.Problems))
	}
	if !apply {
		fmt.Fprintf(out, "\ndry run: nothing written. Re-run with --apply to seed %d offsets row(s), then start exactly run.\n", len(a.Seed))
		return nil
	}
	w, err := openSink(ctx, a.Cfg, e.log) // creates the ledger tables
	if err != nil {
		return err
	}
	defer w.Close()
	raced, err := a.Apply(ctx, w, func(i int, tp exactly.TP) {
		pg.Show(i == len(a.Seed), "adopt: seeding offsets rows: %d/%d (%s)", i, len(a.Seed), tp)
	})
	pg.Clear()
	for _, r := range raced {
		fmt.Fprintf(out, "%s: another writer created the row first at %d; it stays\n", r.TP, r.Got)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\nseeded %d offsets row(s). Start the pipeline with: exactly run -c %s\n", len(a.Seed)-len(raced), a.Cfg.File)
	if len(raced) > 0 {
		return findings("adopt: %d row(s) were created by another writer meanwhile", len(raced))
	}
	return nil
}

// printAdoption prints the plan: a row per partition, the notes, the
// problems.
func printAdoption(out io.Writer, a *adopt.Adoption) {
	fmt.Fprintf(out, "adopt: pipeline %s takes over from %s\n\n", a.Cfg.Pipeline, a.Source)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tSTART AT\tKAFKA OFFSETS\tLEDGER\tACTION")
	for _, r := range a.Rows {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\n", r.TP.Topic, r.TP.Partition, r.Next, r.Bounds, r.Ledger, r.Action)
	}
	tw.Flush()
	if len(a.Rows) == 0 {
		fmt.Fprintln(out, "(no partition to seed)")
	}
	for _, n := range a.Notes {
		fmt.Fprintln(out, n)
	}
	if len(a.Problems) > 0 {
		fmt.Fprintln(out)
		for _, p := range a.Problems {
			fmt.Fprintln(out, "problem:", p)
		}
	}
}
