package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/decode"
	"github.com/exactly/exactly/internal/kafka"
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
	if _, err := kafka.LoadTLS(cfg); err != nil {
		return err
	}
	decoderFor := decode.For(cfg) // avro rules need the registry client, not a connection to it
	for i := range cfg.Tables {
		if _, err := decoderFor(&cfg.Tables[i]); err != nil {
			return &exactly.ConfigError{File: cfg.File, Field: fmt.Sprintf("tables[%d]", i), Value: cfg.Tables[i].Topics, Expected: err.Error()}
		}
	}
	printConfig(out, cfg)
	if !connect {
		fmt.Fprintln(out, "offline checks passed; --connect also reaches Kafka and the sink")
		return nil
	}
	if e.kafka, err = kafka.NewClient(cfg); err != nil {
		return err
	}
	c := &checker{env: e, out: out}
	if err := c.reach(ctx); err != nil {
		return err
	}
	c.mapping(ctx)
	if len(c.problems) > 0 {
		return findings("%d problem(s) found, first: %s", len(c.problems), c.problems[0])
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

// checker is check --connect: what it reached and the problems found.
type checker struct {
	*env
	out      io.Writer
	problems []string
	tps      []exactly.TP
	kafkaOK  bool
	live     *sql.DB // the sink's database; nil when it is unreachable
}

func (c *checker) problem(format string, args ...any) {
	p := fmt.Sprintf(format, args...)
	c.problems = append(c.problems, p)
	fmt.Fprintln(c.out, "  FAIL "+p)
}

// reach reads the metadata of the topics the rules match, and reaches
// the sink and its ledger tables. Only a DSN that does not parse is an
// error (exit 2); what does not answer is a problem.
func (c *checker) reach(ctx context.Context) error {
	cfg := c.cfg
	var err error
	c.tps, err = c.kafka.Partitions(ctx)
	if c.kafkaOK = err == nil; !c.kafkaOK {
		c.problem("kafka %s: %v", strings.Join(cfg.Source.Brokers, ","), err)
	} else {
		fmt.Fprintf(c.out, "  ok   kafka: %d partitions of matching topics\n", len(c.tps))
	}
	db, err := c.openDB(ctx)
	var ce *exactly.ConfigError
	if errors.As(err, &ce) {
		return err
	}
	if err != nil {
		c.problem("sink: %v", err)
		return nil
	}
	c.db = db // closed with the env
	if err := db.PingContext(ctx); err != nil {
		c.problem("sink: %v", err)
		return nil
	}
	c.live = db
	fmt.Fprintf(c.out, "  ok   sink: %s answers\n", cfg.Sink.Driver)
	for _, t := range []string{"exactly_offsets", "exactly_batches", "exactly_dead_letters", "exactly_pipelines"} {
		if _, err := db.ExecContext(ctx, "SELECT COUNT(*) FROM "+t+" WHERE 1 = 0"); err != nil {
			fmt.Fprintf(c.out, "  note ledger table %s is missing: exactly run creates it\n", t)
		} else {
			fmt.Fprintf(c.out, "  ok   ledger table %s\n", t)
		}
	}
	return nil
}

// mapping prints the table each existing topic maps to and its state.
func (c *checker) mapping(ctx context.Context) {
	parts := map[string]int{}
	var topics []string
	for _, tp := range c.tps {
		if parts[tp.Topic] == 0 {
			topics = append(topics, tp.Topic)
		}
		parts[tp.Topic]++
	}
	sort.Strings(topics)
	if c.kafkaOK {
		fmt.Fprintf(c.out, "mapping (%d topics):\n", len(topics))
	}
	tableState := map[string]string{}
	for _, topic := range topics {
		rule, table, refused := c.cfg.Resolve(topic)
		if refused != nil {
			c.problem("%v", refused)
			fmt.Fprintf(c.out, "  %-40s %3d partitions → %-30s REFUSED\n", topic, parts[topic], table)
			continue
		}
		state, seen := tableState[table]
		if !seen && c.live != nil {
			state = c.tableState(ctx, topic, table, rule)
			tableState[table] = state
		}
		fmt.Fprintf(c.out, "  %-40s %3d partitions → %-30s %s\n", topic, parts[topic], table, state)
	}
	for _, t := range c.cfg.Tables {
		if !exactly.IsPattern(t.Topics) && parts[t.Topics] == 0 && c.kafkaOK {
			c.problem("topic %s (a literal name in the rules) does not exist", t.Topics)
		}
	}
}

// tableState describes the table a topic maps to.
func (c *checker) tableState(ctx context.Context, topic, table string, rule *exactly.TableRule) string {
	t, err := c.d.Describe(ctx, c.live, table)
	switch {
	case err != nil:
		return "unreadable: " + err.Error()
	case t == nil && rule.Create:
		return "missing, created at first record (create: true)"
	case t == nil:
		c.problem("table %s (for topic %s) does not exist in the sink: create it, or set create: true on its rule", table, topic)
		return "MISSING"
	}
	state := fmt.Sprintf("exists, %d columns, primary key (%s)", len(t.Columns), strings.Join(t.Key, ","))
	for _, k := range rule.Key {
		if t.Column(k) == nil {
			state += ", NO key column " + k
			c.problem("table %s has no column %s named in the key of the rule for %s", table, k, topic)
		}
	}
	return state
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
