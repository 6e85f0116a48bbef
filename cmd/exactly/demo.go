package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/workload"
)

type demoOpts struct {
	sinkf   sinkFlags
	records int
	rate    int
	kills   int
	seed    int64
	keep    bool
	// atLeastOnce first runs the same records through a plain consumer
	// that writes, then commits offsets (demoAtLeastOnce).
	atLeastOnce bool
}

func newDemoCmd(g *globals) *cobra.Command {
	o := demoOpts{}
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Embedded Kafka + SQLite: run the pipeline, SIGKILL it mid-flight, prove nothing was lost or doubled",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return demo(cmd.Context(), g, o)
		},
	}
	f := cmd.Flags()
	o.sinkf.add(f, "sink DSN (postgres://…, mysql://user@host:3306/db, sqlserver://… or a SQLite file path); default: a SQLite file in a temporary directory")
	f.IntVar(&o.records, "records", 30000, "records to produce")
	f.IntVar(&o.rate, "rate", 6000, "records per second to produce")
	f.IntVar(&o.kills, "kills", 5, "times to SIGKILL the pipeline while it runs")
	f.Int64Var(&o.seed, "seed", 0, "random seed (0: from the clock); a run is replayed by its seed")
	f.BoolVar(&o.keep, "keep", false, "keep the temporary directory (config, logs, SQLite file)")
	f.BoolVar(&o.atLeastOnce, "at-least-once", false, "first run the same records through a plain write-then-commit consumer, killed between the two, and count the doubled rows")
	_ = f.MarkHidden("at-least-once")
	return cmd
}

// driverOf tells the sink driver of a DSN.
func driverOf(dsn string) string {
	switch {
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		return "postgres"
	case strings.HasPrefix(dsn, "mysql://"), strings.HasPrefix(dsn, "mariadb://"):
		return "mysql"
	case strings.HasPrefix(dsn, "sqlserver://"):
		return "sqlserver"
	}
	return "sqlite"
}

