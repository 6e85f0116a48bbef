package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/decode"
	"github.com/exactly/exactly/internal/kafka"
)

func newPlanCmd(g *globals) *cobra.Command {
	var file string
	var sample int
	var sel selector
	cmd := &cobra.Command{
		Use:   "plan -c FILE [--topic PATTERN] [--table PATTERN]",
		Short: "Dry run: per topic the table, the DDL create/evolve would run, the key, the column mapping and where each partition starts",
		Long: `plan reads Kafka's metadata, the sink's tables and ledger, and the first
records each partition would be read from, and prints what exactly run
would do with them. It writes nothing, neither to the sink nor to Kafka.
Exit 1 when a topic maps to a table that is missing and not created.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return usage(errMissingConfig)
			}
			if err := sel.check(); err != nil {
				return err
			}
			log, err := g.logger()
			if err != nil {
				return err
			}
			cfg, err := exactly.LoadConfig(file)
			if err != nil {
				return err
			}
			d, err := dialectFor(cfg.Sink.Driver)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			sink, err := openLookingSink(ctx, g, cfg, d, log)
			if err != nil {
				return err
			}
			defer sink.Close()
			adm, err := kafka.NewClient(cfg)
			if err != nil {
				return err
			}
			defer adm.Close()
			return runPlan(ctx, g, cfg, sink, adm, sample, &sel)
		},
	}
	cmd.Flags().StringVarP(&file, "config", "c", "", "configuration file (YAML)")
	cmd.Flags().IntVar(&sample, "sample", 100, "records read per partition to work out the DDL")
	sel.flags(cmd.Flags(), "default: every topic a rule matches")
	return cmd
}

func runPlan(ctx context.Context, g *globals, cfg *exactly.Config, sink *exactly.Sink, adm *kafka.Client, sample int, sel *selector) error {
	out := g.stdout
	tps, err := adm.Partitions(ctx)
	if err != nil {
		return err
	}
	selected := ""
	if all := tps; !sel.empty() {
		if tps = sel.filter(cfg, tps); len(tps) == 0 {
			return sel.matchedNothing("of the topics in Kafka the rules match", all)
		}
		selected = fmt.Sprintf(" (selected by %s: %d of %d)", sel, len(tps), len(all))
	}
	stored := map[exactly.TP]int64{}
	seededIn := map[exactly.TP]string{} // the topic id each offsets row was seeded in
	if ok, err := sink.HasLedger(ctx); err != nil {
		return err
	} else if ok {
		pos, err := sink.LoadPositions(ctx, tps)
		if err != nil {
			return err
		}
		for tp, p := range pos {
			stored[tp], seededIn[tp] = p.Next, p.TopicID
		}
	}
	var topicIDs map[string]string
	if len(seededIn) > 0 {
		if topicIDs, err = adm.TopicIDs(ctx, topicsOf(tps)); err != nil {
			return err
		}
	}
	var missing []exactly.TP
	for _, tp := range tps {
		if _, ok := stored[tp]; !ok {
			missing = append(missing, tp)
		}
	}
	// start_from applies at the pipeline's first start only: once it
	// is recorded (or the ledger already has offsets rows, made by an
	// earlier version or by adopt), a partition without a row was created
	// since and starts at its beginning.
	started := ""
	if ok, err := sink.HasLedger(ctx); err != nil {
		return err
	} else if ok {
		if first, err := sink.FirstStart(ctx); err == nil && first != nil {
			started = "created after the pipeline's first start (" + first.StartedAt.Format(time.RFC3339) + "): its beginning"
		} else if offs, err := exactly.NewLedger(sink.DB(), sink.Dialect(), cfg.Pipeline).Offsets(ctx); err == nil && len(offs) > 0 {
			started = "not in the ledger, which has rows of other partitions: its beginning"
		}
	}
	seeds := map[exactly.TP]int64{}
	var uncommitted []exactly.TP
	if len(missing) > 0 {
		sf := cfg.Source.StartFrom
		if started != "" {
			sf = "earliest"
		}
		if seeds, uncommitted, err = adm.StartOffsets(ctx, sf, cfg.Source.Group, missing); err != nil {
			return err
		}
	}
	start := map[exactly.TP]int64{}
	for _, tp := range tps {
		if o, ok := stored[tp]; ok {
			start[tp] = o
		} else {
			start[tp] = seeds[tp]
		}
	}
	bounds := map[exactly.TP]exactly.Bounds{}
	if len(tps) > 0 {
		if bounds, err = adm.AllBounds(ctx, tps); err != nil {
			return err
		}
	}
	var recs map[exactly.TP][]*exactly.Record
	if sample > 0 && len(tps) > 0 {
		if recs, err = adm.Sample(ctx, start, sample, 5*time.Second); err != nil {
			return err
		}
	}
	byTopic := map[string][]exactly.TP{}
	var topics []string
	for _, tp := range tps {
		if byTopic[tp.Topic] == nil {
			topics = append(topics, tp.Topic)
		}
		byTopic[tp.Topic] = append(byTopic[tp.Topic], tp)
	}
	sort.Strings(topics)
	fmt.Fprintf(out, "plan: pipeline %s · sink %s · start_from %s · %d topic(s), %d partition(s)%s · nothing is written\n",
		cfg.Pipeline, cfg.Sink.Driver, cfg.Source.StartFrom, len(topics), len(tps), selected)
	if len(topics) == 0 {
		fmt.Fprintln(out, "no topic in Kafka matches the table rules")
	}
	d := sink.Dialect()
	failing := 0
	for _, topic := range topics {
		var sampled []*exactly.Record
		for _, tp := range byTopic[topic] {
			sampled = append(sampled, recs[tp]...)
		}
		p, err := sink.PlanTable(ctx, topic, sampled)
		if err != nil {
			return err
		}
		r := p.Rule
		state := "exists"
		if !p.Change.Exists {
			state = "missing"
		}
		fmt.Fprintf(out, "\n%s → table %s (%s)\n", topic, p.Table, state)
		fmt.Fprintf(out, "  format %s · mode %s · key %s · on_error %s\n", r.Format, r.Mode, describeKey(r), r.OnError)
		fmt.Fprintf(out, "  columns: %s\n", describeColumns(r))
		if r.Create || r.Evolve != "" {
			fmt.Fprintf(out, "  types: %s\n", describeTypes(r))
		}
		switch {
		case !p.Change.Empty():
			fmt.Fprintf(out, "  DDL (from %d sampled record(s)):\n", p.Sampled)
			for _, s := range p.Change.Statements(d) {
				fmt.Fprintf(out, "    %s;\n", s)
			}
		case !p.Change.Exists && !r.Create:
			failing++
			fmt.Fprintf(out, "  PROBLEM: the table does not exist and create is off: its batches would fail until it is created (or set create: true)\n")
		case !p.Change.Exists:
			fmt.Fprintf(out, "  DDL: none yet: no sampled record carries a row; the table is created from the first batch that does\n")
		default:
			fmt.Fprintf(out, "  DDL: none needed (from %d sampled record(s))\n", p.Sampled)
		}
		if len(p.Change.Ignored) > 0 {
			fmt.Fprintf(out, "  ignored fields (no column; evolve is off): %s\n", strings.Join(p.Change.Ignored, ", "))
		}
		for i, dl := range p.DeadLetters {
			if i == 3 {
				fmt.Fprintf(out, "  … %d more sampled record(s) would be dead letters\n", len(p.DeadLetters)-3)
				break
			}
			fmt.Fprintf(out, "  dead letter: %s\n", dl)
		}
		for _, tp := range byTopic[topic] {
			b := bounds[tp]
			from := "ledger"
			if _, ok := stored[tp]; !ok {
				from = "start_from " + cfg.Source.StartFrom + ", no ledger row yet"
				if started != "" {
					from = started
				}
				if contains(uncommitted, tp) {
					from += "; the group has no offset for it: log start"
				}
			}
			// What run does with a row the log no longer agrees with: it
			// halts the partition at assignment (plan said "starts at
			// 899 (ledger) · Kafka 0..6 · 0 to read").
			if halt := planHalt(tp, start[tp], b, seededIn[tp], topicIDs[tp.Topic]); halt != "" {
				failing++
				fmt.Fprintf(out, "  partition %d: HALTS when assigned: %s · Kafka %d..%d; see exactly reseed\n",
					tp.Partition, halt, b.Start, b.End)
				continue
			}
			fmt.Fprintf(out, "  partition %d: starts at %d (%s) · Kafka %d..%d · %d to read\n",
				tp.Partition, start[tp], from, b.Start, b.End, max(0, b.End-start[tp]))
		}
	}
	if failing > 0 {
		return findings("plan: %d problem(s): tables missing with create off, partitions that halt", failing)
	}
	return nil
}

// planHalt says why run halts a partition with an offsets row at
// assignment, as the source does: a topic of another id than the row was
// seeded in, a next_offset beyond the log end, or below the log start
// (records deleted before they were applied). "" when it does not.
func planHalt(tp exactly.TP, next int64, b exactly.Bounds, seededIn, now string) string {
	switch {
	case seededIn != "" && now != "" && seededIn != now:
		return fmt.Sprintf("topic recreated: %s has topic id %s, the offsets row was seeded in %s; next_offset %d (lag %d)", tp, now, seededIn, next, b.End-next)
	case next > b.End:
		return fmt.Sprintf("offsets beyond the log end: next_offset %d, the log ends at %d (lag %d)", next, b.End, b.End-next)
	case next < b.Start:
		return fmt.Sprintf("offsets %d..%d were deleted before they were applied (the log starts at %d)", next, b.Start-1, b.Start)
	}
	return ""
}

func topicsOf(tps []exactly.TP) []string {
	var out []string
	seen := map[string]bool{}
	for _, tp := range tps {
		if !seen[tp.Topic] {
			seen[tp.Topic] = true
			out = append(out, tp.Topic)
		}
	}
	return out
}

// openLookingSink opens the sink for a command that only looks. A SQLite
// file that does not exist yet is not created: the command looks at an
// empty in-memory database instead, which is what the pipeline will find.
func openLookingSink(ctx context.Context, g *globals, cfg *exactly.Config, d exactly.Dialect, log *slog.Logger) (*exactly.Sink, error) {
	if cfg.Sink.Driver == "sqlite" {
		path, _, _ := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(cfg.Sink.DSN, "sqlite://"), "file:"), "?")
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			fmt.Fprintf(g.stdout, "(the SQLite file %s does not exist yet: looking at an empty database)\n", path)
			c := *cfg
			c.Sink.DSN = "file:exactly-look-" + fmt.Sprint(time.Now().UnixNano()) + "?mode=memory&cache=shared"
			return exactly.OpenSink(ctx, &c, d, decode.For(&c), log)
		}
	}
	return exactly.OpenSink(ctx, cfg, d, decode.For(cfg), log)
}

func contains(tps []exactly.TP, tp exactly.TP) bool {
	for _, x := range tps {
		if x == tp {
			return true
		}
	}
	return false
}

func describeKey(r *exactly.TableRule) string {
	if r.Mode == "append" {
		return "none (append)"
	}
	k := "[" + strings.Join(r.Key, ", ") + "]"
	if len(r.Key) == 0 {
		k = "the record key's fields"
	}
	switch r.KeyFrom {
	case "record_key":
		return k + " from the record key"
	case "value":
		return k + " from the value"
	}
	return k + " from the record key when it is a JSON object, else from the value"
}

func describeColumns(r *exactly.TableRule) string {
	m := r.Columns
	var parts []string
	if len(m.Include) > 0 {
		parts = append(parts, "include ["+strings.Join(m.Include, ", ")+"]")
	}
	if len(m.Exclude) > 0 {
		parts = append(parts, "exclude ["+strings.Join(m.Exclude, ", ")+"]")
	}
	if len(m.Rename) > 0 {
		var rn []string
		for f, c := range m.Rename {
			rn = append(rn, f+" → "+c)
		}
		sort.Strings(rn)
		parts = append(parts, "rename "+strings.Join(rn, ", "))
	}
	if len(parts) == 0 {
		parts = append(parts, "every field to the column of the same name")
	}
	evolve := "evolve off: fields without a column are ignored"
	switch r.Evolve {
	case "widen":
		evolve = "evolve widen: fields without a column become nullable columns, and an integer column widens to float, decimal or text when a value needs it"
	case "":
	default:
		evolve = "evolve " + r.Evolve + ": fields without a column become nullable columns"
	}
	create := "create off"
	if r.Create {
		create = "create on"
	}
	return strings.Join(parts, "; ") + " · " + create + " · " + evolve
}

// describeTypes says where the types of the columns create and evolve
// make come from, and whether they depend on where batches were cut.
func describeTypes(r *exactly.TableRule) string {
	const schema = "from the record schema when it has one; "
	if r.Evolve == "widen" {
		return schema + "otherwise inferred from the values in the order they were read, an integer column widened (never narrowed) when a later value needs float, decimal or text, a value no widening fits dead-lettered: the same stream gives the same types wherever batches are cut"
	}
	return schema + "otherwise inferred from the values of the first batch that makes the column: they depend on where batches were cut (a stray \"abc\" in it makes text what would be bigint); evolve: widen makes them not"
}
