package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/decode"
	"github.com/exactly/exactly/internal/kafka"
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
			log, err := g.logger()
			if err != nil {
				return err
			}
			cfg, err := exactly.LoadConfig(file)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			a := &adoption{cfg: cfg, log: log, out: g.stdout, g: g, pg: newProgress(g)}
			defer a.pg.Done()
			switch {
			case checkpoint != "":
				a.pg.Show(true, "adopt: reading the Spark checkpoint %s…", checkpoint)
				err = a.fromSpark(ctx, checkpoint)
			case group != "":
				a.pg.Show(true, "adopt: reading consumer group %s's offsets…", group)
				err = a.fromKafka(ctx, "group", group)
			default:
				a.pg.Show(true, "adopt: finding the first offset at or after %s in every partition…", timestamp)
				err = a.fromKafka(ctx, "timestamp:"+timestamp, "")
			}
			if err != nil {
				return err
			}
			a.pg.Show(true, "adopt: comparing %d partitions with Kafka and the ledger…", len(a.want))
			return a.finish(ctx, apply)
		},
	}
	cmd.Flags().StringVarP(&file, "config", "c", "", "configuration file (YAML)")
	cmd.Flags().StringVar(&checkpoint, "spark-checkpoint", "", "a Spark Structured Streaming checkpoint (with offsets/ and commits/): a directory, or in Azure storage abfss://CONTAINER@ACCOUNT.dfs.core.windows.net/PATH or https://ACCOUNT.blob.core.windows.net/CONTAINER/PATH[?SAS] (auth: SAS, AZURE_STORAGE_KEY, AZURE_STORAGE_CONNECTION_STRING or Entra ID)")
	cmd.Flags().StringVar(&group, "group", "", "a Kafka consumer group whose committed offsets to start from")
	cmd.Flags().StringVar(&timestamp, "timestamp", "", "start each partition at its first record at or after this RFC3339 time")
	cmd.Flags().BoolVar(&apply, "apply", false, "write exactly_offsets (default: print the plan only)")
	return cmd
}

// adoption is one adopt run: the offsets it wants per partition and what
// stands in their way.
type adoption struct {
	cfg    *exactly.Config
	log    *slog.Logger
	out    io.Writer
	source string // for the offsets rows' writer column and the output
	want   map[exactly.TP]int64
	// notes are printed after the plan; problems make adopt refuse to write.
	notes    []string
	problems []string
	admin    *kafka.Client
	g        *globals
	pg       *progress
}

func (a *adoption) openAdmin() error {
	if a.admin != nil {
		return nil
	}
	adm, err := kafka.NewClient(a.cfg)
	if err != nil {
		return err
	}
	a.admin = adm
	return nil
}

// fromSpark takes the end offsets of the checkpoint's last committed
// micro-batch.
func (a *adoption) fromSpark(ctx context.Context, where string) error {
	var st spark.Store = spark.Dir(where)
	if spark.IsURL(where) {
		az, err := spark.OpenAzure(where)
		if err != nil {
			return usage(err)
		}
		st = az
		a.notes = append(a.notes, "read the checkpoint from Azure storage with "+az.Auth)
	}
	dir := st.Where("")
	cp, err := spark.ReadStore(ctx, st)
	if err != nil {
		return findings("%w", err)
	}
	for _, s := range cp.Ignored {
		a.notes = append(a.notes, "ignored in the checkpoint: "+s)
	}
	if cp.LastCommitted < 0 {
		a.problems = append(a.problems, fmt.Sprintf("the checkpoint %s has no committed micro-batch (no commits/N next to an offsets/N): there is no position to take over from; use start_from in the configuration instead", dir))
	}
	a.source = fmt.Sprintf("spark checkpoint %s, micro-batch %d", dir, cp.LastCommitted)
	a.want = map[exactly.TP]int64{}
	for tp, next := range cp.Next {
		if _, _, ok := a.cfg.Route(tp.Topic); !ok {
			a.notes = append(a.notes, fmt.Sprintf("%s is in the checkpoint but no table rule of this pipeline matches it: not seeded", tp))
			continue
		}
		a.want[tp] = next
	}
	if err := a.openAdmin(); err != nil {
		return err
	}
	tps, err := a.admin.Partitions(ctx)
	if err != nil {
		return err
	}
	inKafka := map[exactly.TP]bool{}
	for _, tp := range tps {
		inKafka[tp] = true
	}
	for tp := range a.want {
		if !inKafka[tp] {
			a.problems = append(a.problems, fmt.Sprintf("%s is in the checkpoint but Kafka has no such partition: a different cluster, or the topic was recreated", tp))
			delete(a.want, tp)
		}
	}
	// A partition of a topic the query read that the last committed
	// micro-batch does not list was new to Spark (added to the topic, or
	// first planned in an uncommitted batch): Spark reads a partition it
	// discovers from its earliest offset (KafkaOffsetReader's
	// getOffsetRangesFromResolvedOffsets), so nothing of it is committed
	// anywhere and it is taken over from the log start, whatever
	// start_from says (start_from latest would skip it all).
	sparkTopics := map[string]bool{}
	for tp := range cp.Next {
		sparkTopics[tp.Topic] = true
	}
	for _, b := range cp.Uncommitted {
		for tp := range b.To {
			sparkTopics[tp.Topic] = true
		}
	}
	var fresh []exactly.TP
	for _, tp := range tps {
		if _, ok := a.want[tp]; ok || cp.LastCommitted < 0 {
			continue
		}
		if sparkTopics[tp.Topic] {
			fresh = append(fresh, tp)
			continue
		}
		a.notes = append(a.notes, fmt.Sprintf("%s is not in the checkpoint: it starts from start_from (%s) when the pipeline first sees it", tp, a.cfg.Source.StartFrom))
	}
	if len(fresh) > 0 {
		bounds, err := a.admin.AllBounds(ctx, fresh)
		if err != nil {
			return err
		}
		for _, tp := range fresh {
			a.want[tp] = bounds[tp].Start
			a.notes = append(a.notes, fmt.Sprintf("%s is not in the last committed micro-batch: Spark reads a partition new to it from its earliest offset, so it starts at the log start (%d)", tp, bounds[tp].Start))
		}
	}
	for _, b := range cp.Uncommitted {
		a.notes = append(a.notes, uncommittedNote(a.cfg.File, b)...)
		var appendTables []string
		for tp := range b.To {
			if rule, table, ok := a.cfg.Route(tp.Topic); ok && table != "" && rule.Mode == "append" && !slices.Contains(appendTables, table) {
				appendTables = append(appendTables, table)
			}
		}
		if len(appendTables) > 0 {
			sort.Strings(appendTables)
			a.notes = append(a.notes, "append tables of this pipeline in that range: "+strings.Join(appendTables, ", "))
		}
	}
	return nil
}