func demo(ctx context.Context, g *globals, o demoOpts) error {
	if ctx == nil {
		ctx = context.Background()
	}
	out := g.stdout
	if o.seed == 0 {
		o.seed = time.Now().UnixNano() % 1_000_000_007
	}
	if o.records <= 0 || o.kills < 0 || o.rate < 0 {
		return usage(fmt.Errorf("--records must be positive, --kills and --rate not negative"))
	}
	rng := rand.New(rand.NewSource(o.seed))
	dir, err := os.MkdirTemp("", "exactly-demo-")
	if err != nil {
		return err
	}
	if !o.keep {
		defer os.RemoveAll(dir)
	}
	dsn, err := o.sinkf.resolve()
	if err != nil {
		return err
	}
	if dsn == "" {
		dsn = filepath.Join(dir, "demo.db")
	}
	driver := driverOf(dsn)
	fmt.Fprintf(out, "exactly demo  seed=%d  sink=%s  records=%d  kills=%d\n", o.seed, driver, o.records, o.kills)
	if o.atLeastOnce {
		if err := demoAtLeastOnce(ctx, out, o, dsn, dir, rng); err != nil {
			return err
		}
		fmt.Fprintf(out, "exactly (the same records; killed %d times after its COMMIT, before telling Kafka):\n", o.kills)
	}

	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, workload.Topics...))
	if err != nil {
		return fmt.Errorf("starting the embedded Kafka broker: %w", err)
	}
	defer cluster.Close()
	brokers := cluster.ListenAddrs()

	// The target tables, fresh, and no ledger rows of an earlier demo.
	d, err := dialectFor(driver)
	if err != nil {
		return err
	}
	const pipeline = "demo"
	db, err := d.Open(ctx, exactly.SinkConfig{Driver: driver, DSN: dsn})
	if err != nil {
		return fmt.Errorf("opening the sink: %w", err)
	}
	defer db.Close()
	if err := resetDemo(ctx, db, d, driver, pipeline); err != nil {
		return err
	}

	writeConfig := func(n int) (string, error) {
		path := filepath.Join(dir, fmt.Sprintf("exactly-%d.yaml", n))
		// Each start joins a fresh consumer group: the group only assigns
		// partitions, offsets come from the ledger, so a killed member
		// need not time out of the group before the next one starts.
		cfg := demoConfig(pipeline, brokers, fmt.Sprintf("demo-%d-%d", o.seed, n), driver, dsn)
		return path, os.WriteFile(path, []byte(cfg), 0o600)
	}

	start := time.Now()
	gen := workload.NewGenerator(o.seed, 400)
	produced := make(chan error, 1)
	go func() { produced <- workload.Produce(ctx, brokers, gen, o.records, o.rate) }()

	exe, err := os.Executable()
	if err != nil {
		return err
	}
	logf, err := os.Create(filepath.Join(dir, "pipeline.log"))
	if err != nil {
		return err
	}
	defer logf.Close()

	points := []string{"", "before_commit", "after_commit", "before_write", ""}
	kills := 0
	pg := newProgress(g)
	defer pg.Done()
	for i := 0; i < o.kills; i++ {
		cfgPath, err := writeConfig(i)
		if err != nil {
			return err
		}
		fp := points[i%len(points)]
		if fp != "" {
			fp += fmt.Sprintf(":%d", 2+rng.Intn(3))
		}
		if o.atLeastOnce {
			// The at-least-once consumer's window: committed in the
			// database, the offsets not yet in Kafka.
			fp = fmt.Sprintf("after_commit:%d", 1+rng.Intn(2))
		}
		child, err := startChild(exe, cfgPath, fp, logf)
		if err != nil {
			return err
		}
		how := "at a random moment"
		if fp != "" {
			how = "at failpoint " + fp
		}
		alive := time.Duration(300+rng.Intn(1200)) * time.Millisecond
		if fp != "" {
			alive += 4 * time.Second // time to start, join and reach the failpoint
		}
		pg.Show(true, "demo: pipeline start %d of %d running, to be killed %s…", i+1, o.kills+1, how)
		exited := make(chan struct{})
		go func() { _ = child.Wait(); close(exited) }()
		select {
		case <-exited: // a failpoint fired: the child killed itself
		case <-time.After(alive):
			_ = child.Process.Signal(syscall.SIGKILL)
			<-exited
			if fp != "" {
				how = "at a random moment (failpoint " + fp + " not reached)"
			}
		}
		kills++
		pg.Clear()
		fmt.Fprintf(out, "  kill %d: SIGKILL %s after %s\n", kills, how, time.Since(start).Round(time.Millisecond))
	}
	if err := <-produced; err != nil {
		return fmt.Errorf("producing the workload: %w", err)
	}
	ends, err := workload.EndOffsets(ctx, brokers, workload.Topics...)
	if err != nil {
		return err
	}

	// The last start runs until the ledger reaches the end of every
	// partition, then stops on SIGTERM like an operator would stop it.
	cfgPath, err := writeConfig(o.kills)
	if err != nil {
		return err
	}
	child, err := startChild(exe, cfgPath, "", logf)
	if err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- child.Wait() }()
	started := time.Now()
	deadline := started.Add(90 * time.Second)
	var ledger *workload.Ledger
	var total int64
	for _, parts := range ends {
		for _, end := range parts {
			total += end
		}
	}
	for {
		ledger, err = workload.CheckLedger(ctx, db, d, pipeline, ends)
		if err == nil {
			pg.Show(false, "demo: pipeline start %d of %d catching up: %d records applied, Kafka holds %d offsets", o.kills+1, o.kills+1, ledger.Records, total)
		}
		// The ledger may be complete before the last start has even set
		// up its signal handling; give it a moment so the SIGTERM below
		// tests a clean stop, not a kill during start-up.
		if err == nil && ledger.AtEnd && time.Since(started) > 2*time.Second {
			break
		}
		if time.Now().After(deadline) {
			_ = child.Process.Signal(syscall.SIGKILL)
			return findings("the pipeline did not catch up within 90s (see %s): %v", logf.Name(), ledger.Lagging)
		}
		select {
		case err := <-exited:
			return findings("the pipeline exited early: %v (log: %s)", err, logf.Name())
		case <-time.After(100 * time.Millisecond):
		}
	}
	pg.Show(true, "demo: stopping the pipeline (SIGTERM), then checking every table against Kafka…")
	_ = child.Process.Signal(syscall.SIGTERM)
	if err := <-exited; err != nil {
		return findings("the pipeline did not stop cleanly on SIGTERM: %v (log: %s)", err, logf.Name())
	}

	recs, err := workload.ReadAll(ctx, brokers, workload.Topics...)
	if err != nil {
		return fmt.Errorf("re-reading the topics: %w", err)
	}
	model, err := workload.Expect(recs)
	if err != nil {
		return err
	}
	tables, err := workload.Check(ctx, db, model)
	if err != nil {
		return err
	}
	ledger, err = workload.CheckLedger(ctx, db, d, pipeline, ends)
	if err != nil {
		return err
	}
	pg.Done()
	return demoReport(out, model, tables, ledger, kills, time.Since(start), o.seed, dir, o.keep)
}

