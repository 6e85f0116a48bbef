package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/bench"
	"github.com/exactly/exactly/internal/demo"
	"github.com/exactly/exactly/internal/kafka"
	"github.com/exactly/exactly/internal/metrics"
)

func newBenchCmd(g *globals) *cobra.Command {
	var b benchOpts
	o := &b.Options
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure throughput and commit latency against the database's own bulk-load limit, in the same run",
		Long: `bench produces a synthetic upsert workload (one table per topic, distinct ids) into a
Kafka broker it starts in a process of its own (or --brokers), runs the real pipeline in-process (kafka.Source feeding
exactly.Sink, the code 'exactly run' runs), and prints, measured in the same run:
  1. end-to-end throughput (records/s) with exactly-once upserts (--records; 0 skips);
  2. the baseline: the same rows loaded by the database's fastest path (PostgreSQL: COPY into an
     UNLOGGED staging table + one INSERT … ON CONFLICT per table, one transaction; SQLite: one
     transaction of prepared upserts), and the ratio pipeline/baseline;
  3. commit latency p50/p99 (produce timestamp → database commit) at a fixed --rate (0 skips);
  4. peak resident memory (VmHWM) of the pipeline and the producer, and of the broker apart.
With --format debezium each row is produced as a Debezium create event with its Connect schema
(the JSON converter's schemas.enable=true, key and value) into the same tables; the baseline
loads the same rows.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBench(cmd.Context(), g, &b)
		},
	}
	f := cmd.Flags()
	b.sinkf.add(f, "sink DSN (postgres://…, mysql://…, sqlserver://… or a SQLite file path); default: a SQLite file in a temporary directory")
	f.StringVar(&b.brokers, "brokers", "", "Kafka brokers host:port,…; default: a kfake broker in a process of its own")
	f.BoolVar(&b.inProcess, "in-process-broker", false, "run the kfake broker in the bench's own process: its records, every one produced, then count in the pipeline's memory and garbage collection")
	f.IntVar(&o.Topics, "topics", 8, "topics, one table each")
	f.IntVar(&o.Partitions, "partitions", 8, "partitions per topic")
	f.IntVar(&o.Records, "records", 1_000_000, "records for the throughput phase (0 skips it)")
	f.IntVar(&o.RecordBytes, "record-bytes", 200, "approximate size of each row's JSON (the record value; with --format debezium, its after image)")
	f.StringVar(&o.Format, "format", bench.FormatJSON, "record format: json (each row a JSON object) or debezium (each row in a Debezium create event with its schema)")
	f.IntVar(&o.Rate, "rate", 0, "records/s for the latency phase (0 skips it)")
	f.DurationVar(&o.Duration, "duration", 20*time.Second, "length of the latency phase")
	f.DurationVar(&o.Interval, "interval", time.Second, "batch.interval")
	f.IntVar(&o.MaxRecords, "max-records", 50000, "batch.max_records")
	f.IntVar(&o.MaxConns, "max-conns", 4, "sink.max_conns")
	f.StringVar(&o.Flights, "flights", "adaptive", "sink.flights: adaptive (transactions in flight chosen at run time, up to --max-conns) or fixed (always --max-conns)")
	f.StringVar(&o.SynchronousCommit, "synchronous-commit", "", "sink.synchronous_commit (PostgreSQL), e.g. off")
	f.IntVar(&o.Rounds, "rounds", 1, "repeat baseline and pipeline over the same records; report the round with the median ratio")
	f.BoolVar(&o.Keep, "keep", false, "keep the bench tables and ledger rows")
	f.BoolVar(&b.asJSON, "json", false, "print the figures as JSON")
	f.StringVar(&b.cpuProfile, "cpuprofile", "", "write a CPU profile of the run to this file")
	b.ops.flags(cmd)
	return cmd
}

// benchOpts are bench's flags.
type benchOpts struct {
	bench.Options
	sinkf      sinkFlags
	brokers    string
	inProcess  bool
	asJSON     bool
	cpuProfile string
	ops        opsFlags
}

// runBench runs the bench and prints its report.
func runBench(ctx context.Context, g *globals, b *benchOpts) error {
	if ctx == nil {
		ctx = context.Background()
	}
	o := &b.Options
	log, err := g.logger()
	if err != nil {
		return err
	}
	o.Log = log
	if b.brokers != "" {
		o.Brokers = strings.Split(b.brokers, ",")
	} else if !b.inProcess {
		self, err := os.Executable()
		if err != nil {
			return fmt.Errorf("finding this executable to run the broker in a process of its own (--in-process-broker runs it in this one): %w", err)
		}
		o.BrokerCommand = []string{self, benchBrokerCmd}
	}
	if o.Format != bench.FormatJSON && o.Format != bench.FormatDebezium {
		return usage(fmt.Errorf("--format %q: expected %s or %s", o.Format, bench.FormatJSON, bench.FormatDebezium))
	}
	if o.Topics <= 0 || o.Partitions <= 0 || o.Records < 0 || o.Rate < 0 || o.RecordBytes < 0 || o.MaxConns <= 0 || o.Interval <= 0 {
		return usage(fmt.Errorf("--topics, --partitions, --max-conns and --interval must be positive; --records, --rate and --record-bytes not negative"))
	}
	sink, err := b.sinkf.resolve()
	if err != nil {
		return err
	}
	if sink == "" {
		dir, err := os.MkdirTemp("", "exactly-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		sink = filepath.Join(dir, "bench.db")
	}
	o.DSN = sink
	if o.Dialect, err = dialectFor(demo.DriverOf(sink)); err != nil {
		return usage(err)
	}
	if !b.asJSON || b.ops.addr != "" {
		o.Progress = func(format string, args ...any) { fmt.Fprintf(g.stderr, "bench: "+format+"\n", args...) }
	}
	if b.ops.addr != "" {
		// The status server of exactly run, on each pipeline the
		// bench runs: measures what the page costs the pipeline.
		o.Observer = func(cfg *exactly.Config) exactly.Observer { return b.ops.metrics(cfg) }
		o.Serve = func(ctx context.Context, cfg *exactly.Config, sink *exactly.Sink, src *kafka.Source, obs exactly.Observer) (func(), error) {
			m, _ := obs.(*metrics.Metrics)
			return b.ops.serve(ctx, cfg, sink, src, m, log)
		}
	}
	if b.cpuProfile != "" {
		f, err := os.Create(b.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	res, err := bench.Run(ctx, *o)
	if err != nil {
		return err
	}
	if b.asJSON {
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	report(g.stdout, res)
	return nil
}

func report(w io.Writer, r *bench.Result) {
	mib := func(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }
	format := ""
	if r.Format != bench.FormatJSON {
		format = "  format=" + r.Format // the rows in Debezium events: ~B/record is the row's
	}
	fmt.Fprintf(w, "exactly bench  sink=%s  %d topics × %d partitions  ~%d B/record%s  max_conns=%d (%s)  interval=%s  load=%s\n",
		r.Driver, r.Topics, r.Partitions, r.RecordBytes, format, r.MaxConns, r.Flights, r.Interval, r.LoadAvg)
	fmt.Fprintf(w, "pipeline: %s\n", r.Pipeline)
	fmt.Fprintf(w, "broker:   %s\n", map[string]string{"process": "kfake in a process of its own", "in-process": "kfake in this process (its records count in the peak RSS below)", "given": "--brokers"}[r.Broker])
	if t := r.Throughput; t != nil {
		fmt.Fprintf(w, "\nthroughput (%d records, upsert, exactly once)\n", t.Records)
		fmt.Fprintf(w, "  pipeline   %10.0f records/s  (%.2fs first fetch → last commit, %d batches; %.2fs start-up before)\n",
			t.PipelineRecordsPerS, t.PipelineSeconds, t.Batches, t.StartupSeconds)
		fmt.Fprintf(w, "  baseline   %10.0f records/s  (%.2fs: %s)\n", t.BaselineRecordsPerS, t.BaselineSeconds, t.BaselineMethod)
		fmt.Fprintf(w, "  ratio      %10.2f × baseline\n", t.Ratio)
		if len(t.Rounds) > 1 {
			var rs []string
			for _, r := range t.Rounds {
				rs = append(rs, fmt.Sprintf("%.2f", r.Ratio))
			}
			fmt.Fprintf(w, "  rounds     %10s   ratios %s; the figures above are the median round\n", fmt.Sprint(len(t.Rounds)), strings.Join(rs, " "))
		}
		fmt.Fprintf(w, "  rows       %10s\n", map[bool]string{true: "all present", false: "MISSING"}[t.RowsChecked])
		fmt.Fprintf(w, "  peak RSS   %10s\n", mib(t.PeakRSSBytes))
	}
	if l := r.Latency; l != nil {
		fmt.Fprintf(w, "\nlatency (%d records/s for %.0fs, achieved %.0f/s; produce timestamp → database commit)\n", l.Rate, l.Seconds, l.Achieved)
		fmt.Fprintf(w, "  p50 %.0f ms   p99 %.0f ms   max %.0f ms   worst partition p99 %.0f ms\n", l.P50Ms, l.P99Ms, l.MaxMs, l.WorstPartitionP99Ms)
		fmt.Fprintf(w, "  after the first %.0fs (tables created, flight limit settling): p50 %.0f ms   p99 %.0f ms\n", l.SteadyAfterS, l.SteadyP50Ms, l.SteadyP99Ms)
		fmt.Fprintf(w, "  partitions committed %d of %d; max per-partition lag %d records; %d batches\n",
			l.PartitionsCommitted, l.Partitions, l.MaxPartitionLag, l.Batches)
		fmt.Fprintf(w, "  peak RSS   %s\n", mib(l.PeakRSSBytes))
	}
	fmt.Fprintf(w, "\npeak RSS of the whole run: %s", mib(r.PeakRSSBytes))
	if r.BrokerPeakRSSBytes > 0 {
		fmt.Fprintf(w, " (the broker's process apart: %s)", mib(r.BrokerPeakRSSBytes))
	}
	fmt.Fprintln(w)
}

// benchBrokerCmd is the hidden command bench runs its broker with, in a
// process of its own (bench.ServeBroker): it ends when its stdin does.
const benchBrokerCmd = "bench-broker"

func newBenchBrokerCmd() *cobra.Command {
	return &cobra.Command{
		Use:    benchBrokerCmd,
		Short:  "The broker exactly bench runs in a process of its own (ends with its stdin)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return bench.ServeBroker(cmd.InOrStdin(), cmd.OutOrStdout())
		},
	}
}
