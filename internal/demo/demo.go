// Package demo runs exactly's demonstration: an embedded Kafka broker, a
// workload produced into it, the pipeline (this executable's run command)
// started and SIGKILLed mid-flight again and again, then a last start
// that catches up and stops on SIGTERM; every table is then checked
// against what Kafka holds, and the ledger's chains against its offsets.
// The command prints the result.
package demo

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

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/exactly/exactly"
	prog "github.com/exactly/exactly/internal/progress"
	"github.com/exactly/exactly/internal/workload"
)

// SinkEnv is the environment variable a child process reads the sink DSN
// from: a DSN in its arguments would be visible to every user (ps).
const SinkEnv = "EXACTLY_SINK_DSN"

// pipeline is the demo pipeline's name in the ledger.
const pipeline = "demo"

// Options are a demo run's.
type Options struct {
	Records, Rate, Kills int
	Seed                 int64
	// Driver and DSN name the sink, D is its dialect.
	Driver, DSN string
	D           exactly.Dialect
	// Dir holds the configurations and the logs.
	Dir string
	// Exe is the exactly executable the pipeline runs as.
	Exe string
	// AtLeastOnce: each start of the pipeline is killed right after a
	// database commit, before Kafka is told, as the at-least-once
	// consumer run before it was.
	AtLeastOnce bool
}

// Result is what a demo found.
type Result struct {
	Model  *workload.Model
	Tables []workload.Finding
	Ledger *workload.Ledger
	Kills  int
	Took   time.Duration
}

// DriverOf tells the sink driver of a DSN.
func DriverOf(dsn string) string {
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

// run is one demo: its broker, sink and pipeline log.
type run struct {
	o       Options
	out     io.Writer
	pg      *prog.Bar
	rng     *rand.Rand
	brokers []string
	db      *sql.DB
	logf    *os.File
	start   time.Time
}

// Run runs the demo; out gets a line per kill, pg the progress.
func Run(ctx context.Context, out io.Writer, pg *prog.Bar, rng *rand.Rand, o Options) (*Result, error) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, workload.Topics...))
	if err != nil {
		return nil, fmt.Errorf("starting the embedded Kafka broker: %w", err)
	}
	defer cluster.Close()
	r := &run{o: o, out: out, pg: pg, rng: rng, brokers: cluster.ListenAddrs()}
	// The target tables, fresh, and no ledger rows of an earlier demo.
	if r.db, err = o.D.Open(ctx, exactly.SinkConfig{Driver: o.Driver, DSN: o.DSN}); err != nil {
		return nil, fmt.Errorf("opening the sink: %w", err)
	}
	defer r.db.Close()
	if err := Reset(ctx, r.db, o.D, o.Driver, pipeline); err != nil {
		return nil, err
	}
	r.start = time.Now()
	produced := make(chan error, 1)
	go func() {
		produced <- workload.Produce(ctx, r.brokers, workload.NewGenerator(o.Seed, 400), o.Records, o.Rate)
	}()
	if r.logf, err = os.Create(filepath.Join(o.Dir, "pipeline.log")); err != nil {
		return nil, err
	}
	defer r.logf.Close()
	res := &Result{}
	if res.Kills, err = r.kill(); err != nil {
		return nil, err
	}
	if err := <-produced; err != nil {
		return nil, fmt.Errorf("producing the workload: %w", err)
	}
	ends, err := workload.EndOffsets(ctx, r.brokers, workload.Topics...)
	if err != nil {
		return nil, err
	}
	if err := r.catchUp(ctx, ends); err != nil {
		return nil, err
	}
	if err := r.check(ctx, ends, res); err != nil {
		return nil, err
	}
	res.Took = time.Since(r.start)
	return res, nil
}

// config writes the configuration of the pipeline's nth start. Each
// start joins a fresh consumer group: the group only assigns partitions,
// offsets come from the ledger, so a killed member need not time out of
// the group before the next one starts.
func (r *run) config(n int) (string, error) {
	path := filepath.Join(r.o.Dir, fmt.Sprintf("exactly-%d.yaml", n))
	cfg := Config(pipeline, r.brokers, fmt.Sprintf("demo-%d-%d", r.o.Seed, n), r.o.Driver, r.o.DSN)
	return path, os.WriteFile(path, []byte(cfg), 0o600)
}

