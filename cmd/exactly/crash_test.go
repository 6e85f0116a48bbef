package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/demo"
	"github.com/exactly/exactly/internal/testenv"
	"github.com/exactly/exactly/internal/workload"
)

// crashEnv is one sink plus an embedded broker holding a produced workload.
type crashEnv struct {
	driver, dsn string
	d           exactly.Dialect
	db          *sql.DB
	brokers     []string
	dir         string
	pipeline    string
	ends        map[string]map[int32]int64
}

func newCrashEnv(t *testing.T, driver string, records int) *crashEnv {
	t.Helper()
	e := &crashEnv{driver: driver, dir: t.TempDir(), pipeline: "crash"}
	switch driver {
	case "sqlite":
		e.dsn = filepath.Join(e.dir, "sink.db")
	case "postgres":
		e.dsn = testenv.PostgresSchema(t)
	case "mysql":
		e.dsn = testenv.MySQLDatabase(t)
	case "sqlserver":
		e.dsn = testenv.SQLServerDatabase(t)
	}
	var err error
	if e.d, err = dialectFor(driver); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if e.db, err = e.d.Open(ctx, exactly.SinkConfig{Driver: driver, DSN: e.dsn}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.db.Close() })
	if err := demo.Reset(ctx, e.db, e.d, driver, e.pipeline); err != nil {
		t.Fatal(err)
	}
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, workload.Topics...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	e.brokers = cluster.ListenAddrs()
	if err := workload.Produce(ctx, e.brokers, workload.NewGenerator(time.Now().UnixNano(), 100), records, 0); err != nil {
		t.Fatal(err)
	}
	if e.ends, err = workload.EndOffsets(ctx, e.brokers, workload.Topics...); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *crashEnv) config(t *testing.T, n int) string {
	path := filepath.Join(e.dir, fmt.Sprintf("c%d.yaml", n))
	cfg := fmt.Sprintf(`pipeline: %s
source: {brokers: [%s], group: crash-%d, session_timeout: 6s, rebalance_timeout: 6s}
sink: {driver: %s, dsn: '%s'}
batch: {interval: 50ms, max_records: 300}
%s`, e.pipeline, strings.Join(e.brokers, ","), n, e.driver, e.dsn, workload.Rules)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func (e *crashEnv) start(t *testing.T, n int, failpoint string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(testenv.Binary(t), "run", "-c", e.config(t, n), "--log-level", "warn")
	cmd.Env = append(os.Environ(), "EXACTLY_FAILPOINT="+failpoint)
	logf, err := os.OpenFile(filepath.Join(e.dir, "pipeline.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logf.Close() })
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd
}

func (e *crashEnv) ledger(t *testing.T) *workload.Ledger {
	t.Helper()
	l, err := workload.CheckLedger(context.Background(), e.db, e.d, e.pipeline, e.ends)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// finish runs the pipeline until the ledger reaches every end offset, stops
// it with SIGTERM (it must exit 0), and checks tables and ledger.
func (e *crashEnv) finish(t *testing.T, n int) {
	t.Helper()
	cmd := e.start(t, n, "")
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	started := time.Now()
	// Generous: on a loaded 2-core machine a race-built binary against
	// Babelfish caught up in over a minute with nothing wrong (an empty
	// log at warn level; the same case passed on a quieter machine).
	deadline := started.Add(3 * time.Minute)
	for !e.ledger(t).AtEnd || time.Since(started) < 2*time.Second {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("pipeline did not catch up: %v\n%s", e.ledger(t).Lagging, e.log())
		}
		select {
		case err := <-done:
			t.Fatalf("pipeline exited early: %v\n%s", err, e.log())
		case <-time.After(100 * time.Millisecond):
		}
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := <-done; err != nil {
		t.Fatalf("SIGTERM: exit %v, want 0\n%s", err, e.log())
	}
	e.check(t)
}

func (e *crashEnv) check(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	recs, err := workload.ReadAll(ctx, e.brokers, workload.Topics...)
	if err != nil {
		t.Fatal(err)
	}
	model, err := workload.Expect(recs)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := workload.Check(ctx, e.db, model)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range tables {
		if !f.OK() {
			t.Errorf("%s: expected %d found %d lost %d duplicated %d: %v", f.Table, f.Expected, f.Found, f.Lost, f.Duplicate, f.Samples)
		}
	}
	l := e.ledger(t)
	if !l.ChainsOK {
		t.Errorf("ledger chain broken: %v", l.Breaks)
	}
	if l.Records != int64(model.Records) {
		t.Errorf("ledger counts %d records, Kafka holds %d", l.Records, model.Records)
	}
}

func (e *crashEnv) log() string {
	b, _ := os.ReadFile(filepath.Join(e.dir, "pipeline.log"))
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

func killedBySIGKILL(err error) bool {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

// TestSIGKILLAtEachProtocolPoint kills the real process at each point of
// the batch protocol — before the write, after the write but before
// COMMIT, after COMMIT but before the Kafka commit — restarts it, and
// proves the tables equal what the topics say and the ledger chains.
func TestSIGKILLAtEachProtocolPoint(t *testing.T) {
	for _, driver := range []string{"sqlite", "postgres", "mysql", "sqlserver"} {
		for _, point := range []string{"before_write", "before_commit", "after_commit", "before_kafka_commit"} {
			t.Run(driver+"/"+point, func(t *testing.T) {
				e := newCrashEnv(t, driver, 3000)
				cmd := e.start(t, 0, point+":3")
				done := make(chan error, 1)
				go func() { done <- cmd.Wait() }()
				select {
				case err := <-done:
					if !killedBySIGKILL(err) {
						t.Fatalf("want death by SIGKILL at %s, got %v\n%s", point, err, e.log())
					}
				case <-time.After(60 * time.Second):
					cmd.Process.Kill()
					t.Fatalf("failpoint %s never reached\n%s", point, e.log())
				}
				// Two batches committed before the third reached the point;
				// the ledger must show exactly what is durable, no more.
				before := e.ledger(t)
				if !before.ChainsOK {
					t.Fatalf("chain broken right after the kill: %v", before.Breaks)
				}
				e.finish(t, 1)
			})
		}
	}
}