// uncommittedNote explains a micro-batch Spark planned but never
// committed: the exact failure of "written, then killed before the
// commit".
func uncommittedNote(file string, b spark.Batch) []string {
	tps := make([]exactly.TP, 0, len(b.To))
	for tp := range b.To {
		tps = append(tps, tp)
	}
	exactly.SortTPs(tps)
	out := []string{fmt.Sprintf("micro-batch %d was planned (offsets/%d) but never committed (no commits/%d): Spark may have written some or all of it to the sink before it stopped. Its ranges:", b.ID, b.ID, b.ID)}
	for _, tp := range tps {
		from, to := b.From[tp], b.To[tp]
		switch {
		case from < 0:
			out = append(out, fmt.Sprintf("  %s offsets from the partition's first record to %d", tp, to-1))
		case to > from:
			out = append(out, fmt.Sprintf("  %s offsets %d..%d (%d records)", tp, from, to-1, to-from))
		}
	}
	out = append(out, "exactly starts after the last committed micro-batch, so it applies these records (again): harmless for upsert and cdc tables (the same key gets the same row);",
		"an append table may then hold some of them twice. Find such duplicates (dry run) and remove them (--apply moves the surplus rows to TABLE_exactly_removed) with:",
		"  exactly dedupe -c "+file+" --table TABLE --key COLUMNS-THAT-IDENTIFY-A-RECORD [--apply]")
	return out
}

// fromKafka takes a consumer group's committed offsets or the offsets at a
// timestamp.
func (a *adoption) fromKafka(ctx context.Context, startFrom, group string) error {
	if err := a.openAdmin(); err != nil {
		return err
	}
	tps, err := a.admin.Partitions(ctx)
	if err != nil {
		return err
	}
	if len(tps) == 0 {
		return findings("no topic in Kafka matches this pipeline's table rules")
	}
	if group != "" {
		n, err := a.admin.ActiveMembers(ctx, group)
		if err != nil {
			return err
		}
		if n > 0 {
			a.problems = append(a.problems, fmt.Sprintf("consumer group %s has %d active member(s): the old pipeline is still consuming and its offsets still move; stop it first", group, n))
		}
	}
	offs, uncommitted, err := a.admin.StartOffsets(ctx, startFrom, group, tps)
	if err != nil {
		return err
	}
	a.source = startFrom
	if group != "" {
		a.source = "consumer group " + group
	}
	a.want = offs
	for _, tp := range uncommitted {
		delete(a.want, tp)
		a.notes = append(a.notes, fmt.Sprintf("%s: group %s never committed an offset for it: not seeded; it starts from start_from (%s)", tp, group, a.cfg.Source.StartFrom))
	}
	return nil
}