// kill starts the pipeline o.Kills times and SIGKILLs each start, at a
// failpoint or at a random moment.
func (r *run) kill() (int, error) {
	points := []string{"", "before_commit", "after_commit", "before_write", ""}
	kills := 0
	for i := 0; i < r.o.Kills; i++ {
		cfgPath, err := r.config(i)
		if err != nil {
			return kills, err
		}
		fp := points[i%len(points)]
		if fp != "" {
			fp += fmt.Sprintf(":%d", 2+r.rng.Intn(3))
		}
		if r.o.AtLeastOnce {
			// The at-least-once consumer's window: committed in the
			// database, the offsets not yet in Kafka.
			fp = fmt.Sprintf("after_commit:%d", 1+r.rng.Intn(2))
		}
		child, err := startChild(r.o.Exe, cfgPath, fp, r.logf)
		if err != nil {
			return kills, err
		}
		how := "at a random moment"
		if fp != "" {
			how = "at failpoint " + fp
		}
		alive := time.Duration(300+r.rng.Intn(1200)) * time.Millisecond
		if fp != "" {
			alive += 4 * time.Second // time to start, join and reach the failpoint
		}
		r.pg.Show(true, "demo: pipeline start %d of %d running, to be killed %s…", i+1, r.o.Kills+1, how)
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
		r.pg.Clear()
		fmt.Fprintf(r.out, "  kill %d: SIGKILL %s after %s\n", kills, how, time.Since(r.start).Round(time.Millisecond))
	}
	return kills, nil
}

// catchUp runs the last start until the ledger reaches the end of every
// partition, then stops it on SIGTERM like an operator would.
func (r *run) catchUp(ctx context.Context, ends map[string]map[int32]int64) error {
	cfgPath, err := r.config(r.o.Kills)
	if err != nil {
		return err
	}
	child, err := startChild(r.o.Exe, cfgPath, "", r.logf)
	if err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- child.Wait() }()
	started := time.Now()
	deadline := started.Add(90 * time.Second)
	var total int64
	for _, parts := range ends {
		for _, end := range parts {
			total += end
		}
	}
	for {
		ledger, err := workload.CheckLedger(ctx, r.db, r.o.D, pipeline, ends)
		if err == nil {
			r.pg.Show(false, "demo: pipeline start %d of %d catching up: %d records applied, Kafka holds %d offsets", r.o.Kills+1, r.o.Kills+1, ledger.Records, total)
		}
		// The ledger may be complete before the last start has even set
		// up its signal handling; give it a moment so the SIGTERM below
		// tests a clean stop, not a kill during start-up.
		if err == nil && ledger.AtEnd && time.Since(started) > 2*time.Second {
			break
		}
		if time.Now().After(deadline) {
			_ = child.Process.Signal(syscall.SIGKILL)
			var lagging any
			if ledger != nil {
				lagging = ledger.Lagging
			}
			return fmt.Errorf("the pipeline did not catch up within 90s (see %s): %v", r.logf.Name(), lagging)
		}
		select {
		case err := <-exited:
			return fmt.Errorf("the pipeline exited early: %v (log: %s)", err, r.logf.Name())
		case <-time.After(100 * time.Millisecond):
		}
	}
	r.pg.Show(true, "demo: stopping the pipeline (SIGTERM), then checking every table against Kafka…")
	_ = child.Process.Signal(syscall.SIGTERM)
	if err := <-exited; err != nil {
		return fmt.Errorf("the pipeline did not stop cleanly on SIGTERM: %v (log: %s)", err, r.logf.Name())
	}
	return nil
}

// check re-reads the topics and compares every table, and the ledger,
// with them.
func (r *run) check(ctx context.Context, ends map[string]map[int32]int64, res *Result) error {
	recs, err := workload.ReadAll(ctx, r.brokers, workload.Topics...)
	if err != nil {
		return fmt.Errorf("re-reading the topics: %w", err)
	}
	if res.Model, err = workload.Expect(recs); err != nil {
		return err
	}
	if res.Tables, err = workload.Check(ctx, r.db, res.Model); err != nil {
		return err
	}
	res.Ledger, err = workload.CheckLedger(ctx, r.db, r.o.D, pipeline, ends)
	return err
}

// Config is the configuration each demo pipeline runs with. The DSN is a
// single-quoted YAML value with ${ escaped as $${: exactly run expands
// ${NAME} in values, and a password holding "${" would have been cut or
// replaced by an environment variable's value.
func Config(pipeline string, brokers []string, group, driver, dsn string) string {
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

// Reset drops and creates the workload's tables, creates the ledger
// tables, and deletes the pipeline's ledger rows.
func Reset(ctx context.Context, db *sql.DB, d exactly.Dialect, driver, pipeline string) error {
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
