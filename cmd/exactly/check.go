package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/kafka"
	"github.com/exactly/exactly/internal/preflight"
	"github.com/exactly/exactly/internal/secret"
)

func newCheckCmd(g *globals) *cobra.Command {
	var file string
	var connect bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "check -c FILE [--connect]",
		Short: "Validate a configuration; with --connect also reach Kafka and the sink and print the resolved topic → table mapping",
		Long: `check validates a configuration without touching anything: every field,
the TLS files, the table rules' decoders. It exits 2 naming the file, the
field and what is expected. With --connect it also reads Kafka's metadata,
pings the sink, looks for the ledger tables and the target tables, and
prints the table each existing topic maps to; it exits 1 when something is
unreachable or missing. It never creates or changes anything.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return usage(errMissingConfig)
			}
			return check(g, file, connect, timeout)
		},
	}
	cmd.Flags().StringVarP(&file, "config", "c", "", "configuration file (YAML)")
	cmd.Flags().BoolVar(&connect, "connect", false, "also reach Kafka and the sink, and print the resolved mapping")
	cmd.Flags().DurationVar(&timeout, "timeout", 30*time.Second, "with --connect: how long to wait for Kafka and the sink")
	return cmd
}

func check(g *globals, file string, connect bool, timeout time.Duration) error {
	out := g.stdout
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	e, err := openEnv(ctx, g, file, envOpts{})
	if err != nil {
		return err
	}
	defer e.Close()
	cfg := e.cfg
	if err := preflight.Offline(cfg); err != nil {
		return err
	}
	printConfig(out, cfg)
	if !connect {
		fmt.Fprintln(out, "offline checks passed; --connect also reaches Kafka and the sink")
		return nil
	}
	if e.kafka, err = kafka.NewClient(cfg); err != nil {
		return err
	}
	openDB := func(ctx context.Context) (*sql.DB, error) {
		db, err := e.openDB(ctx)
		e.db = db // closed with the env
		return db, err
	}
	rep, err := preflight.Connect(ctx, cfg, e.d, e.kafka, openDB)
	printPreflight(out, rep)
	if err != nil {
		return err
	}
	if len(rep.Problems) > 0 {
		return findings("%d problem(s) found, first: %s", len(rep.Problems), rep.Problems[0])
	}
	fmt.Fprintln(out, "all checks passed")
	return nil
}

// printConfig prints what a valid configuration resolves to.
func printConfig(out io.Writer, cfg *exactly.Config) {
	s := cfg.Source
	fmt.Fprintf(out, "%s: valid\n", cfg.File)
	fmt.Fprintf(out, "  pipeline   %s\n", cfg.Pipeline)
	fmt.Fprintf(out, "  source     %s  group %s  start_from %s  %s\n", strings.Join(s.Brokers, ","), s.Group, s.StartFrom, security(s))
	fmt.Fprintf(out, "  sink       %s  %s\n", cfg.Sink.Driver, redact(cfg.Sink.DSN))
	fmt.Fprintf(out, "  batch      every %s or %d records or %d bytes\n", cfg.Batch.Interval.D(), cfg.Batch.MaxRecords, cfg.Batch.MaxBytes)
	for i, t := range cfg.Tables {
		table := t.Table
		if table == "" {
			table = "(last part of the topic name)"
		}
		key := strings.Join(t.Key, ",")
		if key == "" {
			key = "-"
		}
		fmt.Fprintf(out, "  tables[%d]  %s → %s  format %s  mode %s  key %s  on_error %s\n", i, t.Topics, table, t.Format, t.Mode, key, t.OnError)
	}
}

// printPreflight prints check --connect's report in the order found.
func printPreflight(out io.Writer, rep *preflight.Report) {
	for _, l := range rep.Lines {
		switch l.Kind {
		case preflight.OK:
			fmt.Fprintln(out, "  ok   "+l.Text)
		case preflight.Note:
			fmt.Fprintln(out, "  note "+l.Text)
		case preflight.Fail:
			fmt.Fprintln(out, "  FAIL "+l.Text)
		case preflight.Mapping:
			fmt.Fprintln(out, l.Text)
		case preflight.Topic:
			r := l.Row
			state := r.State
			if r.Refused {
				state = "REFUSED"
			}
			fmt.Fprintf(out, "  %-40s %3d partitions → %-30s %s\n", r.Topic, r.Partitions, r.Table, state)
		}
	}
}

func security(s exactly.SourceConfig) string {
	parts := []string{"plaintext"}
	if s.TLS.On() {
		parts[0] = "tls"
		if s.TLS.InsecureSkipVerify {
			parts[0] = "tls (certificates NOT verified)"
		}
	}
	if s.SASL.Mechanism != "" {
		parts = append(parts, "sasl "+s.SASL.Mechanism+" as "+s.SASL.Username)
	}
	return strings.Join(parts, ", ")
}

// redact hides a DSN's password, whatever its form.
func redact(dsn string) string { return secret.Scrub(dsn) }