// demoConfig is the configuration each demo pipeline runs with. The DSN
// is a single-quoted YAML value with ${ escaped as $${: exactly run
// expands ${NAME} in values, and a password holding "${" would have been
// cut or replaced by an environment variable's value.
func demoConfig(pipeline string, brokers []string, group, driver, dsn string) string {
	dsn = strings.ReplaceAll(strings.ReplaceAll(dsn, "'", "''"), "${", "$${")
	return fmt.Sprintf(`pipeline: %s
source:
  brokers: [%s]
  group: %s
  session_timeout: 6s
  rebalance_timeout: 6s
sink:
  driver: %s
  dsn: '%s'
batch:
  interval: 150ms
  max_records: 2000
%s`, pipeline, strings.Join(brokers, ", "), group, driver, dsn, workload.Rules)
}

func startChild(exe, cfgPath, failpoint string, logf io.Writer) (*exec.Cmd, error) {
	cmd := exec.Command(exe, "run", "-c", cfgPath, "--log-level", "warn")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), "EXACTLY_FAILPOINT="+failpoint)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the pipeline: %w", err)
	}
	return cmd, nil
}

func resetDemo(ctx context.Context, db *sql.DB, d exactly.Dialect, driver, pipeline string) error {
	for _, s := range workload.Drop() {
		if _, err := db.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("resetting demo tables: %w", err)
		}
	}
	for _, s := range workload.DDL(driver) {
		if _, err := db.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("creating demo tables: %w", err)
		}
	}
	for _, s := range d.LedgerDDL() {
		if _, err := db.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("creating ledger tables: %w", err)
		}
	}
	for _, t := range []string{"exactly_offsets", "exactly_batches", "exactly_dead_letters", "exactly_pipelines"} {
		if _, err := db.ExecContext(ctx, exactly.Rebind(d, "DELETE FROM "+t+" WHERE pipeline = ?"), pipeline); err != nil {
			return fmt.Errorf("clearing ledger rows of pipeline %s: %w", pipeline, err)
		}
	}
	return nil
}

func demoReport(out io.Writer, m *workload.Model, tables []workload.Finding, l *workload.Ledger, kills int, took time.Duration, seed int64, dir string, keep bool) error {
	fmt.Fprintf(out, "\nrecords produced      %d (read back from Kafka, read_committed)\n", m.Records)
	fmt.Fprintf(out, "pipeline kills        %d (SIGKILL), then a clean stop (SIGTERM)\n", kills)
	ok := true
	lost, dup := 0, 0
	fmt.Fprintf(out, "\n%-16s %9s %9s %6s %11s\n", "table", "expected", "found", "lost", "duplicated")
	for _, f := range tables {
		fmt.Fprintf(out, "%-16s %9d %9d %6d %11d\n", f.Table, f.Expected, f.Found, f.Lost, f.Duplicate)
		lost += f.Lost
		dup += f.Duplicate
		if !f.OK() {
			ok = false
			for _, s := range f.Samples {
				fmt.Fprintf(out, "    %s\n", s)
			}
		}
	}
	fmt.Fprintf(out, "\nledger batches        %d committed, %d failed attempts recorded\n", l.Batches, l.Failed)
	fmt.Fprintf(out, "records in ledger     %d (sum of committed batch counts)\n", l.Records)
	chain := "intact"
	if !l.ChainsOK {
		chain = "BROKEN"
		ok = false
		for _, b := range l.Breaks {
			fmt.Fprintf(out, "    %s\n", b)
		}
	}
	fmt.Fprintf(out, "ledger chain          %s (every batch starts where the previous one ended)\n", chain)
	if l.Records != int64(m.Records) {
		ok = false
		fmt.Fprintf(out, "ledger counts         MISMATCH: ledger counts %d records, Kafka holds %d\n", l.Records, m.Records)
	}
	fmt.Fprintf(out, "took                  %s\n", took.Round(time.Millisecond))
	if keep {
		fmt.Fprintf(out, "kept                  %s\n", dir)
	}
	if !ok {
		return findings("NOT exactly once: %d lost, %d duplicated (replay with --seed %d)", lost, dup, seed)
	}
	fmt.Fprintf(out, "\nresult                exactly once: 0 lost, 0 duplicated\n")
	return nil
}
