package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os/signal"
	"strconv"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/kafka"
)

// partitionStatus is one line of exactly status.
type partitionStatus struct {
	Topic      string `json:"topic"`
	Partition  int32  `json:"partition"`
	Table      string `json:"table"`
	NextOffset *int64 `json:"next_offset"`    // null: the pipeline never reached the partition
	HighWater  *int64 `json:"high_watermark"` // null: the topic is gone from Kafka
	LogStart   *int64 `json:"log_start"`
	Lag        *int64 `json:"lag"`
	// RetentionLost counts offsets Kafka deleted below its log start before
	// the pipeline reached them (log start > next_offset): run verify.
	RetentionLost int64      `json:"retention_lost,omitempty"`
	LastBatchID   string     `json:"last_batch_id,omitempty"`
	LastBatchAt   *time.Time `json:"last_batch_at,omitempty"`
	LastStatus    string     `json:"last_status,omitempty"`
	LastError     string     `json:"last_error,omitempty"`
	// DeadLetters counts the partition's open dead letters (records not
	// in their table until redriven), DeadLettersResolved the redriven.
	DeadLetters         int64 `json:"dead_letters"`
	DeadLettersResolved int64 `json:"dead_letters_resolved"`
}

func newStatusCmd(g *globals) *cobra.Command {
	var file string
	var asJSON bool
	var sel selector
	cmd := &cobra.Command{
		Use:   "status -c FILE [--topic PATTERN] [--table PATTERN] [--json]",
		Short: "Per partition: table, committed next_offset, Kafka high watermark, lag, last batch",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := sel.check(); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			env, err := openAudit(ctx, file)
			if err != nil {
				return err
			}
			defer env.Close()
			st, total, err := readStatus(ctx, env, &sel)
			if err != nil {
				return err
			}
			// Who holds the partitions, and whether the group is stuck:
			// records waiting while nobody, or a rebalance, holds them.
			group, gerr := env.kafka.Group(ctx, env.cfg.Source.Group)
			if asJSON {
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				out := map[string]any{"pipeline": env.cfg.Pipeline, "partitions": st, "group": group}
				if gerr != nil {
					out["group_error"] = gerr.Error()
				}
				return enc.Encode(out)
			}
			printStatus(g, st)
			if !sel.empty() {
				fmt.Fprintf(g.stdout, "%d of %d partitions, selected by %s\n", len(st), total, &sel)
			}
			printGroup(g, env.cfg.Source.Group, group, gerr, st)
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "config", "c", "", "configuration file (YAML)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	sel.flags(cmd.Flags(), "default: every topic")
	return cmd
}

// readStatus joins the ledger's partitions with the partitions of the
// topics the configuration matches in Kafka, keeping the partitions sel
// selects (a selection that matches none is a usage error).
func readStatus(ctx context.Context, env *auditEnv, sel *selector) (st []partitionStatus, total int, err error) {
	offs, err := env.ledger.Offsets(ctx)
	if err != nil {
		return nil, 0, err
	}
	last, err := env.ledger.LastBatches(ctx)
	if err != nil {
		return nil, 0, err
	}
	dead, err := env.ledger.DeadLetterCounts(ctx)
	if err != nil {
		return nil, 0, err
	}
	seen := map[exactly.TP]bool{}
	var tps []exactly.TP
	next := map[exactly.TP]int64{}
	for _, o := range offs {
		next[o.TP] = o.Next
		seen[o.TP] = true
		tps = append(tps, o.TP)
	}
	for tp := range last {
		if !seen[tp] {
			seen[tp] = true
			tps = append(tps, tp)
		}
	}
	live, err := env.kafka.Partitions(ctx, func(topic string) bool { _, _, ok := env.cfg.Route(topic); return ok })
	if err != nil {
		return nil, 0, err
	}
	for _, tp := range live {
		if !seen[tp] {
			seen[tp] = true
			tps = append(tps, tp)
		}
	}
	exactly.SortTPs(tps)
	total = len(tps)
	if all := tps; !sel.empty() {
		if tps = sel.filter(env.cfg, tps); len(tps) == 0 {
			return nil, 0, sel.matchedNothing("the ledger and Kafka hold", all)
		}
	}
	bounds, err := env.kafka.Bounds(ctx, tps)
	if err != nil {
		return nil, 0, err
	}
	out := make([]partitionStatus, 0, len(tps))
	for _, tp := range tps {
		s := partitionStatus{Topic: tp.Topic, Partition: tp.Partition,
			DeadLetters: dead[tp].Open, DeadLettersResolved: dead[tp].Resolved}
		if _, table, ok := env.cfg.Route(tp.Topic); ok {
			s.Table = table
		}
		n, hasNext := next[tp]
		if hasNext {
			s.NextOffset = &n
		}
		if b, ok := bounds[tp]; ok {
			hw, ls := b.End, b.Start
			s.HighWater, s.LogStart = &hw, &ls
			lag := hw - ls // never started: everything retained is to do
			if hasNext {
				lag = max(hw-n, 0)
				s.RetentionLost = max(ls-n, 0)
			}
			s.Lag = &lag
		}
		if b, ok := last[tp]; ok {
			at := b.StartedAt
			if !b.CommittedAt.IsZero() {
				at = b.CommittedAt
			}
			s.LastBatchID, s.LastBatchAt, s.LastStatus, s.LastError = b.BatchID, &at, b.Status, b.Error
		}
		out = append(out, s)
	}
	return out, total, nil
}

func printStatus(g *globals, st []partitionStatus) {
	tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tTABLE\tNEXT_OFFSET\tHIGH_WATERMARK\tLAG\tDEAD_LETTERS\tLAST_BATCH\tLAST_BATCH_AT\tSTATUS")
	opt := func(p *int64) string {
		if p == nil {
			return "-"
		}
		return strconv.FormatInt(*p, 10)
	}
	for _, s := range st {
		id, at, status := "-", "-", "-"
		if s.LastBatchID != "" {
			id, at, status = s.LastBatchID, s.LastBatchAt.Format(time.RFC3339), s.LastStatus
		}
		if s.RetentionLost > 0 {
			status += fmt.Sprintf(" (LOST %d offsets to retention: run exactly verify)", s.RetentionLost)
		}
		table := s.Table
		if table == "" {
			table = "-"
		}
		dl := strconv.FormatInt(s.DeadLetters, 10)
		if s.DeadLettersResolved > 0 {
			dl += fmt.Sprintf(" (+%d resolved)", s.DeadLettersResolved)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Topic, s.Partition, table,
			opt(s.NextOffset), opt(s.HighWater), opt(s.Lag), dl, id, at, status)
	}
	tw.Flush()
}

// printGroup says who holds the partitions, and why nothing moves when
// records wait and nobody does.
func printGroup(g *globals, name string, group *kafka.GroupState, err error, st []partitionStatus) {
	if err != nil {
		fmt.Fprintf(g.stdout, "\ngroup %s: %v\n", name, err)
		return
	}
	fmt.Fprintf(g.stdout, "\ngroup %s: %s, %d members", name, group.State, len(group.Members))
	for _, m := range group.Members {
		fmt.Fprintf(g.stdout, "\n  %s@%s: %d partitions", m.ID, m.Host, m.Partitions)
	}
	fmt.Fprintln(g.stdout)
	var lag int64
	for _, s := range st {
		if s.Lag != nil {
			lag += *s.Lag
		}
	}
	switch {
	case lag > 0 && len(group.Members) == 0:
		fmt.Fprintf(g.stdout, "%d records wait and no member is running\n", lag)
	case lag > 0 && group.State != "Stable":
		fmt.Fprintf(g.stdout, "%d records wait while the group is %s: the members apply nothing until it settles\n", lag, group.State)
	}
}