// finish checks the wanted offsets against Kafka and the ledger, prints
// the plan, and writes it with apply.
func (a *adoption) finish(ctx context.Context, apply bool) error {
	defer func() {
		if a.admin != nil {
			a.admin.Close()
		}
	}()
	d, err := dialectFor(a.cfg.Sink.Driver)
	if err != nil {
		return err
	}
	sink, err := openLookingSink(ctx, a.g, a.cfg, d, a.log)
	if err != nil {
		return err
	}
	defer sink.Close()
	tps := make([]exactly.TP, 0, len(a.want))
	for tp := range a.want {
		tps = append(tps, tp)
	}
	exactly.SortTPs(tps)

	bounds := map[exactly.TP]exactly.Bounds{}
	if len(tps) > 0 {
		if bounds, err = a.admin.AllBounds(ctx, tps); err != nil {
			return err
		}
	}
	stored := map[exactly.TP]int64{}
	if ok, err := sink.HasLedger(ctx); err != nil {
		return err
	} else if ok {
		if stored, err = sink.LoadOffsets(ctx, tps); err != nil {
			return err
		}
	}
	type row struct {
		tp                 exactly.TP
		next               int64
		bounds, ledger, do string
	}
	var rows []row
	var seed []exactly.TP
	for _, tp := range tps {
		next, b := a.want[tp], bounds[tp]
		r := row{tp: tp, next: next, bounds: fmt.Sprintf("%d..%d", b.Start, b.End), ledger: "(no row)"}
		have, hasRow := stored[tp]
		switch {
		case hasRow && have == next:
			r.ledger, r.do = fmt.Sprint(have), "nothing: already there"
		case hasRow:
			r.ledger, r.do = fmt.Sprint(have), "REFUSED"
			a.problems = append(a.problems, fmt.Sprintf("%s: the ledger already has next_offset %d, %s says %d: once the ledger has a row it is the truth; adopt never moves it", tp, have, a.source, next))
		case next > b.End:
			r.do = "REFUSED"
			a.problems = append(a.problems, fmt.Sprintf("%s: %s says %d but the partition ends at %d: a different cluster, or the topic was recreated", tp, a.source, next, b.End))
		case next < b.Start:
			r.do = "REFUSED"
			a.problems = append(a.problems, fmt.Sprintf("%s: offsets %d..%d were deleted by retention before the old pipeline read them: that data is lost upstream; seeding at %d would halt the partition with a gap", tp, next, b.Start-1, next))
		default:
			r.do = fmt.Sprintf("seed next_offset %d (%d records to apply)", next, b.End-next)
			seed = append(seed, tp)
		}
		rows = append(rows, r)
	}
	a.pg.Clear()
	fmt.Fprintf(a.out, "adopt: pipeline %s takes over from %s\n\n", a.cfg.Pipeline, a.source)
	tw := tabwriter.NewWriter(a.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tSTART AT\tKAFKA OFFSETS\tLEDGER\tACTION")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\n", r.tp.Topic, r.tp.Partition, r.next, r.bounds, r.ledger, r.do)
	}
	tw.Flush()
	if len(rows) == 0 {
		fmt.Fprintln(a.out, "(no partition to seed)")
	}
	for _, n := range a.notes {
		fmt.Fprintln(a.out, n)
	}
	if len(a.problems) > 0 {
		fmt.Fprintln(a.out)
		for _, p := range a.problems {
			fmt.Fprintln(a.out, "problem:", p)
		}
		return findings("adopt: %d problem(s); nothing written", len(a.problems))
	}
	if !apply {
		fmt.Fprintf(a.out, "\ndry run: nothing written. Re-run with --apply to seed %d offsets row(s), then start exactly run.\n", len(seed))
		return nil
	}
	w, err := exactly.NewSink(ctx, a.cfg, d, decode.For(a.cfg), a.log) // creates the ledger tables
	if err != nil {
		return err
	}
	defer w.Close()
	w.SetWriter(writerName("exactly adopt: " + a.source))
	sort.Slice(seed, func(i, j int) bool { return seed[i].String() < seed[j].String() })
	raced := 0
	for i, tp := range seed {
		a.pg.Show(i == len(seed)-1, "adopt: seeding offsets rows: %d/%d (%s)", i+1, len(seed), tp)
		got, err := w.SeedOffset(ctx, tp, a.want[tp])
		if err != nil {
			return err
		}
		if got != a.want[tp] {
			raced++
			a.pg.Clear()
			fmt.Fprintf(a.out, "%s: another writer created the row first at %d; it stays\n", tp, got)
		}
	}
	a.pg.Clear()
	fmt.Fprintf(a.out, "\nseeded %d offsets row(s). Start the pipeline with: exactly run -c %s\n", len(seed)-raced, a.cfg.File)
	if raced > 0 {
		return findings("adopt: %d row(s) were created by another writer meanwhile", raced)
	}
	return nil
}

// writerName fits the ledger's writer column (VARCHAR(255) on MySQL and
// SQL Server): a checkpoint URL in ADLS is easily longer. The end (the
// micro-batch) is kept.
func writerName(s string) string {
	r := []rune(s)
	if len(r) <= 255 {
		return s
	}
	return "exactly adopt: …" + string(r[len(r)-(255-len([]rune("exactly adopt: …"))):])
}
